import assert from 'node:assert/strict';

import { FlavorNotAllowed, InvalidImage, type ImageSource, type InstanceSpec } from '../../../driver/driver';
import { commandOverride } from '../../../driver/command-line';
import { containerCreateOptions, containerName } from '../../../driver/docker/container-config';
import { compileDockerOptions, DEFAULT_CAPABILITIES, type DockerDriverOptions } from '../../../driver/docker/docker-options';
import { containerPolicy } from '../../../driver/docker/extra-specs';

const MIB = 1024 * 1024;

const instance = (overrides: Partial<InstanceSpec> = {}): InstanceSpec => ({
  uuid: '8c3a6a8e-5c5c-4c4e-9a55-3f0f3b0c1d2e',
  name: 'instance-0000002a',
  hostname: 'web-1',
  displayName: 'web 1',
  projectId: 'project-1',
  userId: 'user-1',
  flavor: { name: 'm1.small', flavorId: '2', vcpus: 2, memoryMb: 2048, rootGb: 20, ephemeralGb: 0, swapMb: 0, extraSpecs: {} },
  metadata: { role: 'web', 'not an env name': 'x' },
  hasNetwork: false,
  ...overrides,
});
const image = (properties: Record<string, unknown> = {}): ImageSource => ({
  id: 'f0e1d2c3-0000-4000-8000-000000000001', name: 'busybox', containerFormat: 'docker', diskFormat: 'raw', size: null,
  properties, fetch: async () => '/dev/null',
});

describe('docker container-config', () => {
  const build = (spec: InstanceSpec = instance(), options: Partial<DockerDriverOptions> = {}, props: Record<string, unknown> = {}, hostCpus = 8) => {
    const compiled = compileDockerOptions({ stateDir: '/tmp/x', ...options });
    return containerCreateOptions(spec, { ref: 'berth-glance:img', source: image(props) }, containerPolicy(spec.flavor, compiled), compiled, hostCpus);
  };

  it('names and labels the container after the instance', () => {
    const { body } = build();
    assert.equal(body.name, 'nova-8c3a6a8e-5c5c-4c4e-9a55-3f0f3b0c1d2e');
    assert.equal(containerName('abc'), 'nova-abc');
    assert.equal(body.Image, 'berth-glance:img');
    assert.equal(body.Hostname, 'web-1');
    assert.deepEqual(body.Labels, {
      'openstack.instance_uuid': '8c3a6a8e-5c5c-4c4e-9a55-3f0f3b0c1d2e',
      'openstack.instance_name': 'instance-0000002a',
      'openstack.display_name': 'web 1',
      'openstack.project_id': 'project-1',
      'openstack.user_id': 'user-1',
      'openstack.flavor': 'm1.small',
      'openstack.image_id': 'f0e1d2c3-0000-4000-8000-000000000001',
    });
    assert.equal(body.Cmd, undefined, 'without os_command_line the image command runs');
  });

  it('contains the container by default', () => {
    const host = build().body.HostConfig ?? {};
    assert.deepEqual(host.CapDrop, ['ALL']);
    const capAdd: string[] = host.CapAdd ?? [];
    assert.ok(!capAdd.includes('NET_RAW') && !capAdd.includes('SYS_ADMIN'));
    assert.deepEqual(capAdd, [...DEFAULT_CAPABILITIES]);
    assert.deepEqual(host.SecurityOpt, ['no-new-privileges']);
    assert.equal(host.Privileged, false);
    assert.equal(host.ReadonlyRootfs, false);
    assert.equal(host.NetworkMode, 'none');
    assert.equal(host.IpcMode, 'private');
    assert.equal(host.PidMode, '');
    assert.equal(host.UTSMode, '');
    assert.equal(host.UsernsMode, '');
    assert.deepEqual(host.Binds, []);
    assert.deepEqual(host.Mounts, []);
    assert.deepEqual(host.RestartPolicy, { Name: 'no', MaximumRetryCount: 0 });
    assert.deepEqual(host.LogConfig, { Type: 'json-file', Config: { 'max-size': '10m' } });
    assert.equal(build().body.Env?.length, 0, 'metadata is not passed as environment by default');
  });

  it('maps the flavor to hard limits: memory without swap, a CPU cap and shares, a pids limit', () => {
    const host = build().body.HostConfig ?? {};
    assert.equal(host.Memory, 2048 * MIB);
    assert.equal(host.MemorySwap, 2048 * MIB);
    assert.equal(host.NanoCpus, 2e9);
    assert.equal(host.CpuShares, 2048);
    assert.equal(host.PidsLimit, 1024);
  });

  it('caps NanoCpus at the host CPUs (Docker refuses more) but keeps the shares', () => {
    const host = build(instance(), {}, {}, 1).body.HostConfig ?? {};
    assert.equal(host.NanoCpus, 1e9);
    assert.equal(host.CpuShares, 2048);
  });

  it('passes metadata as environment only when allowed, skipping names that cannot be variables', () => {
    const create = build(instance(), { injectMetadataAsEnv: true });
    assert.deepEqual(create.body.Env, ['role=web']);
    assert.deepEqual(create.skippedMetadataKeys, ['not an env name']);
  });

  it('honours the relaxations an operator configured', () => {
    const host = build(instance(), { noNewPrivileges: false, readOnlyRootFilesystem: true, pidsLimit: 64, capabilities: ['kill', 'CAP_SETUID'], logMaxSize: '1m' }).body.HostConfig ?? {};
    assert.deepEqual(host.SecurityOpt, []);
    assert.equal(host.ReadonlyRootfs, true);
    assert.ok(host.Tmpfs && '/tmp' in host.Tmpfs);
    assert.equal(host.PidsLimit, 64);
    assert.deepEqual(host.CapAdd, ['KILL', 'SETUID']);
    assert.deepEqual(host.LogConfig?.Config, { 'max-size': '1m' });
  });

  it('turns os_command_line into the command, split like sh words', () => {
    assert.deepEqual(build(instance(), {}, { os_command_line: `/bin/sh -c 'echo "hi there"; sleep 1'` }).body.Cmd, ['/bin/sh', '-c', 'echo "hi there"; sleep 1']);
    assert.equal(commandOverride(image({ os_command_line: '   ' })), null);
    assert.throws(() => commandOverride(image({ os_command_line: `sh -c 'oops` })), InvalidImage);
    assert.throws(() => commandOverride(image({ os_command_line: ['sh'] })), InvalidImage);
  });

  it('derives a valid hostname when Nova’s is not one', () => {
    assert.equal(build(instance({ hostname: 'my_host.example' })).body.Hostname, 'my-host-example');
    assert.equal(build(instance({ hostname: '***' })).body.Hostname, 'instance-0000002a');
  });
});

describe('docker extra-specs', () => {
  const options = (overrides: Partial<DockerDriverOptions> = {}) => compileDockerOptions({ stateDir: '/tmp/x', ...overrides });
  const flavor = (extraSpecs: Record<string, string>) => ({ name: 'f', flavorId: 'f', vcpus: 1, memoryMb: 64, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs });

  it('refuses capabilities the operator did not allow', () => {
    assert.throws(() => containerPolicy(flavor({ 'docker:cap_add': 'SYS_ADMIN' }), options()), FlavorNotAllowed);
    assert.throws(() => containerPolicy(flavor({ 'docker:cap_add': 'NET_ADMIN,SYS_ADMIN' }), options({ allowedExtraCapabilities: ['NET_ADMIN'] })), /SYS_ADMIN/);
  });

  it('adds allowed capabilities, and accepts ones already granted', () => {
    const policy = containerPolicy(flavor({ 'docker:cap_add': 'cap_net_admin, KILL' }), options({ allowedExtraCapabilities: ['NET_ADMIN'] }));
    assert.deepEqual(policy.capAdd, [...DEFAULT_CAPABILITIES, 'NET_ADMIN']);
  });

  it('lets a flavor tighten limits freely and relax them only when allowed', () => {
    assert.equal(containerPolicy(flavor({ 'docker:pids_limit': '100' }), options()).pidsLimit, 100);
    assert.throws(() => containerPolicy(flavor({ 'docker:pids_limit': '5000' }), options()), FlavorNotAllowed);
    assert.equal(containerPolicy(flavor({ 'docker:pids_limit': '5000' }), options({ allowedFlavorExtraSpecs: ['docker:pids_limit'] })).pidsLimit, 5000);
    assert.equal(containerPolicy(flavor({ 'docker:read_only_root': 'true' }), options()).readOnlyRootFilesystem, true);
    assert.throws(() => containerPolicy(flavor({ 'docker:read_only_root': 'false' }), options({ readOnlyRootFilesystem: true })), FlavorNotAllowed);
    assert.equal(containerPolicy(flavor({ 'docker:read_only_root': 'no' }), options({ readOnlyRootFilesystem: true, allowedFlavorExtraSpecs: ['docker:read_only_root'] })).readOnlyRootFilesystem, false);
  });

  it('refuses malformed values and unknown docker: keys, ignores other namespaces', () => {
    assert.throws(() => containerPolicy(flavor({ 'docker:pids_limit': 'lots' }), options()), /positive integer/);
    assert.throws(() => containerPolicy(flavor({ 'docker:pids_limit': '0' }), options()), /positive integer/);
    assert.throws(() => containerPolicy(flavor({ 'docker:read_only_root': 'maybe' }), options()), /boolean/);
    assert.throws(() => containerPolicy(flavor({ 'docker:privileged': 'true' }), options()), /unknown extra spec docker:privileged/);
    assert.deepEqual(containerPolicy(flavor({ 'hw:cpu_policy': 'dedicated' }), options()).capAdd, [...DEFAULT_CAPABILITIES]);
  });
});

describe('container ownership by compute host', () => {
  it('labels the container with the compute host and selects only that host', async () => {
    const { ownedBy, ownedLabelFilter, LABEL } = await import('../../../driver/docker/container-config');
    assert.deepEqual(ownedLabelFilter(null), [LABEL.instanceUuid]);
    assert.deepEqual(ownedLabelFilter('h1'), [LABEL.instanceUuid, `${LABEL.computeHost}=h1`]);
    const labels = { [LABEL.instanceUuid]: 'u', [LABEL.computeHost]: 'h1' };
    assert.equal(ownedBy(labels, 'h1'), true);
    assert.equal(ownedBy(labels, 'h2'), false);
    assert.equal(ownedBy(labels, null), true);
    assert.equal(ownedBy({ [LABEL.computeHost]: 'h1' }, 'h1'), false);
  });
});
