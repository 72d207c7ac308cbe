// The resource tracker: the ComputeNode record (create with the persisted uuid, reuse, usage from the reserved
// amounts and the flavors), the Placement provider (inventory, traits, COMPUTE_STATUS_DISABLED) and claims.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeDriver } from '../../../driver/fake/fake-driver';
import { ResourceTracker, type ResourceTrackerOptions } from '../../../src/compute/resource-tracker';
import { ConductorClient } from '../../../src/conductor';
import { silentLogger } from '../../../src/log';
import { RemoteFailure } from '../../../src/messaging/failure';
import { adminContext } from '../../../src/messaging';
import { NovaObject, type Instance } from '../../../src/objects';
import { firstExchange } from '../objects/capture-fixtures';
import { FakeConductor } from './fake-conductor';
import { FakePlacement } from './fakes';
import { Harness } from './harness';
import { capturedCompute } from './lifecycle-capture';

const HOST = 'fake-1';
const RESOURCES = { vcpus: 8, memoryMb: 16_384, localGb: 100, diskAvailableLeastGb: 80 };

describe('compute: resource tracker', () => {
  let statePath: string;
  let conductor: FakeConductor;
  let placement: FakePlacement;
  let driver: FakeDriver;
  const trackers: ResourceTracker[] = [];

  beforeEach(async () => {
    statePath = await mkdtemp(join(tmpdir(), 'berth-rt-test-'));
    conductor = new FakeConductor();
    placement = new FakePlacement();
    driver = new FakeDriver({ resources: RESOURCES, logger: silentLogger() });
    await driver.init();
  });
  afterEach(async () => {
    for (const t of trackers.splice(0)) t.stop();
    await driver.close();
    await rm(statePath, { recursive: true, force: true });
  });

  function tracker(options: Partial<ResourceTrackerOptions> = {}): ResourceTracker {
    const t = new ResourceTracker(
      {
        host: HOST,
        nodename: HOST,
        statePath,
        myIp: '127.0.0.1',
        reservedHostMemoryMb: 512,
        reservedHostCpus: 1,
        reservedHostDiskMb: 2048,
        cpuAllocationRatio: null,
        ramAllocationRatio: null,
        diskAllocationRatio: null,
        initialCpuAllocationRatio: 16,
        initialRamAllocationRatio: 1.5,
        initialDiskAllocationRatio: 1,
        ...options,
      },
      new ConductorClient(conductor),
      driver,
      placement,
      silentLogger(),
    );
    trackers.push(t);
    return t;
  }

  const creates = () => conductor.requestsFor('ComputeNode', 'create');
  const saves = () => conductor.requestsFor('ComputeNode', 'save');
  const objinstData = (r: { args: Record<string, unknown> }) => (r.args['objinst'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>;
  const node = () => conductor.computeNodes[0] as Record<string, unknown>;

  /** An instance row on this host with the capture's flavor, changed by `flavor`. */
  function addInstance(flavor: Record<string, unknown> = {}, fields: Record<string, unknown> = {}): string {
    const uuid = randomUUID();
    const data = structuredClone((capturedCompute('build_and_run_instance').args['instance'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>);
    const flavorData = (data['flavor'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>;
    Object.assign(flavorData, flavor);
    conductor.addInstance({ ...data, uuid, host: HOST, node: HOST, vm_state: 'active', task_state: null, ...fields });
    return uuid;
  }

  describe('the ComputeNode record', () => {
    it('is created with the uuid of the state file', async () => {
      const uuid = randomUUID();
      await writeFile(join(statePath, 'compute_nodes'), JSON.stringify({ [HOST]: uuid }));
      const t = tracker();
      await t.updateAvailableResource(adminContext(), true);
      assert.equal(creates().length, 1);
      assert.equal(objinstData(creates()[0] as never)['uuid'], uuid);
      assert.equal(t.nodeUuid, uuid);
      assert.deepEqual([...placement.providers.keys()], [uuid]);
      assert.equal(placement.providers.get(uuid)?.name, HOST);
    });

    it('gets a new uuid on first start, written to the state file and kept when the record is created again', async () => {
      await tracker().updateAvailableResource(adminContext(), true);
      const uuid = String(objinstData(creates()[0] as never)['uuid']);
      assert.deepEqual(JSON.parse(await readFile(join(statePath, 'compute_nodes'), 'utf8')), { [HOST]: uuid });
      conductor.computeNodes.length = 0;
      const restarted = tracker();
      await restarted.updateAvailableResource(adminContext(), true);
      assert.equal(objinstData(creates()[1] as never)['uuid'], uuid);
    });

    it('is reused after a restart: no second create, same uuid, provider kept', async () => {
      await tracker().updateAvailableResource(adminContext(), true);
      const uuid = String(node()['uuid']);
      const restarted = tracker();
      await restarted.updateAvailableResource(adminContext(), true);
      assert.equal(creates().length, 1);
      assert.equal(restarted.nodeUuid, uuid);
      assert.deepEqual([...placement.providers.keys()], [uuid]);
    });

    it('writes every field Python writes on create (lab capture), and never mapped or service_id', async () => {
      await tracker().updateAvailableResource(adminContext(), true);
      const objinst = creates()[0]?.args['objinst'] as Record<string, unknown>;
      const ours = objinst['nova_object.changes'] as string[];
      const captured = (firstExchange('ComputeNode', 'create').request['args'] as Record<string, unknown>)['objinst'] as Record<string, unknown>;
      const missing = (captured['nova_object.changes'] as string[]).filter((f) => !ours.includes(f));
      assert.deepEqual(missing, []);
      assert.ok(!ours.includes('mapped') && !ours.includes('service_id'));
      const data = objinst['nova_object.data'] as Record<string, unknown>;
      assert.deepEqual(JSON.parse(String(data['cpu_info'])), JSON.parse(JSON.stringify((await driver.getAvailableResource()).cpuInfo)));
      assert.equal(data['hypervisor_type'], 'fake');
      assert.equal(data['hypervisor_hostname'], HOST);
      assert.equal(data['host_ip'], '127.0.0.1');
      assert.deepEqual([data['cpu_allocation_ratio'], data['ram_allocation_ratio'], data['disk_allocation_ratio']], [16, 1.5, 1]);
    });

    it('is saved only when something changed', async () => {
      const t = tracker();
      await t.updateAvailableResource(adminContext(), true);
      const before = saves().length;
      await t.updateAvailableResource();
      assert.equal(saves().length, before);
      addInstance();
      await t.updateAvailableResource();
      assert.equal(saves().length, before + 1);
    });
  });

  describe('usage', () => {
    it('reserved amounts plus every flavor on the node; deleted and offloaded instances hold nothing', async () => {
      addInstance(); // 1 vCPU, 512 MB, 1 GB
      addInstance({ vcpus: 2, memory_mb: 2048, root_gb: 10, ephemeral_gb: 5, swap: 1024 }, { task_state: 'pausing' });
      addInstance({ vcpus: 4, memory_mb: 4096, root_gb: 40 }, { vm_state: 'shelved_offloaded' });
      addInstance({ vcpus: 4, memory_mb: 4096, root_gb: 40 }, { node: 'another-node' });
      const gone = addInstance({ vcpus: 4, memory_mb: 4096, root_gb: 40 });
      conductor.row(gone)['deleted'] = true;
      await tracker().updateAvailableResource(adminContext(), true);
      const cn = node();
      assert.equal(cn['vcpus'], 8);
      assert.equal(cn['vcpus_used'], 1 + 1 + 2);
      assert.equal(cn['memory_mb_used'], 512 + 512 + 2048);
      assert.equal(cn['local_gb_used'], 2 + 1 + 10 + 5 + 1);
      assert.equal(cn['free_ram_mb'], 16_384 - 3072);
      assert.equal(cn['free_disk_gb'], 100 - 19);
      assert.equal(cn['running_vms'], 2);
      assert.equal(cn['current_workload'], 1);
      const stats = cn['stats'] as Record<string, string>;
      assert.equal(stats['num_instances'], '2');
      assert.equal(stats['num_vm_active'], '2');
      assert.equal(stats['num_task_None'], '1');
      assert.equal(stats['num_task_pausing'], '1');
      assert.equal(stats['io_workload'], '1');
      assert.equal(stats['failed_builds'], '0');
    });

    it('failed_builds is published from the manager counter', async () => {
      const t = tracker();
      t.setFailedBuilds(3);
      await t.updateAvailableResource(adminContext(), true);
      assert.equal((node()['stats'] as Record<string, string>)['failed_builds'], '3');
    });
  });

  describe('placement', () => {
    it('inventory from the driver with the reserved amounts and the initial ratios', async () => {
      const t = tracker();
      await t.updateAvailableResource(adminContext(), true);
      const inventories = placement.providers.get(String(t.nodeUuid))?.inventories;
      assert.deepEqual(inventories, {
        VCPU: { total: 8, reserved: 1, min_unit: 1, max_unit: 8, step_size: 1, allocation_ratio: 16 },
        MEMORY_MB: { total: 16_384, reserved: 512, min_unit: 1, max_unit: 16_384, step_size: 1, allocation_ratio: 1.5 },
        DISK_GB: { total: 100, reserved: 2, min_unit: 1, max_unit: 100, step_size: 1, allocation_ratio: 1 },
      });
    });

    it('configured ratios win; a ratio set in placement is kept otherwise', async () => {
      const t = tracker({ cpuAllocationRatio: 4 });
      await t.updateAvailableResource(adminContext(), true);
      const rp = placement.providers.get(String(t.nodeUuid));
      assert.ok(rp);
      const memory = rp.inventories['MEMORY_MB'];
      assert.ok(memory);
      rp.inventories = { ...rp.inventories, MEMORY_MB: { ...memory, allocation_ratio: 1.0 } };
      await t.updateAvailableResource();
      assert.equal(rp.inventories['VCPU']?.allocation_ratio, 4);
      assert.equal(rp.inventories['MEMORY_MB']?.allocation_ratio, 1.0);
    });

    it("traits: COMPUTE_NODE and the driver's capabilities; COMPUTE_STATUS_DISABLED while the service is disabled; others' kept", async () => {
      const t = tracker();
      await t.updateAvailableResource(adminContext(), true);
      const rp = placement.providers.get(String(t.nodeUuid));
      assert.ok(rp);
      assert.deepEqual(rp.traits, ['COMPUTE_IMAGE_TYPE_RAW', 'COMPUTE_NODE']);
      rp.traits.push('CUSTOM_OPERATOR_TRAIT');
      t.setServiceDisabled(true);
      await t.updateAvailableResource();
      assert.deepEqual(rp.traits, ['COMPUTE_IMAGE_TYPE_RAW', 'COMPUTE_NODE', 'COMPUTE_STATUS_DISABLED', 'CUSTOM_OPERATOR_TRAIT']);
      t.setServiceDisabled(false);
      await t.updateAvailableResource();
      assert.deepEqual(rp.traits, ['COMPUTE_IMAGE_TYPE_RAW', 'COMPUTE_NODE', 'CUSTOM_OPERATOR_TRAIT']);
    });
  });

  describe('claims', () => {
    async function claimedInstance(flavor: Record<string, unknown>): Promise<{ t: ResourceTracker; instance: Instance; uuid: string }> {
      const uuid = addInstance(flavor, { host: null, node: null, vm_state: 'building' });
      const t = tracker();
      const instance = NovaObject.fromPrimitive(conductor.instancePrimitive(uuid)) as Instance;
      return { t, instance, uuid };
    }

    it('sets host, node and launched_on on the instance for the caller\'s next save, saving nothing itself', async () => {
      const { t, instance } = await claimedInstance({});
      await t.instanceClaim(adminContext(), instance);
      assert.deepEqual([instance.get('host'), instance.get('node'), instance.get('launched_on')], [HOST, HOST, HOST]);
      assert.deepEqual(instance.changes().filter((f) => ['host', 'node', 'launched_on'].includes(f)).sort(), ['host', 'launched_on', 'node']);
      assert.deepEqual(conductor.requestsFor('Instance', 'save'), []);
    });

    for (const [what, flavor, reason] of [
      ['more memory than the host has', { memory_mb: 32_768 }, 'Insufficient compute resources: Memory 16384 MB of this host < requested 32768 MB.'],
      ['more vCPUs than the host can overcommit', { vcpus: 200 }, 'Insufficient compute resources: vCPUs 8 of this host < requested 200.'],
    ] as const) {
      it(`refuses a flavor with ${what}: ComputeResourcesUnavailable, nothing saved`, async () => {
        const { t, instance, uuid } = await claimedInstance(flavor);
        await assert.rejects(t.instanceClaim(adminContext(), instance), (err: unknown) => {
          assert.ok(err instanceof RemoteFailure);
          assert.equal(err.className, 'ComputeResourcesUnavailable');
          assert.equal(err.message, reason);
          return true;
        });
        assert.equal(conductor.row(uuid)['host'], null);
        assert.deepEqual(conductor.requestsFor('Instance', 'save'), []);
      });
    }

    it('a build whose flavor does not fit is rescheduled with the claim failure as the reason', async () => {
      const h = await Harness.create({ driver: { resources: { memoryMb: 256 } } });
      try {
        const { context, args } = h.scheduleBuild();
        await h.rpc('build_and_run_instance', args, context);
        const retry = (h.conductor.casts[0]?.args['filter_properties'] as Record<string, unknown>)['retry'] as Record<string, unknown>;
        assert.equal(retry['exc_reason'], 'Insufficient compute resources: Memory 256 MB of this host < requested 512 MB.');
        assert.deepEqual(await h.driver.listInstances(), []);
      } finally {
        await h.close();
      }
    });
  });
});
