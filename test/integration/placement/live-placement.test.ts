// PlacementClient against the real Placement of the e2e control plane. Every provider, allocation and trait it
// creates has a random name and is removed again.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { KeystoneSession } from '../../../src/identity/keystone-session';
import { RequestError } from '../../../src/identity/request-error';
import { buildComputeInventory } from '../../../src/placement/inventory';
import { PlacementClient } from '../../../src/placement/placement-client';
import {
  InventoryInUse,
  ResourceProviderInUse,
  ResourceProviderNameConflict,
  TraitCreationFailed,
} from '../../../src/placement/placement-errors';
import { liveSection, requireLiveControlPlane } from '../identity/live-control-plane';

const inventory = (vcpus: number) =>
  buildComputeInventory({
    vcpus,
    memoryMb: 4096,
    diskGb: 20,
    reservedHostCpus: 0,
    reservedHostMemoryMb: 512,
    reservedHostDiskMb: 0,
    initialCpuAllocationRatio: 16,
    initialRamAllocationRatio: 1.5,
    initialDiskAllocationRatio: 1,
  });

describe('placement/PlacementClient (live Placement)', function () {
  this.timeout(60_000);
  requireLiveControlPlane();

  const ctx = { request_id: `req-${randomUUID()}` };
  const uuid = randomUUID();
  const name = `berth-live-test-${uuid.slice(0, 8)}`;
  const trait = `CUSTOM_BERTH_LIVE_TEST_${uuid.slice(0, 8).toUpperCase()}`;
  const consumer = randomUUID();
  let session: KeystoneSession;
  let placement: PlacementClient;

  before(() => {
    session = new KeystoneSession(liveSection('placement'));
    placement = new PlacementClient(session, { conflictRetryDelayMs: 100 });
  });

  after(async () => {
    if (placement === undefined) return;
    await placement.deleteAllocationsForConsumer(ctx, consumer).catch(() => false);
    await placement.deleteResourceProvider(ctx, uuid).catch(() => false);
    const base = await session.getEndpoint({ serviceType: 'placement' });
    await session
      .withToken((token) =>
        session.http.request({
          method: 'DELETE',
          url: `${base}/traits/${trait}`,
          headers: { 'X-Auth-Token': token, 'OpenStack-API-Version': 'placement 1.6' },
        }),
      )
      .catch(() => undefined);
  });

  it('ensureResourceProvider creates the provider once, then finds it', async () => {
    const created = await placement.ensureResourceProvider(ctx, uuid, name);
    assert.deepEqual([created.uuid, created.name], [uuid, name]);
    const again = await placement.ensureResourceProvider(ctx, uuid, name);
    assert.equal(again.uuid, uuid);
    assert.deepEqual(
      (await placement.getProviderTree(ctx, uuid)).map((rp) => rp.uuid),
      [uuid],
    );
    assert.equal((await placement.getResourceProvider(ctx, uuid))?.name, name);
    assert.equal(await placement.getResourceProvider(ctx, randomUUID()), null);
  });

  it('a second provider with the same name is a ResourceProviderNameConflict naming ours as the stale one', async () => {
    const other = randomUUID();
    const err = await placement.ensureResourceProvider(ctx, other, name).catch((e: unknown) => e);
    assert.ok(err instanceof ResourceProviderNameConflict, String(err));
    assert.equal(err.staleUuid, uuid);
    assert.equal(await placement.getResourceProvider(ctx, other), null);
  });

  it('setInventories writes the §6.2 inventory once; the same inventory again is no PUT', async () => {
    const first = await placement.setInventories(ctx, uuid, inventory(8));
    assert.equal(first.changed, true);
    assert.deepEqual((await placement.getInventories(ctx, uuid)).inventories, inventory(8));
    const second = await placement.setInventories(ctx, uuid, inventory(8));
    assert.equal(second.changed, false);
    assert.equal(second.generation, first.generation);
  });

  it('setTraits keeps traits set by others and creates the missing CUSTOM_ trait', async () => {
    // someone else's trait
    await placement.setTraits(ctx, uuid, { wanted: ['HW_CPU_X86_AVX2'], managed: [] });
    const result = await placement.setTraits(ctx, uuid, {
      wanted: ['COMPUTE_NODE', trait],
      managed: ['COMPUTE_NODE', 'COMPUTE_STATUS_DISABLED', trait],
    });
    assert.equal(result.changed, true);
    assert.deepEqual([...(await placement.getTraits(ctx, uuid)).traits].sort(), [
      'COMPUTE_NODE',
      trait,
      'HW_CPU_X86_AVX2',
    ]);
    const disabled = await placement.setTraits(ctx, uuid, {
      wanted: ['COMPUTE_NODE', 'COMPUTE_STATUS_DISABLED'],
      managed: ['COMPUTE_NODE', 'COMPUTE_STATUS_DISABLED', trait],
    });
    assert.deepEqual([...disabled.traits].sort(), ['COMPUTE_NODE', 'COMPUTE_STATUS_DISABLED', 'HW_CPU_X86_AVX2']);
    await assert.rejects(
      placement.setTraits(ctx, uuid, { wanted: ['COMPUTE_NO_SUCH_TRAIT_EVER'], managed: [] }),
      TraitCreationFailed,
    );
  });

  it('allocations: read, inventory in use, provider in use, delete (204 then 404)', async () => {
    assert.deepEqual((await placement.getAllocationsForConsumer(ctx, consumer)).allocations, {});
    assert.equal(await placement.deleteAllocationsForConsumer(ctx, consumer), false);

    // what the scheduler does before a build cast (protocol §6.3)
    const base = await session.getEndpoint({ serviceType: 'placement' });
    const access = await session.getAccess();
    await session.http.request({
      method: 'PUT',
      url: `${base}/allocations/${consumer}`,
      headers: { 'X-Auth-Token': access.token, 'OpenStack-API-Version': 'placement 1.28' },
      json: {
        allocations: { [uuid]: { resources: { VCPU: 4, MEMORY_MB: 512 } } },
        consumer_generation: null,
        project_id: access.projectId,
        user_id: access.userId,
      },
    });

    const mine = await placement.getAllocationsForConsumer(ctx, consumer);
    assert.deepEqual(mine.allocations[uuid]?.resources, { VCPU: 4, MEMORY_MB: 512 });
    assert.deepEqual((await placement.getProviderAllocations(ctx, uuid)).allocations[consumer]?.resources, {
      VCPU: 4,
      MEMORY_MB: 512,
    });

    // VCPU 4 allocated at ratio 16 fits 1 VCPU (16 allocatable) — dropping VCPU entirely does not
    const withoutVcpu = { ...inventory(8) };
    delete withoutVcpu['VCPU'];
    await assert.rejects(placement.setInventories(ctx, uuid, withoutVcpu), InventoryInUse);
    await assert.rejects(placement.deleteResourceProvider(ctx, uuid), ResourceProviderInUse);

    assert.equal(await placement.deleteAllocationsForConsumer(ctx, consumer), true);
    assert.equal(await placement.deleteAllocationsForConsumer(ctx, consumer), false);
    assert.deepEqual((await placement.getProviderAllocations(ctx, uuid)).allocations, {});
  });

  it('deleteResourceProvider: true, then false', async () => {
    assert.equal(await placement.deleteResourceProvider(ctx, uuid), true);
    assert.equal(await placement.deleteResourceProvider(ctx, uuid), false);
    await assert.rejects(
      placement.getInventories(ctx, uuid),
      (e: unknown) => e instanceof RequestError && e.status === 404,
    );
  });
});
