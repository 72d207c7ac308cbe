import assert from 'node:assert/strict';
import { buildComputeInventory, inventoriesEqual, type ComputeInventoryInput } from '../../../src/placement/inventory';

// nova.conf defaults (protocol §10), spelled out here because src/config owns them.
const defaults: ComputeInventoryInput = {
  vcpus: 16,
  memoryMb: 64298,
  diskGb: 450,
  reservedHostCpus: 0,
  reservedHostMemoryMb: 512,
  reservedHostDiskMb: 0,
  initialCpuAllocationRatio: 16.0,
  initialRamAllocationRatio: 1.5,
  initialDiskAllocationRatio: 1.0,
};

describe('placement/inventory', () => {
  it('builds exactly the body of protocol §6.2', () => {
    assert.deepEqual(buildComputeInventory(defaults), {
      VCPU: { total: 16, reserved: 0, min_unit: 1, max_unit: 16, step_size: 1, allocation_ratio: 16.0 },
      MEMORY_MB: { total: 64298, reserved: 512, min_unit: 1, max_unit: 64298, step_size: 1, allocation_ratio: 1.5 },
      DISK_GB: { total: 450, reserved: 0, min_unit: 1, max_unit: 450, step_size: 1, allocation_ratio: 1.0 },
    });
  });

  it('reserved disk is reserved_host_disk_mb in GB, rounded up', () => {
    assert.equal(buildComputeInventory({ ...defaults, reservedHostDiskMb: 1 })['DISK_GB']?.reserved, 1);
    assert.equal(buildComputeInventory({ ...defaults, reservedHostDiskMb: 2048 })['DISK_GB']?.reserved, 2);
    assert.equal(buildComputeInventory({ ...defaults, reservedHostDiskMb: 2049 })['DISK_GB']?.reserved, 3);
  });

  it('allocation ratio: configured > already in placement > initial (as virt/driver.py)', () => {
    const current = {
      VCPU: { total: 16, reserved: 0, min_unit: 1, max_unit: 16, step_size: 1, allocation_ratio: 4.0 },
      MEMORY_MB: { total: 1, reserved: 0, min_unit: 1, max_unit: 1, step_size: 1, allocation_ratio: 1.25 },
    };
    const inv = buildComputeInventory({ ...defaults, current, cpuAllocationRatio: 2.0, ramAllocationRatio: null });
    assert.equal(inv['VCPU']?.allocation_ratio, 2.0, 'configured overrides placement');
    assert.equal(inv['MEMORY_MB']?.allocation_ratio, 1.25, 'placement value kept');
    assert.equal(inv['DISK_GB']?.allocation_ratio, 1.0, 'initial when placement has none');
    const zero = buildComputeInventory({ ...defaults, current, cpuAllocationRatio: 0 });
    assert.equal(zero['VCPU']?.allocation_ratio, 4.0, '0.0 counts as unset, as in Nova');
  });

  it('leaves out a class with nothing to offer (placement refuses total 0)', () => {
    assert.deepEqual(Object.keys(buildComputeInventory({ ...defaults, diskGb: 0 })), ['VCPU', 'MEMORY_MB']);
  });

  it('inventoriesEqual compares classes and all six fields', () => {
    const a = buildComputeInventory(defaults);
    assert.equal(inventoriesEqual(a, buildComputeInventory(defaults)), true);
    assert.equal(inventoriesEqual(a, buildComputeInventory({ ...defaults, vcpus: 8 })), false);
    assert.equal(inventoriesEqual(a, buildComputeInventory({ ...defaults, diskGb: 0 })), false);
    assert.equal(inventoriesEqual(buildComputeInventory({ ...defaults, diskGb: 0 }), a), false);
    assert.equal(inventoriesEqual(a, buildComputeInventory({ ...defaults, initialRamAllocationRatio: 1.0 })), false);
    assert.equal(inventoriesEqual({}, {}), true);
  });
});
