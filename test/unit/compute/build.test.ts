// build_and_run_instance: nova/compute/manager.py _do_build_and_run_instance / _build_and_run_instance, and what the
// lab capture shows Python's compute doing for the same cast.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DriverError } from '../../../driver/driver';
import { newObject } from '../../../src/objects';
import { Harness, deferred, settle } from './harness';
import { berthSaves, capturedCompute, capturedSaves, withClaimMerged } from './lifecycle-capture';

const NETWORK_ID = '4b0e7d8a-55b5-4f73-9b4c-1b1f0b4d7e90';

function selection(host: string): Record<string, unknown> {
  return newObject('Selection', {
    compute_node_uuid: randomUUID(),
    service_host: host,
    nodename: host,
    cell_uuid: randomUUID(),
    allocation_request: '{"allocations": {}}',
    allocation_request_version: '1.36',
    availability_zone: 'nova',
  }).toPrimitive() as unknown as Record<string, unknown>;
}

describe('compute: build_and_run_instance', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create();
  });
  afterEach(async () => {
    await h.close();
  });

  describe('success', () => {
    let uuid: string;
    let requestId: string;

    beforeEach(async () => {
      uuid = randomUUID();
      const { context, args } = h.scheduleBuild(uuid);
      requestId = context.request_id;
      await h.rpc('build_and_run_instance', args, context);
    });

    it('saves the states of the capture, with the same expected_task_state', () => {
      assert.deepEqual(berthSaves(h.conductor.requests, requestId), withClaimMerged(capturedSaves(capturedCompute('build_and_run_instance').requestId)));
      const row = h.row(uuid);
      assert.equal(row['vm_state'], 'active');
      assert.equal(row['task_state'], null);
      assert.equal(row['power_state'], 1);
      assert.equal(row['host'], 'fake-1');
      assert.equal(row['node'], 'fake-1');
      assert.equal(row['launched_on'], 'fake-1');
      assert.equal(typeof row['launched_at'], 'string');
      assert.equal((row['system_metadata'] as Record<string, string>)['boot_roles'], 'reader,admin,member');
    });

    it('opens and closes compute__do_build_and_run_instance on the incoming request_id', () => {
      const action = h.conductor.actionFor(uuid, requestId);
      assert.deepEqual(
        action?.events.map((e) => [e.event, e.host, e.result]),
        [['compute__do_build_and_run_instance', 'fake-1', 'Success']],
      );
      const eventCalls = h.conductor.requests.filter((r) => r.objName === 'InstanceActionEvent');
      assert.deepEqual(eventCalls.map((r) => [r.objMethod, r.requestId]), [
        ['event_start', requestId],
        ['event_finish_with_failure', requestId],
      ]);
    });

    it('notifies create.start (image name) and create.end (Success), updates the scheduler, keeps the allocation', () => {
      assert.deepEqual(h.notifier.eventsFor(requestId), ['create.start', 'create.end']);
      assert.equal(h.notifier.notifications[0]?.extras.imageName, 'tiny');
      assert.equal(h.notifier.notifications[1]?.extras.message, 'Success');
      assert.deepEqual(h.scheduler.updated, [{ requestId, uuids: [uuid] }]);
      assert.deepEqual(h.placement.deletedAllocations, []);
      assert.deepEqual(h.faultsOf(uuid), []);
      assert.equal(h.manager.failedBuilds, 0);
    });

    it('leaves a running container', async () => {
      const info = await h.driver.getInfo({ uuid, name: '' });
      assert.equal(info.powerState, 1);
    });
  });

  /** Builds with `edit` applied to the cast's arguments; returns the uuid and the request id. */
  async function build(edit: (args: Record<string, unknown>) => void = () => undefined): Promise<{ uuid: string; requestId: string }> {
    const uuid = randomUUID();
    const { context, args } = h.scheduleBuild(uuid);
    edit(args);
    await h.rpc('build_and_run_instance', args, context);
    return { uuid, requestId: context.request_id };
  }

  function assertErrored(uuid: string): void {
    const row = h.row(uuid);
    assert.equal(row['vm_state'], 'error');
    assert.equal(row['task_state'], null);
    assert.equal(row['host'], null);
    assert.equal(row['node'], null);
    assert.deepEqual(h.placement.deletedAllocations, [uuid]);
  }

  it('an image the runtime cannot run: ERROR, BuildAbortException fault with the reason, allocation deleted, no container', async () => {
    const { uuid, requestId } = await build((args) => {
      (args['image'] as Record<string, unknown>)['container_format'] = 'bare';
    });
    assertErrored(uuid);
    const [fault, ...more] = h.faultsOf(uuid);
    assert.equal(more.length, 0);
    assert.equal(
      fault?.message,
      `Build of instance ${uuid} aborted: Image 1271781e-5153-43b9-a96c-9851e9bec3c0 is unacceptable: container_format is bare; this driver runs only docker images`,
    );
    assert.equal(fault?.code, 500);
    assert.match(fault?.details ?? '', /BuildAbortException/);
    assert.deepEqual(await h.driver.listInstances(), []);
    assert.deepEqual(h.notifier.eventsFor(requestId), ['create.start', 'create.error']);
    assert.equal(h.notifier.notifications[1]?.extras.fault?.className, 'ImageUnacceptable');
    // _do_build_and_run_instance handled the failure, so its event ends without an error (as in Nova).
    assert.equal(h.conductor.actionFor(uuid, requestId)?.events[0]?.result, 'Success');
    assert.equal(h.manager.failedBuilds, 1);
  });

  it('a spawn error with retry info: rescheduled (scheduling, no host, allocation deleted, build_instances cast)', async () => {
    h.driver.failNext('spawn', new DriverError('the runtime fell over'));
    const hostList = [selection('fake-2'), selection('fake-3')];
    const { uuid, requestId } = await build((args) => {
      args['host_list'] = hostList;
    });
    const row = h.row(uuid);
    assert.equal(row['vm_state'], 'building');
    assert.equal(row['task_state'], 'scheduling');
    assert.equal(row['host'], null);
    assert.equal(row['node'], null);
    assert.equal(row['launched_on'], null);
    assert.deepEqual(h.placement.deletedAllocations, [uuid]);
    assert.deepEqual(h.faultsOf(uuid), [], 'Nova writes no fault when it reschedules');
    assert.deepEqual(await h.driver.listInstances(), []);

    const [cast, ...more] = h.conductor.casts;
    assert.equal(more.length, 0);
    assert.equal(cast?.method, 'build_instances');
    assert.equal(cast?.namespace, 'compute_task');
    assert.equal(cast?.requestId, requestId);
    assert.deepEqual(cast?.args['host_lists'], [hostList]);
    const retry = (cast?.args['filter_properties'] as Record<string, unknown>)['retry'] as Record<string, unknown>;
    assert.equal(retry['exc_reason'], 'the runtime fell over');
    assert.ok(Array.isArray(retry['exc']) && (retry['exc'] as string[]).join('').includes('the runtime fell over'));
    assert.deepEqual(retry['hosts'], [['fake-1', 'fake-1']]);
    const instances = cast?.args['instances'] as Array<Record<string, unknown>>;
    assert.equal((instances[0]?.['nova_object.data'] as Record<string, unknown>)['uuid'], uuid);
    // The last save is the reschedule's: task scheduling, host and node nulled, no expected state.
    assert.deepEqual(berthSaves(h.conductor.requests, requestId).at(-1), {
      fields: ['host', 'node', 'task_state'],
      task_state: 'scheduling',
      expected_task_state: '<absent>',
    });
    assert.equal(h.manager.failedBuilds, 1);
  });

  it('a spawn error without retry info: ERROR with a fault whose message is the reason', async () => {
    h.driver.failNext('spawn', new DriverError('the runtime fell over'));
    const { uuid } = await build((args) => {
      args['filter_properties'] = { limits: {} };
    });
    assertErrored(uuid);
    assert.deepEqual(h.faultsOf(uuid).map((f) => [f.code, f.message]), [[500, 'the runtime fell over']]);
    assert.deepEqual(h.conductor.casts, []);
    assert.deepEqual(await h.driver.listInstances(), []);
  });

  for (const [what, prepare] of [
    ['InstanceNotFound', (row: Record<string, unknown>) => void (row['deleted'] = true)],
    ['UnexpectedDeletingTaskStateError', (row: Record<string, unknown>) => void (row['task_state'] = 'deleting')],
    ['UnexpectedTaskStateError', (row: Record<string, unknown>) => void (row['task_state'] = 'spawning')],
  ] as const) {
    it(`${what} at the first save: nothing is done but the allocation delete`, async () => {
      const uuid = randomUUID();
      const { context, args } = h.scheduleBuild(uuid);
      prepare(h.row(uuid));
      const before = structuredClone(h.row(uuid));
      await h.rpc('build_and_run_instance', args, context);
      assert.deepEqual(h.row(uuid), before);
      assert.deepEqual(h.placement.deletedAllocations, [uuid]);
      assert.deepEqual(h.faultsOf(uuid), []);
      assert.deepEqual(h.notifier.notifications, []);
      assert.deepEqual(h.notifier.exceptions, []);
      assert.deepEqual(h.images.fetched, []);
      assert.deepEqual(await h.driver.listInstances(), []);
      assert.equal(h.conductor.requestsFor('Instance', 'save').length, 1);
    });
  }

  it('deleted while spawning (UnexpectedDeletingTaskStateError at the last save): create.error, container removed, allocation deleted', async () => {
    const uuid = randomUUID();
    const { context, args } = h.scheduleBuild(uuid);
    h.conductor.beforeAnswer.push((request) => {
      const data = (request.args['objinst'] as Record<string, unknown> | undefined)?.['nova_object.data'] as Record<string, unknown> | undefined;
      if (request.objMethod === 'save' && data?.['vm_state'] === 'active') h.row(uuid)['task_state'] = 'deleting';
    });
    await h.rpc('build_and_run_instance', args, context);
    assert.equal(h.row(uuid)['task_state'], 'deleting', 'the delete owns the task state');
    assert.deepEqual(h.notifier.eventsFor(context.request_id), ['create.start', 'create.error']);
    assert.deepEqual(h.faultsOf(uuid), []);
    assert.deepEqual(await h.driver.listInstances(), []);
    assert.deepEqual(h.placement.deletedAllocations, [uuid]);
  });

  it('a request for a real network: BuildAbortException fault (Berth binds no ports), ERROR, allocation deleted', async () => {
    const { uuid } = await build((args) => {
      const list = args['requested_networks'] as Record<string, unknown>;
      const [request] = (list['nova_object.data'] as { objects: Array<Record<string, unknown>> }).objects;
      (request?.['nova_object.data'] as Record<string, unknown>)['network_id'] = NETWORK_ID;
    });
    assertErrored(uuid);
    assert.deepEqual(h.faultsOf(uuid).map((f) => f.message), [
      `Build of instance ${uuid} aborted: Berth does not bind Neutron ports: boot the server with --nic none`,
    ]);
    assert.deepEqual(await h.driver.listInstances(), []);
  });

  it('injected files that are not base64: Base64Exception fault, task_state reverted, allocation deleted', async () => {
    const { uuid, requestId } = await build((args) => {
      args['injected_files'] = [['/etc/motd', '%%% not base64 %%%']];
    });
    assert.deepEqual(h.faultsOf(uuid).map((f) => f.message), ['Invalid Base 64 data for file /etc/motd']);
    assert.equal(h.conductor.actionFor(uuid, requestId)?.events[0]?.result, 'Error');
    assert.equal(h.row(uuid)['task_state'], null);
    assert.deepEqual(h.placement.deletedAllocations, [uuid]);
    assert.deepEqual(h.notifier.exceptions.map((e) => [e.method, e.error.className]), [['_do_build_and_run_instance', 'Base64Exception']]);
  });

  for (const limit of [1, 2]) {
    it(`max_concurrent_builds=${limit}: build ${limit + 1} waits until one finishes`, async () => {
      await h.close();
      h = await Harness.create({ manager: { maxConcurrentBuilds: limit } });
      const gate = deferred();
      const spawn = h.driver.spawn.bind(h.driver);
      let spawning = 0;
      h.driver.spawn = async (...args) => {
        spawning++;
        await gate.promise;
        return spawn(...args);
      };
      const builds = Array.from({ length: limit + 1 }, () => h.scheduleBuild());
      const running = builds.map(({ context, args }) => h.rpc('build_and_run_instance', args, context));
      await settle();
      assert.equal(spawning, limit);
      const waiting = builds.filter(({ args }) => {
        const uuid = ((args['instance'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>)['uuid'];
        return h.row(String(uuid))['task_state'] === 'scheduling';
      });
      assert.equal(waiting.length, 1, 'the last build has not even started (its first save waits for the semaphore)');
      gate.resolve();
      await Promise.all(running);
      assert.equal(spawning, limit + 1);
      assert.equal((await h.driver.listInstances()).length, limit + 1);
    });
  }
});
