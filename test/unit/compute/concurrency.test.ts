// Per-instance serialisation (Nova's @utils.synchronized(instance.uuid)): operations on one instance never overlap
// in the runtime, operations on different instances do; the KeyedMutex and Semaphore underneath.
import assert from 'node:assert/strict';
import { KeyedMutex, Semaphore } from '../../../src/compute/concurrency';
import { Harness, deferred, settle } from './harness';

describe('compute: concurrency', () => {
  describe('the manager', () => {
    let h: Harness;
    /** Runtime calls in flight per instance, and the most seen at once. */
    const inFlight = new Map<string, number>();
    let maxPerInstance = 0;
    let maxOverall = 0;
    let gate = deferred();

    beforeEach(async () => {
      h = await Harness.create();
      inFlight.clear();
      maxPerInstance = 0;
      maxOverall = 0;
      gate = deferred();
    });
    afterEach(async () => {
      await h.close();
    });

    /** Makes every runtime call that changes an instance wait for `gate`, counting overlaps. */
    function instrument(): void {
      for (const name of ['reboot', 'destroy', 'pause', 'powerOff'] as const) {
        const original = (h.driver[name] as (...a: unknown[]) => Promise<void>).bind(h.driver);
        (h.driver as unknown as Record<string, unknown>)[name] = async (ref: { uuid: string }, ...rest: unknown[]) => {
          inFlight.set(ref.uuid, (inFlight.get(ref.uuid) ?? 0) + 1);
          maxPerInstance = Math.max(maxPerInstance, inFlight.get(ref.uuid) ?? 0);
          maxOverall = Math.max(maxOverall, [...inFlight.values()].reduce((a, b) => a + b, 0));
          try {
            await gate.promise;
            return await original(ref, ...rest);
          } finally {
            inFlight.set(ref.uuid, (inFlight.get(ref.uuid) ?? 1) - 1);
          }
        };
      }
    }

    function cast(uuid: string, method: string, taskState: string, extra: Record<string, unknown> = {}): Promise<unknown> {
      // nova-api would refuse a second task on a busy instance; the delete is the one it lets through.
      h.row(uuid)['task_state'] = null;
      const { context, instance } = h.api(uuid, { taskState, action: method });
      return h.rpc(method, { instance, ...extra }, context);
    }

    it('a delete that arrives during a reboot waits for it; two instances reboot at once', async () => {
      const a = await h.activeInstance();
      const b = await h.activeInstance();
      instrument();
      const rebootA = cast(a, 'reboot_instance', 'rebooting_hard', { block_device_info: null, reboot_type: 'HARD' });
      const rebootB = cast(b, 'reboot_instance', 'rebooting_hard', { block_device_info: null, reboot_type: 'HARD' });
      await settle();
      const deleteA = cast(a, 'terminate_instance', 'deleting', { bdms: null });
      const pauseA = cast(a, 'pause_instance', 'pausing');
      await settle();
      assert.equal(inFlight.get(a), 1);
      assert.equal(inFlight.get(b), 1);
      assert.equal(maxOverall, 2, 'the two instances are in the runtime at the same time');
      gate.resolve();
      await Promise.all([rebootA, rebootB, deleteA, pauseA.catch(() => undefined)]);
      assert.equal(maxPerInstance, 1, 'never two runtime calls on one instance');
      assert.equal(h.row(a)['deleted'], true);
      assert.equal(h.row(b)['vm_state'], 'active');
    });

    it('a delete during a build waits for the build to finish', async () => {
      instrument();
      const spawnGate = deferred();
      const spawn = h.driver.spawn.bind(h.driver);
      let spawned = false;
      h.driver.spawn = async (...args) => {
        await spawnGate.promise;
        await spawn(...args);
        spawned = true;
      };
      gate.resolve();
      const { context, args } = h.scheduleBuild();
      const uuid = String(((args['instance'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>)['uuid']);
      const building = h.rpc('build_and_run_instance', args, context);
      await settle();
      h.row(uuid)['task_state'] = 'deleting';
      const { context: deleteContext, instance } = h.api(uuid, { taskState: null, action: 'delete' });
      const deleting = h.rpc('terminate_instance', { instance, bdms: null }, deleteContext);
      await settle();
      assert.equal(h.row(uuid)['deleted'], false, 'the delete waits for the instance lock');
      spawnGate.resolve();
      await Promise.all([building, deleting]);
      assert.ok(spawned);
      assert.equal(h.row(uuid)['deleted'], true);
      assert.deepEqual(await h.driver.listInstances(), []);
    });
  });

  describe('KeyedMutex', () => {
    it('runs work on one key in arrival order, one at a time; other keys run beside it', async () => {
      const mutex = new KeyedMutex();
      const order: string[] = [];
      const hold = deferred();
      const first = mutex.run('a', async () => {
        order.push('a1 start');
        await hold.promise;
        order.push('a1 end');
      });
      const second = mutex.run('a', async () => {
        order.push('a2');
      });
      const other = mutex.run('b', async () => {
        order.push('b');
      });
      await other;
      assert.equal(mutex.isBusy('a'), true);
      assert.equal(mutex.isBusy('b'), false);
      hold.resolve();
      await Promise.all([first, second]);
      assert.deepEqual(order, ['a1 start', 'b', 'a1 end', 'a2']);
      assert.equal(mutex.isBusy('a'), false);
    });

    it('a failing holder releases the key', async () => {
      const mutex = new KeyedMutex();
      await assert.rejects(mutex.run('a', async () => Promise.reject(new Error('boom'))), /boom/);
      assert.equal(await mutex.run('a', async () => 'next'), 'next');
      assert.equal(mutex.isBusy('a'), false);
    });
  });

  describe('Semaphore', () => {
    it('at most `limit` at once, the rest in order; 0 is unlimited', async () => {
      for (const [limit, expectedMax] of [
        [2, 2],
        [0, 5],
      ] as const) {
        const semaphore = new Semaphore(limit);
        const hold = deferred();
        let active = 0;
        let max = 0;
        const started: number[] = [];
        const runs = Array.from({ length: 5 }, (_, i) =>
          semaphore.run(async () => {
            started.push(i);
            active++;
            max = Math.max(max, active);
            await hold.promise;
            active--;
          }),
        );
        await settle();
        assert.equal(active, expectedMax);
        hold.resolve();
        await Promise.all(runs);
        assert.equal(max, expectedMax);
        assert.deepEqual(started, [0, 1, 2, 3, 4]);
        assert.equal(semaphore.inUse, 0);
      }
    });

    it('a failing holder frees its slot', async () => {
      const semaphore = new Semaphore(1);
      await assert.rejects(semaphore.run(async () => Promise.reject(new Error('boom'))), /boom/);
      assert.equal(await semaphore.run(async () => 'next'), 'next');
      assert.equal(semaphore.inUse, 0);
    });
  });
});
