import assert from 'node:assert/strict';
import {
  newObject,
  NovaObject,
  ObjectDecodeError,
  ObjectFieldError,
  UnknownObjectClassError,
  isNovaObject,
  type ComputeNode,
  type Instance,
  type NovaObjectPrimitive,
  type ObjectName,
} from '../../../src/objects';
import { firstExchange } from './capture-fixtures';

function capturedInstance(): Instance {
  // The Instance the Python compute sent with its first Instance.save (build: vm building, task scheduling → null).
  const { request } = firstExchange('Instance', 'save');
  const objinst = (request['args'] as Record<string, unknown>)['objinst'];
  const obj = NovaObject.fromPrimitive(objinst);
  assert.ok(isNovaObject(obj, 'Instance'));
  return obj;
}

function primitive(name: string, data: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { 'nova_object.name': name, 'nova_object.namespace': 'nova', 'nova_object.version': '1.0', 'nova_object.data': data, ...extra };
}

describe('objects: NovaObject', () => {
  describe('set fields, unset ≠ null', () => {
    it('reads unset fields as undefined and leaves them out of the primitive', () => {
      const service = newObject('Service', { host: 'cmp1', disabled_reason: null });
      assert.equal(service.get('binary'), undefined);
      assert.equal(service.has('binary'), false);
      assert.equal(service.get('disabled_reason'), null);
      assert.equal(service.has('disabled_reason'), true);
      assert.deepEqual(service.toPrimitive(), {
        'nova_object.name': 'Service',
        'nova_object.namespace': 'nova',
        'nova_object.version': '1.22',
        'nova_object.data': { host: 'cmp1', disabled_reason: null },
        'nova_object.changes': ['host', 'disabled_reason'],
      });
    });

    it('unset() removes the value and its change', () => {
      const service = newObject('Service', { host: 'cmp1', topic: 'compute' });
      service.unset('topic');
      assert.equal(service.has('topic'), false);
      assert.deepEqual(service.changes(), ['host']);
      assert.deepEqual(Object.keys(service.toPrimitive()['nova_object.data']), ['host']);
    });

    it('omits nova_object.changes when nothing changed', () => {
      const service = newObject('Service', { host: 'cmp1' });
      service.resetChanges();
      assert.equal('nova_object.changes' in service.toPrimitive(), false);
    });

    it('builds objects at the Zed version', () => {
      const versions: Array<[ObjectName, string]> = [['Instance', '2.7'], ['Service', '1.22'], ['ComputeNode', '1.19'], ['InstanceFault', '1.2'], ['InstanceActionEvent', '1.4'], ['Diagnostics', '1.0']];
      for (const [name, version] of versions) assert.equal(newObject(name).version, version);
    });

    it('rejects a class this Nova does not have', () => {
      assert.throws(() => newObject('NoSuchThing' as ObjectName), UnknownObjectClassError);
    });
  });

  describe('set() validates and coerces as oslo does', () => {
    it('coerces like Python (int("5"), str(5), bool(...), ISO strings to datetimes)', () => {
      const instance = newObject('Instance');
      instance.set('vcpus', '5' as unknown as number);
      instance.set('vm_state', 5 as unknown as string);
      instance.set('deleted', 'x' as unknown as boolean);
      instance.set('launched_at', '2026-11-30T01:08:22.123456' as unknown as Date);
      assert.equal(instance.get('vcpus'), 5);
      assert.equal(instance.get('vm_state'), '5');
      assert.equal(instance.get('deleted'), true);
      assert.ok(instance.get('launched_at') instanceof Date);
      assert.equal(instance.toPrimitive()['nova_object.data']['launched_at'], '2026-11-30T01:08:22Z');
    });

    it('canonicalises Nova enums (Architecture, HVType, VMMode, power state index)', () => {
      const spec = newObject('HVSpec', { arch: 'AMD64' as 'x86_64', hv_type: 'Docker' as 'docker', vm_mode: 'EXE' as 'exe' });
      assert.deepEqual(spec.toPrimitive()['nova_object.data'], { arch: 'x86_64', hv_type: 'docker', vm_mode: 'exe' });
      const diagnostics = newObject('Diagnostics');
      diagnostics.set('state', 4 as unknown as 'shutdown');
      assert.equal(diagnostics.get('state'), 'shutdown');
    });

    it('throws ObjectFieldError naming class and field for a wrong type', () => {
      const instance = newObject('Instance');
      assert.throws(
        () => instance.set('vcpus', 'many' as unknown as number),
        (err: unknown) => err instanceof ObjectFieldError && err.objectName === 'Instance' && err.field === 'vcpus' && /integer/.test(err.message),
      );
      assert.throws(() => instance.set('metadata', { a: null } as unknown as Record<string, string>), ObjectFieldError);
      assert.throws(() => instance.set('access_ip_v4', '::1'), ObjectFieldError);
      assert.throws(() => newObject('HVSpec').set('arch', 'sparc-ish' as 'x86_64'), ObjectFieldError);
      assert.throws(() => instance.set('flavor', newObject('Service') as never), /object of type Flavor is required, not Service/);
      assert.equal(instance.has('vcpus'), false, 'a rejected value is not stored');
    });

    it('applies Field null rules: nullable → null, default → default, else an error', () => {
      const instance = newObject('Instance');
      instance.set('hostname', null);
      instance.set('deleted', null as unknown as boolean);
      assert.equal(instance.get('hostname'), null);
      assert.equal(instance.get('deleted'), false);
      assert.throws(() => instance.set('uuid', null as unknown as string), /cannot be None/);
    });

    it('refuses unknown fields of a known class and changes to a read-only field', () => {
      const node = newObject('ComputeNode', { uuid: '1db0a4be-6563-4689-abba-b96abdbdf162' });
      assert.throws(() => (node as unknown as NovaObject).set('no_such_field', 1), /has no field no_such_field/);
      node.set('uuid', '1db0a4be-6563-4689-abba-b96abdbdf162');
      assert.throws(() => node.set('uuid', '00000000-0000-0000-0000-000000000000'), /read-only/);
    });

    it('stores a copy of lists and dicts and de-duplicates sets', () => {
      const stats = { num_instances: '1' };
      const node = newObject('ComputeNode', { stats });
      stats.num_instances = '2';
      assert.deepEqual(node.get('stats'), { num_instances: '1' });
      const cell = newObject('InstanceNUMACell', { cpuset: [1, 2, 2, 3] });
      assert.deepEqual(cell.get('cpuset'), [1, 2, 3]);
    });
  });

  describe('change tracking', () => {
    it('lists a parent field when its nested object changed, and the nested primitive carries its own changes', () => {
      const instance = capturedInstance();
      instance.resetChanges(undefined, true);
      const infoCache = instance.get('info_cache');
      assert.ok(infoCache);
      infoCache.set('network_info', [{ id: 'port-1' }]);
      assert.deepEqual(instance.changes(), ['info_cache']);
      const sent = instance.toPrimitive();
      assert.deepEqual(sent['nova_object.changes'], ['info_cache']);
      const nested = sent['nova_object.data']['info_cache'] as NovaObjectPrimitive;
      assert.deepEqual(nested['nova_object.changes'], ['network_info']);
      assert.equal(nested['nova_object.data']['network_info'], '[{"id":"port-1"}]');
    });

    it('counts in-place edits of metadata / system_metadata and always sends the whole dict', () => {
      const instance = capturedInstance();
      instance.resetChanges(undefined, true);
      const sysmeta = instance.get('system_metadata');
      assert.ok(sysmeta);
      assert.ok(Object.keys(sysmeta).length > 1);
      sysmeta['boot_roles'] = 'member';
      assert.deepEqual(instance.changes(), ['system_metadata']);
      const sent = instance.toPrimitive()['nova_object.data']['system_metadata'] as Record<string, string>;
      assert.deepEqual(sent, sysmeta, 'the whole dict, not just the edited key');
      instance.resetChanges();
      assert.deepEqual(instance.changes(), [], 'a reset takes a new reference value');
      delete sysmeta['boot_roles'];
      assert.deepEqual(instance.changes(), ['system_metadata']);
    });

    it('does not count in-place edits of an ordinary dict field (oslo does not either)', () => {
      const node = newObject('ComputeNode', { stats: { a: '1' } });
      node.resetChanges();
      (node.get('stats') as Record<string, string>)['a'] = '2';
      assert.deepEqual(node.changes(), []);
      assert.deepEqual(node.toPrimitive()['nova_object.data']['stats'], { a: '2' }, 'but the value sent is the live one');
    });

    it("marks an ObjectList's `objects` when an element changed", () => {
      const list = NovaObject.fromPrimitive(
        primitive('InstanceList', { objects: [primitive('Instance', { uuid: 'u1', vm_state: 'active' }, { 'nova_object.version': '2.7' })] }, { 'nova_object.version': '2.6' }),
      );
      assert.ok(isNovaObject(list, 'InstanceList'));
      assert.deepEqual(list.changes(), []);
      list.get('objects')?.[0]?.set('vm_state', 'stopped');
      assert.deepEqual(list.changes(), ['objects']);
    });

    it('resetChanges(fields) resets only those; recursive resets nested objects too', () => {
      const instance = capturedInstance();
      instance.resetChanges(undefined, true);
      instance.set('vm_state', 'active');
      instance.set('task_state', null);
      instance.get('info_cache')?.set('network_info', []);
      instance.resetChanges(['vm_state']);
      assert.deepEqual(instance.changes().sort(), ['info_cache', 'task_state']);
      instance.resetChanges(['info_cache'], true);
      assert.deepEqual(instance.changes(), ['task_state']);
      assert.deepEqual(instance.get('info_cache')?.changes(), []);
    });

    it('clone() is deep: changing the copy leaves the original alone', () => {
      const instance = capturedInstance();
      const copy = instance.clone();
      copy.get('info_cache')?.set('network_info', []);
      (copy.get('system_metadata') as Record<string, string>)['x'] = 'y';
      copy.set('vm_state', 'error');
      assert.deepEqual(copy.toPrimitive()['nova_object.data']['vm_state'], 'error');
      assert.notEqual(instance.get('vm_state'), 'error');
      assert.equal((instance.get('system_metadata') as Record<string, string>)['x'], undefined);
      assert.deepEqual(instance.get('info_cache')?.changes(), []);
      assert.deepEqual(new Set(copy.changes()), new Set([...instance.changes(), 'vm_state', 'info_cache', 'system_metadata']));
    });
  });

  describe('lossless decoding', () => {
    it('keeps a wire datetime it would format differently until the field is set', () => {
      const wire = primitive('InstanceFault', { created_at: '2026-11-30T01:08:21.123456+00:00', code: 500 }, { 'nova_object.version': '1.2' });
      const fault = NovaObject.fromPrimitive(wire);
      assert.deepEqual(fault.toPrimitive(), wire);
      assert.equal((fault.get('created_at') as Date).toISOString(), '2026-11-30T01:08:21.123Z');
      fault.set('created_at', new Date('2026-12-01T00:00:00Z'));
      assert.equal(fault.toPrimitive()['nova_object.data']['created_at'], '2026-12-01T00:00:00Z');
    });

    it('keeps network_info JSON text as received, and encodes an edited model', () => {
      const text = '[{"id": "p1", "address": "fa:16:3e:00:00:01"}]';
      const cache = NovaObject.fromPrimitive(primitive('InstanceInfoCache', { instance_uuid: 'u1', network_info: text }, { 'nova_object.version': '1.5' }));
      assert.ok(isNovaObject(cache, 'InstanceInfoCache'));
      assert.deepEqual(cache.get('network_info'), [{ id: 'p1', address: 'fa:16:3e:00:00:01' }]);
      assert.equal(cache.toPrimitive()['nova_object.data']['network_info'], text);
      cache.get('network_info')?.push({ id: 'p2' });
      assert.equal(cache.toPrimitive()['nova_object.data']['network_info'], '[{"id":"p1","address":"fa:16:3e:00:00:01"},{"id":"p2"}]');
    });

    it('keeps unknown classes and unknown fields of known classes as they came (forward compatible)', () => {
      const unknown = primitive('FutureThing', { a: { 'nova_object.name': 'X' }, b: [1, 2] }, { 'nova_object.changes': ['a'] });
      assert.deepEqual(NovaObject.fromPrimitive(unknown).toPrimitive(), unknown);
      const newer = primitive('Service', { host: 'h', brand_new_field: { x: 1 } }, { 'nova_object.version': '1.23', 'nova_object.changes': ['brand_new_field'] });
      const service = NovaObject.fromPrimitive(newer);
      assert.deepEqual(service.toPrimitive(), newer);
      assert.equal(service.version, '1.23');
    });

    it('keeps an enum value a newer Nova added', () => {
      const spec = NovaObject.fromPrimitive(primitive('HVSpec', { arch: 'riscv128', hv_type: 'docker', vm_mode: 'exe' }, { 'nova_object.version': '1.2' }));
      assert.equal(spec.get('arch'), 'riscv128');
    });
  });

  describe('bad primitives', () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['not a dict', 'Instance', /not an object primitive/],
      ['another namespace', { ...primitive('Instance', {}), 'nova_object.namespace': 'cinder' }, /unsupported namespace/],
      ['no name', { 'nova_object.namespace': 'nova', 'nova_object.version': '1.0', 'nova_object.data': {} }, /name is missing/],
      ['no version', { 'nova_object.name': 'Instance', 'nova_object.namespace': 'nova', 'nova_object.data': {} }, /version is missing/],
      ['no data', { 'nova_object.name': 'Instance', 'nova_object.namespace': 'nova', 'nova_object.version': '2.7' }, /data is not an object/],
      ['data a list', { ...primitive('Instance', {}), 'nova_object.data': [] }, /data is not an object/],
      ['changes not a list', primitive('Instance', {}, { 'nova_object.version': '2.7', 'nova_object.changes': 'vm_state' }), /changes is not a list/],
      ['another major version', primitive('Instance', {}, { 'nova_object.version': '3.0' }), /IncompatibleObjectVersion/],
      ['a field of the wrong type', primitive('Instance', { vcpus: 'many' }, { 'nova_object.version': '2.7' }), /^Instance\.vcpus: an integer is required/],
      ['a bad datetime', primitive('Instance', { launched_at: 'yesterday' }, { 'nova_object.version': '2.7' }), /^Instance\.launched_at: /],
      ['a nested object of the wrong class', primitive('Instance', { flavor: primitive('Service', {}, { 'nova_object.version': '1.22' }) }, { 'nova_object.version': '2.7' }), /^Instance\.flavor: an object of type Flavor/],
      ['a bad nested primitive', primitive('InstanceList', { objects: [{ 'nova_object.name': 'Instance' }] }, { 'nova_object.version': '2.6' }), /^InstanceList\.objects\[0\]: nova_object\.namespace|unsupported namespace/],
      ['network_info that is not JSON', primitive('InstanceInfoCache', { network_info: '[{' }, { 'nova_object.version': '1.5' }), /network_info must be valid JSON/],
    ];
    for (const [what, value, message] of cases) {
      it(`throws ObjectDecodeError for ${what}`, () => {
        assert.throws(() => NovaObject.fromPrimitive(value), (err: unknown) => err instanceof ObjectDecodeError && message.test(err.message));
      });
    }
  });

  describe('applyUpdates', () => {
    it('sets the updated fields and makes the changes exactly obj_what_changed', () => {
      const node = newObject('ComputeNode', { host: 'h', vcpus: 4 });
      node.applyUpdates({ id: 7, uuid: 'u', updated_at: '2026-11-30T01:07:25Z', vcpus: 4, obj_what_changed: ['vcpus'] });
      assert.equal(node.get('id'), 7);
      assert.ok(node.get('updated_at') instanceof Date);
      assert.deepEqual(node.changes(), ['vcpus']);
    });

    it('is all or nothing: a bad update throws ObjectDecodeError and changes nothing', () => {
      const node: ComputeNode = newObject('ComputeNode', { host: 'h' });
      const before = node.toPrimitive();
      assert.throws(() => node.applyUpdates({ id: 7, vcpus: 'lots', obj_what_changed: [] }), ObjectDecodeError);
      assert.throws(() => node.applyUpdates(null), ObjectDecodeError);
      assert.throws(() => node.applyUpdates({ obj_what_changed: 'host' }), ObjectDecodeError);
      assert.deepEqual(node.toPrimitive(), before);
    });
  });

  describe('ephemeral and list classes', () => {
    it('newObject sets the defaults of an ephemeral class (Diagnostics), as NovaEphemeralObject does', () => {
      const diagnostics = newObject('Diagnostics', { state: 'running', driver: 'libvirt' });
      assert.deepEqual(diagnostics.get('cpu_details'), []);
      assert.equal(diagnostics.get('memory_details')?.name, 'MemoryDiagnostics');
      assert.equal(diagnostics.has('config_drive'), false, 'no default, so not set');
    });

    it('newObject starts an ObjectList with an empty, unchanged `objects`', () => {
      const list = newObject('InstanceList');
      assert.deepEqual(list.get('objects'), []);
      assert.deepEqual(list.changes(), []);
    });
  });

  it('types fields from the schema (compile-time checks)', () => {
    const instance = newObject('Instance', { vm_state: 'active', power_state: 1 });
    const vmState: string | null | undefined = instance.get('vm_state');
    const power: number | null | undefined = instance.get('power_state');
    const launched: Date | null | undefined = instance.get('launched_at');
    const flavorName: string | null | undefined = instance.get('flavor')?.get('name');
    const typeErrors = (): void => {
      // @ts-expect-error vcpus is a number
      instance.set('vcpus', 'four');
      // @ts-expect-error no such field
      instance.get('no_such_field');
      // @ts-expect-error arch is an Architecture value
      newObject('HVSpec', { arch: 'x64' });
    };
    assert.throws(typeErrors, ObjectFieldError);
    assert.deepEqual([vmState, power, launched, flavorName], ['active', 1, undefined, undefined]);
  });
});
