// DockerDriver against the real dockerd: what the containers look like from Docker's side and from inside, and the
// behaviour that only a real engine shows (OOM kills, the image cache's hygiene, restarts of Berth).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type Docker from 'dockerode';

import { DockerDriver } from '../../../driver/docker/docker-driver';
import type { DockerDriverOptions } from '../../../driver/docker/docker-options';
import {
  DriverError,
  PowerState,
  RuntimeUnavailable,
  type FlavorSpec,
  type InstanceRef,
  type InstanceSpec,
  type LifecycleEvent,
} from '../../../driver/driver';
import { createDockerArchive, tarArchive } from '../../../driver/image-archive';
import { containersNamedFor, dockerClient, removeCachedImages } from '../../support/docker';
import { buildBusyboxImage, glanceImage, type CountingImageSource, type TestImage } from '../../support/images';

const MIB = 1024 * 1024;
const CAP_NET_RAW = 13n;
const CAP_SYS_ADMIN = 21n;

describe('DockerDriver on dockerd', function () {
  this.timeout(120_000);

  const docker = dockerClient();
  let testImage: TestImage;
  let stateDir: string;
  let scratch: string;
  const drivers: DockerDriver[] = [];
  const spawned: Array<{ driver: DockerDriver; ref: InstanceRef }> = [];
  const imageIds: string[] = [];

  const flavor = (overrides: Partial<FlavorSpec> = {}): FlavorSpec => ({
    name: 'm1.small', flavorId: '2', vcpus: 1, memoryMb: 96, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {}, ...overrides,
  });
  const instanceSpec = (overrides: Partial<InstanceSpec> = {}): InstanceSpec => {
    const uuid = randomUUID();
    return {
      uuid, name: `instance-${uuid.slice(0, 8)}`, hostname: `docker-${uuid.slice(0, 8)}`, displayName: 'docker test',
      projectId: 'project-1', userId: 'user-1', flavor: flavor(), metadata: { role: 'test' }, hasNetwork: false, ...overrides,
    };
  };
  const image = (properties: Record<string, unknown> = {}, tarPath = testImage.tarPath): CountingImageSource => {
    const source = glanceImage(tarPath, { properties });
    imageIds.push(source.id);
    return source;
  };
  const newDriver = async (options: Partial<DockerDriverOptions> = {}) => {
    const driver = new DockerDriver({ stateDir, eventsReconnectDelayMs: 100, ...options });
    drivers.push(driver);
    await driver.init();
    return driver;
  };
  const spawn = async (driver: DockerDriver, spec = instanceSpec(), from = image()) => {
    const ref = { uuid: spec.uuid, name: spec.name };
    spawned.push({ driver, ref });
    await driver.spawn(spec, from);
    return ref;
  };
  const inspect = (ref: InstanceRef): Promise<Docker.ContainerInspectInfo> => docker.getContainer(`nova-${ref.uuid}`).inspect();
  const consoleUntil = async (driver: DockerDriver, ref: InstanceRef, pattern: RegExp) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const output = await driver.getConsoleOutput(ref, null);
      if (pattern.test(output)) return output;
      if (Date.now() > deadline) assert.fail(`console never matched ${pattern}: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  before(async () => {
    testImage = await buildBusyboxImage('berth-test/driver:1');
    stateDir = await mkdtemp(join(tmpdir(), 'berth-docker-state-'));
    scratch = await mkdtemp(join(tmpdir(), 'berth-docker-test-'));
  });

  afterEach(async () => {
    for (const { driver, ref } of spawned.splice(0)) await driver.destroy(ref).catch(() => undefined);
  });

  after(async () => {
    for (const driver of drivers) await driver.close();
    await removeCachedImages(imageIds);
    await rm(stateDir, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  });

  it('negotiates the API version from the engine instead of pinning one', async () => {
    const driver = await newDriver();
    assert.equal(driver.apiVersion, (await docker.version()).ApiVersion);
  });

  it('creates a contained container: capabilities, privileges, namespaces, mounts, limits, restart and log policy', async () => {
    const driver = await newDriver();
    const spec = instanceSpec({ flavor: flavor({ vcpus: 1, memoryMb: 96 }) });
    const ref = await spawn(driver, spec);
    const container = await inspect(ref);
    const host = container.HostConfig;
    assert.equal(container.Name, `/nova-${spec.uuid}`);
    assert.equal(container.Config.Hostname, spec.hostname);
    assert.equal(container.Config.Labels?.['openstack.instance_uuid'], spec.uuid);
    assert.equal(container.Config.Labels?.['openstack.instance_name'], spec.name);
    assert.equal(container.Config.Labels?.['openstack.flavor'], 'm1.small');
    assert.deepEqual(host.CapDrop, ['ALL']);
    assert.deepEqual(host.CapAdd, ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT']);
    assert.deepEqual(host.SecurityOpt, ['no-new-privileges']);
    assert.equal(host.Privileged, false);
    assert.ok(!(host.Binds ?? []).length, 'no bind mounts');
    assert.deepEqual(container.Mounts, []);
    assert.equal(host.NetworkMode, 'none');
    assert.equal(host.PidMode, '');
    assert.equal(host.IpcMode, 'private');
    assert.equal(host.UsernsMode, '');
    assert.equal(host.Memory, 96 * MIB);
    assert.equal(host.MemorySwap, 96 * MIB);
    assert.equal(host.NanoCpus, 1e9);
    assert.equal(host.CpuShares, 1024);
    assert.equal(host.PidsLimit, 1024);
    assert.equal(host.RestartPolicy?.Name, 'no');
    assert.equal(host.LogConfig?.Type, 'json-file');
    assert.equal(host.LogConfig?.Config?.['max-size'], '10m');
    assert.ok(!(container.Config.Env ?? []).some((v) => v.startsWith('role=')), 'metadata is not in the environment');
    assert.ok(!(container.AppArmorProfile === 'unconfined'));
  });

  it('is contained from the inside: no SYS_ADMIN or NET_RAW, no new privileges, seccomp filtering', async () => {
    const driver = await newDriver();
    const ref = await spawn(driver, instanceSpec(), image({
      os_command_line: `/bin/sh -c 'grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; echo to-stderr >&2; echo done; exec sleep 3600'`,
    }));
    const output = await consoleUntil(driver, ref, /^done$/m);
    const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(output)?.[1] ?? 'ffffffffffffffff'}`);
    assert.equal((capEff >> CAP_SYS_ADMIN) & 1n, 0n, 'CAP_SYS_ADMIN must not be effective');
    assert.equal((capEff >> CAP_NET_RAW) & 1n, 0n, 'CAP_NET_RAW must not be effective');
    assert.match(output, /^NoNewPrivs:\s*1$/m);
    assert.match(output, /^Seccomp:\s*2$/m, 'Docker’s default seccomp profile is active');
    assert.match(output, /^to-stderr$/m, 'stderr is part of the console');
    assert.deepEqual((await inspect(ref)).Config.Cmd?.slice(0, 2), ['/bin/sh', '-c']);
  });

  it('applies what an operator allowed a flavor to request, and refuses the rest before creating anything', async () => {
    const driver = await newDriver({ allowedExtraCapabilities: ['NET_ADMIN'], injectMetadataAsEnv: true });
    const spec = instanceSpec({
      flavor: flavor({ extraSpecs: { 'docker:cap_add': 'NET_ADMIN', 'docker:pids_limit': '64', 'docker:read_only_root': 'true' } }),
      metadata: { role: 'web', 'bad key': 'x' },
    });
    const ref = await spawn(driver, spec);
    const container = await inspect(ref);
    assert.ok(container.HostConfig.CapAdd?.includes('NET_ADMIN'));
    assert.equal(container.HostConfig.PidsLimit, 64);
    assert.equal(container.HostConfig.ReadonlyRootfs, true);
    assert.ok(container.Config.Env?.includes('role=web'));

    const forbidden = instanceSpec({ flavor: flavor({ extraSpecs: { 'docker:cap_add': 'SYS_ADMIN' } }) });
    await assert.rejects(driver.spawn(forbidden, image()), /SYS_ADMIN/);
    assert.deepEqual(await containersNamedFor(forbidden.uuid), []);
  });

  it('removes the container when it cannot start, and never lets an archive name images on the host', async () => {
    const driver = await newDriver();
    const victim = randomUUID();
    // Loadable, but its command does not exist; its manifest tries to retag another Glance image and a host image.
    const { archive } = createDockerArchive({ cmd: ['/does-not-exist'] }, tarArchive([['hello.txt', Buffer.from('hi\n')]]), [
      `berth-glance:${victim}`,
      'berth-test/victim:latest',
    ]);
    const path = join(scratch, 'poison.tar');
    await writeFile(path, archive);
    const spec = instanceSpec();
    const poison = image({}, path);
    await assert.rejects(driver.spawn(spec, poison), (error: unknown) => error instanceof DriverError && !(error instanceof RuntimeUnavailable));
    assert.deepEqual(await containersNamedFor(spec.uuid), []);
    for (const name of [`berth-glance:${victim}`, 'berth-test/victim:latest']) {
      await assert.rejects(docker.getImage(name).inspect(), (error: { statusCode?: number }) => error.statusCode === 404, name);
    }
    // It is cached under its own Glance id only.
    await docker.getImage(`berth-glance:${poison.id}`).inspect();
  });

  it('reports an OOM-killed instance as CRASHED with a died event', async () => {
    const driver = await newDriver();
    const events: LifecycleEvent[] = [];
    driver.onLifecycleEvent((event) => events.push(event));
    const spec = instanceSpec({ flavor: flavor({ memoryMb: 16 }) });
    // dd's buffer alone is bigger than the memory limit.
    const ref = await spawn(driver, spec, image({ os_command_line: 'dd if=/dev/zero of=/dev/null bs=64M count=4' }));
    const deadline = Date.now() + 30_000;
    while (!events.some((e) => e.uuid === ref.uuid && e.transition === 'died')) {
      if (Date.now() > deadline) assert.fail(`no died event: ${JSON.stringify(events)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Docker records OOMKilled unless it handled the exit before the OOM notification (a race inside dockerd).
    const recorded = (await inspect(ref)).State.OOMKilled;
    assert.equal((await driver.getInfo(ref)).powerState, recorded ? PowerState.CRASHED : PowerState.SHUTDOWN);
  });

  it('remembers a suspension across a restart of Berth', async () => {
    const first = await newDriver();
    const ref = await spawn(first, instanceSpec());
    await first.suspend(ref);
    await first.close();
    const second = await newDriver();
    assert.equal((await second.getInfo(ref)).powerState, PowerState.SUSPENDED);
    assert.equal((await second.listInstances()).find((i) => i.uuid === ref.uuid)?.powerState, PowerState.SUSPENDED);
    await second.resume(ref);
    assert.equal((await second.getInfo(ref)).powerState, PowerState.RUNNING);
    spawned.push({ driver: second, ref });
  });

  it('applies a new flavor’s limits with docker update', async () => {
    const driver = await newDriver();
    const ref = await spawn(driver, instanceSpec());
    await driver.changeFlavor(ref, flavor({ name: 'm1.medium', memoryMb: 160, extraSpecs: { 'docker:pids_limit': '200' } }));
    const host = (await inspect(ref)).HostConfig;
    assert.equal(host.Memory, 160 * MIB);
    assert.equal(host.MemorySwap, 160 * MIB);
    assert.equal(host.PidsLimit, 200);
    await driver.changeFlavor(ref, flavor({ memoryMb: 64 }));
    assert.equal((await inspect(ref)).HostConfig.Memory, 64 * MIB);
    await assert.rejects(driver.changeFlavor(ref, flavor({ extraSpecs: { 'docker:read_only_root': 'true' } })), /rebuild/);
  });

  it('leaves no committed image behind after a snapshot', async () => {
    const driver = await newDriver();
    const ref = await spawn(driver, instanceSpec());
    const before = new Set((await docker.listImages({ all: true })).map((i) => i.Id));
    let bytes = 0;
    await driver.snapshot(ref, {
      imageId: randomUUID(),
      updateTaskState: async () => undefined,
      upload: async (data) => {
        for await (const chunk of data) bytes += (chunk as Buffer).length;
      },
    });
    assert.ok(bytes > 0);
    const after = (await docker.listImages({ all: true })).map((i) => i.Id).filter((id) => !before.has(id));
    assert.deepEqual(after, []);
  });

  it('manages only containers that carry its label and its name', async () => {
    const driver = await newDriver();
    const cached = await spawn(driver, instanceSpec());
    const imageRef = (await inspect(cached)).Image;
    const stranger = randomUUID();
    const impostor = randomUUID();
    // Labelled but not named for it (e.g. run from a committed snapshot), and named for it but unlabelled.
    const labelled = await docker.createContainer({ name: `not-nova-${stranger}`, Image: imageRef, Labels: { 'openstack.instance_uuid': stranger } });
    const unlabelled = await docker.createContainer({ name: `nova-${impostor}`, Image: imageRef });
    try {
      const listed = (await driver.listInstances()).map((info) => info.uuid);
      assert.ok(listed.includes(cached.uuid));
      assert.ok(!listed.includes(stranger) && !listed.includes(impostor));
      await assert.rejects(driver.getInfo({ uuid: stranger, name: 'x' }), /could not be found/);
      await assert.rejects(driver.getInfo({ uuid: impostor, name: 'x' }), /could not be found/);
    } finally {
      await labelled.remove({ force: true });
      await unlabelled.remove({ force: true });
    }
  });

  it('reads the console of its own container only, also after the container was replaced behind its back', async () => {
    const driver = await newDriver();
    const ref = await spawn(driver, instanceSpec());
    await consoleUntil(driver, ref, /\S/);
    const imageRef = (await inspect(ref)).Image;
    await docker.getContainer(`nova-${ref.uuid}`).remove({ force: true });
    const impostor = await docker.createContainer({ name: `nova-${ref.uuid}`, Image: imageRef });
    try {
      await assert.rejects(driver.getConsoleOutput(ref, null), /could not be found/);
    } finally {
      await impostor.remove({ force: true });
    }
  });

  it('throws RuntimeUnavailable when the engine cannot be reached or is too old', async () => {
    await assert.rejects(new DockerDriver({ stateDir, hostUrl: 'unix:///nonexistent/docker.sock' }).init(), RuntimeUnavailable);
    await assert.rejects(new DockerDriver({ stateDir, hostUrl: 'tcp://127.0.0.1:1' }).init(), RuntimeUnavailable);
    await assert.rejects(new DockerDriver({ stateDir, minApiVersion: '99.0' }).init(), /needs at least 99.0/);
  });
});
