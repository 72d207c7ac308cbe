// Nova's resource tracker for one node: the ComputeNode record (through the conductor) and the Placement resource
// provider (inventory and traits) kept true from the driver's resources and the instances on this host; instance
// claims during builds. nova/compute/resource_tracker.py, nova-compute-protocol.md §5.7 and §6.
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CAPABILITY_TRAITS, type ComputeDriver, type HostResources } from '../../driver/driver';
import type { Logger } from '../log';
import type { RequestContext } from '../messaging/types';
import { adminContext } from '../messaging';
import { newObject, type ComputeNode, type Flavor, type Instance, type Migration, type NovaObject, type NovaObjectOf } from '../objects';
import type { ConductorClient } from '../conductor';
import { buildComputeInventory, type PlacementClient } from '../placement';
import { novaError } from './exceptions';
import type { ResourceTrackerPort } from './ports';
import { TaskState, VmState } from './states';

/** The Placement calls the tracker makes. */
export type ProviderPort = Pick<PlacementClient, 'ensureResourceProvider' | 'getInventories' | 'setInventories' | 'setTraits'>;

export interface ResourceTrackerOptions {
  readonly host: string;
  readonly nodename: string;
  readonly statePath: string;
  readonly myIp: string;
  readonly reservedHostMemoryMb: number;
  readonly reservedHostCpus: number;
  readonly reservedHostDiskMb: number;
  /** [DEFAULT] cpu/ram/disk_allocation_ratio (null = unset) */
  readonly cpuAllocationRatio: number | null;
  readonly ramAllocationRatio: number | null;
  readonly diskAllocationRatio: number | null;
  /** [DEFAULT] initial_*_allocation_ratio */
  readonly initialCpuAllocationRatio: number;
  readonly initialRamAllocationRatio: number;
  readonly initialDiskAllocationRatio: number;
}

/** What one flavor holds on this node. */
interface Usage {
  readonly vcpus: number;
  readonly memoryMb: number;
  readonly diskGb: number;
}

interface TrackedInstance extends Usage {
  readonly uuid: string;
  /** The other flavor of a resize in progress on this node (Nova's tracked migration): held until confirm or revert. */
  readonly moveUsage: Usage | null;
  readonly vmState: string;
  readonly taskState: string | null;
  readonly osType: string | null;
  readonly projectId: string;
}

const NODE_UUID_FILE = 'compute_nodes';
/** The traits whose presence Berth decides; any other trait on the provider belongs to someone else. */
const MANAGED_TRAITS = ['COMPUTE_NODE', 'COMPUTE_STATUS_DISABLED', ...Object.values(CAPABILITY_TRAITS)];

export class ResourceTracker implements ResourceTrackerPort {
  private computeNode: ComputeNode | null = null;
  private readonly instances = new Map<string, TrackedInstance>();
  private resources: HostResources | null = null;
  private serviceDisabled = false;
  private failedBuilds = 0;
  private saveTimer: NodeJS.Timeout | null = null;
  private updating: Promise<void> | null = null;
  private readonly log: Logger;

  constructor(
    private readonly options: ResourceTrackerOptions,
    private readonly conductor: ConductorClient,
    private readonly driver: ComputeDriver,
    private readonly placement: ProviderPort,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'resource-tracker', nodename: options.nodename });
  }

  get nodeUuid(): string | null {
    return (this.computeNode?.get('uuid') as string | undefined) ?? null;
  }

  /** Called by the service when the Service record's `disabled` changes (COMPUTE_STATUS_DISABLED trait). */
  setServiceDisabled(disabled: boolean): void {
    this.serviceDisabled = disabled;
  }

  setFailedBuilds(count: number): void {
    this.failedBuilds = count;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // update_available_resource: startup and every periodic tick.

  /** Refreshes resources and usage, saves the ComputeNode when it changed, and pushes inventory and traits. */
  updateAvailableResource(context: RequestContext = adminContext(), startup = false): Promise<void> {
    // One update at a time: a periodic tick that finds one running waits for it instead of racing it.
    if (!this.updating) {
      this.updating = this.doUpdate(context, startup).finally(() => {
        this.updating = null;
      });
    }
    return this.updating;
  }

  private async doUpdate(context: RequestContext, startup: boolean): Promise<void> {
    this.resources = await this.driver.getAvailableResource();
    const instances = await this.conductor.instanceListGetByHost(context, this.options.host, ['flavor']);
    this.instances.clear();
    for (const instance of instances) {
      if (instance.get('node') === this.options.nodename || instance.get('node') === null || instance.get('node') === undefined) {
        this.trackInstance(instance);
      }
    }
    await this.ensureComputeNode(context, startup);
    await this.saveComputeNode(context);
    await this.updateToPlacement(context);
  }

  async lookupNodeUuid(context: RequestContext): Promise<string | null> {
    if (this.computeNode) return String(this.computeNode.get('uuid'));
    const existing = await this.conductor.computeNodeGetByHostAndNodename(context, this.options.host, this.options.nodename);
    if (existing) return String(existing.get('uuid'));
    return this.readNodeUuid();
  }

  /** _init_compute_node: find our record (by host and node), or create it with the persisted uuid. */
  private async ensureComputeNode(context: RequestContext, startup: boolean): Promise<void> {
    if (this.computeNode && !startup) return;
    const existing = await this.conductor.computeNodeGetByHostAndNodename(context, this.options.host, this.options.nodename);
    if (existing) {
      markSaved(existing);
      this.computeNode = existing;
      await this.persistNodeUuid(String(existing.get('uuid')));
      this.copyResources(existing);
      return;
    }
    const uuid = (await this.readNodeUuid()) ?? randomUUID();
    const cn = newObject('ComputeNode', { uuid, host: this.options.host, hypervisor_hostname: this.options.nodename }) as ComputeNode;
    this.copyResources(cn);
    this.copyUsage(cn);
    await this.conductor.computeNodeCreate(context, cn);
    markSaved(cn);
    await this.persistNodeUuid(String(cn.get('uuid')));
    this.log.info({ compute_node_uuid: cn.get('uuid') }, 'Compute node record created for %s:%s with uuid: %s', this.options.host, this.options.nodename, cn.get('uuid'));
    this.computeNode = cn;
  }

  private nodeUuidFile(): string {
    return path.join(this.options.statePath, NODE_UUID_FILE);
  }

  /** The state file maps node name → uuid (Nova 2023.1+ keeps `compute_id` the same way). */
  private async readNodeUuid(): Promise<string | null> {
    try {
      const data = JSON.parse(await fs.readFile(this.nodeUuidFile(), 'utf8')) as Record<string, unknown>;
      const uuid = data[this.options.nodename];
      return typeof uuid === 'string' && /^[0-9a-f-]{36}$/.test(uuid) ? uuid : null;
    } catch {
      return null;
    }
  }

  private async persistNodeUuid(uuid: string): Promise<void> {
    let data: Record<string, unknown> = {};
    try {
      data = JSON.parse(await fs.readFile(this.nodeUuidFile(), 'utf8')) as Record<string, unknown>;
    } catch {
      // first start
    }
    if (data[this.options.nodename] === uuid) return;
    data[this.options.nodename] = uuid;
    await fs.mkdir(this.options.statePath, { recursive: true });
    const tmp = `${this.nodeUuidFile()}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(data, null, 2) + '\n', { mode: 0o644 });
    await fs.rename(tmp, this.nodeUuidFile());
  }

  private ratios(cn: NovaObject | null): { cpu: number; ram: number; disk: number } {
    const current = (field: string): number | null => {
      const v = cn?.get(field);
      return typeof v === 'number' && v > 0 ? v : null;
    };
    const o = this.options;
    return {
      cpu: o.cpuAllocationRatio ?? current('cpu_allocation_ratio') ?? o.initialCpuAllocationRatio,
      ram: o.ramAllocationRatio ?? current('ram_allocation_ratio') ?? o.initialRamAllocationRatio,
      disk: o.diskAllocationRatio ?? current('disk_allocation_ratio') ?? o.initialDiskAllocationRatio,
    };
  }

  /** _copy_resources: the driver's view of the host onto the record. */
  private copyResources(cn: NovaObject): void {
    const r = this.resources;
    if (!r) throw new Error('resources not loaded');
    const ratios = this.ratios(cn);
    setIfChanged(cn, 'vcpus', r.vcpus);
    setIfChanged(cn, 'memory_mb', r.memoryMb);
    setIfChanged(cn, 'local_gb', r.localGb);
    setIfChanged(cn, 'hypervisor_type', r.hypervisorType);
    setIfChanged(cn, 'hypervisor_version', r.hypervisorVersion);
    setIfChanged(cn, 'hypervisor_hostname', this.options.nodename);
    setIfChanged(cn, 'cpu_info', JSON.stringify(r.cpuInfo));
    setIfChanged(cn, 'disk_available_least', r.diskAvailableLeastGb);
    setIfChanged(cn, 'host_ip', this.options.myIp);
    setIfChanged(cn, 'cpu_allocation_ratio', ratios.cpu);
    setIfChanged(cn, 'ram_allocation_ratio', ratios.ram);
    setIfChanged(cn, 'disk_allocation_ratio', ratios.disk);
    const specs = r.supportedInstances.map(([arch, hvType, vmMode]) => ({ arch, hv_type: hvType, vm_mode: vmMode }));
    const currentSpecs = ((cn.get('supported_hv_specs') as NovaObject[] | undefined) ?? []).map((s) => ({
      arch: s.get('arch'),
      hv_type: s.get('hv_type'),
      vm_mode: s.get('vm_mode'),
    }));
    if (JSON.stringify(currentSpecs) !== JSON.stringify(specs)) {
      cn.set('supported_hv_specs', specs.map((s) => newObject('HVSpec', s as never)));
    }
    if (!cn.has('numa_topology')) cn.set('numa_topology', null);
    if (!cn.has('pci_device_pools')) cn.set('pci_device_pools', newObject('PciDevicePoolList', { objects: [] }));
    if (!cn.has('metrics')) cn.set('metrics', '[]');
  }

  /** _update_usage_from_instances: usage recomputed from the reserved amounts and every tracked instance. */
  private copyUsage(cn: NovaObject): void {
    const o = this.options;
    let vcpus = o.reservedHostCpus;
    let memory = o.reservedHostMemoryMb;
    let disk = Math.ceil(o.reservedHostDiskMb / 1024);
    const stats: Record<string, number> = { num_instances: 0 };
    const inc = (key: string): void => {
      stats[key] = (stats[key] ?? 0) + 1;
    };
    let workload = 0;
    for (const t of this.instances.values()) {
      vcpus += t.vcpus + (t.moveUsage?.vcpus ?? 0);
      memory += t.memoryMb + (t.moveUsage?.memoryMb ?? 0);
      disk += t.diskGb + (t.moveUsage?.diskGb ?? 0);
      inc('num_instances');
      inc(`num_vm_${t.vmState}`);
      inc(`num_task_${t.taskState ?? 'None'}`);
      inc(`num_os_type_${t.osType ?? 'None'}`);
      inc(`num_proj_${t.projectId}`);
      if (t.taskState !== null) workload++;
    }
    const r = this.resources;
    setIfChanged(cn, 'vcpus_used', vcpus);
    setIfChanged(cn, 'memory_mb_used', memory);
    setIfChanged(cn, 'local_gb_used', disk);
    if (r) {
      setIfChanged(cn, 'free_ram_mb', r.memoryMb - memory);
      setIfChanged(cn, 'free_disk_gb', r.localGb - disk);
    }
    setIfChanged(cn, 'running_vms', this.instances.size);
    setIfChanged(cn, 'current_workload', workload);
    const statStrings: Record<string, string> = {};
    for (const [k, v] of Object.entries(stats)) statStrings[k] = String(v);
    statStrings['io_workload'] = String(workload);
    statStrings['failed_builds'] = String(this.failedBuilds);
    const current = cn.get('stats') as Record<string, string> | undefined;
    if (JSON.stringify(sortKeys(current ?? {})) !== JSON.stringify(sortKeys(statStrings))) cn.set('stats', statStrings);
  }

  /** Saves the ComputeNode only when something changed (Nova's _resource_change). */
  private async saveComputeNode(context: RequestContext): Promise<void> {
    const cn = this.computeNode;
    if (!cn) return;
    this.copyResources(cn);
    this.copyUsage(cn);
    if (cn.changes().length === 0) return;
    await this.conductor.computeNodeSave(context, cn);
    markSaved(cn);
  }

  /** _update_to_placement: provider, inventory (ratios kept as placement has them unless configured), traits. */
  private async updateToPlacement(context: RequestContext): Promise<void> {
    const cn = this.computeNode;
    const r = this.resources;
    if (!cn || !r) return;
    const uuid = String(cn.get('uuid'));
    await this.placement.ensureResourceProvider(context, uuid, this.options.nodename);
    const current = await this.placement.getInventories(context, uuid);
    const o = this.options;
    const inventories = buildComputeInventory({
      vcpus: r.vcpus,
      memoryMb: r.memoryMb,
      diskGb: r.localGb,
      // Placement refuses reserved > total (a tiny host with the default 512 MB reserve).
      reservedHostCpus: Math.min(o.reservedHostCpus, r.vcpus),
      reservedHostMemoryMb: Math.min(o.reservedHostMemoryMb, r.memoryMb),
      reservedHostDiskMb: Math.min(o.reservedHostDiskMb, r.localGb * 1024),
      cpuAllocationRatio: o.cpuAllocationRatio,
      ramAllocationRatio: o.ramAllocationRatio,
      diskAllocationRatio: o.diskAllocationRatio,
      initialCpuAllocationRatio: o.initialCpuAllocationRatio,
      initialRamAllocationRatio: o.initialRamAllocationRatio,
      initialDiskAllocationRatio: o.initialDiskAllocationRatio,
      current: current.inventories,
    });
    await this.placement.setInventories(context, uuid, inventories);
    await this.placement.setTraits(context, uuid, { wanted: this.wantedTraits(), managed: MANAGED_TRAITS });
  }

  private wantedTraits(): string[] {
    const traits = ['COMPUTE_NODE'];
    for (const [capability, trait] of Object.entries(CAPABILITY_TRAITS)) {
      if (trait && this.driver.capabilities[capability as keyof ComputeDriver['capabilities']]) traits.push(trait);
    }
    if (this.serviceDisabled) traits.push('COMPUTE_STATUS_DISABLED');
    return traits;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Claims

  async instanceClaim(_context: RequestContext, instance: Instance): Promise<void> {
    const flavor = instance.get('flavor') as NovaObject | undefined;
    await this.testClaim(
      Number(flavor?.get('memory_mb') ?? instance.get('memory_mb') ?? 0),
      Number(flavor?.get('vcpus') ?? instance.get('vcpus') ?? 0),
    );
    // _set_instance_host_and_node, without its own save: the build's next Instance.save (task_state networking)
    // writes host, node and launched_on. Nova saves them separately; merged, every vm_state/task_state transition is
    // the same and each boot costs one conductor round trip less (the conductor is what limits boot throughput).
    instance.set('host', this.options.host);
    instance.set('launched_on', this.options.host);
    instance.set('node', this.options.nodename);
    this.trackInstance(instance);
    this.scheduleSave();
  }

  /**
   * The scheduler checked Placement; this catches what Placement cannot know: a single instance bigger than the
   * physical host (its limits would not hold), e.g. after the host shrank or with a forced host.
   */
  private async testClaim(memoryMb: number, vcpus: number): Promise<void> {
    const r = this.resources ?? (this.resources = await this.driver.getAvailableResource());
    if (memoryMb > r.memoryMb) {
      throw novaError('ComputeResourcesUnavailable', { reason: `Memory ${r.memoryMb} MB of this host < requested ${memoryMb} MB` });
    }
    if (vcpus > r.vcpus * this.ratios(this.computeNode).cpu) {
      throw novaError('ComputeResourcesUnavailable', { reason: `vCPUs ${r.vcpus} of this host < requested ${vcpus}` });
    }
  }

  async resizeClaim(context: RequestContext, instance: Instance, flavor: Flavor, migration: Migration): Promise<void> {
    // _claim_existing_migration: the conductor created the record; it becomes this node's.
    migration.set('dest_compute', this.options.host);
    migration.set('dest_node', this.options.nodename);
    migration.set('dest_host', this.options.myIp);
    migration.set('status', 'pre-migrating');
    await this.conductor.migrationSave(context, migration);
    // MoveClaim's test: the new flavor alone must fit this host (the old one goes when the resize is confirmed).
    await this.testClaim(Number(flavor.get('memory_mb') ?? 0), Number(flavor.get('vcpus') ?? 0));
    instance.set('migration_context', migrationContext(instance, migration));
    await this.conductor.instanceSave(context, instance, {});
    this.trackInstance(instance);
    this.scheduleSave();
  }

  async abortResizeClaim(context: RequestContext, instance: Instance): Promise<void> {
    this.holdOnly(instance, instance.get('flavor'));
    if (instance.get('migration_context')) await this.conductor.instanceDropMigrationContext(context, instance);
  }

  async dropMoveClaimAtSource(context: RequestContext, instance: Instance, migration: Migration): Promise<void> {
    migration.set('status', 'confirmed');
    await this.conductor.migrationSave(context, migration);
    this.holdOnly(instance, instance.get('flavor'));
    if (instance.get('migration_context')) await this.conductor.instanceDropMigrationContext(context, instance);
  }

  async dropMoveClaimAtDest(context: RequestContext, instance: Instance, migration: Migration): Promise<void> {
    // Not reverted yet (finish_revert_resize does that), but this node no longer holds the new flavor.
    migration.set('status', 'reverted');
    await this.conductor.migrationSave(context, migration);
    this.holdOnly(instance, instance.get('old_flavor'));
    applyMigrationContext(instance, 'old_');
    await this.conductor.instanceSave(context, instance, { expectedTaskState: [TaskState.RESIZE_REVERTING] });
  }

  /** The end of a move claim: the instance holds one flavor here again. */
  private holdOnly(instance: Instance, flavor: NovaObject | null | undefined): void {
    const uuid = String(instance.get('uuid'));
    const tracked = this.instances.get(uuid);
    if (!tracked || !flavor) return;
    this.instances.set(uuid, { ...tracked, ...flavorUsage(flavor), moveUsage: null });
    this.scheduleSave();
  }

  async dropInstance(_context: RequestContext, instanceUuid: string): Promise<void> {
    if (this.instances.delete(instanceUuid)) this.scheduleSave();
  }

  trackInstance(instance: Instance): void {
    const vmState = String(instance.get('vm_state'));
    // vm_states.allow_resource_removal: deleted and shelved-offloaded instances hold nothing here.
    if (vmState === VmState.DELETED || vmState === VmState.SHELVED_OFFLOADED) {
      this.instances.delete(String(instance.get('uuid')));
      return;
    }
    const flavor = instance.get('flavor') as NovaObject | undefined;
    const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0) || 0);
    const swapMb = num(flavor?.get('swap'));
    this.instances.set(String(instance.get('uuid')), {
      uuid: String(instance.get('uuid')),
      vcpus: num(flavor?.get('vcpus') ?? instance.get('vcpus')),
      memoryMb: num(flavor?.get('memory_mb') ?? instance.get('memory_mb')),
      diskGb: num(flavor?.get('root_gb') ?? instance.get('root_gb')) + num(flavor?.get('ephemeral_gb') ?? instance.get('ephemeral_gb')) + Math.ceil(swapMb / 1024),
      moveUsage: resizeCounterpart(instance),
      vmState,
      taskState: (instance.get('task_state') as string | null | undefined) ?? null,
      osType: (instance.get('os_type') as string | null | undefined) ?? null,
      projectId: String(instance.get('project_id') ?? ''),
    });
  }

  /**
   * Nova saves the ComputeNode on every claim; many concurrent builds would make that one conductor round trip
   * each. Coalescing them within a short window keeps the record true at a fraction of the cost.
   */
  private scheduleSave(): void {
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      this.saveComputeNode(adminContext()).catch((err: unknown) => this.log.warn({ err }, 'could not save the compute node usage'));
    }, 500);
    this.saveTimer.unref();
  }

  /** Flushes a pending usage save (shutdown, tests). */
  async flush(): Promise<void> {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = null;
      await this.saveComputeNode(adminContext());
    }
  }

  stop(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
  }
}

function flavorUsage(flavor: NovaObject): Usage {
  const num = (field: string): number => Number(flavor.get(field) ?? 0) || 0;
  return {
    vcpus: num('vcpus'),
    memoryMb: num('memory_mb'),
    diskGb: num('root_gb') + num('ephemeral_gb') + Math.ceil(num('swap') / 1024),
  };
}

/** _instance_in_resize_state */
function inResizeState(instance: Instance): boolean {
  const vm = instance.get('vm_state');
  const task = instance.get('task_state') ?? null;
  if (vm === VmState.RESIZED) return true;
  const resizing: readonly (string | null)[] = [TaskState.RESIZE_PREP, TaskState.RESIZE_MIGRATING, TaskState.RESIZE_MIGRATED, TaskState.RESIZE_FINISH];
  return (vm === VmState.ACTIVE || vm === VmState.STOPPED) && resizing.includes(task);
}

/**
 * _update_usage_from_migration for a resize on the same node: before finish_resize the instance has its old flavor
 * and holds the new one; after, the new one and holds the old (for a revert). Berth reads it off the instance's
 * flavors (its resizes never leave the node) rather than off the migration records.
 */
function resizeCounterpart(instance: Instance): Usage | null {
  if (!inResizeState(instance)) return null;
  const flavor = instance.get('flavor');
  const newFlavor = instance.get('new_flavor');
  const other = newFlavor && flavor?.get('id') !== newFlavor.get('id') ? newFlavor : instance.get('old_flavor');
  return other ? flavorUsage(other) : null;
}

/** The MigrationContext _move_claim gives the instance (no NUMA, PCI devices or assigned resources on a Berth host). */
function migrationContext(instance: Instance, migration: Migration): NovaObjectOf<'MigrationContext'> {
  const uuid = String(instance.get('uuid'));
  const noRequests = (): NovaObjectOf<'InstancePCIRequests'> => newObject('InstancePCIRequests', { instance_uuid: uuid, requests: [] });
  return newObject('MigrationContext', {
    instance_uuid: uuid,
    migration_id: Number(migration.get('id')),
    old_numa_topology: instance.get('numa_topology') ?? null,
    new_numa_topology: null,
    old_pci_devices: instance.get('pci_devices') ?? newObject('PciDeviceList', { objects: [] }),
    new_pci_devices: newObject('PciDeviceList', { objects: [] }),
    old_pci_requests: instance.get('pci_requests') ?? noRequests(),
    new_pci_requests: noRequests(),
    old_resources: instance.get('resources') ?? null,
    new_resources: null,
  });
}

/** Instance.apply_migration_context / revert_migration_context: the `new_` or `old_` values become the instance's. */
export function applyMigrationContext(instance: Instance, prefix: 'new_' | 'old_'): void {
  const context = instance.get('migration_context') as NovaObject | null | undefined;
  if (!context) return;
  for (const field of ['numa_topology', 'pci_requests', 'pci_devices', 'resources'] as const) {
    const key = `${prefix}${field}`;
    instance.set(field, (context.has(key) ? context.get(key) : null) as never);
  }
}

/**
 * What the conductor holds is clean: its replies carry nested objects with their own `changes` (PciDevicePoolList
 * comes back as changed), which would otherwise make every periodic run send a save that changes nothing.
 */
function markSaved(cn: NovaObject): void {
  cn.resetChanges(undefined, true);
}

function setIfChanged(obj: NovaObject, field: string, value: unknown): void {
  const current = obj.get(field);
  if (current === undefined || JSON.stringify(current) !== JSON.stringify(value)) obj.set(field, value as never);
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}
