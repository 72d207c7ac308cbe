// The driver conformance suite: the contract of driver/driver.ts as tests, run against every driver (driver/fake in
// test/unit/driver, driver/docker against a real dockerd in test/integration/driver). Modelled on Nova's
// _VirtDriverTestCase. Waiting for asynchronous runtime events uses a deadline that only guards against hanging;
// nothing here asserts how long anything takes.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import {
  FlavorNotAllowed,
  InstanceInvalidState,
  InstanceNotFound,
  InvalidImage,
  PowerState,
  type ComputeDriver,
  type DriverCapabilities,
  type FlavorSpec,
  type InstanceRef,
  type InstanceSpec,
  type LifecycleEvent,
  type LifecycleTransition,
  type SnapshotTarget,
} from '../../../driver/driver';
import { readDockerArchive, tarArchive } from '../../../driver/image-archive';
import { glanceImage, type CountingImageSource } from '../../support/images';

export interface DriverUnderTest {
  readonly driver: ComputeDriver;
  /** A docker save archive whose command prints a few lines and then runs until it is stopped. */
  readonly imageTarPath: string;
  /** Flavor extra specs the driver must refuse with its default options. */
  readonly forbiddenExtraSpecs: Readonly<Record<string, string>>;
  /** Ends a running instance behind the driver's back (docker kill, FakeDriver.simulateExit). */
  killBehindDriversBack(uuid: string): Promise<void>;
  /** What the runtime still holds for the instance, looked up without the driver; [] when nothing. */
  leftovers(uuid: string): Promise<string[]>;
  /** Removes what the suite left in the runtime, e.g. the cached images of these Glance image ids. */
  cleanup(glanceImageIds: readonly string[]): Promise<void>;
}

/** Upper bound for waiting on asynchronous runtime events (a guard against hanging, not a timing assertion). */
const WAIT_LIMIT_MS = 30_000;

const CAPABILITY_NAMES: ReadonlyArray<keyof DriverCapabilities> = [
  'supportsPause', 'supportsSuspend', 'supportsSoftReboot', 'supportsSnapshot', 'supportsRebuild', 'supportsResize',
  'supportsConsoleOutput', 'supportsDiagnostics', 'supportsAttachInterface', 'supportsDeviceTagging',
  'supportsMultiattach', 'supportsImageTypeRaw', 'supportsImageTypeQcow2',
];

export function describeDriverConformance(name: string, factory: () => Promise<DriverUnderTest>): void {
  describe(`driver conformance: ${name}`, function () {
    this.timeout(120_000);

    let subject: DriverUnderTest;
    let driver: ComputeDriver;
    let unsubscribe: () => void = () => undefined;
    let scratch: string;
    const events: LifecycleEvent[] = [];
    const spawned = new Set<string>();
    const imageIds: string[] = [];
    let sharedImage: CountingImageSource;

    const flavor = (overrides: Partial<FlavorSpec> = {}): FlavorSpec => ({
      name: 'm1.tiny', flavorId: '1', vcpus: 1, memoryMb: 128, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {}, ...overrides,
    });
    const instanceSpec = (overrides: Partial<InstanceSpec> = {}): InstanceSpec => {
      const uuid = overrides.uuid ?? randomUUID();
      return {
        uuid,
        name: `instance-${uuid.slice(0, 8)}`,
        hostname: `conformance-${uuid.slice(0, 8)}`,
        displayName: `conformance ${uuid.slice(0, 8)}`,
        projectId: 'c0ffee00c0ffee00c0ffee00c0ffee00',
        userId: 'decade00decade00decade00decade00',
        flavor: flavor(),
        metadata: {},
        hasNetwork: false,
        ...overrides,
      };
    };
    const image = (tarPath = subject.imageTarPath, overrides: Parameters<typeof glanceImage>[1] = {}): CountingImageSource => {
      const source = glanceImage(tarPath, overrides);
      imageIds.push(source.id);
      return source;
    };
    const spawn = async (spec: InstanceSpec = instanceSpec(), from: CountingImageSource = sharedImage): Promise<InstanceRef> => {
      spawned.add(spec.uuid);
      await driver.spawn(spec, from);
      return { uuid: spec.uuid, name: spec.name };
    };
    const missing = (): InstanceRef => ({ uuid: randomUUID(), name: 'instance-missing' });
    const powerState = async (ref: InstanceRef) => (await driver.getInfo(ref)).powerState;
    const mark = () => events.length;
    const waitForEvent = async (uuid: string, transitions: readonly LifecycleTransition[], since: number) => {
      return eventually(`a ${transitions.join('/')} event for ${uuid}`, () =>
        events.slice(since).find((event) => event.uuid === uuid && transitions.includes(event.transition)));
    };
    const assertNothingLeft = async (uuid: string, source?: CountingImageSource) => {
      await assert.rejects(driver.getInfo({ uuid, name: 'x' }), InstanceNotFound);
      assert.ok(!(await driver.listInstances()).some((info) => info.uuid === uuid), 'listInstances must not report it');
      assert.deepEqual(await subject.leftovers(uuid), []);
      for (const path of source?.fetchedPaths ?? []) assert.ok(!existsSync(path), `the downloaded file ${path} must be removed`);
    };

    before(async () => {
      subject = await factory();
      driver = subject.driver;
      await driver.init();
      unsubscribe = driver.onLifecycleEvent((event) => events.push(event));
      scratch = await mkdtemp(join(tmpdir(), 'berth-conformance-'));
      sharedImage = image();
    });

    afterEach(async () => {
      for (const uuid of spawned) await driver.destroy({ uuid, name: 'cleanup' });
      spawned.clear();
    });

    after(async () => {
      unsubscribe();
      await driver?.close();
      await subject?.cleanup(imageIds);
      if (scratch) await rm(scratch, { recursive: true, force: true });
    });

    it('declares every capability as a boolean and names its type', () => {
      for (const capability of CAPABILITY_NAMES) assert.equal(typeof driver.capabilities[capability], 'boolean', capability);
      assert.ok(driver.type.length > 0);
    });

    it('reports sane host resources', async () => {
      const resources = await driver.getAvailableResource();
      assert.ok(Number.isInteger(resources.vcpus) && resources.vcpus > 0);
      assert.ok(Number.isInteger(resources.memoryMb) && resources.memoryMb > 0);
      assert.ok(Number.isInteger(resources.localGb) && resources.localGb >= 0);
      assert.ok(Number.isInteger(resources.diskAvailableLeastGb));
      assert.ok(resources.diskAvailableLeastGb >= 0 && resources.diskAvailableLeastGb <= resources.localGb);
      assert.equal(resources.hypervisorType, driver.type);
      assert.ok(Number.isInteger(resources.hypervisorVersion) && resources.hypervisorVersion > 0);
      assert.deepEqual(JSON.parse(JSON.stringify(resources.cpuInfo)), resources.cpuInfo, 'cpuInfo must survive JSON');
      assert.ok(resources.supportedInstances.length > 0);
      for (const [arch, hvType, vmMode] of resources.supportedInstances) {
        assert.ok(arch.length > 0);
        assert.equal(hvType, driver.type);
        assert.ok(vmMode.length > 0);
      }
    });

    describe('spawn', () => {
      it('leaves the instance running, reports it and emits started', async () => {
        const since = mark();
        const spec = instanceSpec();
        const ref = await spawn(spec);
        const info = await driver.getInfo(ref);
        assert.equal(info.powerState, PowerState.RUNNING);
        assert.equal(info.uuid, spec.uuid);
        assert.equal(info.name, spec.name);
        assert.ok(info.runtimeId.length > 0);
        assert.ok(info.startedAt instanceof Date);
        await waitForEvent(spec.uuid, ['started'], since);
        const listed = (await driver.listInstances()).find((i) => i.uuid === spec.uuid);
        assert.equal(listed?.name, spec.name);
        assert.equal(listed?.powerState, PowerState.RUNNING);
      });

      it('downloads an image once: a second spawn of the same image calls fetch() zero times', async () => {
        const fresh = image();
        await spawn(instanceSpec(), fresh);
        assert.equal(fresh.fetchCount, 1);
        await spawn(instanceSpec(), fresh);
        assert.equal(fresh.fetchCount, 1);
        for (const path of fresh.fetchedPaths) assert.ok(!existsSync(path), 'the downloaded file must be removed');
      });

      it('downloads an uncached image once for concurrent spawns', async () => {
        const fresh = image();
        const refs = await Promise.all([1, 2, 3].map(() => spawn(instanceSpec(), fresh)));
        assert.equal(fresh.fetchCount, 1);
        for (const ref of refs) assert.equal(await powerState(ref), PowerState.RUNNING);
      });

      it('refuses a container_format other than docker with InvalidImage, before downloading, leaving nothing', async () => {
        const bare = image(undefined, { containerFormat: 'bare' });
        const spec = instanceSpec();
        await assert.rejects(driver.spawn(spec, bare), InvalidImage);
        assert.equal(bare.fetchCount, 0);
        await assertNothingLeft(spec.uuid, bare);
      });

      it('refuses data that is not a tar archive with InvalidImage, leaving nothing', async () => {
        const garbagePath = join(scratch, 'garbage.tar');
        await writeFile(garbagePath, Buffer.from('this is not a docker image, just some text\n'.repeat(100)));
        const garbage = image(garbagePath);
        const spec = instanceSpec();
        await assert.rejects(driver.spawn(spec, garbage), InvalidImage);
        assert.equal(garbage.fetchCount, 1);
        await assertNothingLeft(spec.uuid, garbage);
      });

      it('refuses a tar archive that is not a docker save archive with InvalidImage, leaving nothing', async () => {
        const plainTar = join(scratch, 'plain.tar');
        await writeFile(plainTar, tarArchive([['etc/hostname', Buffer.from('plain\n')]]));
        const plain = image(plainTar);
        const spec = instanceSpec();
        await assert.rejects(driver.spawn(spec, plain), InvalidImage);
        await assertNothingLeft(spec.uuid, plain);
      });

      it('refuses an os_command_line that cannot be split into words with InvalidImage, before downloading', async () => {
        const bad = image(undefined, { properties: { os_command_line: `/bin/sh -c 'unterminated` } });
        const spec = instanceSpec();
        await assert.rejects(driver.spawn(spec, bad), InvalidImage);
        assert.equal(bad.fetchCount, 0);
        await assertNothingLeft(spec.uuid, bad);
      });

      it('refuses a forbidden flavor extra spec with FlavorNotAllowed, before downloading, leaving nothing', async () => {
        const fresh = image();
        const spec = instanceSpec({ flavor: flavor({ name: 'm1.forbidden', extraSpecs: subject.forbiddenExtraSpecs }) });
        await assert.rejects(driver.spawn(spec, fresh), FlavorNotAllowed);
        assert.equal(fresh.fetchCount, 0);
        await assertNothingLeft(spec.uuid, fresh);
      });

      it('ignores extra specs of other namespaces', async () => {
        const spec = instanceSpec({ flavor: flavor({ extraSpecs: { 'hw:cpu_policy': 'shared', 'trait:CUSTOM_X': 'required' } }) });
        assert.equal(await powerState(await spawn(spec)), PowerState.RUNNING);
      });
    });

    describe('power transitions', () => {
      it('powerOff → SHUTDOWN (stopped), powerOn → RUNNING (started); repeating either is a no-op', async () => {
        const ref = await spawn();
        let since = mark();
        await driver.powerOff(ref, 5);
        assert.equal(await powerState(ref), PowerState.SHUTDOWN);
        await waitForEvent(ref.uuid, ['stopped'], since);
        await driver.powerOff(ref, 5);
        assert.equal(await powerState(ref), PowerState.SHUTDOWN);
        since = mark();
        await driver.powerOn(ref);
        assert.equal(await powerState(ref), PowerState.RUNNING);
        await waitForEvent(ref.uuid, ['started'], since);
        await driver.powerOn(ref);
        assert.equal(await powerState(ref), PowerState.RUNNING);
      });

      it('powerOff with timeout 0 forces the stop at once', async () => {
        const ref = await spawn();
        await driver.powerOff(ref, 0);
        assert.equal(await powerState(ref), PowerState.SHUTDOWN);
      });

      it('pause → PAUSED (paused), unpause → RUNNING (resumed)', async () => {
        const ref = await spawn();
        let since = mark();
        await driver.pause(ref);
        assert.equal(await powerState(ref), PowerState.PAUSED);
        await waitForEvent(ref.uuid, ['paused'], since);
        since = mark();
        await driver.unpause(ref);
        assert.equal(await powerState(ref), PowerState.RUNNING);
        await waitForEvent(ref.uuid, ['resumed'], since);
      });

      it('suspend → SUSPENDED (suspended), resume → RUNNING (resumed)', async () => {
        const ref = await spawn();
        let since = mark();
        await driver.suspend(ref);
        assert.equal(await powerState(ref), PowerState.SUSPENDED);
        assert.equal((await driver.listInstances()).find((i) => i.uuid === ref.uuid)?.powerState, PowerState.SUSPENDED);
        await waitForEvent(ref.uuid, ['suspended'], since);
        since = mark();
        await driver.resume(ref);
        assert.equal(await powerState(ref), PowerState.RUNNING);
        await waitForEvent(ref.uuid, ['resumed'], since);
      });

      it('SOFT reboot of a running instance stops and starts it', async () => {
        const ref = await spawn();
        const since = mark();
        await driver.reboot(ref, 'SOFT', 5);
        assert.equal(await powerState(ref), PowerState.RUNNING);
        await waitForEvent(ref.uuid, ['stopped'], since);
        await waitForEvent(ref.uuid, ['started'], since);
      });

      it('HARD reboot leaves the instance running from RUNNING, SHUTDOWN, PAUSED and SUSPENDED', async () => {
        const ref = await spawn();
        await driver.reboot(ref, 'HARD', 5);
        assert.equal(await powerState(ref), PowerState.RUNNING);
        await driver.powerOff(ref, 0);
        await driver.reboot(ref, 'HARD', 5);
        assert.equal(await powerState(ref), PowerState.RUNNING);
        await driver.pause(ref);
        await driver.reboot(ref, 'HARD', 5);
        assert.equal(await powerState(ref), PowerState.RUNNING);
        await driver.suspend(ref);
        await driver.reboot(ref, 'HARD', 5);
        assert.equal(await powerState(ref), PowerState.RUNNING);
        // The reboot forgot the suspension: a pause now is a plain pause.
        await driver.pause(ref);
        assert.equal(await powerState(ref), PowerState.PAUSED);
      });

      it('refuses transitions the current state does not allow with InstanceInvalidState', async () => {
        const ref = await spawn();
        const refused = async (operation: Promise<void>, name: string) => {
          await assert.rejects(operation, (error: unknown) => {
            assert.ok(error instanceof InstanceInvalidState, `${name}: ${String(error)}`);
            assert.equal(error.uuid, ref.uuid);
            assert.equal(error.operation, name);
            return true;
          });
        };
        await driver.powerOff(ref, 0);
        await refused(driver.pause(ref), 'pause');
        await refused(driver.unpause(ref), 'unpause');
        await refused(driver.suspend(ref), 'suspend');
        await refused(driver.resume(ref), 'resume');
        assert.equal(await powerState(ref), PowerState.SHUTDOWN);

        await driver.powerOn(ref);
        await driver.pause(ref);
        await driver.pause(ref); // no-op
        await refused(driver.powerOn(ref), 'powerOn');
        await refused(driver.suspend(ref), 'suspend');
        await refused(driver.resume(ref), 'resume');
        assert.equal(await powerState(ref), PowerState.PAUSED);

        await driver.unpause(ref);
        await driver.unpause(ref); // no-op
        await driver.resume(ref); // no-op
        await driver.suspend(ref);
        await driver.suspend(ref); // no-op
        await refused(driver.pause(ref), 'pause');
        await refused(driver.unpause(ref), 'unpause');
        await refused(driver.powerOn(ref), 'powerOn');
        assert.equal(await powerState(ref), PowerState.SUSPENDED);
        await driver.powerOff(ref, 0);
        assert.equal(await powerState(ref), PowerState.SHUTDOWN);
      });

      it('reports an instance ended behind its back (stopped or died)', async () => {
        const ref = await spawn();
        const since = mark();
        await subject.killBehindDriversBack(ref.uuid);
        await waitForEvent(ref.uuid, ['stopped', 'died'], since);
        assert.ok([PowerState.SHUTDOWN, PowerState.CRASHED].includes(await powerState(ref) as 4 | 6));
        await driver.powerOn(ref);
        assert.equal(await powerState(ref), PowerState.RUNNING);
      });
    });

    describe('destroy', () => {
      it('removes the instance and everything it owns, and is idempotent', async () => {
        const ref = await spawn();
        await driver.suspend(ref);
        const since = mark();
        await driver.destroy(ref);
        await waitForEvent(ref.uuid, ['stopped', 'died'], since);
        await assertNothingLeft(ref.uuid);
        await driver.destroy(ref);
        await driver.destroy(missing());
        // A new instance with the same uuid starts clean (no suspension remembered).
        const again = await spawn(instanceSpec({ uuid: ref.uuid }));
        await driver.pause(again);
        assert.equal(await powerState(again), PowerState.PAUSED);
      });
    });

    it('throws InstanceNotFound for an instance the runtime does not have', async () => {
      const ref = missing();
      const target: SnapshotTarget = { imageId: randomUUID(), upload: async () => undefined, updateTaskState: async () => undefined };
      const operations: Array<[string, () => Promise<unknown>]> = [
        ['getInfo', () => driver.getInfo(ref)],
        ['powerOff', () => driver.powerOff(ref, 0)],
        ['powerOn', () => driver.powerOn(ref)],
        ['reboot SOFT', () => driver.reboot(ref, 'SOFT', 0)],
        ['reboot HARD', () => driver.reboot(ref, 'HARD', 0)],
        ['pause', () => driver.pause(ref)],
        ['unpause', () => driver.unpause(ref)],
        ['suspend', () => driver.suspend(ref)],
        ['resume', () => driver.resume(ref)],
        ['snapshot', () => driver.snapshot(ref, target)],
        ['changeFlavor', () => driver.changeFlavor(ref, flavor())],
        ['getConsoleOutput', () => driver.getConsoleOutput(ref, null)],
        ['getDiagnostics', () => driver.getDiagnostics(ref)],
      ];
      for (const [operation, call] of operations) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(error instanceof InstanceNotFound, `${operation}: ${String(error)}`);
          assert.equal(error.uuid, ref.uuid);
          return true;
        });
      }
    });

    it('lists every instance it manages, whatever its state', async () => {
      const running = await spawn();
      const paused = await spawn();
      const stopped = await spawn();
      await driver.pause(paused);
      await driver.powerOff(stopped, 0);
      const listed = new Map((await driver.listInstances()).map((info) => [info.uuid, info]));
      assert.equal(listed.get(running.uuid)?.powerState, PowerState.RUNNING);
      assert.equal(listed.get(paused.uuid)?.powerState, PowerState.PAUSED);
      assert.equal(listed.get(stopped.uuid)?.powerState, PowerState.SHUTDOWN);
      assert.equal(listed.get(stopped.uuid)?.name, stopped.name);
    });

    it('returns console output, and its last lines with tailLines', async () => {
      const ref = await spawn();
      const full = await eventually('at least two console lines', async () => {
        const output = await driver.getConsoleOutput(ref, null);
        return lines(output).length >= 2 ? output : undefined;
      });
      const all = lines(full);
      assert.deepEqual(lines(await driver.getConsoleOutput(ref, 2)), all.slice(-2));
      assert.deepEqual(lines(await driver.getConsoleOutput(ref, 1)), all.slice(-1));
      assert.equal(await driver.getConsoleOutput(ref, 0), '');
    });

    it('returns diagnostics in the shape of Nova’s Diagnostics object', async () => {
      const spec = instanceSpec({ flavor: flavor({ vcpus: 1, memoryMb: 192 }) });
      const ref = await spawn(spec);
      const diagnostics = await driver.getDiagnostics(ref);
      assert.equal(diagnostics.state, PowerState.RUNNING);
      assert.equal(diagnostics.hypervisor, driver.type);
      assert.ok(diagnostics.hypervisorOs.length > 0);
      assert.equal(diagnostics.numCpus, 1);
      assert.equal(diagnostics.memoryMaxMb, 192);
      assert.ok(diagnostics.memoryUsedMb >= 0 && diagnostics.memoryUsedMb <= 192);
      assert.ok(diagnostics.cpuDetails.length >= 1);
      assert.ok(diagnostics.uptimeSec === null || diagnostics.uptimeSec >= 0);
      assert.ok(diagnostics.diskDetails.length >= 1);
      assert.equal(diagnostics.configDrive, false);
      for (const value of Object.values(diagnostics)) {
        if (typeof value === 'number') assert.ok(Number.isFinite(value));
      }
      assert.deepEqual(JSON.parse(JSON.stringify(diagnostics)), diagnostics, 'diagnostics must survive JSON');
    });

    it('applies a new flavor with changeFlavor, and refuses a forbidden one', async () => {
      const ref = await spawn();
      await driver.changeFlavor(ref, flavor({ name: 'm1.bigger', memoryMb: 256 }));
      assert.equal((await driver.getDiagnostics(ref)).memoryMaxMb, 256);
      await assert.rejects(driver.changeFlavor(ref, flavor({ extraSpecs: subject.forbiddenExtraSpecs })), FlavorNotAllowed);
      assert.equal((await driver.getDiagnostics(ref)).memoryMaxMb, 256);
    });

    it('pre-caches an image with cacheImage (cached, then existing; a spawn then downloads nothing) and keeps an image a container uses', async () => {
      if (!driver.capabilities.hasImageCache) return;
      const fresh = image();
      assert.equal(await driver.cacheImage(fresh), 'cached');
      assert.equal(fresh.fetchCount, 1);
      assert.equal(await driver.cacheImage(fresh), 'existing');
      const ref = await spawn(instanceSpec(), fresh);
      assert.equal(fresh.fetchCount, 1);
      // Report only (removeUnused false): other suites' images on a shared runtime are never at risk here.
      const report = await driver.manageImageCache(new Set(), { removeUnused: false, minimumAgeSec: 0 });
      assert.equal(report.removed.length, 0);
      assert.deepEqual(report.kept.filter((k) => k.imageId === fresh.id).map((k) => k.reason), ['container']);
      await driver.destroy(ref);
    });

    it('snapshots into a loadable docker archive, reporting the task states in order', async () => {
      const ref = await spawn();
      const taskStates: string[] = [];
      const uploaded = join(scratch, `snapshot-${ref.uuid}.tar`);
      await driver.snapshot(ref, {
        imageId: randomUUID(),
        updateTaskState: async (state) => {
          taskStates.push(state);
        },
        upload: async (data: Readable) => {
          taskStates.push('upload');
          await pipeline(data, createWriteStream(uploaded));
        },
      });
      assert.deepEqual(taskStates, ['image_pending_upload', 'image_uploading', 'upload']);
      await readDockerArchive(uploaded);
      assert.equal(await powerState(ref), PowerState.RUNNING);
      // The snapshot boots.
      const clone = await spawn(instanceSpec(), image(uploaded));
      assert.equal(await powerState(clone), PowerState.RUNNING);
    });

    it('stops delivering lifecycle events to a listener that unsubscribed', async () => {
      const received: LifecycleEvent[] = [];
      const stop = driver.onLifecycleEvent((event) => received.push(event));
      const ref = await spawn();
      await waitForEvent(ref.uuid, ['started'], 0);
      await eventually('the second listener to see started', () => received.find((e) => e.uuid === ref.uuid));
      stop();
      const since = mark();
      const seen = received.length;
      await driver.pause(ref);
      await waitForEvent(ref.uuid, ['paused'], since);
      assert.equal(received.length, seen);
    });
  });
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.length > 0);
}

/** Polls until `probe` yields a value; fails after WAIT_LIMIT_MS. */
async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
