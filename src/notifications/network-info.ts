// The instance's network_info (InstanceInfoCache) as the two notification streams show it: the legacy `fixed_ips`
// list (FixedIP dicts plus label and vif_mac) and the versioned `ip_addresses` (IpPayload objects). Python hydrates
// the cached JSON into nova.network.model objects first, which fills defaults and folds unknown keys into `meta`;
// the same is done here.
import { isIP } from 'node:net';
import type { Instance, NetworkInfo, NovaObject } from '../objects';
import { payloadObject, type PayloadPrimitive } from './payload-object';
import { pyStr } from './python-format';

type Dict = Record<string, unknown>;

/** nova.network.model.VIF constructor arguments; any other key lands in the VIF's `meta`. */
const VIF_KEYS = new Set([
  'id', 'address', 'network', 'type', 'details', 'devname', 'ovs_interfaceid', 'qbh_params', 'qbg_params', 'active',
  'vnic_type', 'profile', 'preserve_on_delete', 'delegate_create', 'meta',
]);

/** Instance.get_network_info(): the info cache's VIFs, or none. */
export function instanceNetworkInfo(instance: Instance): NetworkInfo {
  const cache = instance.get('info_cache') as NovaObject | null | undefined;
  const model = cache?.get('network_info');
  return Array.isArray(model) ? (model as NetworkInfo) : [];
}

/** info_from_instance's `fixed_ips`: every fixed IP of every VIF, with the network label and the VIF's MAC. */
export function legacyFixedIps(networkInfo: NetworkInfo): Dict[] {
  const out: Dict[] = [];
  for (const vif of networkInfo) {
    for (const ip of vifFixedIps(vif)) {
      out.push({ ...ip, label: networkOf(vif)?.['label'] ?? null, vif_mac: vif['address'] ?? null });
    }
  }
  return out;
}

/** IpPayload.from_network_info. */
export function ipPayloads(networkInfo: NetworkInfo): PayloadPrimitive[] {
  const out: PayloadPrimitive[] = [];
  for (const vif of networkInfo) {
    for (const ip of vifFixedIps(vif)) {
      out.push(
        payloadObject('IpPayload', '1.0', {
          label: networkOf(vif)?.['label'] ?? null,
          mac: macAddress(vif['address']),
          meta: stringDict(modelMeta(vif, VIF_KEYS)),
          port_uuid: vif['id'] ?? null,
          version: ip['version'],
          address: ipAddress(ip['address']),
          device_name: vif['devname'] ?? null,
        }),
      );
    }
  }
  return out;
}

function networkOf(vif: Dict): Dict | null {
  const network = vif['network'];
  return isDict(network) && Object.keys(network).length > 0 ? network : null;
}

/** VIF.fixed_ips(): the hydrated FixedIPs of the VIF's subnets (none without a network). */
function vifFixedIps(vif: Dict): Dict[] {
  const subnets = networkOf(vif)?.['subnets'];
  if (!Array.isArray(subnets)) return [];
  return subnets.flatMap((subnet: unknown) => {
    const ips = isDict(subnet) ? subnet['ips'] : undefined;
    return Array.isArray(ips) ? ips.filter(isDict).map(fixedIp) : [];
  });
}

/** FixedIP.hydrate: address, type ('fixed'), version, meta, floating_ips (each an IP). */
function fixedIp(raw: Dict): Dict {
  const floating = Array.isArray(raw['floating_ips']) ? raw['floating_ips'] : [];
  const ip = modelIp(raw, 'fixed', new Set(['address', 'type', 'version', 'meta', 'floating_ips']));
  return { ...ip, floating_ips: floating.map((f: unknown) => (isDict(f) && Object.keys(f).length > 0 ? modelIp(f, null) : null)) };
}

/** IP.__init__: address, type, version (from the address when absent), meta. */
function modelIp(raw: Dict, defaultType: string | null, known = new Set(['address', 'type', 'version', 'meta'])): Dict {
  const address = raw['address'] ?? null;
  let version = raw['version'] ?? null;
  if (typeof address === 'string' && address !== '' && !version) version = isIP(address) || null;
  return { address, type: raw['type'] || defaultType, version, meta: modelMeta(raw, known) };
}

/** Model._set_meta: the `meta` dict updated with every key the constructor does not name. */
function modelMeta(raw: Dict, known: ReadonlySet<string>): Dict {
  const meta: Dict = isDict(raw['meta']) ? { ...raw['meta'] } : {};
  for (const [key, value] of Object.entries(raw)) if (!known.has(key)) meta[key] = value;
  return meta;
}

/** DictOfStringsField: every value coerced with str(). */
function stringDict(dict: Dict): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(dict)) out[key] = pyStr(value);
  return out;
}

/** MACAddressField: lower case, `-` separators become `:`. */
function macAddress(value: unknown): unknown {
  return typeof value === 'string' ? value.toLowerCase().replace(/-/g, ':') : value ?? null;
}

/** IPV4AndV6AddressField: str(netaddr.IPAddress(x)), i.e. IPv6 in its compressed lower-case form. */
function ipAddress(value: unknown): unknown {
  if (typeof value !== 'string' || isIP(value) !== 6) return value ?? null;
  try {
    return new URL(`http://[${value}]/`).hostname.slice(1, -1);
  } catch {
    return value;
  }
}

function isDict(value: unknown): value is Dict {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
