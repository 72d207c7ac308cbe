// init_host: every instance Nova places on this host reconciled with what the runtime has (_init_instance), and the
// runtime's containers that belong to no live instance handled per running_deleted_instance_action.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { PowerState, type PowerState as PowerStateT } from '../../../driver/driver';
import type { ComputeManagerOptions } from '../../../src/compute/manager';
import { Harness } from './harness';

describe('compute: init_host', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create();
  });
  afterEach(async () => {
    await h.close();
  });

  const ref = (uuid: string): { uuid: string; name: string } => ({ uuid, name: '' });
  const powerState = async (uuid: string): Promise<PowerStateT> => (await h.driver.getInfo(ref(uuid))).powerState;
  const containers = async (): Promise<string[]> => (await h.driver.listInstances()).map((i) => i.uuid).sort();

  /**
   * An instance as the previous run left it: built, then the runtime put in `power` and the row in vm/task state,
   * with the action nova-api recorded for the interrupted operation.
   */
  async function leftBehind(vmState: string, taskState: string | null, power: 'running' | 'stopped' | 'paused' | 'suspended' | 'gone', action = 'stop'): Promise<string> {
    const uuid = await h.activeInstance();
    if (power === 'stopped') await h.driver.powerOff(ref(uuid), 0);
    if (power === 'paused') await h.driver.pause(ref(uuid));
    if (power === 'suspended') await h.driver.suspend(ref(uuid));
    if (power === 'gone') await h.driver.destroy(ref(uuid));
    const row = h.row(uuid);
    row['vm_state'] = vmState;
    row['task_state'] = taskState;
    h.conductor.recordAction(uuid, `req-${randomUUID()}`, action);
    return uuid;
  }

  it('building / spawning: ERROR with a fault, the half-built container removed', async () => {
    const spawning = await leftBehind('building', 'spawning', 'running', 'create');
    const scheduling = await leftBehind('building', 'scheduling', 'gone', 'create');
    await h.manager.initHost();
    for (const uuid of [spawning, scheduling]) {
      const row = h.row(uuid);
      assert.equal(row['vm_state'], 'error');
      assert.equal(row['task_state'], null);
      assert.equal(row['power_state'], PowerState.NOSTATE);
      assert.equal(h.faultsOf(uuid).length, 1);
      assert.match(h.faultsOf(uuid)[0]?.message ?? '', /restarted while the instance was being built/);
    }
    assert.deepEqual(await containers(), []);
  });

  it('a build lost before its claim (BUILDING, no host, allocation on our provider): ERROR with a fault', async () => {
    const lost = randomUUID();
    const { instanceData } = h.buildArgs(lost);
    instanceData['host'] = null;
    h.conductor.addInstance(instanceData);
    const untouched = randomUUID();
    const other = h.buildArgs(untouched).instanceData;
    other['host'] = null;
    h.conductor.addInstance(other);
    await h.tracker.updateAvailableResource();
    const nodeUuid = h.tracker.nodeUuid as string;
    h.placement.allocations.set(nodeUuid, [lost]);
    await h.manager.initHost();
    assert.equal(h.row(lost)['vm_state'], 'error');
    assert.equal(h.row(lost)['task_state'], null);
    assert.match(h.faultsOf(lost)[0]?.message ?? '', /restarted before the build/);
    // Without an allocation on our provider it is some other host's build: left alone.
    assert.equal(h.row(untouched)['vm_state'], 'building');
    assert.deepEqual(h.faultsOf(untouched), []);
  });

  it('deleting: the deletion is completed (container, allocation, row)', async () => {
    const uuid = await leftBehind('active', 'deleting', 'running', 'delete');
    await h.manager.initHost();
    assert.equal(h.row(uuid)['deleted'], true);
    assert.equal(h.row(uuid)['vm_state'], 'deleted');
    assert.deepEqual(h.placement.deletedAllocations, [uuid]);
    assert.deepEqual(await containers(), []);
  });

  it('vm_state deleted but the row still there: the row destroyed, the allocation released', async () => {
    const uuid = await leftBehind('deleted', null, 'gone', 'delete');
    await h.manager.initHost();
    assert.equal(h.row(uuid)['deleted'], true);
    assert.deepEqual(h.placement.deletedAllocations, [uuid]);
  });

  it('powering-off: the stop is finished (stopped, event on the interrupted action)', async () => {
    const uuid = await leftBehind('active', 'powering-off', 'running', 'stop');
    await h.manager.initHost();
    assert.equal(h.row(uuid)['vm_state'], 'stopped');
    assert.equal(h.row(uuid)['task_state'], null);
    assert.equal(await powerState(uuid), PowerState.SHUTDOWN);
    const action = h.conductor.actions.filter((a) => a.instanceUuid === uuid).at(-1);
    assert.deepEqual(action?.events.map((e) => [e.event, e.result]), [['compute_stop_instance', 'Success']]);
  });

  it('powering-on: the start is finished', async () => {
    const uuid = await leftBehind('stopped', 'powering-on', 'stopped', 'start');
    await h.manager.initHost();
    assert.equal(h.row(uuid)['vm_state'], 'active');
    assert.equal(h.row(uuid)['task_state'], null);
    assert.equal(await powerState(uuid), PowerState.RUNNING);
  });

  for (const [task, power] of [
    ['reboot_pending', 'running'],
    ['reboot_pending_hard', 'running'],
    ['reboot_started', 'stopped'],
    ['reboot_started_hard', 'stopped'],
  ] as const) {
    it(`${task} with the container ${power}: rebooted`, async () => {
      const uuid = await leftBehind('active', task, power, 'reboot');
      await h.manager.initHost();
      assert.equal(h.row(uuid)['vm_state'], 'active');
      assert.equal(h.row(uuid)['task_state'], null);
      assert.equal(await powerState(uuid), PowerState.RUNNING);
      const action = h.conductor.actions.filter((a) => a.instanceUuid === uuid).at(-1);
      assert.deepEqual(action?.events.map((e) => [e.event, e.result]), [['compute_reboot_instance', 'Success']]);
    });
  }

  it('reboot_started with the container running: the task is cleared', async () => {
    const uuid = await leftBehind('active', 'reboot_started', 'running', 'reboot');
    await h.manager.initHost();
    assert.equal(h.row(uuid)['task_state'], null);
    assert.equal(h.row(uuid)['vm_state'], 'active');
  });

  for (const [vm, task, power, endVm, endPower] of [
    ['active', 'pausing', 'paused', 'paused', PowerState.PAUSED],
    ['active', 'pausing', 'running', 'active', PowerState.RUNNING],
    ['paused', 'unpausing', 'paused', 'active', PowerState.RUNNING],
    ['active', 'suspending', 'running', 'suspended', PowerState.SUSPENDED],
    ['suspended', 'resuming', 'suspended', 'active', PowerState.RUNNING],
  ] as const) {
    it(`${vm}/${task} with the container ${power}: finished as ${endVm}`, async () => {
      const uuid = await leftBehind(vm, task, power, task.replace(/ing$/, ''));
      if (task === 'resuming') (h.row(uuid)['system_metadata'] as Record<string, string>)['old_vm_state'] = 'active';
      await h.manager.initHost();
      assert.equal(h.row(uuid)['vm_state'], endVm);
      assert.equal(h.row(uuid)['task_state'], null);
      assert.equal(await powerState(uuid), endPower);
    });
  }

  for (const task of ['image_snapshot_pending', 'image_uploading', 'image_pending_upload', 'image_snapshot']) {
    it(`${task}: cleared`, async () => {
      const uuid = await leftBehind('active', task, 'running', 'createImage');
      await h.manager.initHost();
      assert.equal(h.row(uuid)['task_state'], null);
      assert.equal(h.row(uuid)['vm_state'], 'active');
      assert.equal(await powerState(uuid), PowerState.RUNNING);
    });
  }

  it('rebuilding: ERROR with a fault', async () => {
    const uuid = await leftBehind('active', 'rebuild_spawning', 'running', 'rebuild');
    await h.manager.initHost();
    assert.equal(h.row(uuid)['vm_state'], 'error');
    assert.equal(h.row(uuid)['task_state'], null);
    assert.equal(h.faultsOf(uuid).length, 1);
  });

  it('ERROR, soft-deleted and foreign instances are left alone; the scheduler hears about them all', async () => {
    const errored = await leftBehind('error', null, 'stopped');
    const soft = await leftBehind('soft-delete', null, 'stopped');
    const foreign = await leftBehind('active', 'powering-off', 'running');
    h.row(foreign)['host'] = 'fake-2';
    const saves = h.conductor.requestsFor('Instance', 'save').length;
    h.scheduler.updated.length = 0;
    await h.manager.initHost();
    assert.equal(h.conductor.requestsFor('Instance', 'save').length, saves);
    assert.equal(h.row(foreign)['task_state'], 'powering-off', 'the row of an instance of another host is not touched');
    assert.deepEqual(h.scheduler.updated.map((u) => u.uuids.sort()), [[errored, soft].sort()]);
  });

  it('an ACTIVE instance whose container stopped stays as it is unless resume_guests_state_on_host_boot', async () => {
    const uuid = await leftBehind('active', null, 'stopped');
    h.row(uuid)['power_state'] = PowerState.RUNNING;
    await h.manager.initHost();
    assert.equal(await powerState(uuid), PowerState.SHUTDOWN);

    await h.close();
    h = await Harness.create({ manager: { resumeGuestsStateOnHostBoot: true } });
    const again = await leftBehind('active', null, 'stopped');
    h.row(again)['power_state'] = PowerState.RUNNING;
    await h.manager.initHost();
    assert.equal(await powerState(again), PowerState.RUNNING);
  });

  describe('containers of no live instance (running_deleted_instance_action)', () => {
    async function orphans(): Promise<{ deleted: string; unknown: string; elsewhere: string; live: string; unscheduled: string }> {
      const deleted = await h.activeInstance();
      h.row(deleted)['deleted'] = true;
      const unknown = await h.activeInstance();
      h.conductor.instances.delete(unknown);
      // An instance Nova now places on another host: Berth never evacuates, so it is reported and left alone.
      const elsewhere = await h.activeInstance();
      h.row(elsewhere)['host'] = 'fake-2';
      const live = await h.activeInstance();
      // A build rescheduled away: no host, not deleted — not ours to judge.
      const unscheduled = await h.activeInstance();
      h.row(unscheduled)['host'] = null;
      return { deleted, unknown, elsewhere, live, unscheduled };
    }

    const cases: Array<[ComputeManagerOptions['runningDeletedInstanceAction'], (o: Awaited<ReturnType<typeof orphans>>) => string[]]> = [
      ['reap', (o) => [o.elsewhere, o.live, o.unscheduled]],
      ['noop', (o) => [o.deleted, o.unknown, o.elsewhere, o.live, o.unscheduled]],
      ['log', (o) => [o.deleted, o.unknown, o.elsewhere, o.live, o.unscheduled]],
      ['shutdown', (o) => [o.deleted, o.unknown, o.elsewhere, o.live, o.unscheduled]],
    ];
    for (const [action, kept] of cases) {
      it(`${action}`, async () => {
        await h.close();
        h = await Harness.create({ manager: { runningDeletedInstanceAction: action } });
        const o = await orphans();
        await h.manager.initHost();
        assert.deepEqual(await containers(), kept(o).sort());
        const stopped = action === 'shutdown' ? PowerState.SHUTDOWN : PowerState.RUNNING;
        if (action !== 'reap') {
          assert.equal(await powerState(o.deleted), stopped);
          assert.equal(await powerState(o.unknown), stopped);
        }
        assert.equal(await powerState(o.live), PowerState.RUNNING);
      });
    }
  });
});
