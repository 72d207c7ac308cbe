// From Nova's Instance object to the plain data the runtime layer takes (driver/driver.ts).
import type { FlavorSpec, InstanceRef, InstanceSpec } from '../../driver/driver';
import type { Instance, NovaObject } from '../objects';

/**
 * Nova's Instance.name: `instance_name_template % instance.id`, or `% {fields}` for templates like
 * `uuid-%(uuid)s`; the uuid when the template cannot be applied.
 */
export function instanceName(template: string, instance: Instance): string {
  const id = instance.get('id');
  const uuid = String(instance.get('uuid'));
  try {
    if (/%\(\w+\)/.test(template)) {
      return template.replace(/%\((\w+)\)([sdx])/g, (_, key: string, conv: string) => {
        const value = (instance as NovaObject).get(key);
        if (value === undefined) throw new Error(`no field ${key}`);
        return pyFormat(conv, '', value);
      });
    }
    let used = false;
    const out = template.replace(/%(0?\d*)([sdxX%])/g, (match, width: string, conv: string) => {
      if (conv === '%') return '%';
      if (used || typeof id !== 'number') throw new Error('template needs the integer id');
      used = true;
      return pyFormat(conv, width, id);
    });
    return out;
  } catch {
    return uuid;
  }
}

function pyFormat(conv: string, width: string, value: unknown): string {
  let text: string;
  if (conv === 'x' || conv === 'X') {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new Error('not an integer');
    text = n.toString(16);
    if (conv === 'X') text = text.toUpperCase();
  } else if (conv === 'd') {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new Error('not an integer');
    text = String(n);
  } else {
    text = String(value);
  }
  if (width) {
    const w = Number.parseInt(width, 10);
    text = text.padStart(w, width.startsWith('0') ? '0' : ' ');
  }
  return text;
}

export function instanceRef(template: string, instance: Instance): InstanceRef {
  return { uuid: String(instance.get('uuid')), name: instanceName(template, instance) };
}

export function flavorSpec(flavor: NovaObject): FlavorSpec {
  const num = (field: string): number => {
    const v = flavor.get(field);
    return typeof v === 'number' ? v : Number(v ?? 0);
  };
  const extra = flavor.get('extra_specs');
  const extraSpecs: Record<string, string> = {};
  if (extra && typeof extra === 'object') {
    for (const [k, v] of Object.entries(extra as Record<string, unknown>)) extraSpecs[k] = String(v);
  }
  return {
    name: String(flavor.get('name') ?? ''),
    flavorId: String(flavor.get('flavorid') ?? ''),
    vcpus: num('vcpus'),
    memoryMb: num('memory_mb'),
    rootGb: num('root_gb'),
    ephemeralGb: num('ephemeral_gb'),
    swapMb: num('swap'),
    extraSpecs,
  };
}

export function instanceSpec(template: string, instance: Instance, hasNetwork: boolean): InstanceSpec {
  const flavor = instance.get('flavor') as NovaObject | null | undefined;
  if (!flavor) throw new Error(`instance ${String(instance.get('uuid'))} has no flavor loaded`);
  const metadata: Record<string, string> = {};
  const md = instance.get('metadata');
  if (md && typeof md === 'object') {
    for (const [k, v] of Object.entries(md as Record<string, unknown>)) metadata[k] = String(v);
  }
  const uuid = String(instance.get('uuid'));
  return {
    ...instanceRef(template, instance),
    hostname: String(instance.get('hostname') ?? '') || `host-${uuid.slice(0, 8)}`,
    displayName: String(instance.get('display_name') ?? ''),
    projectId: String(instance.get('project_id') ?? ''),
    userId: String(instance.get('user_id') ?? ''),
    flavor: flavorSpec(flavor),
    metadata,
    hasNetwork,
  };
}
