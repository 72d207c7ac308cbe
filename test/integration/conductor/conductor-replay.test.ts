// ConductorClient over the real RpcClient and RabbitMQ, against a stand-in conductor (an RpcServer on topic
// `conductor`) that answers with the replies the real nova-conductor gave in the lab capture. It checks the whole
// wire path: envelope, context, object primitives, failures back as RemoteFailure, the compute_task cast.
// Everything lives in a throw-away vhost, so a lab conductor on the same broker is never touched.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import {
  ConductorClient,
  isComputeHostNotFound,
  isInstanceNotFound,
} from '../../../src/conductor';
import { silentLogger } from '../../../src/log';
import { MessagingSession } from '../../../src/messaging/amqp-session';
import { adminContext } from '../../../src/messaging/context';
import { RemoteFailure } from '../../../src/messaging/failure';
import { RpcClient } from '../../../src/messaging/rpc-client';
import { RpcServer } from '../../../src/messaging/rpc-server';
import { parseTransportUrl } from '../../../src/messaging/transport-url';
import type { IncomingCall, RpcEndpoint } from '../../../src/messaging/types';
import { isNovaObject, newObject, NOVA_SERVICE_VERSION, NovaObject } from '../../../src/objects';
import {
  conductorExchanges,
  exchangesFor,
  failureExchanges,
  firstExchange,
  type ConductorExchange,
} from '../../unit/objects/capture-fixtures';

const run = promisify(execFile);
const rabbitmqctl = (...args: string[]): Promise<unknown> => run('rabbitmqctl', ['-q', ...args]);

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

/** What identifies a call in failure-replies.jsonl, whose manifests were written by hand: all but object_versions. */
function withoutManifest(args: Readonly<Record<string, unknown>>): string {
  const { object_versions: _manifest, ...rest } = args;
  return JSON.stringify(rest);
}

/**
 * Answers as the real conductor did: from the lifecycle capture when the args are identical (changes order aside;
 * manifests included), else from failure-replies.jsonl.
 */
function replay(method: string, args: Readonly<Record<string, unknown>>): unknown {
  const wanted = JSON.stringify(sortedChanges(args));
  const found =
    conductorExchanges().find(
      (e: ConductorExchange) => e.request['method'] === method && JSON.stringify(sortedChanges(e.request['args'])) === wanted,
    ) ??
    failureExchanges().find(
      (e) => e.routingKey === 'conductor' && e.request['method'] === method && withoutManifest(e.request['args'] as Record<string, unknown>) === withoutManifest(args),
    );
  if (!found) throw new RemoteFailure('NoCapturedReply', 'berth.test', `no captured ${method} with these args`);
  const failure = found.reply['failure'];
  if (failure) throw RemoteFailure.deserialize(failure);
  return found.reply['result'];
}

describe('conductor: ConductorClient over RabbitMQ against a replaying conductor', function () {
  this.timeout(60_000);

  const vhost = `berth_test_conductor_${randomBytes(5).toString('hex')}`;
  const received: IncomingCall[] = [];
  let serverSession: MessagingSession;
  let clientSession: MessagingSession;
  let server: RpcServer;
  let rpc: RpcClient;
  let conductor: ConductorClient;

  const endpoints: RpcEndpoint[] = [
    {
      namespace: null,
      version: '3.0',
      methods: {
        object_class_action_versions: async (call) => {
          received.push(call);
          return replay('object_class_action_versions', call.args);
        },
        object_action: async (call) => {
          received.push(call);
          return replay('object_action', call.args);
        },
      },
    },
    { namespace: 'baseapi', version: '1.0', methods: { ping: async (call) => ({ service: 'conductor', arg: call.args['arg'] }) } },
    {
      namespace: 'compute_task',
      version: '1.24',
      methods: {
        build_instances: async (call) => {
          received.push(call);
          return null;
        },
      },
    },
  ];

  before(async () => {
    await rabbitmqctl('add_vhost', vhost);
    await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
    const url = parseTransportUrl(`rabbit://guest:guest@127.0.0.1:5672/${vhost}`);
    const logger = silentLogger();
    serverSession = new MessagingSession({ url, logger, processName: 'berth-test-conductor' });
    clientSession = new MessagingSession({ url, logger, processName: 'berth-test-compute' });
    await Promise.all([serverSession.start(), clientSession.start()]);
    server = new RpcServer({ session: serverSession, topic: 'conductor', server: 'replay', endpoints, logger, fanout: false });
    await server.start();
    rpc = new RpcClient({ session: clientSession, logger, timeoutMs: 10_000 });
    conductor = new ConductorClient(rpc);
  });

  after(async () => {
    await server?.close();
    await rpc?.close();
    await serverSession?.close();
    await clientSession?.close();
    await rabbitmqctl('delete_vhost', vhost).catch(() => undefined);
  });

  it('waits for the conductor with the baseapi ping', async () => {
    await conductor.waitForConductor(adminContext(), { attemptTimeoutMs: 5_000, retryDelayMs: 100 });
  });

  it('registers the service: lookup (null), create (updates applied), heartbeat', async () => {
    const ctx = adminContext();
    assert.equal(await conductor.serviceGetByHostAndBinary(ctx, 'fake-1', 'nova-compute'), null);
    const service = newObject('Service', { host: 'fake-1', binary: 'nova-compute', topic: 'compute', report_count: 0, version: NOVA_SERVICE_VERSION });
    await conductor.serviceCreate(ctx, service);
    assert.equal(service.get('id'), 4);
    service.set('report_count', 1);
    await conductor.serviceSave(ctx, service);
    assert.ok(service.get('last_seen_up') instanceof Date);
    const create = received.find((c) => c.args['objmethod'] === 'create');
    assert.equal(create?.context.request_id, ctx.request_id);
  });

  it('turns the captured ComputeHostNotFound failures into null and []', async () => {
    const ctx = adminContext();
    assert.equal(await conductor.computeNodeGetByHostAndNodename(ctx, 'fake-1', 'fake-1'), null);
    assert.deepEqual(await conductor.computeNodeListGetAllByHost(ctx, 'fake-1', { useSlave: true }), []);
    await assert.rejects(
      conductor.objectClassAction(ctx, 'ComputeNodeList', 'get_all_by_host', ['fake-1'], { use_slave: true }),
      (err: unknown) => isComputeHostNotFound(err) && err.kwargs['host'] === 'fake-1',
    );
  });

  it('saves an instance with expected_task_state and applies the reply', async () => {
    const captured = firstExchange('Instance', 'save');
    const args = captured.request['args'] as Record<string, unknown>;
    const instance = NovaObject.fromPrimitive(args['objinst']);
    assert.ok(isNovaObject(instance, 'Instance'));
    await conductor.instanceSave(adminContext(), instance, { expectedTaskState: ['scheduling', null] });
    // The conductor reported ec2_ids as still changed (its EC2Ids came back with changes of its own).
    const [updates] = captured.reply['result'] as [{ obj_what_changed: string[] }];
    assert.deepEqual(instance.changes(), updates.obj_what_changed);
    assert.ok(isNovaObject(instance.get('info_cache'), 'InstanceInfoCache'));
  });

  it('reads the block device mappings and reports action events', async () => {
    const ctx = adminContext();
    const bdms = await conductor.blockDeviceMappingListGetByInstanceUuid(ctx, 'ae8e9f49-252f-493c-aa82-5113fd9bd2e7');
    assert.equal(bdms.length, 1);
    const start = exchangesFor('InstanceActionEvent', 'event_start')[0];
    assert.ok(start);
    const [uuid, eventName] = (start.request['args'] as { args: [string, string] }).args;
    await conductor.instanceActionEventStart(ctx, uuid, eventName, 'fake-1');
    await conductor.instanceActionEventFinishWithFailure(ctx, uuid, eventName, { excVal: null, excTb: null });
  });

  it('rejects with the conductor failure (InstanceNotFound) for an unknown instance', async () => {
    await assert.rejects(
      conductor.instanceGetByUuid(adminContext(), 'ee6f49d4-f89e-46f7-8756-08eba339c7fa'),
      (err: unknown) => isInstanceNotFound(err) && err.kwargs['code'] === 404 && err.tb.length > 0,
    );
  });

  it('casts build_instances to compute_task 1.19', async () => {
    const instance = newObject('Instance', { uuid: 'ae8e9f49-252f-493c-aa82-5113fd9bd2e7', task_state: 'scheduling' });
    await conductor.buildInstances(adminContext(), {
      instances: [instance],
      image: { id: 'img' },
      filterProperties: { retry: { num_attempts: 1, hosts: [['fake-1', 'fake-1']] } },
      adminPassword: null,
      injectedFiles: [],
      requestedNetworks: null,
      securityGroups: [],
      requestSpec: null,
      hostLists: [[newObject('Selection', { service_host: 'fake-2', nodename: 'fake-2' })]],
    });
    const deadline = Date.now() + 5_000;
    while (!received.some((c) => c.method === 'build_instances') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const cast = received.find((c) => c.method === 'build_instances');
    assert.ok(cast);
    assert.equal(cast.isCall, false);
    assert.equal(cast.namespace, 'compute_task');
    assert.equal(cast.version, '1.19');
    const instances = cast.args['instances'] as Array<Record<string, unknown>>;
    assert.equal(instances[0]?.['nova_object.name'], 'Instance');
  });
});
