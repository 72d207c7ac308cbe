import assert from 'node:assert/strict';
import { deserializeEntity, newObject, NovaObject, ObjectDecodeError, serializeEntity } from '../../../src/objects';

const selection = {
  'nova_object.name': 'Selection',
  'nova_object.namespace': 'nova',
  'nova_object.version': '1.1',
  'nova_object.data': { service_host: 'fake-1', nodename: 'fake-1', limits: null },
};

describe('objects: NovaObjectSerializer walk', () => {
  it('turns every primitive inside lists and dicts into a NovaObject, leaving the rest as it is', () => {
    const args = { host_list: [selection], filter_properties: { retry: { num_attempts: 1, hosts: [['fake-1', 'fake-1']] } }, node: 'fake-1' };
    const decoded = deserializeEntity(args) as Record<string, unknown>;
    const hostList = decoded['host_list'] as unknown[];
    assert.ok(hostList[0] instanceof NovaObject);
    assert.equal((hostList[0] as NovaObject).name, 'Selection');
    assert.deepEqual(decoded['filter_properties'], args.filter_properties);
    assert.notEqual(decoded['filter_properties'], args.filter_properties, 'a new container');
    assert.deepEqual(serializeEntity(decoded), args);
  });

  it('names where a bad primitive sits', () => {
    const bad = { host_list: [{ ...selection, 'nova_object.namespace': 'neutron' }] };
    assert.throws(
      () => deserializeEntity(bad, 'args'),
      (err: unknown) => err instanceof ObjectDecodeError && err.path === 'args.host_list[0]',
    );
  });

  it('decodes a primitive even when the class is unknown (kept as-is)', () => {
    const payload = { 'nova_object.name': 'InstanceActionPayload', 'nova_object.namespace': 'nova', 'nova_object.version': '1.8', 'nova_object.data': { a: 1 } };
    const decoded = deserializeEntity(payload);
    assert.ok(decoded instanceof NovaObject);
    assert.deepEqual(serializeEntity(decoded), payload);
  });

  it('serializes objects, Sets and bare Dates (plain datetime format)', () => {
    const fault = newObject('InstanceFault', { code: 500 });
    const out = serializeEntity({ fault, tags: new Set(['a', 'b']), at: new Date('2026-11-30T01:07:24.190Z'), n: [1, null] });
    assert.deepEqual(out, {
      fault: fault.toPrimitive(),
      tags: ['a', 'b'],
      at: '2026-11-30T01:07:24.190000',
      n: [1, null],
    });
  });
});
