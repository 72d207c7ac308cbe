// The VCPU / MEMORY_MB / DISK_GB inventory a compute node reports (nova-compute-protocol.md §6.2; Nova's
// virt/driver.py _get_allocation_ratios and the libvirt driver's update_provider_tree).

export interface InventoryRecord {
  readonly total: number;
  readonly reserved: number;
  readonly min_unit: number;
  readonly max_unit: number;
  readonly step_size: number;
  readonly allocation_ratio: number;
}

/** Keyed by resource class. */
export type Inventories = Readonly<Record<string, InventoryRecord>>;

export interface ComputeInventoryInput {
  readonly vcpus: number;
  readonly memoryMb: number;
  readonly diskGb: number;
  /** `[DEFAULT] reserved_host_cpus` */
  readonly reservedHostCpus: number;
  /** `[DEFAULT] reserved_host_memory_mb` */
  readonly reservedHostMemoryMb: number;
  /** `[DEFAULT] reserved_host_disk_mb`; reported in GB, rounded up. */
  readonly reservedHostDiskMb: number;
  /** `[DEFAULT] cpu/ram/disk_allocation_ratio`: when set (non-zero) they override placement's value. */
  readonly cpuAllocationRatio?: number | null;
  readonly ramAllocationRatio?: number | null;
  readonly diskAllocationRatio?: number | null;
  /** `[DEFAULT] initial_cpu/ram/disk_allocation_ratio`: used when placement has no value yet. */
  readonly initialCpuAllocationRatio: number;
  readonly initialRamAllocationRatio: number;
  readonly initialDiskAllocationRatio: number;
  /** The provider's inventory in placement now, so a ratio an operator set there is kept. */
  readonly current?: Inventories;
}

export function buildComputeInventory(input: ComputeInventoryInput): Record<string, InventoryRecord> {
  const current = input.current ?? {};
  const ratio = (rc: string, configured: number | null | undefined, initial: number): number =>
    configured !== undefined && configured !== null && configured > 0
      ? configured
      : (current[rc]?.allocation_ratio ?? initial);
  const record = (total: number, reserved: number, allocationRatio: number): InventoryRecord => ({
    total,
    reserved,
    min_unit: 1,
    max_unit: total,
    step_size: 1,
    allocation_ratio: allocationRatio,
  });
  const result: Record<string, InventoryRecord> = {};
  // Placement refuses a total of 0, so a class with nothing to offer is left out (as the libvirt driver does).
  if (input.vcpus > 0) {
    result['VCPU'] = record(
      input.vcpus,
      input.reservedHostCpus,
      ratio('VCPU', input.cpuAllocationRatio, input.initialCpuAllocationRatio),
    );
  }
  if (input.memoryMb > 0) {
    result['MEMORY_MB'] = record(
      input.memoryMb,
      input.reservedHostMemoryMb,
      ratio('MEMORY_MB', input.ramAllocationRatio, input.initialRamAllocationRatio),
    );
  }
  if (input.diskGb > 0) {
    result['DISK_GB'] = record(
      input.diskGb,
      Math.ceil(input.reservedHostDiskMb / 1024),
      ratio('DISK_GB', input.diskAllocationRatio, input.initialDiskAllocationRatio),
    );
  }
  return result;
}

const FIELDS = ['total', 'reserved', 'min_unit', 'max_unit', 'step_size', 'allocation_ratio'] as const;

/** True when both name the same resource classes with the same six values. */
export function inventoriesEqual(a: Inventories, b: Inventories): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((rc) => {
    const x = a[rc];
    const y = b[rc];
    return x !== undefined && y !== undefined && FIELDS.every((field) => x[field] === y[field]);
  });
}
