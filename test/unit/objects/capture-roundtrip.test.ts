import assert from 'node:assert/strict';
import { deserializeEntity, NovaObject, serializeEntity } from '../../../src/objects';
import { classSpec } from '../../../src/objects/field-types';
import { conductorExchanges, findPrimitives, publishedMessages } from './capture-fixtures';

describe('objects: every primitive of the lifecycle capture', () => {
  it('decodes and re-encodes losslessly (deep-equal and JSON-identical)', () => {
    let checked = 0;
    const classes = new Set<string>();
    for (const { message } of publishedMessages()) {
      // Request args, results, object_action updates, notification payloads: every primitive at any depth.
      for (const primitive of findPrimitives(message)) {
        const decoded = NovaObject.fromPrimitive(primitive);
        const encoded = decoded.toPrimitive();
        assert.deepEqual(encoded, primitive);
        assert.equal(JSON.stringify(encoded), JSON.stringify(primitive));
        checked++;
        classes.add(decoded.name);
      }
    }
    assert.ok(checked > 0, 'the capture holds no object primitive');
    // Known classes were decoded with their schema, not passed through.
    for (const name of ['Instance', 'Service', 'ComputeNode', 'InstanceInfoCache', 'Flavor', 'RequestSpec', 'Selection']) {
      assert.ok(classes.has(name), `no ${name} in the capture`);
      assert.ok(classSpec(name), `${name} has no schema`);
    }
    console.log(`      (${checked} primitives of ${classes.size} classes checked)`);
  });

  it('decodes whole RPC arguments and results with deserializeEntity and serializes them back identically', () => {
    let checked = 0;
    for (const { message } of publishedMessages()) {
      for (const key of ['args', 'result', 'payload'] as const) {
        if (!(key in message)) continue;
        const value = message[key];
        assert.equal(JSON.stringify(serializeEntity(deserializeEntity(value))), JSON.stringify(value));
        checked++;
      }
    }
    assert.ok(checked > 100, `only ${checked} values checked`);
  });

  it('decodes known classes with typed values (datetimes as Date, object fields as NovaObject)', () => {
    const instance = findPrimitives(publishedMessages().map((m) => m.message)).find(
      (p) => p['nova_object.name'] === 'Instance' && 'launched_at' in (p['nova_object.data'] as object) && (p['nova_object.data'] as Record<string, unknown>)['launched_at'] !== null,
    );
    assert.ok(instance);
    const obj = NovaObject.fromPrimitive(instance);
    assert.ok(obj.get('launched_at') instanceof Date);
    assert.ok(obj.get('flavor') === undefined || obj.get('flavor') instanceof NovaObject);
    assert.equal(typeof obj.get('vcpus'), 'number');
  });

  it('applies every captured object_action reply like oslo: updates set, changes = obj_what_changed', () => {
    let checked = 0;
    for (const { request, reply } of conductorExchanges()) {
      if (request['method'] !== 'object_action' || !Array.isArray(reply['result'])) continue;
      const args = request['args'] as Record<string, unknown>;
      const objinst = args['objinst'] as Record<string, unknown>;
      const [updates] = reply['result'] as [Record<string, unknown>, unknown];
      const obj = NovaObject.fromPrimitive(objinst);
      obj.applyUpdates(updates);

      const expected: Record<string, unknown> = { ...(objinst['nova_object.data'] as Record<string, unknown>) };
      for (const [k, v] of Object.entries(updates)) if (k !== 'obj_what_changed') expected[k] = v;
      const after = obj.toPrimitive();
      assert.deepEqual(after['nova_object.data'], expected, `${objinst['nova_object.name']}.${String(args['objmethod'])}`);
      // Nested objects the reply did not replace keep their own changes (oslo resets non-recursively).
      const nestedDirty = Object.entries(after['nova_object.data'])
        .filter(([k, v]) => !(k in updates) && typeof v === 'object' && v !== null && 'nova_object.changes' in v)
        .map(([k]) => k);
      assert.deepEqual(new Set(obj.changes()), new Set([...(updates['obj_what_changed'] as string[]), ...nestedDirty]));
      checked++;
    }
    assert.ok(checked >= 40, `only ${checked} replies checked`);
  });
});
