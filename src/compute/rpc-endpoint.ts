// The compute RPC API a Zed nova-compute hosts (nova/compute/rpcapi.py 6.1 + baseapi 1.1), mapped onto the manager.
// Arguments are checked the way Python checks them when it calls the method: a missing or unexpected keyword is a
// TypeError, an `instance` that is not an Instance an AttributeError — and the caller always gets that failure.
import * as os from 'node:os';
import type { IncomingCall, RpcEndpoint, RpcHandler } from '../messaging/types';
import { deserializeEntity, NovaObject, OBJECT_VERSIONS, ObjectDecodeError, type Flavor, type Instance, type Migration } from '../objects';
import { RemoteFailure } from '../messaging/failure';
import type { ComputeManager } from './manager';
import { builtinError, notImplemented, novaError } from './exceptions';

/** Python signatures of ComputeManager's RPC methods (positional names after `context`; optional ones have defaults). */
interface Signature {
  readonly required: readonly string[];
  readonly optional?: readonly string[];
}

const SIGNATURES: Readonly<Record<string, Signature>> = {
  add_fixed_ip_to_instance: { required: ['network_id', 'instance'] },
  attach_interface: { required: ['instance', 'network_id', 'port_id', 'requested_ip', 'tag'] },
  attach_volume: { required: ['instance', 'bdm'] },
  backup_instance: { required: ['image_id', 'instance', 'backup_type', 'rotation'] },
  build_and_run_instance: {
    required: ['instance', 'image', 'request_spec', 'filter_properties', 'accel_uuids'],
    optional: ['admin_password', 'injected_files', 'requested_networks', 'security_groups', 'block_device_mapping', 'node', 'limits', 'host_list'],
  },
  cache_images: { required: ['image_ids'] },
  check_can_live_migrate_destination: { required: ['instance', 'block_migration', 'disk_over_commit', 'migration', 'limits'] },
  check_can_live_migrate_source: { required: ['instance', 'dest_check_data'] },
  check_instance_shared_storage: { required: ['data'] },
  confirm_resize: { required: ['instance', 'migration'] },
  confirm_snapshot_based_resize_at_source: { required: ['instance', 'migration'] },
  detach_interface: { required: ['instance', 'port_id'] },
  detach_volume: { required: ['volume_id', 'instance', 'attachment_id'] },
  drop_move_claim_at_destination: { required: ['instance'] },
  external_instance_event: { required: ['instances', 'events'] },
  finish_resize: { required: ['disk_info', 'image', 'instance', 'migration', 'request_spec'] },
  finish_revert_resize: { required: ['instance', 'migration', 'request_spec'] },
  finish_revert_snapshot_based_resize_at_source: { required: ['instance', 'migration'] },
  finish_snapshot_based_resize_at_dest: { required: ['instance', 'migration', 'snapshot_id'] },
  get_console_output: { required: ['instance', 'tail_length'] },
  get_diagnostics: { required: ['instance'] },
  get_host_uptime: { required: [] },
  get_instance_diagnostics: { required: ['instance'] },
  get_mks_console: { required: ['console_type', 'instance'] },
  get_rdp_console: { required: ['console_type', 'instance'] },
  get_serial_console: { required: ['console_type', 'instance'] },
  get_spice_console: { required: ['console_type', 'instance'] },
  get_vnc_console: { required: ['console_type', 'instance'] },
  host_maintenance_mode: { required: ['host', 'mode'] },
  host_power_action: { required: ['action'] },
  inject_network_info: { required: ['instance'] },
  live_migration: { required: ['dest', 'instance', 'block_migration', 'migration', 'migrate_data'] },
  live_migration_abort: { required: ['instance', 'migration_id'] },
  live_migration_force_complete: { required: ['instance'] },
  pause_instance: { required: ['instance'] },
  post_live_migration_at_destination: { required: ['instance', 'block_migration'] },
  pre_live_migration: { required: ['instance', 'disk', 'migrate_data'] },
  prep_resize: {
    required: ['image', 'instance', 'flavor', 'request_spec', 'filter_properties', 'node', 'clean_shutdown', 'migration', 'host_list'],
  },
  prep_snapshot_based_resize_at_dest: { required: ['instance', 'flavor', 'nodename', 'migration', 'limits'] },
  prep_snapshot_based_resize_at_source: { required: ['instance', 'migration'], optional: ['snapshot_id'] },
  quiesce_instance: { required: ['instance'] },
  reboot_instance: { required: ['instance', 'block_device_info', 'reboot_type'] },
  rebuild_instance: {
    required: ['instance', 'orig_image_ref', 'image_ref', 'injected_files', 'new_pass', 'orig_sys_metadata', 'bdms', 'recreate', 'on_shared_storage', 'preserve_ephemeral', 'migration', 'scheduled_node', 'limits', 'request_spec', 'accel_uuids'],
    optional: ['reimage_boot_volume'],
  },
  remove_fixed_ip_from_instance: { required: ['address', 'instance'] },
  remove_volume_connection: { required: ['volume_id', 'instance'] },
  rescue_instance: { required: ['instance', 'rescue_password', 'rescue_image_ref', 'clean_shutdown'] },
  reserve_block_device_name: { required: ['instance', 'device', 'volume_id', 'disk_bus', 'device_type', 'tag', 'multiattach'] },
  resize_instance: { required: ['instance', 'image', 'migration', 'flavor', 'clean_shutdown', 'request_spec'] },
  restore_instance: { required: ['instance'] },
  resume_instance: { required: ['instance'] },
  revert_resize: { required: ['instance', 'migration', 'request_spec'] },
  revert_snapshot_based_resize_at_dest: { required: ['instance', 'migration'] },
  rollback_live_migration_at_destination: { required: ['instance', 'destroy_disks', 'migrate_data'] },
  set_admin_password: { required: ['instance', 'new_pass'] },
  set_host_enabled: { required: ['enabled'] },
  shelve_instance: { required: ['instance', 'image_id', 'clean_shutdown', 'accel_uuids'] },
  shelve_offload_instance: { required: ['instance', 'clean_shutdown', 'accel_uuids'] },
  snapshot_instance: { required: ['image_id', 'instance'] },
  soft_delete_instance: { required: ['instance'] },
  start_instance: { required: ['instance'] },
  stop_instance: { required: ['instance', 'clean_shutdown'] },
  suspend_instance: { required: ['instance'] },
  swap_volume: { required: ['old_volume_id', 'new_volume_id', 'instance', 'new_attachment_id'] },
  terminate_instance: { required: ['instance', 'bdms'] },
  trigger_crash_dump: { required: ['instance'] },
  unpause_instance: { required: ['instance'] },
  unquiesce_instance: { required: ['instance'], optional: ['mapping'] },
  unrescue_instance: { required: ['instance'] },
  unshelve_instance: { required: ['instance', 'image', 'filter_properties', 'node', 'request_spec', 'accel_uuids'] },
  validate_console_port: { required: ['instance', 'port', 'console_type'] },
  volume_snapshot_create: { required: ['instance', 'volume_id', 'create_info'] },
  volume_snapshot_delete: { required: ['instance', 'volume_id', 'snapshot_id', 'delete_info'] },
};

/** Compute RPC API version Berth implements (Zed). */
export const COMPUTE_RPC_VERSION = '6.1';

function pyTypeName(value: unknown): string {
  if (value === null || value === undefined) return 'NoneType';
  if (typeof value === 'string') return 'str';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (Array.isArray(value)) return 'list';
  return 'dict';
}

/** inspect.getcallargs' list: `'a', 'b' and 'c'` (no serial comma, unlike CPython's own call error). */
function quoteList(names: readonly string[]): string {
  const q = names.map((n) => `'${n}'`);
  if (q.length === 1) return q[0] as string;
  return `${q.slice(0, -1).join(', ')} and ${q[q.length - 1]}`;
}

/**
 * Binds the call's kwargs to the Python signature. The TypeError is worded as inspect.getcallargs words it: Nova's
 * wrap_exception calls it on the failed call's arguments, and its TypeError replaces the interpreter's.
 */
export function bindArguments(method: string, sig: Signature, raw: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const allowed = new Set([...sig.required, ...(sig.optional ?? [])]);
  for (const key of Object.keys(raw)) {
    if (!allowed.has(key)) throw builtinError('TypeError', `${method}() got an unexpected keyword argument '${key}'`);
  }
  const missing = sig.required.filter((name) => !(name in raw));
  if (missing.length > 0) {
    const plural = missing.length === 1 ? 'argument' : 'arguments';
    throw builtinError('TypeError', `${method}() missing ${missing.length} required positional ${plural}: ${quoteList(missing)}`);
  }
  const bound: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) bound[key] = deserializeArgument(key, value);
  return bound;
}

const OVO_EXCEPTIONS = 'oslo_versionedobjects.exception';

/**
 * The dispatcher's serializer.deserialize_entity: a primitive of another namespace, an unknown class or another
 * major version fails with oslo.versionedobjects' own exception; a malformed one with the ValueError of its coercion.
 */
function deserializeArgument(name: string, value: unknown): unknown {
  let decoded: unknown;
  try {
    decoded = deserializeEntity(value, name);
  } catch (err) {
    if (!(err instanceof ObjectDecodeError)) throw err;
    if (err.osloClass !== null) throw new RemoteFailure(err.osloClass, OVO_EXCEPTIONS, err.message);
    throw builtinError('ValueError', err.message);
  }
  if (decoded instanceof NovaObject && !Object.hasOwn(OBJECT_VERSIONS, decoded.name)) {
    throw new RemoteFailure('UnsupportedObjectError', OVO_EXCEPTIONS, `Unsupported object type ${decoded.name}`, {
      kwargs: { objtype: decoded.name },
    });
  }
  return decoded;
}

function asInstance(value: unknown): Instance {
  if (value instanceof NovaObject && value.name === 'Instance' && typeof value.get('uuid') === 'string') {
    return value as Instance;
  }
  throw builtinError('AttributeError', `'${pyTypeName(value)}' object has no attribute 'uuid'`);
}

/** A Flavor or Migration argument; anything else fails as Python's first attribute access on it would. */
function asObjectOf<T extends NovaObject>(value: unknown, name: 'Flavor' | 'Migration', attribute: string): T {
  if (value instanceof NovaObject && value.name === name) return value as T;
  throw builtinError('AttributeError', `'${value instanceof NovaObject ? value.name : pyTypeName(value)}' object has no attribute '${attribute}'`);
}

function asNullableObject(value: unknown): NovaObject | null {
  return value instanceof NovaObject ? value : null;
}

function asDict(value: unknown, what: string): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value) || value instanceof NovaObject) {
    throw builtinError('AttributeError', `'${pyTypeName(value)}' object has no attribute 'get' (${what})`);
  }
  return value as Record<string, unknown>;
}

function asString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw builtinError('TypeError', `${what} must be a string, not ${pyTypeName(value)}`);
  return value;
}

/** Builds the oslo endpoints (compute 6.1 and baseapi 1.1) for the RPC server. */
export function computeEndpoints(manager: ComputeManager): RpcEndpoint[] {
  const methods: Record<string, RpcHandler> = {};
  const define = (name: string, fn: (args: Record<string, unknown>, call: IncomingCall) => Promise<unknown>): void => {
    const sig = SIGNATURES[name];
    if (!sig) throw new Error(`no signature for ${name}`);
    methods[name] = async (call) => fn(bindArguments(name, sig, call.args), call);
  };

  define('build_and_run_instance', (a, call) =>
    manager.buildAndRunInstance(call.context, {
      instance: asInstance(a['instance']),
      image: asDict(a['image'], 'image'),
      requestSpec: a['request_spec'] ?? null,
      filterProperties: asDict(a['filter_properties'], 'filter_properties'),
      adminPassword: typeof a['admin_password'] === 'string' ? a['admin_password'] : null,
      injectedFiles: a['injected_files'] ?? [],
      requestedNetworks: asNullableObject(a['requested_networks']),
      securityGroups: a['security_groups'] ?? null,
      blockDeviceMapping: asNullableObject(a['block_device_mapping']),
      node: typeof a['node'] === 'string' ? a['node'] : null,
      limits: a['limits'] ?? null,
      hostList: a['host_list'] ?? null,
      accelUuids: a['accel_uuids'] ?? [],
    }),
  );
  define('terminate_instance', (a, call) => manager.terminateInstance(call.context, asInstance(a['instance'])));
  define('stop_instance', (a, call) =>
    manager.runSimpleOperation(call.context, 'stop_instance', asInstance(a['instance']), { cleanShutdown: a['clean_shutdown'] !== false }),
  );
  for (const name of ['start_instance', 'pause_instance', 'unpause_instance', 'suspend_instance', 'resume_instance']) {
    define(name, (a, call) => manager.runSimpleOperation(call.context, name, asInstance(a['instance'])));
  }
  define('reboot_instance', (a, call) =>
    manager.rebootInstance(call.context, asInstance(a['instance']), a['reboot_type'] === 'SOFT' ? 'SOFT' : 'HARD'),
  );
  define('snapshot_instance', (a, call) =>
    manager.snapshotInstance(call.context, asInstance(a['instance']), asString(a['image_id'], 'image_id')),
  );
  define('backup_instance', (a, call) => {
    const rotation = Number(a['rotation']);
    if (!Number.isInteger(rotation)) throw builtinError('ValueError', `invalid literal for int() with base 10: '${String(a['rotation'])}'`);
    return manager.backupInstance(call.context, asInstance(a['instance']), asString(a['image_id'], 'image_id'), String(a['backup_type']), rotation);
  });
  define('rebuild_instance', (a, call) =>
    manager.rebuildInstance(call.context, asInstance(a['instance']), {
      imageRef: typeof a['image_ref'] === 'string' && a['image_ref'] ? a['image_ref'] : null,
      recreate: a['recreate'] === true,
      migration: a['migration'] instanceof NovaObject && a['migration'].name === 'Migration' ? (a['migration'] as Migration) : null,
      onSharedStorage: typeof a['on_shared_storage'] === 'boolean' ? a['on_shared_storage'] : null,
      scheduledNode: typeof a['scheduled_node'] === 'string' && a['scheduled_node'] ? a['scheduled_node'] : null,
      adminPassword: typeof a['new_pass'] === 'string' ? a['new_pass'] : null,
      injectedFiles: a['injected_files'],
    }),
  );
  // Resize on this host (src/compute/resize.ts); each step casts the next one to our own queue.
  const migrationOf = (a: Record<string, unknown>): Migration => asObjectOf<Migration>(a['migration'], 'Migration', 'status');
  define('prep_resize', (a, call) =>
    manager.resize.prepResize(call.context, {
      image: asDict(a['image'], 'image'),
      instance: asInstance(a['instance']),
      flavor: asObjectOf<Flavor>(a['flavor'], 'Flavor', 'id'),
      requestSpec: asNullableObject(a['request_spec']),
      filterProperties: asDict(a['filter_properties'], 'filter_properties'),
      node: typeof a['node'] === 'string' ? a['node'] : null,
      cleanShutdown: a['clean_shutdown'] !== false,
      migration: migrationOf(a),
      hostList: a['host_list'] ?? null,
    }),
  );
  define('resize_instance', (a, call) =>
    manager.resize.resizeInstance(call.context, {
      instance: asInstance(a['instance']),
      image: asDict(a['image'], 'image'),
      migration: migrationOf(a),
      flavor: asObjectOf<Flavor>(a['flavor'], 'Flavor', 'id'),
      cleanShutdown: a['clean_shutdown'] !== false,
      requestSpec: asNullableObject(a['request_spec']),
    }),
  );
  define('finish_resize', (a, call) =>
    manager.resize.finishResize(call.context, {
      instance: asInstance(a['instance']),
      image: asDict(a['image'], 'image'),
      migration: migrationOf(a),
      diskInfo: a['disk_info'] ?? null,
      requestSpec: asNullableObject(a['request_spec']),
    }),
  );
  define('confirm_resize', (a, call) => manager.resize.confirmResize(call.context, { instance: asInstance(a['instance']), migration: migrationOf(a) }));
  define('revert_resize', (a, call) =>
    manager.resize.revertResize(call.context, { instance: asInstance(a['instance']), migration: migrationOf(a), requestSpec: asNullableObject(a['request_spec']) }),
  );
  define('finish_revert_resize', (a, call) =>
    manager.resize.finishRevertResize(call.context, { instance: asInstance(a['instance']), migration: migrationOf(a), requestSpec: asNullableObject(a['request_spec']) }),
  );
  define('get_console_output', (a, call) => manager.getConsoleOutput(call.context, asInstance(a['instance']), a['tail_length']));
  define('get_instance_diagnostics', (a, call) => manager.getInstanceDiagnostics(call.context, asInstance(a['instance'])));
  define('get_diagnostics', (a, call) => manager.getDiagnostics(call.context, asInstance(a['instance'])));
  define('set_admin_password', (a, call) => manager.setAdminPassword(call.context, asInstance(a['instance'])));
  define('get_host_uptime', async () => hostUptime());

  // Consoles: a container has no VNC/SPICE/serial/RDP/MKS console; Nova with [vnc] disabled says the same.
  for (const name of ['get_vnc_console', 'get_spice_console', 'get_serial_console', 'get_rdp_console', 'get_mks_console']) {
    define(name, async (a) => {
      asInstance(a['instance']);
      throw novaError('ConsoleTypeUnavailable', { console_type: String(a['console_type']) });
    });
  }
  define('validate_console_port', async (a) => {
    asInstance(a['instance']);
    return false;
  });
  define('attach_interface', async (a) => {
    const instance = asInstance(a['instance']);
    throw novaError('AttachInterfaceNotSupported', { instance_uuid: instance.get('uuid') });
  });
  define('set_host_enabled', async (a) => (a['enabled'] ? 'enabled' : 'disabled'));
  define('cache_images', async (a, call) => manager.imageCache.cacheImages(call.context, a['image_ids']));
  define('external_instance_event', async (a, call) => {
    // Neutron/Cinder events; a Berth instance has no ports or volumes to wait for, so there is nothing to do.
    const events = Array.isArray(a['events']) ? a['events'] : [];
    for (const e of events) {
      if (e instanceof NovaObject) {
        manager.logEvent(call.context, String(e.get('instance_uuid')), String(e.get('name')), String(e.get('status')));
      }
    }
  });

  // Everything else a Zed nova-compute hosts: volumes, interfaces, rescue, shelve, live migration, cross-cell resize.
  // A CALL fails with NotImplementedError; a CAST on an instance goes through Nova's decorators with that error
  // (fault, event, task_state reverted), so nothing is left in a task state.
  for (const name of Object.keys(SIGNATURES)) {
    if (methods[name]) continue;
    define(name, async (a, call) => {
      const error = notImplemented(`${name} is not supported by Berth`);
      const instance = a['instance'];
      if (!call.isCall && instance instanceof NovaObject && instance.name === 'Instance') {
        return manager.failUnsupportedCast(call.context, instance as Instance, name, error);
      }
      throw error;
    });
  }

  const baseapi: Record<string, RpcHandler> = {
    ping: async (call) => ({ service: 'compute', arg: call.args['arg'] ?? null }),
    get_backdoor_port: async () => null,
  };
  return [
    { namespace: null, version: COMPUTE_RPC_VERSION, methods },
    { namespace: 'baseapi', version: '1.1', methods: baseapi },
  ];
}

/** uptime(1)'s line, as Nova's libvirt driver returns it. */
function hostUptime(): string {
  const now = new Date();
  const up = os.uptime();
  const days = Math.floor(up / 86400);
  const hours = Math.floor((up % 86400) / 3600);
  const minutes = Math.floor((up % 3600) / 60);
  const load = os.loadavg().map((l) => l.toFixed(2)).join(', ');
  const clock = now.toTimeString().slice(0, 8);
  const upText = days > 0 ? `${days} days, ${String(hours).padStart(2, ' ')}:${String(minutes).padStart(2, '0')}` : `${String(hours).padStart(2, ' ')}:${String(minutes).padStart(2, '0')}`;
  return ` ${clock} up ${upText},  0 users,  load average: ${load}`;
}
