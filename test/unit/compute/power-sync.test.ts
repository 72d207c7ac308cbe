// Power-state sync: runtime lifecycle events (handle_lifecycle_event) and the periodic sweep (_sync_power_states),
// both ending in _sync_instance_power_state, which calls the stop API (compute_api.stop / force_stop) when the
// runtime disagrees with vm_state.
import assert from 'node:assert/strict';
import type { LifecycleTransition } from '../../../driver/driver';
import { PowerState } from '../../../driver/driver';
import { captureLogger } from '../config/helpers';
import { Harness, deferred, settle, userContext } from './harness';
import { berthSaves } from './lifecycle-capture';

describe('compute: power-state sync', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create();
  });
  afterEach(async () => {
    await h.close();
  });

  const ref = (uuid: string): { uuid: string; name: string } => ({ uuid, name: '' });
  const event = (uuid: string, transition: LifecycleTransition) => ({ uuid, transition, at: new Date() });

  async function stoppedInstance(): Promise<string> {
    const uuid = await h.activeInstance();
    const { context, instance } = h.api(uuid, { taskState: 'powering-off', action: 'stop' });
    await h.rpc('stop_instance', { instance, clean_shutdown: true }, context);
    return uuid;
  }

  /** The `stop` actions the compute started itself (the power sync's compute_api.stop). */
  const syncStops = (uuid: string) => h.conductor.requestsFor('InstanceAction', 'action_start').filter((r) => (r.args['args'] as unknown[])[0] === uuid);

  /** The request id the sync ran under (its own admin context). */
  function syncRequestId(uuid: string): string {
    const [start] = syncStops(uuid);
    assert.ok(start, 'the sync started a stop action');
    assert.deepEqual((start.args['args'] as unknown[])[1], 'stop');
    return start.requestId;
  }

  it('a died event for an ACTIVE instance: the stop flow (powering-off expecting None, action stop, event, stopped)', async () => {
    const uuid = await h.activeInstance();
    h.driver.simulateExit(uuid, 'died');
    await h.manager.handleLifecycleEvent(event(uuid, 'died'));

    const requestId = syncRequestId(uuid);
    assert.deepEqual(berthSaves(h.conductor.requests, requestId), [
      { fields: ['power_state'], expected_task_state: '<absent>' },
      { fields: ['task_state'], task_state: 'powering-off', expected_task_state: [null] },
      { fields: ['power_state', 'task_state', 'vm_state'], vm_state: 'stopped', task_state: null, expected_task_state: ['powering-off', null] },
    ]);
    assert.deepEqual(h.conductor.actionFor(uuid, requestId)?.events.map((e) => [e.event, e.result]), [['compute_stop_instance', 'Success']]);
    assert.deepEqual(h.notifier.eventsFor(requestId), ['power_off.start', 'power_off.end']);
    assert.equal(h.row(uuid)['vm_state'], 'stopped');
    assert.equal(h.row(uuid)['task_state'], null);
  });

  it('an instance with shutdown_terminate that shut down by itself is deleted (compute_api.delete), not stopped', async () => {
    const uuid = await h.activeInstance();
    h.row(uuid)['shutdown_terminate'] = true;
    h.driver.simulateExit(uuid, 'stopped');
    await h.manager.handleLifecycleEvent(event(uuid, 'stopped'));
    const [start] = h.conductor.requestsFor('InstanceAction', 'action_start').filter((r) => (r.args['args'] as unknown[])[0] === uuid);
    assert.deepEqual((start?.args['args'] as unknown[])[1], 'delete');
    assert.equal(h.row(uuid)['deleted'], true);
    assert.equal(h.row(uuid)['vm_state'], 'deleted');
    assert.deepEqual(await h.driver.listInstances(), []);
    assert.deepEqual(h.conductor.actionFor(uuid, start?.requestId ?? '')?.events.map((e) => [e.event, e.result]), [['compute_terminate_instance', 'Success']]);
  });

  it('a started event for a STOPPED instance (started behind Nova): stopped again', async () => {
    const uuid = await stoppedInstance();
    await h.driver.powerOn(ref(uuid));
    await h.manager.handleLifecycleEvent(event(uuid, 'started'));
    syncRequestId(uuid);
    assert.equal((await h.driver.getInfo(ref(uuid))).powerState, PowerState.SHUTDOWN);
    assert.equal(h.row(uuid)['vm_state'], 'stopped');
    assert.equal(h.row(uuid)['power_state'], PowerState.SHUTDOWN);
  });

  it('events are ignored while a task_state is set', async () => {
    const uuid = await h.activeInstance();
    h.row(uuid)['task_state'] = 'pausing';
    h.driver.simulateExit(uuid, 'died');
    const before = h.conductor.requestsFor('Instance', 'save').length;
    await h.manager.handleLifecycleEvent(event(uuid, 'died'));
    assert.equal(h.conductor.requestsFor('Instance', 'save').length, before);
    assert.deepEqual(syncStops(uuid), []);
    assert.equal(h.row(uuid)['vm_state'], 'active');
  });

  it('a stale event (the runtime says otherwise now) is ignored', async () => {
    const uuid = await h.activeInstance();
    const before = h.conductor.requests.length;
    await h.manager.handleLifecycleEvent(event(uuid, 'stopped'));
    assert.deepEqual(h.conductor.requests.slice(before).map((r) => `${String(r.objName)}.${String(r.objMethod)}`), ['Instance.get_by_uuid']);
  });

  it('an event for an instance Nova does not know is ignored', async () => {
    await h.manager.handleLifecycleEvent(event('0e4a2b0e-0000-4000-8000-000000000000', 'died'));
  });

  it('an event that went stale while an operation held the instance lock is ignored', async () => {
    const uuid = await stoppedInstance();
    // nova-api starts it; the start is held inside the runtime call, with the instance lock taken.
    const gate = deferred();
    const powerOn = h.driver.powerOn.bind(h.driver);
    h.driver.powerOn = async (r) => {
      await gate.promise;
      return powerOn(r);
    };
    const { context, instance } = h.api(uuid, { taskState: 'powering-on', action: 'start' });
    const starting = h.rpc('start_instance', { instance }, context);
    await settle();
    // A "stopped" event (e.g. from the earlier stop) arrives now: true when it is looked at, stale once it runs.
    const handling = h.manager.handleLifecycleEvent(event(uuid, 'stopped'));
    await settle();
    gate.resolve();
    await Promise.all([starting, handling]);

    assert.equal((await h.driver.getInfo(ref(uuid))).powerState, PowerState.RUNNING);
    assert.equal(h.row(uuid)['vm_state'], 'active');
    assert.equal(h.row(uuid)['power_state'], PowerState.RUNNING, 'the stale event must not write power_state SHUTDOWN');
    assert.deepEqual(syncStops(uuid), []);
  });

  describe('the periodic sweep (_sync_power_states)', () => {
    it('stops a crashed ACTIVE instance and a running STOPPED one; leaves the others; skips busy ones', async () => {
      const crashed = await h.activeInstance();
      const running = await h.activeInstance();
      const revived = await stoppedInstance();
      const busy = await h.activeInstance();
      const paused = await h.activeInstance();
      h.driver.simulateExit(crashed, 'died');
      await h.driver.powerOn(ref(revived));
      h.driver.simulateExit(busy, 'died');
      h.row(busy)['task_state'] = 'rebooting';
      await h.driver.pause(ref(paused));

      await h.manager.syncPowerStates();

      assert.equal(h.row(crashed)['vm_state'], 'stopped');
      syncRequestId(crashed);
      assert.equal(h.row(revived)['vm_state'], 'stopped');
      assert.equal((await h.driver.getInfo(ref(revived))).powerState, PowerState.SHUTDOWN);
      syncRequestId(revived);
      assert.equal(h.row(running)['vm_state'], 'active');
      assert.deepEqual(syncStops(running), []);
      assert.equal(h.row(busy)['vm_state'], 'active', 'a task in flight is not second-guessed');
      assert.deepEqual(syncStops(busy), []);
      // "Instance is paused unexpectedly. Ignore." — but the power state is copied.
      assert.equal(h.row(paused)['vm_state'], 'active');
      assert.equal(h.row(paused)['power_state'], PowerState.PAUSED);
      assert.deepEqual(syncStops(paused), []);
    });

    it('an instance the runtime lost is recorded as NOSTATE and left alone', async () => {
      const uuid = await h.activeInstance();
      await h.driver.destroy(ref(uuid));
      await h.manager.syncPowerStates();
      assert.equal(h.row(uuid)['power_state'], PowerState.NOSTATE);
      assert.equal(h.row(uuid)['vm_state'], 'active');
      assert.deepEqual(syncStops(uuid), []);
    });

    it('uses the power state of the runtime once it holds the lock, not the one listed before', async () => {
      const uuid = await h.activeInstance();
      const gate = deferred();
      const powerOff = h.driver.powerOff.bind(h.driver);
      let powerOffEntered = false;
      h.driver.powerOff = async (r, t) => {
        powerOffEntered = true;
        await gate.promise;
        return powerOff(r, t);
      };
      // The sweep reads the database (ACTIVE, no task) and the runtime (running)… and a user's stop slips in between.
      let stopping: Promise<unknown> | null = null;
      const listInstances = h.driver.listInstances.bind(h.driver);
      h.driver.listInstances = async () => {
        const listed = await listInstances();
        const { context, instance } = h.api(uuid, { taskState: 'powering-off', action: 'stop' });
        stopping = h.rpc('stop_instance', { instance, clean_shutdown: true }, context);
        await settle();
        assert.ok(powerOffEntered, 'the stop holds the instance lock');
        return listed;
      };
      const sweeping = h.manager.syncPowerStates();
      await settle();
      gate.resolve();
      await sweeping;
      await stopping;

      assert.equal(h.row(uuid)['vm_state'], 'stopped');
      assert.equal(h.row(uuid)['power_state'], PowerState.SHUTDOWN, 'not overwritten with the stale RUNNING');
      assert.deepEqual(syncStops(uuid), [], 'no second, system-made stop action');
    });
  });

  describe('the other periodic tasks', () => {
    it('_sync_scheduler_instance_info sends the uuids of the instances on this host', async () => {
      const a = await h.activeInstance();
      const b = await h.activeInstance();
      await h.manager.syncSchedulerInstanceInfo();
      assert.deepEqual(h.scheduler.synced.map((uuids) => [...uuids].sort()), [[a, b].sort()]);
    });

    it('_cleanup_running_deleted_instances reaps a deleted instance, not one whose operation holds the lock', async () => {
      const deleted = await h.activeInstance();
      h.row(deleted)['deleted'] = true;
      // The instance lock is held by a delete that is inside the runtime call.
      const busy = await h.activeInstance();
      const gate = deferred();
      const destroy = h.driver.destroy.bind(h.driver);
      h.driver.destroy = async (ref) => {
        if (ref.uuid === busy) await gate.promise;
        return destroy(ref);
      };
      const { context, instance } = h.api(busy, { taskState: 'deleting', action: 'delete' });
      const deleting = h.rpc('terminate_instance', { instance, bdms: null }, context);
      await settle();
      h.row(busy)['deleted'] = true;
      await settle();
      await h.manager.reapOrphans(userContext());
      assert.deepEqual((await h.driver.listInstances()).map((i) => i.uuid), [busy]);
      gate.resolve();
      await deleting;
      assert.deepEqual(await h.driver.listInstances(), []);
    });

    it('_cleanup_running_deleted_instances leaves a container of an instance Nova places elsewhere: a warning, except for the source copy of a move', async () => {
      const log = captureLogger();
      const other = await Harness.create({ logger: log.logger });
      const moved = await other.activeInstance();
      const renamed = await other.activeInstance();
      // A move to another host waiting in VERIFY_RESIZE keeps the stopped source container; the other one is a puzzle.
      Object.assign(other.row(moved), { host: 'elsewhere', vm_state: 'resized' });
      Object.assign(other.row(renamed), { host: 'elsewhere' });
      await other.manager.reapOrphans(userContext());
      assert.deepEqual((await other.driver.listInstances()).map((i) => i.uuid).sort(), [moved, renamed].sort(), 'nothing destroyed');
      const warned = log.at('warn').filter((line) => /belongs to an instance Nova places on/.test(line.msg));
      assert.deepEqual(warned.map((line) => line['instance_uuid']), [renamed]);
    });
  });
});
