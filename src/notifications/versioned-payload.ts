// The versioned instance payloads of nova/notifications/objects/instance.py (Zed): InstancePayload's schema filled
// from the Instance, with FlavorPayload 1.4, IpPayload 1.0 and KeypairPayload 1.0 inside, and the fields each action
// payload class adds. Every builder lists fields in Python's order (a class's own fields, then inherited ones).
import type { RequestContext } from '../messaging/types';
import type { RemoteFailure } from '../messaging/failure';
import { formatObjectDateTime, type Instance, type NovaObject } from '../objects';
import { ENUM_VALUES } from '../objects/object-schema';
import { exceptionPayload } from './exception-payload';
import type { InstancePayloadClass } from './instance-actions';
import { instanceNetworkInfo, ipPayloads } from './network-info';
import { payloadObject, type PayloadPrimitive } from './payload-object';

const PAYLOAD_VERSIONS: Readonly<Record<InstancePayloadClass, string>> = {
  InstanceActionPayload: '1.8',
  InstanceCreatePayload: '1.12',
  InstanceActionRebuildPayload: '1.9',
  InstanceActionSnapshotPayload: '1.9',
  InstanceActionResizePrepPayload: '1.3',
};

export interface VersionedPayloadInput {
  readonly payloadClass: InstancePayloadClass;
  readonly context: RequestContext;
  readonly instance: Instance;
  readonly fault?: RemoteFailure | undefined;
  /** BlockDevicePayload list: [] when the manager passed the BDMs (Berth has no volumes), null when it did not. */
  readonly blockDevices: [] | null;
  /** Instance.name (InstanceCreatePayload.instance_name). */
  readonly instanceName: string;
  /** InstanceActionSnapshotPayload.snapshot_image_id. */
  readonly snapshotImageId?: string | undefined;
  /** InstanceActionResizePrepPayload.new_flavor. */
  readonly newFlavor?: NovaObject | undefined;
}

export function instanceActionPayload(input: VersionedPayloadInput): PayloadPrimitive {
  const { payloadClass, instance } = input;
  const own: Record<string, unknown> = {};
  if (payloadClass === 'InstanceCreatePayload') {
    own['keypairs'] = listObjects(instance.get('keypairs')).map(keypairPayload);
    own['tags'] = listObjects(instance.get('tags')).map((tag) => tag.get('tag') ?? null);
    own['trusted_image_certificates'] = trustedCertIds(instance);
    own['instance_name'] = input.instanceName;
  } else if (payloadClass === 'InstanceActionRebuildPayload') {
    own['trusted_image_certificates'] = trustedCertIds(instance);
  } else if (payloadClass === 'InstanceActionSnapshotPayload') {
    own['snapshot_image_id'] = input.snapshotImageId ?? null;
  } else if (payloadClass === 'InstanceActionResizePrepPayload') {
    own['new_flavor'] = input.newFlavor ? flavorPayload(input.newFlavor) : null;
  }
  const data = {
    ...own,
    fault: input.fault ? exceptionPayload(input.fault) : null,
    ...instancePayloadFields(input),
  };
  return payloadObject(payloadClass, PAYLOAD_VERSIONS[payloadClass], data);
}

/** InstancePayload (request_id comes first, from InstanceActionPayload's own fields). */
function instancePayloadFields({ context, instance, blockDevices }: VersionedPayloadInput): Record<string, unknown> {
  const value = (name: string): unknown => (instance as NovaObject).get(name) ?? null;
  const date = (name: string): string | null => {
    const v = value(name);
    return v instanceof Date ? formatObjectDateTime(v) : null;
  };
  const systemMetadata = instance.get('system_metadata') ?? {};
  // No request_id for periodic tasks: their admin context has neither project nor user.
  const hasOwner = Boolean(context.project_id) && Boolean(context.user_id);
  return {
    request_id: hasOwner ? context.request_id : null,
    uuid: value('uuid'),
    user_id: value('user_id'),
    tenant_id: value('project_id'),
    reservation_id: value('reservation_id'),
    display_name: value('display_name'),
    display_description: value('display_description'),
    host_name: value('hostname'),
    host: value('host'),
    node: value('node'),
    os_type: value('os_type'),
    architecture: value('architecture'),
    availability_zone: value('availability_zone'),
    flavor: flavorPayload(instance.get('flavor') as NovaObject | undefined),
    image_uuid: value('image_ref'),
    key_name: value('key_name'),
    kernel_id: value('kernel_id'),
    ramdisk_id: value('ramdisk_id'),
    created_at: date('created_at'),
    launched_at: date('launched_at'),
    terminated_at: date('terminated_at'),
    deleted_at: date('deleted_at'),
    updated_at: date('updated_at'),
    state: value('vm_state'),
    power_state: powerState(value('power_state')),
    task_state: value('task_state'),
    progress: value('progress'),
    ip_addresses: ipPayloads(instanceNetworkInfo(instance)),
    block_devices: blockDevices,
    metadata: instance.get('metadata') ?? {},
    locked: value('locked') ?? false,
    // DiskConfigField: a truthy auto_disk_config is AUTO.
    auto_disk_config: value('auto_disk_config') ? 'AUTO' : 'MANUAL',
    action_initiator_user: context.user_id ?? null,
    action_initiator_project: context.project_id ?? null,
    locked_reason: systemMetadata['locked_reason'] ?? null,
  };
}

/** FlavorPayload 1.4; a field the flavor does not carry (projects, usually) is None, never lazy-loaded. */
function flavorPayload(flavor: NovaObject | undefined): PayloadPrimitive {
  const value = (name: string): unknown => flavor?.get(name) ?? null;
  return payloadObject('FlavorPayload', '1.4', {
    flavorid: value('flavorid'),
    memory_mb: value('memory_mb'),
    vcpus: value('vcpus'),
    root_gb: value('root_gb'),
    ephemeral_gb: value('ephemeral_gb'),
    name: value('name'),
    swap: value('swap'),
    rxtx_factor: value('rxtx_factor'),
    vcpu_weight: value('vcpu_weight'),
    disabled: value('disabled'),
    is_public: value('is_public'),
    extra_specs: value('extra_specs'),
    projects: value('projects'),
    description: value('description'),
  });
}

function keypairPayload(keypair: NovaObject): PayloadPrimitive {
  const value = (name: string): unknown => keypair.get(name) ?? null;
  return payloadObject('KeypairPayload', '1.0', {
    user_id: value('user_id'),
    name: value('name'),
    fingerprint: value('fingerprint'),
    public_key: value('public_key'),
    type: value('type'),
  });
}

/** InstancePowerStateField: the power_state integer as its name (0 pending, 1 running, 4 shutdown, …). */
function powerState(state: unknown): unknown {
  if (typeof state !== 'number') return state;
  return ENUM_VALUES.InstancePowerState[state] ?? state;
}

/** `instance.trusted_certs.ids` when the instance has trusted certs, else None. */
function trustedCertIds(instance: Instance): unknown {
  const certs = instance.get('trusted_certs') as NovaObject | null | undefined;
  return certs ? (certs.get('ids') ?? null) : null;
}

/** The elements of an object list field (KeyPairList, TagList); none when it is not set. */
function listObjects(list: unknown): NovaObject[] {
  const objects = (list as NovaObject | null | undefined)?.get('objects');
  return Array.isArray(objects) ? (objects as NovaObject[]) : [];
}
