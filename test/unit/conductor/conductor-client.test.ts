import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import {
  BASEAPI_TARGET,
  BUILD_INSTANCES_TARGET,
  CONDUCTOR_TARGET,
  ConductorClient,
  ConductorReplyError,
  truncateUtf8,
} from '../../../src/conductor';
import { createLogger } from '../../../src/log';
import { RemoteFailure } from '../../../src/messaging/failure';
import type { RequestContext } from '../../../src/messaging/types';
import {
  deserializeEntity,
  isNovaObject,
  newObject,
  NOVA_SERVICE_VERSION,
  NovaObject,
  ObjectDecodeError,
  type Instance,
  type NovaObjectPrimitive,
} from '../../../src/objects';
import {
  contextOf,
  exchangesFor,
  firstExchange,
  publishedMessages,
  type ConductorExchange,
} from '../objects/capture-fixtures';
import { RecordingRpc, type RecordedRequest } from './recording-rpc';

const ctx: RequestContext = { request_id: 'req-00000000-0000-0000-0000-000000000001', is_admin: true, roles: [] };

function argsOf(exchange: ConductorExchange): Record<string, unknown> {
  return exchange.request['args'] as Record<string, unknown>;
}

/** The captured reply as our RpcCaller resolves it: the result, or the failure as a RemoteFailure. */
function replyOf(exchange: ConductorExchange): { result: unknown } | { error: Error } {
  const failure = exchange.reply['failure'];
  return failure ? { error: RemoteFailure.deserialize(failure) } : { result: exchange.reply['result'] };
}

/** `value` with every nova_object.changes list sorted (Python sends them in set order). */
function sortedChanges(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedChanges);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = k === 'nova_object.changes' && Array.isArray(v) ? [...(v as string[])].sort() : sortedChanges(v);
  }
  return out;
}

/** Compares a request's objinst with a captured one: JSON-identical except the order of changes lists. */
function assertSameObjinst(actual: unknown, expected: unknown): void {
  assert.equal(JSON.stringify(sortedChanges(actual)), JSON.stringify(sortedChanges(expected)));
}

function assertObjectAction(request: RecordedRequest, captured: ConductorExchange): void {
  assert.equal(request.kind, 'call');
  assert.deepEqual(request.target, CONDUCTOR_TARGET);
  assert.equal(request.method, captured.request['method']);
  assert.equal(captured.request['version'], '3.0');
  assert.deepEqual(Object.keys(request.args), Object.keys(argsOf(captured)));
  const { objinst, ...rest } = request.args;
  const { objinst: capturedObjinst, ...capturedRest } = argsOf(captured);
  assert.deepEqual(rest, capturedRest);
  assertSameObjinst(objinst, capturedObjinst);
}

function capturedInstance(exchange: ConductorExchange): Instance {
  const obj = NovaObject.fromPrimitive(argsOf(exchange)['objinst']);
  assert.ok(isNovaObject(obj, 'Instance'));
  return obj;
}

describe('conductor: ConductorClient', () => {
  describe('Service (start-up and heartbeat)', () => {
    it('creates the service record like nova-compute, then heartbeats with report_count only', async () => {
      const create = firstExchange('Service', 'create');
      const [heartbeat] = exchangesFor('Service', 'save');
      assert.ok(heartbeat);
      const rpc = new RecordingRpc().answer(replyOf(create), replyOf(heartbeat));
      const conductor = new ConductorClient(rpc);

      const service = newObject('Service', {
        host: 'fake-1',
        binary: 'nova-compute',
        topic: 'compute',
        report_count: 0,
        version: NOVA_SERVICE_VERSION,
      });
      await conductor.serviceCreate(ctx, service);
      assertObjectAction(rpc.requests[0] as RecordedRequest, create);
      assert.equal(service.get('id'), 4);
      assert.equal(service.get('uuid'), '8d99616d-68b6-4007-a787-64499c7b386c');
      assert.deepEqual(service.changes(), []);

      service.set('report_count', (service.get('report_count') ?? 0) + 1);
      await conductor.serviceSave(ctx, service);
      const sent = rpc.requests[1] as RecordedRequest;
      assertObjectAction(sent, heartbeat);
      // Field order as Python sends it, so the whole primitive is byte-identical (one change: no set order).
      assert.equal(JSON.stringify(sent.args['objinst']), JSON.stringify(argsOf(heartbeat)['objinst']));
      assert.equal((service.get('last_seen_up') as Date).toISOString(), '2026-11-30T01:07:32.000Z');
      assert.deepEqual(service.changes(), []);
    });

    it('Service.get_by_host_and_binary sends the Service manifest and gives null when there is no record', async () => {
      const captured = firstExchange('Service', 'get_by_host_and_binary');
      const rpc = new RecordingRpc().answer(replyOf(captured));
      const found = await new ConductorClient(rpc).serviceGetByHostAndBinary(ctx, 'fake-1', 'nova-compute');
      assert.equal(found, null);
      const request = rpc.only();
      assert.equal(request.method, 'object_class_action_versions');
      assert.deepEqual(request.target, CONDUCTOR_TARGET);
      assert.equal(JSON.stringify(request.args), JSON.stringify(argsOf(captured)));
    });

    it('Service.get_by_host_and_binary returns the Service when there is one', async () => {
      const service = newObject('Service', { id: 4, host: 'fake-1' });
      const rpc = new RecordingRpc().answer({ result: service.toPrimitive() });
      const found = await new ConductorClient(rpc).serviceGetByHostAndBinary(ctx, 'fake-1', 'nova-compute');
      assert.equal(found?.get('id'), 4);
    });
  });

  describe('ComputeNode', () => {
    it('creates the compute node with every field listed in changes, and takes id/uuid from the reply', async () => {
      const captured = firstExchange('ComputeNode', 'create');
      const data = (argsOf(captured)['objinst'] as NovaObjectPrimitive)['nova_object.data'];
      const rpc = new RecordingRpc().answer(replyOf(captured));
      const node = newObject('ComputeNode', {
        host: 'fake-1',
        vcpus: 1000,
        memory_mb: 800000,
        local_gb: 600000,
        vcpus_used: 0,
        memory_mb_used: 0,
        local_gb_used: 0,
        hypervisor_type: 'fake',
        hypervisor_version: 1000,
        hypervisor_hostname: 'fake-1',
        cpu_info: data['cpu_info'] as string,
        disk_available_least: 0,
        stats: { failed_builds: '0' },
        host_ip: '127.0.0.1',
        numa_topology: null,
        supported_hv_specs: [newObject('HVSpec', { arch: 'x86_64', hv_type: 'fake', vm_mode: 'hvm' })],
        cpu_allocation_ratio: 16.0,
        ram_allocation_ratio: 1.5,
        disk_allocation_ratio: 1.0,
      });
      await new ConductorClient(rpc).computeNodeCreate(ctx, node);
      const request = rpc.only();
      assertObjectAction(request, captured);
      assert.equal(node.get('id'), 1);
      assert.equal(node.get('uuid'), '1db0a4be-6563-4689-abba-b96abdbdf162');
      assert.deepEqual(node.changes(), []);
    });

    it('ComputeNode.get_by_host_and_nodename gives null on ComputeHostNotFound', async () => {
      const captured = firstExchange('ComputeNode', 'get_by_host_and_nodename');
      const rpc = new RecordingRpc().answer(replyOf(captured));
      assert.equal(await new ConductorClient(rpc).computeNodeGetByHostAndNodename(ctx, 'fake-1', 'fake-1'), null);
      assert.equal(JSON.stringify(rpc.only().args), JSON.stringify(argsOf(captured)));
    });

    it('ComputeNodeList.get_all_by_host gives [] on ComputeHostNotFound', async () => {
      const captured = firstExchange('ComputeNodeList', 'get_all_by_host');
      const rpc = new RecordingRpc().answer(replyOf(captured));
      assert.deepEqual(await new ConductorClient(rpc).computeNodeListGetAllByHost(ctx, 'fake-1', { useSlave: true }), []);
      assert.equal(JSON.stringify(rpc.only().args), JSON.stringify(argsOf(captured)));
    });

    it('ComputeNodeList.get_all_by_host returns the nodes', async () => {
      const list = newObject('ComputeNodeList', { objects: [newObject('ComputeNode', { id: 1, hypervisor_hostname: 'n1' })] });
      const rpc = new RecordingRpc().answer({ result: list.toPrimitive() });
      const nodes = await new ConductorClient(rpc).computeNodeListGetAllByHost(ctx, 'h');
      assert.deepEqual(nodes.map((n) => n.get('hypervisor_hostname')), ['n1']);
      assert.deepEqual(rpc.only().args['kwargs'], {});
    });

    it('other failures of the getters propagate', async () => {
      const rpc = new RecordingRpc().answer({ error: new RemoteFailure('DBError', 'oslo_db.exception', 'boom') });
      await assert.rejects(new ConductorClient(rpc).computeNodeGetByHostAndNodename(ctx, 'h', 'n'), RemoteFailure);
    });

    it('ComputeNode.save sends only what changed', async () => {
      const rpc = new RecordingRpc().answer({ result: [{ updated_at: '2026-11-30T01:09:00Z', obj_what_changed: [] }, null] });
      const node = NovaObject.fromPrimitive(newObject('ComputeNode', { id: 1, vcpus_used: 0 }).toPrimitive());
      assert.ok(isNovaObject(node, 'ComputeNode'));
      node.resetChanges();
      node.set('vcpus_used', 1);
      await new ConductorClient(rpc).computeNodeSave(ctx, node);
      assert.deepEqual((rpc.only().args['objinst'] as NovaObjectPrimitive)['nova_object.changes'], ['vcpus_used']);
      assert.equal(rpc.only().args['objmethod'], 'save');
    });
  });

  describe('Instance', () => {
    it('Instance.save reproduces every captured save (expected_task_state as given) and applies the reply', async () => {
      const saves = exchangesFor('Instance', 'save');
      assert.ok(saves.length >= 10);
      for (const captured of saves) {
        const instance = capturedInstance(captured);
        const kwargs = argsOf(captured)['kwargs'] as Record<string, never>;
        const rpc = new RecordingRpc().answer(replyOf(captured));
        const options = 'expected_task_state' in kwargs ? { expectedTaskState: kwargs['expected_task_state'] } : {};
        await new ConductorClient(rpc).instanceSave(ctx, instance, options);
        const request = rpc.only();
        assert.equal(JSON.stringify(request.args), JSON.stringify(argsOf(captured)));

        const [updates] = captured.reply['result'] as [Record<string, unknown>];
        for (const [field, value] of Object.entries(updates)) {
          if (field === 'obj_what_changed') continue;
          assert.deepEqual(instance.toPrimitive()['nova_object.data'][field], value, field);
        }
      }
    });

    it('Instance.save sends no expected state when undefined, and null / [null] exactly as given', async () => {
      const reply = { result: [{ obj_what_changed: [] }, null] };
      const rpc = new RecordingRpc().answer(reply, reply, reply, reply);
      const conductor = new ConductorClient(rpc);
      const instance = newObject('Instance', { uuid: 'u1', task_state: null });
      await conductor.instanceSave(ctx, instance);
      await conductor.instanceSave(ctx, instance, { expectedTaskState: [null] });
      await conductor.instanceSave(ctx, instance, { expectedTaskState: null, expectedVmState: 'active' });
      await conductor.instanceSave(ctx, instance, { expectedTaskState: undefined, expectedVmState: ['stopped', 'active'] });
      assert.deepEqual(
        rpc.requests.map((r) => r.args['kwargs']),
        [{}, { expected_task_state: [null] }, { expected_task_state: null, expected_vm_state: 'active' }, { expected_vm_state: ['stopped', 'active'] }],
      );
    });

    it('Instance.save rejects with the conductor failure (UnexpectedDeletingTaskStateError)', async () => {
      const failure = JSON.stringify({
        class: 'UnexpectedDeletingTaskStateError',
        module: 'nova.exception',
        message: "Conflict updating instance u1. Expected: {'task_state': ['powering-off']}. Actual: {'task_state': 'deleting'}",
        tb: [],
        args: ['Conflict updating instance u1.'],
        kwargs: { instance_uuid: 'u1', expected: { task_state: ['powering-off'] }, actual: { task_state: 'deleting' }, code: 500 },
      });
      const rpc = new RecordingRpc().answer({ error: RemoteFailure.deserialize(failure) });
      const instance = newObject('Instance', { uuid: 'u1', vm_state: 'stopped' });
      await assert.rejects(
        new ConductorClient(rpc).instanceSave(ctx, instance, { expectedTaskState: ['powering-off'] }),
        (err: unknown) => err instanceof RemoteFailure && err.className === 'UnexpectedDeletingTaskStateError',
      );
      assert.deepEqual(instance.changes().sort(), ['uuid', 'vm_state'], 'a failed save keeps the changes');
    });

    it('Instance.destroy, refresh and InstanceInfoCache.save use object_action with the captured shapes', async () => {
      const destroy = firstExchange('Instance', 'destroy');
      const infoCacheSave = firstExchange('InstanceInfoCache', 'save');
      const rpc = new RecordingRpc().answer(replyOf(destroy), replyOf(infoCacheSave), { result: [{ obj_what_changed: [] }, null] });
      const conductor = new ConductorClient(rpc);
      const instance = capturedInstance(destroy);
      await conductor.instanceDestroy(ctx, instance);
      assert.equal(JSON.stringify(rpc.requests[0]?.args), JSON.stringify(argsOf(destroy)));
      assert.equal(instance.get('deleted'), true);

      const cache = NovaObject.fromPrimitive(argsOf(infoCacheSave)['objinst']);
      assert.ok(isNovaObject(cache, 'InstanceInfoCache'));
      await conductor.instanceInfoCacheSave(ctx, cache);
      assert.equal(JSON.stringify(rpc.requests[1]?.args), JSON.stringify(argsOf(infoCacheSave)));

      await conductor.instanceRefresh(ctx, instance);
      assert.equal(rpc.requests[2]?.args['objmethod'], 'refresh');
      assert.deepEqual(rpc.requests[2]?.args['kwargs'], {});
    });

    it('Instance.destroy passes hard_delete only when asked', async () => {
      const rpc = new RecordingRpc().answer({ result: [{ obj_what_changed: [] }, null] });
      await new ConductorClient(rpc).instanceDestroy(ctx, newObject('Instance', { uuid: 'u1' }), { hardDelete: true });
      assert.deepEqual(rpc.only().args['kwargs'], { hard_delete: true });
    });

    it('Instance.get_by_uuid decodes the Instance, with read_deleted "yes" when asked', async () => {
      const captured = firstExchange('Instance', 'get_by_uuid');
      const rpc = new RecordingRpc().answer(replyOf(captured), replyOf(captured));
      const conductor = new ConductorClient(rpc);
      const uuid = 'ae8e9f49-252f-493c-aa82-5113fd9bd2e7';
      const instance = await conductor.instanceGetByUuid(ctx, uuid, ['info_cache'], { readDeleted: true });
      assert.equal(instance.get('uuid'), uuid);
      assert.equal(instance.get('vm_state'), 'active');
      assert.ok(isNovaObject(instance.get('info_cache'), 'InstanceInfoCache'));
      const [withDeleted] = rpc.requests;
      assert.equal(withDeleted?.context.read_deleted, 'yes');
      assert.equal(withDeleted?.context.request_id, ctx.request_id);
      assert.deepEqual(withDeleted?.args, {
        objname: 'Instance',
        objmethod: 'get_by_uuid',
        object_versions: argsOf(captured)['object_versions'],
        args: [uuid],
        kwargs: { expected_attrs: ['info_cache'] },
      });
      await conductor.instanceGetByUuid(ctx, uuid);
      assert.equal(rpc.requests[1]?.context.read_deleted, undefined);
      assert.deepEqual(rpc.requests[1]?.args['kwargs'], {});
    });

    it('InstanceList.get_by_host sends the captured arguments and returns the instances', async () => {
      for (const captured of exchangesFor('InstanceList', 'get_by_host')) {
        const kwargs = argsOf(captured)['kwargs'] as { expected_attrs: string[]; use_slave?: boolean };
        const rpc = new RecordingRpc().answer(replyOf(captured));
        const options = kwargs.use_slave === undefined ? {} : { useSlave: kwargs.use_slave };
        const instances = await new ConductorClient(rpc).instanceListGetByHost(ctx, 'fake-1', kwargs.expected_attrs, options);
        assert.equal(JSON.stringify(rpc.only().args), JSON.stringify(argsOf(captured)));
        const expected = ((captured.reply['result'] as NovaObjectPrimitive)['nova_object.data']['objects'] as unknown[]).length;
        assert.equal(instances.length, expected);
        for (const i of instances) assert.ok(isNovaObject(i, 'Instance'));
      }
    });

    it('BlockDeviceMappingList.get_by_instance_uuid returns the mappings', async () => {
      const captured = firstExchange('BlockDeviceMappingList', 'get_by_instance_uuid');
      const rpc = new RecordingRpc().answer(replyOf(captured));
      const bdms = await new ConductorClient(rpc).blockDeviceMappingListGetByInstanceUuid(ctx, 'ae8e9f49-252f-493c-aa82-5113fd9bd2e7');
      assert.equal(JSON.stringify(rpc.only().args), JSON.stringify(argsOf(captured)));
      assert.equal(bdms.length, 1);
      assert.equal(bdms[0]?.get('source_type'), 'image');
    });
  });

  describe('instance actions and faults', () => {
    it('event_start / event_finish_with_failure match the capture and carry the caller context', async () => {
      const starts = exchangesFor('InstanceActionEvent', 'event_start');
      const finishes = exchangesFor('InstanceActionEvent', 'event_finish_with_failure');
      assert.ok(starts.length > 0 && finishes.length > 0);
      for (const captured of [...starts, ...finishes]) {
        const context = contextOf(captured.request);
        const args = argsOf(captured);
        const [uuid, eventName] = args['args'] as [string, string];
        const kwargs = args['kwargs'] as { host?: string; exc_val?: string | null; exc_tb?: string | null };
        const rpc = new RecordingRpc().answer(replyOf(captured));
        const conductor = new ConductorClient(rpc);
        if (args['objmethod'] === 'event_start') {
          await conductor.instanceActionEventStart(context, uuid, eventName, kwargs.host as string);
        } else {
          await conductor.instanceActionEventFinishWithFailure(context, uuid, eventName, {
            excVal: kwargs.exc_val ?? null,
            excTb: kwargs.exc_tb ?? null,
          });
        }
        const request = rpc.only();
        assert.equal(JSON.stringify(request.args), JSON.stringify(args));
        assert.equal(request.context.request_id, captured.request['_context_request_id']);
      }
    });

    it('InstanceAction.action_start records an action without asking for the result', async () => {
      const rpc = new RecordingRpc().answer({ result: null });
      await new ConductorClient(rpc).instanceActionStart(ctx, 'u1', 'stop');
      assert.deepEqual(rpc.only().args, {
        objname: 'InstanceAction',
        objmethod: 'action_start',
        object_versions: { InstanceAction: '1.2' },
        args: ['u1', 'stop'],
        kwargs: { want_result: false },
      });
      assert.equal(rpc.only().context.request_id, ctx.request_id);
    });

    it('event_finish_with_failure sends the error message and traceback', async () => {
      const rpc = new RecordingRpc().answer({ result: null });
      await new ConductorClient(rpc).instanceActionEventFinishWithFailure(ctx, 'u1', 'compute_stop_instance', {
        excVal: 'boom',
        excTb: 'Traceback (most recent call last):\n',
      });
      assert.deepEqual(rpc.only().args['kwargs'], { exc_val: 'boom', exc_tb: 'Traceback (most recent call last):\n', want_result: false });
    });

    it('InstanceFault.create sends code, message (≤ 255 bytes), details, host and instance_uuid, all in changes', async () => {
      const rpc = new RecordingRpc().answer({
        result: [{ id: 3, created_at: '2026-11-30T01:10:00Z', updated_at: null, deleted_at: null, deleted: false, obj_what_changed: [] }, null],
      });
      const message = 'é'.repeat(200);
      const fault = await new ConductorClient(rpc).instanceFaultCreate(ctx, {
        instanceUuid: 'u1',
        code: 500,
        message,
        details: 'Traceback …',
        host: 'cmp1',
      });
      const request = rpc.only();
      assert.equal(request.method, 'object_action');
      assert.equal(request.args['objmethod'], 'create');
      const objinst = request.args['objinst'] as NovaObjectPrimitive;
      assert.equal(objinst['nova_object.name'], 'InstanceFault');
      assert.equal(objinst['nova_object.version'], '1.2');
      assert.deepEqual(new Set(objinst['nova_object.changes']), new Set(['instance_uuid', 'code', 'message', 'details', 'host']));
      const sentMessage = objinst['nova_object.data']['message'] as string;
      assert.equal(sentMessage, 'é'.repeat(127), '254 bytes: the 128th é would be cut in half');
      assert.equal(fault.get('id'), 3);
    });

    it('truncateUtf8 cuts at a byte limit without splitting a character', () => {
      assert.equal(truncateUtf8('abc', 255), 'abc');
      assert.equal(truncateUtf8('a'.repeat(300), 255).length, 255);
      assert.equal(truncateUtf8('ab€', 4), 'ab');
      assert.equal(truncateUtf8('ab€', 5), 'ab€');
    });
  });

  describe('compute_task build_instances (reschedule)', () => {
    it('casts build_instances 1.19 with the arguments build_and_run_instance received', async () => {
      const build = publishedMessages().find((m) => m.message['method'] === 'build_and_run_instance');
      assert.ok(build);
      const received = build.message['args'] as Record<string, unknown>;
      const decoded = deserializeEntity(received, 'args') as Record<string, unknown>;
      const instance = decoded['instance'];
      assert.ok(isNovaObject(instance, 'Instance'));
      const requestSpec = decoded['request_spec'];
      assert.ok(isNovaObject(requestSpec, 'RequestSpec'));
      const hostList = decoded['host_list'] as unknown[];
      assert.ok(hostList.every((s) => isNovaObject(s, 'Selection')));
      const requestedNetworks = decoded['requested_networks'];
      assert.ok(requestedNetworks === null || isNovaObject(requestedNetworks, 'NetworkRequestList'));

      const rpc = new RecordingRpc();
      await new ConductorClient(rpc).buildInstances(ctx, {
        instances: [instance],
        image: decoded['image'] as Record<string, unknown>,
        filterProperties: decoded['filter_properties'] as Record<string, unknown>,
        adminPassword: decoded['admin_password'] as string | null,
        injectedFiles: decoded['injected_files'] as unknown[],
        requestedNetworks,
        securityGroups: decoded['security_groups'],
        requestSpec,
        hostLists: [hostList.filter((s) => isNovaObject(s, 'Selection'))],
      });
      const request = rpc.only();
      assert.equal(request.kind, 'cast');
      assert.deepEqual(request.target, BUILD_INSTANCES_TARGET);
      assert.deepEqual(BUILD_INSTANCES_TARGET, { topic: 'conductor', namespace: 'compute_task', version: '1.19' });
      assert.equal(request.method, 'build_instances');
      // nova/conductor/rpcapi.py build_instances at 1.19.
      assert.deepEqual(Object.keys(request.args), [
        'instances', 'image', 'filter_properties', 'admin_password', 'injected_files', 'requested_networks',
        'security_groups', 'request_spec', 'host_lists',
      ]);
      assert.deepEqual(request.args['instances'], [received['instance']]);
      assert.deepEqual(request.args['request_spec'], received['request_spec']);
      assert.deepEqual(request.args['host_lists'], [received['host_list']]);
      assert.deepEqual(request.args['filter_properties'], received['filter_properties']);
      assert.deepEqual(request.args['image'], received['image']);
    });
  });

  describe('generic calls', () => {
    it('objectClassAction sends the manifest of the class and decodes the result', async () => {
      const captured = firstExchange('MigrationList', 'get_in_progress_and_error');
      const rpc = new RecordingRpc().answer(replyOf(captured));
      const result = await new ConductorClient(rpc).objectClassAction(ctx, 'MigrationList', 'get_in_progress_and_error', argsOf(captured)['args'] as unknown[]);
      assert.equal(JSON.stringify(rpc.only().args), JSON.stringify(argsOf(captured)));
      assert.ok(isNovaObject(result, 'MigrationList'));
    });

    it('objectAction rejects a reply that is not [updates, result]', async () => {
      const rpc = new RecordingRpc().answer({ result: { obj_what_changed: [] } });
      await assert.rejects(new ConductorClient(rpc).serviceSave(ctx, newObject('Service', { id: 1 })), ConductorReplyError);
    });

    it('a result of the wrong class is a ConductorReplyError, a bad primitive an ObjectDecodeError', async () => {
      const rpc = new RecordingRpc().answer(
        { result: newObject('ComputeNode', { id: 1 }).toPrimitive() },
        { result: { 'nova_object.name': 'Instance', 'nova_object.namespace': 'glance', 'nova_object.version': '2.7', 'nova_object.data': {} } },
      );
      const conductor = new ConductorClient(rpc);
      await assert.rejects(conductor.instanceGetByUuid(ctx, 'u1'), /Instance\.get_by_uuid: expected a Instance, got ComputeNode/);
      await assert.rejects(conductor.instanceGetByUuid(ctx, 'u1'), ObjectDecodeError);
    });

    it('ping asks baseapi 1.0 with the captured argument', async () => {
      const ping = publishedMessages().find((m) => m.message['method'] === 'ping');
      assert.ok(ping);
      const rpc = new RecordingRpc().answer({ result: { service: 'conductor', arg: '1.21 GigaWatts' } });
      assert.deepEqual(await new ConductorClient(rpc).ping(ctx), { service: 'conductor', arg: '1.21 GigaWatts' });
      const request = rpc.only();
      assert.deepEqual(request.target, BASEAPI_TARGET);
      assert.deepEqual(
        { method: request.method, args: request.args, namespace: request.target.namespace, version: request.target.version },
        { method: ping.message['method'], args: ping.message['args'], namespace: ping.message['namespace'], version: ping.message['version'] },
      );
    });
  });

  describe('waitForConductor', () => {
    class Timeout extends Error {
      override readonly name = 'MessagingTimeout';
    }

    function collectingLogger(): { lines: Array<Record<string, unknown>>; logger: ReturnType<typeof createLogger> } {
      const lines: Array<Record<string, unknown>> = [];
      const destination = new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
          done();
        },
      });
      return { lines, logger: createLogger({ level: 'debug', destination }) };
    }

    it('pings until the conductor answers, logging every failed attempt with the request_id', async () => {
      const { lines, logger } = collectingLogger();
      const rpc = new RecordingRpc().answer({ error: new Timeout('timed out') }, { error: new Timeout('timed out') }, { result: { service: 'conductor' } });
      await new ConductorClient(rpc, { logger }).waitForConductor(ctx, { attemptTimeoutMs: 5, retryDelayMs: 0 });
      assert.equal(rpc.requests.length, 3);
      assert.ok(rpc.requests.every((r) => r.method === 'ping' && r.options?.timeoutMs === 5));
      await new Promise((resolve) => setImmediate(resolve));
      const warnings = lines.filter((l) => l['level'] === 'warn');
      assert.equal(warnings.length, 2);
      assert.ok(warnings.every((l) => l['request_id'] === ctx.request_id));
      assert.deepEqual(warnings.map((l) => l['attempt']), [1, 2]);
      assert.ok(lines.some((l) => l['level'] === 'info' && /established/.test(String(l['msg']))));
    });

    it('uses the short timeout for ten attempts, then the RPC default', async () => {
      const rpc = new RecordingRpc();
      for (let i = 0; i < 11; i++) rpc.answer({ error: new Timeout('timed out') });
      rpc.answer({ result: {} });
      await new ConductorClient(rpc).waitForConductor(ctx, { attemptTimeoutMs: 7, retryDelayMs: 0 });
      assert.deepEqual(rpc.requests.map((r) => r.options?.timeoutMs), [...Array<number>(10).fill(7), undefined, undefined]);
    });

    it('stops when the signal aborts', async () => {
      const rpc = new RecordingRpc();
      const controller = new AbortController();
      rpc.answer(() => new Promise(() => undefined));
      const waiting = new ConductorClient(rpc).waitForConductor(ctx, { signal: controller.signal });
      controller.abort(new Error('shutting down'));
      await assert.rejects(waiting, /shutting down/);
    });

    it('gives up at once when the conductor answers with a failure', async () => {
      const rpc = new RecordingRpc().answer({ error: new RemoteFailure('NoSuchMethod', 'oslo_messaging.rpc.dispatcher', 'no ping') });
      await assert.rejects(new ConductorClient(rpc).waitForConductor(ctx, { retryDelayMs: 0 }), RemoteFailure);
      assert.equal(rpc.requests.length, 1);
    });
  });
});
