// One `docker stats` sample (+ the container's inspect data) → Nova's Diagnostics shape.

import type Docker from 'dockerode';

import type { DiagnosticsDisk, DiagnosticsNic, InstanceDiagnostics, PowerState } from '../driver';

const MIB = 1024 * 1024;

/** The fields of GET /containers/{id}/stats that diagnostics use (cgroup v1 and v2 spellings). */
export interface StatsSample {
  readonly memory_stats?: { readonly usage?: number; readonly limit?: number; readonly stats?: Readonly<Record<string, number>> };
  readonly cpu_stats?: { readonly cpu_usage?: { readonly total_usage?: number } };
  readonly blkio_stats?: {
    readonly io_service_bytes_recursive?: ReadonlyArray<BlkioEntry> | null;
    readonly io_serviced_recursive?: ReadonlyArray<BlkioEntry> | null;
  };
  readonly networks?: Readonly<Record<string, NetworkStats>>;
}
interface BlkioEntry {
  readonly op: string;
  readonly value: number;
}
interface NetworkStats {
  readonly rx_bytes: number;
  readonly rx_packets: number;
  readonly rx_errors: number;
  readonly rx_dropped: number;
  readonly tx_bytes: number;
  readonly tx_packets: number;
  readonly tx_errors: number;
  readonly tx_dropped: number;
}

export function diagnosticsOf(
  container: Docker.ContainerInspectInfo,
  stats: StatsSample,
  state: PowerState,
  now: Date,
): InstanceDiagnostics {
  const hostConfig = container.HostConfig;
  const memory = stats.memory_stats ?? {};
  // Like `docker stats`: page cache that can be dropped at once is not "used".
  const inactiveFile = memory.stats?.['total_inactive_file'] ?? memory.stats?.['inactive_file'] ?? 0;
  const limitBytes = hostConfig.Memory || memory.limit || 0;
  const startedAt = Date.parse(container.State.StartedAt);
  return {
    state,
    hypervisor: 'docker',
    hypervisorOs: 'linux',
    uptimeSec: container.State.Running && startedAt > 0 ? Math.max(0, Math.floor((now.getTime() - startedAt) / 1000)) : null,
    numCpus: hostConfig.NanoCpus ? Math.ceil(hostConfig.NanoCpus / 1e9) : Math.max(1, Math.round((hostConfig.CpuShares ?? 1024) / 1024)),
    // A container has no virtual CPUs: one entry carries the whole cgroup's CPU time (ns).
    cpuDetails: [{ id: 0, time: stats.cpu_stats?.cpu_usage?.total_usage ?? null, utilisation: null }],
    memoryMaxMb: Math.round(limitBytes / MIB),
    memoryUsedMb: Math.round(Math.max(0, (memory.usage ?? 0) - inactiveFile) / MIB),
    nicDetails: Object.values(stats.networks ?? {}).map(nicOf),
    diskDetails: [diskOf(stats)],
    configDrive: false,
  };
}

function nicOf(net: NetworkStats): DiagnosticsNic {
  return {
    macAddress: null,
    rxOctets: net.rx_bytes,
    rxPackets: net.rx_packets,
    rxErrors: net.rx_errors,
    rxDrop: net.rx_dropped,
    txOctets: net.tx_bytes,
    txPackets: net.tx_packets,
    txErrors: net.tx_errors,
    txDrop: net.tx_dropped,
  };
}

function diskOf(stats: StatsSample): DiagnosticsDisk {
  const sum = (entries: ReadonlyArray<BlkioEntry> | null | undefined, op: string) =>
    (entries ?? []).filter((entry) => entry.op.toLowerCase() === op).reduce((total, entry) => total + entry.value, 0);
  const blkio = stats.blkio_stats ?? {};
  return {
    readBytes: sum(blkio.io_service_bytes_recursive, 'read'),
    readRequests: sum(blkio.io_serviced_recursive, 'read'),
    writeBytes: sum(blkio.io_service_bytes_recursive, 'write'),
    writeRequests: sum(blkio.io_serviced_recursive, 'write'),
    // cgroups do not count I/O errors; -1 is Nova's "unknown" (as libvirt reports it).
    errorsCount: -1,
  };
}
