// What a Nova instance becomes in Docker: the container's name, labels, command, limits and containment.
// Containment is the default; only the operator's options (through ContainerPolicy) relax it.

import type Docker from 'dockerode';

import { commandOverride } from '../command-line';
import type { FlavorSpec, ImageSource, InstanceSpec } from '../driver';
import type { CompiledDockerOptions } from './docker-options';
import type { ContainerPolicy } from './extra-specs';

/** Container labels; openstack.instance_uuid marks the containers this driver owns. */
export const LABEL = {
  instanceUuid: 'openstack.instance_uuid',
  instanceName: 'openstack.instance_name',
  displayName: 'openstack.display_name',
  projectId: 'openstack.project_id',
  userId: 'openstack.user_id',
  flavor: 'openstack.flavor',
  imageId: 'openstack.image_id',
  computeHost: 'openstack.compute_host',
} as const;

/** The label filter that selects this driver's containers: ours, and of this compute host when it has one. */
export function ownedLabelFilter(computeHost: string | null): string[] {
  return computeHost === null ? [LABEL.instanceUuid] : [LABEL.instanceUuid, `${LABEL.computeHost}=${computeHost}`];
}

/** True when a container's labels say it belongs to this driver (its instance and its compute host). */
export function ownedBy(labels: Readonly<Record<string, string>> | undefined, computeHost: string | null): boolean {
  if (!labels?.[LABEL.instanceUuid]) return false;
  return computeHost === null || labels[LABEL.computeHost] === computeHost;
}

const MIB = 1024 * 1024;
const HOSTNAME = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function containerName(uuid: string): string {
  return `nova-${uuid}`;
}

/** Flavor → cgroup limits; the CPU cap is clamped to the host's CPUs because Docker refuses more. */
export function resourceLimits(flavor: FlavorSpec, policy: ContainerPolicy, hostCpus: number) {
  const memory = flavor.memoryMb * MIB;
  return {
    Memory: memory,
    // Equal to Memory: no swap.
    MemorySwap: memory,
    NanoCpus: Math.min(flavor.vcpus, hostCpus) * 1e9,
    CpuShares: flavor.vcpus * 1024,
    PidsLimit: policy.pidsLimit,
  };
}

export interface ContainerCreate {
  readonly body: Docker.ContainerCreateOptions;
  /** Metadata keys that cannot be environment variable names (logged, not silently dropped). */
  readonly skippedMetadataKeys: readonly string[];
}

export function containerCreateOptions(
  instance: InstanceSpec,
  image: { readonly ref: string; readonly source: ImageSource },
  policy: ContainerPolicy,
  options: CompiledDockerOptions,
  hostCpus: number,
): ContainerCreate {
  const command = commandOverride(image.source);
  const skippedMetadataKeys: string[] = [];
  const env: string[] = [];
  if (options.injectMetadataAsEnv) {
    for (const [key, value] of Object.entries(instance.metadata)) {
      if (ENV_NAME.test(key)) env.push(`${key}=${value}`);
      else skippedMetadataKeys.push(key);
    }
  }
  const body: Docker.ContainerCreateOptions = {
    name: containerName(instance.uuid),
    Image: image.ref,
    Hostname: hostnameFor(instance),
    Labels: {
      [LABEL.instanceUuid]: instance.uuid,
      [LABEL.instanceName]: instance.name,
      [LABEL.displayName]: instance.displayName,
      [LABEL.projectId]: instance.projectId,
      [LABEL.userId]: instance.userId,
      [LABEL.flavor]: instance.flavor.name,
      [LABEL.imageId]: image.source.id,
      ...(options.computeHost === null ? {} : { [LABEL.computeHost]: options.computeHost }),
    },
    Env: env,
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    HostConfig: {
      ...resourceLimits(instance.flavor, policy, hostCpus),
      CapDrop: ['ALL'],
      CapAdd: [...policy.capAdd],
      // Docker's default seccomp and AppArmor profiles apply because nothing here overrides them.
      SecurityOpt: options.noNewPrivileges ? ['no-new-privileges'] : [],
      Privileged: false,
      ReadonlyRootfs: policy.readOnlyRootFilesystem,
      // Scratch space a read-only guest still needs; tmpfs, never a host path.
      Tmpfs: policy.readOnlyRootFilesystem ? { '/tmp': 'rw,nosuid,nodev', '/run': 'rw,nosuid,nodev' } : {},
      // Neutron ports are plugged into the container's own namespace; Docker networking is never used.
      NetworkMode: 'none',
      IpcMode: 'private',
      PidMode: '',
      UTSMode: '',
      UsernsMode: '',
      Binds: [],
      Mounts: [],
      PublishAllPorts: false,
      // Nova decides when an instance runs.
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      LogConfig: { Type: 'json-file', Config: { 'max-size': options.logMaxSize } },
    },
  };
  if (command !== null) body.Cmd = command;
  return { body, skippedMetadataKeys };
}

function hostnameFor(instance: InstanceSpec): string {
  if (HOSTNAME.test(instance.hostname)) return instance.hostname;
  const cleaned = instance.hostname.replace(/[^a-zA-Z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return cleaned || instance.name;
}
