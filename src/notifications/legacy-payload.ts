// The legacy (unversioned) instance payload: nova.notifications.base.info_from_instance, key for key and in
// Python's order, with Python's mixed value spellings (str() of an aware created_at, strtime() of the other dates,
// '' for unset ones, '' for a zero progress, image_meta from the system_metadata `image_*` keys).
import type { Instance, NetworkInfo, NovaObject } from '../objects';
import { legacyFixedIps } from './network-info';
import { nullSafeIsotime, nullSafeStr, pyAwareDatetimeStr } from './python-format';

export interface LegacyPayloadInput {
  readonly instance: Instance;
  /** `populate_image_ref_url=True`: the Glance URL of the image, or the bare image ref when no endpoint is known. */
  readonly imageRefUrl: unknown;
  /** Present when the manager passes network_info: adds `fixed_ips`. */
  readonly networkInfo?: NetworkInfo;
  /** extra_usage_info, then exception_to_dict for errors; both override or append keys. */
  readonly extra?: Record<string, unknown>;
}

export function infoFromInstance({ instance, imageRefUrl, networkInfo, extra }: LegacyPayloadInput): Record<string, unknown> {
  const flavor = instance.get('flavor') as NovaObject | undefined;
  const flavorValue = (field: string): unknown => flavor?.get(field) ?? null;
  // instance.get_flavor().get(key, ''): the default only when the flavor does not carry the field at all.
  const flavorGet = (field: string): unknown => (flavor?.has(field) ? flavorValue(field) : '');
  const rootGb = flavorValue('root_gb');
  const ephemeralGb = flavorValue('ephemeral_gb');
  const progress = field(instance, 'progress');
  const info: Record<string, unknown> = {
    tenant_id: field(instance, 'project_id'),
    user_id: field(instance, 'user_id'),
    instance_id: field(instance, 'uuid'),
    display_name: field(instance, 'display_name'),
    reservation_id: field(instance, 'reservation_id'),
    hostname: field(instance, 'hostname'),
    instance_type: flavorGet('name'),
    instance_type_id: field(instance, 'instance_type_id'),
    instance_flavor_id: flavorGet('flavorid'),
    architecture: field(instance, 'architecture'),
    memory_mb: flavorValue('memory_mb'),
    disk_gb: typeof rootGb === 'number' && typeof ephemeralGb === 'number' ? rootGb + ephemeralGb : null,
    vcpus: flavorValue('vcpus'),
    root_gb: rootGb,
    ephemeral_gb: ephemeralGb,
    host: field(instance, 'host'),
    node: field(instance, 'node'),
    availability_zone: field(instance, 'availability_zone'),
    cell_name: nullSafeStr(field(instance, 'cell_name')),
    created_at: pyAwareDatetimeStr(field(instance, 'created_at')),
    terminated_at: nullSafeIsotime(field(instance, 'terminated_at')),
    deleted_at: nullSafeIsotime(field(instance, 'deleted_at')),
    launched_at: nullSafeIsotime(field(instance, 'launched_at')),
    image_ref_url: imageRefUrl,
    os_type: field(instance, 'os_type'),
    kernel_id: field(instance, 'kernel_id'),
    ramdisk_id: field(instance, 'ramdisk_id'),
    state: field(instance, 'vm_state'),
    state_description: nullSafeStr(field(instance, 'task_state')),
    progress: typeof progress === 'number' && progress !== 0 ? Math.trunc(progress) : '',
    access_ip_v4: field(instance, 'access_ip_v4'),
    access_ip_v6: field(instance, 'access_ip_v6'),
  };
  if (networkInfo !== undefined) info['fixed_ips'] = legacyFixedIps(networkInfo);
  info['image_meta'] = imageMeta(instance);
  info['metadata'] = instance.get('metadata') ?? {};
  return { ...info, ...extra };
}

/** nova.notifications.base.image_meta: the system_metadata `image_*` keys without their prefix. */
function imageMeta(instance: Instance): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(instance.get('system_metadata') ?? {})) {
    if (key.startsWith('image_')) meta[key.slice('image_'.length)] = value;
  }
  return meta;
}

/** An Instance field; one that is not set reads as None (populate_schema's set_none, and .get(key, None)). */
function field(instance: Instance, name: string): unknown {
  return (instance as NovaObject).get(name) ?? null;
}
