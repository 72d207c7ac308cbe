import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { DriverError, NotSupported, PowerState, type InstanceSpec, type LifecycleEvent } from '../../../driver/driver';
import { FakeDriver } from '../../../driver/fake/fake-driver';
import { glanceImage, writeFakeImage } from '../../support/images';
import { describeDriverConformance } from './conformance';

describeDriverConformance('FakeDriver', async () => {
  const driver = new FakeDriver();
  const image = await writeFakeImage();
  return {
    driver,
    imageTarPath: image.tarPath,
    forbiddenExtraSpecs: { 'fake:cap_add': 'SYS_ADMIN' },
    killBehindDriversBack: async (uuid) => driver.simulateExit(uuid, 'stopped'),
    leftovers: async (uuid) => ((await driver.listInstances()).some((i) => i.uuid === uuid) ? [uuid] : []),
    cleanup: async () => undefined,
  };
});

describe('FakeDriver', () => {
  let tarPath: string;
  before(async () => {
    tarPath = (await writeFakeImage()).tarPath;
  });

  const spec = (): InstanceSpec => {
    const uuid = randomUUID();
    return {
      uuid, name: `instance-${uuid.slice(0, 8)}`, hostname: 'fake', displayName: 'fake', projectId: 'p', userId: 'u',
      flavor: { name: 'm1.tiny', flavorId: '1', vcpus: 2, memoryMb: 512, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} },
      metadata: {}, hasNetwork: false,
    };
  };

  it('fails the next call of an operation with failNext(), changing nothing, then works again', async () => {
    const driver = new FakeDriver();
    await driver.init();
    const instance = spec();
    const boom = new DriverError('injected');
    driver.failNext('spawn', boom);
    const image = glanceImage(tarPath);
    await assert.rejects(driver.spawn(instance, image), (error) => error === boom);
    assert.equal(image.fetchCount, 0);
    assert.deepEqual(await driver.listInstances(), []);
    await driver.spawn(instance, image);
    assert.equal((await driver.getInfo(instance)).powerState, PowerState.RUNNING);
  });

  it('queues several injected failures per operation in order', async () => {
    const driver = new FakeDriver();
    await driver.init();
    const first = new Error('first');
    const second = new Error('second');
    driver.failNext('getAvailableResource', first);
    driver.failNext('getAvailableResource', second);
    await assert.rejects(driver.getAvailableResource(), (error) => error === first);
    await assert.rejects(driver.getAvailableResource(), (error) => error === second);
    assert.equal((await driver.getAvailableResource()).hypervisorType, 'fake');
  });

  it('throws NotSupported for an operation whose capability is false', async () => {
    const driver = new FakeDriver({ capabilities: { supportsPause: false, supportsSnapshot: false, supportsSoftReboot: false } });
    await driver.init();
    const instance = spec();
    await driver.spawn(instance, glanceImage(tarPath));
    await assert.rejects(driver.pause(instance), NotSupported);
    await assert.rejects(driver.unpause(instance), NotSupported);
    await assert.rejects(driver.reboot(instance, 'SOFT', 0), NotSupported);
    await driver.reboot(instance, 'HARD', 0);
    const target = { imageId: 'x', upload: async () => undefined, updateTaskState: async () => undefined };
    await assert.rejects(driver.snapshot(instance, target), NotSupported);
    assert.equal(driver.capabilities.supportsPause, false);
  });

  it('refuses to work before init()', async () => {
    const driver = new FakeDriver();
    await assert.rejects(driver.listInstances(), DriverError);
  });

  it('reports the resources it is given', async () => {
    const driver = new FakeDriver({ resources: { vcpus: 8, memoryMb: 16384, localGb: 100, diskAvailableLeastGb: 80 } });
    await driver.init();
    const resources = await driver.getAvailableResource();
    assert.equal(resources.vcpus, 8);
    assert.equal(resources.memoryMb, 16384);
    assert.equal(resources.diskAvailableLeastGb, 80);
    assert.equal(resources.hypervisorType, 'fake');
  });

  it('reports a crash behind its back as died / CRASHED', async () => {
    const driver = new FakeDriver();
    await driver.init();
    const events: LifecycleEvent[] = [];
    driver.onLifecycleEvent((event) => events.push(event));
    const instance = spec();
    await driver.spawn(instance, glanceImage(tarPath));
    driver.simulateExit(instance.uuid, 'died');
    assert.equal((await driver.getInfo(instance)).powerState, PowerState.CRASHED);
    assert.deepEqual(events.map((e) => e.transition), ['started', 'died']);
    assert.match(await driver.getConsoleOutput(instance, 1), /panic/);
  });

  it('keeps delivering events when a listener throws', async () => {
    const driver = new FakeDriver();
    await driver.init();
    const seen: string[] = [];
    driver.onLifecycleEvent(() => {
      throw new Error('listener bug');
    });
    driver.onLifecycleEvent((event) => seen.push(event.transition));
    await driver.spawn(spec(), glanceImage(tarPath));
    assert.deepEqual(seen, ['started']);
  });

  it('with latencyMs, an operation is still pending after the current turn of the event loop', async () => {
    const driver = new FakeDriver({ latencyMs: 20 });
    let settled = false;
    const init = driver.init().then(() => {
      settled = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false);
    await init;
    assert.equal(settled, true);
  });

  it('leaves no timer running without latency', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    const driver = new FakeDriver();
    await driver.init();
    // Counted after the first await: mocha arms its own test timer only then.
    const before = timers();
    const instance = spec();
    await driver.spawn(instance, glanceImage(tarPath));
    await driver.powerOff(instance, 30);
    await driver.destroy(instance);
    await driver.close();
    assert.equal(timers(), before);
  });
});
