// Nova through the CLI: servers and their status, compute services, flavors, instance actions and events.
import { type CliOptions, OpenStackCliError, openstack, openstackJson } from './openstack-cli';
import { type WaitOptions, waitFor } from './wait';

/** `openstack server show -f json` (the keys a test reads; the CLI prints more). */
export interface Server {
  readonly id: string;
  readonly name: string;
  readonly status: string;
  readonly 'OS-EXT-STS:vm_state': string;
  readonly 'OS-EXT-STS:task_state': string | null;
  readonly 'OS-EXT-STS:power_state': number | string;
  readonly 'OS-EXT-SRV-ATTR:host': string | null;
  readonly 'OS-EXT-SRV-ATTR:hypervisor_hostname': string | null;
  readonly 'OS-EXT-SRV-ATTR:instance_name': string;
  readonly fault?: { code: number; message: string; details?: string; created: string };
  readonly [key: string]: unknown;
}

/** The server went to a status it was not asked to wait for (ERROR), or vanished. */
export class ServerStatusError extends Error {
  override readonly name = 'ServerStatusError';
  constructor(
    message: string,
    readonly server: Server | null,
  ) {
    super(message);
  }
}

export function showServer(idOrName: string, options?: CliOptions): Promise<Server> {
  return openstackJson<Server>(['server', 'show', idOrName], options);
}

/** `server show`, or null when Nova says there is no such server. */
export async function findServer(idOrName: string, options?: CliOptions): Promise<Server | null> {
  try {
    return await showServer(idOrName, options);
  } catch (err) {
    if (err instanceof OpenStackCliError && /No server with a name or ID|could not be found/i.test(err.stderr)) return null;
    throw err;
  }
}

export interface ServerWaitOptions extends WaitOptions, CliOptions {
  /** Also wait until the server is on this compute host (a move). */
  readonly host?: string;
}

/**
 * Waits until the server's status is `status` (and no task is running, and it is on `options.host` when given). A
 * server that goes to ERROR (when waiting for something else) or vanishes ends the wait at once with a
 * ServerStatusError carrying its fault.
 */
export function waitForServerStatus(id: string, status: string, options: ServerWaitOptions = {}): Promise<Server> {
  const { host, ...cli } = options;
  return waitFor(
    `server ${id} to be ${status}${host === undefined ? '' : ` on ${host}`}`,
    async () => {
      const server = await findServer(id, cli);
      if (server === null) throw new ServerStatusError(`server ${id} vanished while waiting for ${status}`, null);
      const there = host === undefined || server['OS-EXT-SRV-ATTR:host'] === host;
      if (server.status === status && server['OS-EXT-STS:task_state'] === null && there) return { done: true, value: server };
      if (server.status === 'ERROR' && status !== 'ERROR') {
        throw new ServerStatusError(
          `server ${id} went to ERROR while waiting for ${status}: ${server.fault?.message ?? 'no fault recorded'}`,
          server,
        );
      }
      return { done: false, seen: { status: server.status, task_state: server['OS-EXT-STS:task_state'], host: server['OS-EXT-SRV-ATTR:host'] } };
    },
    { timeoutMs: 120_000, ...cli },
  );
}

export interface ServerSpec {
  readonly name: string;
  readonly flavor: string;
  readonly image: string;
  /** The compute host the boot is forced onto (`--availability-zone nova:<host>`, admin only). */
  readonly host: string;
  /** Server metadata (`--property`). */
  readonly properties?: Readonly<Record<string, string>>;
}

/**
 * `openstack server create --nic none --availability-zone nova:<host>`: no ports (Berth binds none), and the boot goes
 * to that host whatever else is registered. Resolves with what the CLI printed (status BUILD); it does not wait.
 */
export function createServer(spec: ServerSpec, options?: CliOptions): Promise<Server> {
  const args = ['server', 'create', '--flavor', spec.flavor, '--image', spec.image, '--nic', 'none'];
  args.push('--availability-zone', `nova:${spec.host}`);
  for (const [key, value] of Object.entries(spec.properties ?? {})) args.push('--property', `${key}=${value}`);
  return openstackJson<Server>([...args, spec.name], options);
}

/** `openstack server delete` without waiting; a server that is already gone is fine. */
export async function deleteServer(id: string, options?: CliOptions): Promise<void> {
  try {
    await openstack(['server', 'delete', id], options);
  } catch (err) {
    if (err instanceof OpenStackCliError && /No server with a name or ID|could not be found/i.test(err.stderr)) return;
    throw err;
  }
}

/** Waits until `server show` no longer finds the server. */
export function waitForServerDeleted(id: string, options: ServerWaitOptions = {}): Promise<void> {
  return waitFor(
    `server ${id} to be deleted`,
    async () => {
      const server = await findServer(id, options);
      if (server === null) return { done: true, value: undefined };
      if (server.status === 'ERROR') {
        throw new ServerStatusError(`server ${id} went to ERROR while deleting: ${server.fault?.message ?? ''}`, server);
      }
      return { done: false, seen: { status: server.status, task_state: server['OS-EXT-STS:task_state'] } };
    },
    { timeoutMs: 120_000, ...options },
  );
}

/** A row of `openstack compute service list -f json`. */
export interface ComputeService {
  readonly ID: number | string;
  readonly Binary: string;
  readonly Host: string;
  readonly Zone: string;
  readonly Status: 'enabled' | 'disabled';
  readonly State: 'up' | 'down';
  readonly 'Updated At': string | null;
}

export function listComputeServices(
  filter: { readonly host?: string; readonly binary?: string } = {},
  options?: CliOptions,
): Promise<ComputeService[]> {
  const args = ['compute', 'service', 'list'];
  if (filter.host !== undefined) args.push('--host', filter.host);
  if (filter.binary !== undefined) args.push('--service', filter.binary);
  return openstackJson<ComputeService[]>(args, options);
}

/** Waits until HOST's service (default nova-compute) is reported `state` by nova-api. */
export function waitForComputeService(
  host: string,
  state: 'up' | 'down',
  options: WaitOptions & CliOptions & { readonly binary?: string } = {},
): Promise<ComputeService> {
  const binary = options.binary ?? 'nova-compute';
  return waitFor(
    `${binary} on ${host} to be ${state}`,
    async () => {
      const [service] = await listComputeServices({ host, binary }, options);
      if (service?.State === state) return { done: true, value: service };
      return { done: false, seen: service ?? 'no service record' };
    },
    { timeoutMs: 90_000, intervalMs: 2_000, ...options },
  );
}

/** Deletes HOST's nova-compute service record (and with it the compute node and its resource provider). */
export async function deleteComputeService(host: string, options?: CliOptions): Promise<void> {
  for (const service of await listComputeServices({ host, binary: 'nova-compute' }, options)) {
    await openstack(['compute', 'service', 'delete', String(service.ID)], options);
  }
}

/** `openstack flavor show/create -f json`. */
export interface Flavor {
  readonly id: string;
  readonly name: string;
  readonly vcpus: number;
  readonly ram: number;
  readonly disk: number;
  readonly properties: Readonly<Record<string, string>>;
  readonly [key: string]: unknown;
}

export interface FlavorSpec {
  readonly name: string;
  readonly vcpus: number;
  readonly ramMb: number;
  readonly diskGb: number;
  /** Extra specs, e.g. { 'docker:cap_add': 'NET_ADMIN' }. */
  readonly properties?: Readonly<Record<string, string>>;
}

export function createFlavor(spec: FlavorSpec, options?: CliOptions): Promise<Flavor> {
  const args = ['flavor', 'create', '--vcpus', String(spec.vcpus), '--ram', String(spec.ramMb), '--disk', String(spec.diskGb)];
  for (const [key, value] of Object.entries(spec.properties ?? {})) args.push('--property', `${key}=${value}`);
  return openstackJson<Flavor>([...args, spec.name], options);
}

export async function deleteFlavor(idOrName: string, options?: CliOptions): Promise<void> {
  await openstack(['flavor', 'delete', idOrName], options);
}

/** A row of `openstack server event list --long -f json`: one instance action. */
export interface InstanceActionSummary {
  readonly 'Request ID': string;
  readonly 'Server ID': string;
  readonly Action: string;
  readonly 'Start Time': string;
  readonly Message: string | null;
  readonly 'Project ID': string;
  readonly 'User ID': string;
}

/** One event of an instance action (e.g. compute__do_build_and_run_instance). */
export interface InstanceActionEvent {
  readonly event: string;
  readonly start_time: string;
  readonly finish_time: string | null;
  readonly result: string | null;
  readonly traceback: string | null;
  readonly [key: string]: unknown;
}

/** `openstack server event show -f json`. */
export interface InstanceAction {
  readonly action: string;
  readonly request_id: string;
  readonly instance_uuid: string;
  readonly message: string | null;
  readonly start_time: string;
  readonly events: readonly InstanceActionEvent[];
  readonly [key: string]: unknown;
}

/** The server's instance actions, oldest first. */
export async function listInstanceActions(server: string, options?: CliOptions): Promise<InstanceActionSummary[]> {
  const rows = await openstackJson<InstanceActionSummary[]>(['server', 'event', 'list', '--long', server], options);
  return rows.sort((a, b) => a['Start Time'].localeCompare(b['Start Time']));
}

export function showInstanceAction(server: string, requestId: string, options?: CliOptions): Promise<InstanceAction> {
  return openstackJson<InstanceAction>(['server', 'event', 'show', server, requestId], options);
}

/** The server's instance actions with their events, oldest first (the `event show`s run side by side). */
export async function instanceActionsWithEvents(server: string, options?: CliOptions): Promise<InstanceAction[]> {
  const rows = await listInstanceActions(server, options);
  return Promise.all(rows.map((row) => showInstanceAction(server, row['Request ID'], options)));
}
