// What this host offers Nova: Docker's /info, plus the size of the filesystem that holds Docker's data and the CPU
// description from /proc/cpuinfo when the engine runs on this machine.

import { readFile, statfs } from 'node:fs/promises';

import type { HostResources } from '../driver';

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

/** The fields of GET /info that we use. */
export interface EngineInfo {
  readonly NCPU: number;
  readonly MemTotal: number;
  readonly DockerRootDir: string;
  readonly Architecture: string;
  readonly ServerVersion: string;
  readonly DriverStatus?: ReadonlyArray<readonly [string, string]> | null;
}

export interface DiskSpace {
  readonly totalGb: number;
  readonly freeGb: number;
}

export function hostResourcesOf(info: EngineInfo, disk: DiskSpace, cpuInfo: Readonly<Record<string, unknown>>): HostResources {
  return {
    vcpus: info.NCPU,
    memoryMb: Math.floor(info.MemTotal / MIB),
    localGb: disk.totalGb,
    diskAvailableLeastGb: disk.freeGb,
    hypervisorType: 'docker',
    hypervisorVersion: hypervisorVersionOf(info.ServerVersion),
    cpuInfo,
    supportedInstances: [[info.Architecture, 'docker', 'exe']],
  };
}

/** Nova's convert_version_to_int: 20.10.24+dfsg1 → 20010024. */
export function hypervisorVersionOf(serverVersion: string): number {
  const parts = (/^\d+(\.\d+)*/.exec(serverVersion)?.[0] ?? '0').split('.').map(Number);
  return parts.reduce((total, part) => total * 1000 + part, 0);
}

/** statfs of Docker's root dir when it is on this machine; else the storage driver's own report, if it has one. */
export async function diskSpaceOf(info: EngineInfo, local: boolean): Promise<DiskSpace> {
  if (local) {
    try {
      const fs = await statfs(info.DockerRootDir);
      return { totalGb: Math.floor((fs.blocks * fs.bsize) / GIB), freeGb: Math.floor((fs.bavail * fs.bsize) / GIB) };
    } catch {
      // The socket is local but the data is not (e.g. the engine runs in a VM): fall through.
    }
  }
  const status = new Map(info.DriverStatus ?? []);
  return {
    totalGb: Math.floor(parseHumanSize(status.get('Data Space Total')) / GIB),
    freeGb: Math.floor(parseHumanSize(status.get('Data Space Available')) / GIB),
  };
}

/** Docker's human sizes (`107.4GB`, `1.2 TB`; decimal units) in bytes; 0 when absent. */
export function parseHumanSize(text: string | undefined): number {
  const match = /^([\d.]+)\s*([kMGTP]?)B$/i.exec(text?.trim() ?? '');
  if (!match) return 0;
  const power = ' KMGTP'.indexOf((match[2] ?? '').toUpperCase() || ' ');
  return Number(match[1]) * 1000 ** Math.max(0, power);
}

/** ComputeNode.cpu_info in the shape the libvirt driver uses (arch, model, vendor, topology, features). */
export async function cpuInfoOf(arch: string, ncpu: number, local: boolean): Promise<Record<string, unknown>> {
  if (!local) return { arch, topology: { sockets: 1, cores: ncpu, threads: 1 }, features: [] };
  try {
    return parseCpuInfo(await readFile('/proc/cpuinfo', 'utf8'), arch, ncpu);
  } catch {
    return { arch, topology: { sockets: 1, cores: ncpu, threads: 1 }, features: [] };
  }
}

const VENDORS: Readonly<Record<string, string>> = { GenuineIntel: 'Intel', AuthenticAMD: 'AMD' };

export function parseCpuInfo(text: string, arch: string, ncpu: number): Record<string, unknown> {
  const processors = text.split(/\n\s*\n/).map((block) => {
    const fields = new Map<string, string>();
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    return fields;
  }).filter((fields) => fields.size > 0);
  const first = processors[0] ?? new Map<string, string>();
  const vendorId = first.get('vendor_id') ?? first.get('CPU implementer') ?? '';
  const sockets = new Set(processors.map((p) => p.get('physical id')).filter((id) => id !== undefined)).size || 1;
  const cores = Number(first.get('cpu cores')) || Math.max(1, Math.floor(ncpu / sockets));
  const siblings = Number(first.get('siblings')) || cores;
  return {
    arch,
    model: first.get('model name') ?? first.get('CPU part') ?? 'unknown',
    vendor: VENDORS[vendorId] ?? (vendorId || 'unknown'),
    topology: { sockets, cores, threads: Math.max(1, Math.floor(siblings / cores)) },
    features: (first.get('flags') ?? first.get('Features') ?? '').split(/\s+/).filter(Boolean).sort(),
  };
}
