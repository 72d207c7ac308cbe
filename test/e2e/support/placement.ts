// Placement through the CLI (python3-osc-placement): resource providers, inventories, usages, traits, allocations.
import { type CliOptions, openstackJson } from './openstack-cli';

/** Zed's Placement (8.0.0) goes up to 1.39; traits need 1.6, and the defaults (1.0) hide them. */
export const PLACEMENT_MICROVERSION = '1.39';

function placement<T>(args: readonly string[], options?: CliOptions): Promise<T> {
  return openstackJson<T>(['--os-placement-api-version', PLACEMENT_MICROVERSION, 'resource', 'provider', ...args], options);
}

export interface ResourceProvider {
  readonly uuid: string;
  readonly name: string;
  readonly generation: number;
  readonly root_provider_uuid: string;
  readonly parent_provider_uuid: string | null;
}

export interface Inventory {
  readonly resource_class: string;
  readonly total: number;
  readonly reserved: number;
  readonly min_unit: number;
  readonly max_unit: number;
  readonly step_size: number;
  readonly allocation_ratio: number;
  readonly used?: number;
}

export interface Allocation {
  readonly resource_provider: string;
  readonly generation: number;
  readonly resources: Readonly<Record<string, number>>;
  readonly project_id?: string;
  readonly user_id?: string;
}

/** Every resource provider, or those named `name` (a compute node's provider is named after its hypervisor_hostname). */
export function listResourceProviders(name?: string, options?: CliOptions): Promise<ResourceProvider[]> {
  return placement(name === undefined ? ['list'] : ['list', '--name', name], options);
}

/** The provider named `name`, or null. */
export async function findResourceProvider(name: string, options?: CliOptions): Promise<ResourceProvider | null> {
  const [provider] = await listResourceProviders(name, options);
  return provider ?? null;
}

/** Inventory by resource class (VCPU, MEMORY_MB, DISK_GB, ...). */
export async function providerInventory(uuid: string, options?: CliOptions): Promise<Record<string, Inventory>> {
  const rows = await placement<Inventory[]>(['inventory', 'list', uuid], options);
  return Object.fromEntries(rows.map((row) => [row.resource_class, row]));
}

/** Usage by resource class. */
export async function providerUsages(uuid: string, options?: CliOptions): Promise<Record<string, number>> {
  const rows = await placement<{ resource_class: string; usage: number }[]>(['usage', 'show', uuid], options);
  return Object.fromEntries(rows.map((row) => [row.resource_class, row.usage]));
}

/** Trait names, sorted. */
export async function providerTraits(uuid: string, options?: CliOptions): Promise<string[]> {
  const rows = await placement<{ name: string }[]>(['trait', 'list', uuid], options);
  return rows.map((row) => row.name).sort();
}

/** The allocations of a consumer (an instance uuid), one per provider. */
export function consumerAllocations(consumerUuid: string, options?: CliOptions): Promise<Allocation[]> {
  return placement<Allocation[]>(['allocation', 'show', consumerUuid], options);
}
