// Endpoint lookup in a service catalog, as keystoneauth does it: the first interface of `valid_interfaces` that has
// an endpoint of the service type in the region wins. Two shapes exist: a Keystone v3 token's catalog
// (`endpoints: [{interface, region_id, url}]`) and the v2-style catalog nova-api forwards in the RPC context
// (`_context_service_catalog`: `endpoints: [{region, publicURL, internalURL, adminURL}]`).

export const DEFAULT_VALID_INTERFACES: readonly string[] = Object.freeze(['internal', 'public']);

export interface EndpointFilter {
  readonly serviceType: string;
  /** In order of preference; `internalURL` is accepted as `internal`. */
  readonly interfaces: readonly string[];
  /** When set, only endpoints of this region match. */
  readonly region?: string | undefined;
}

export class EndpointNotFound extends Error {
  override readonly name = 'EndpointNotFound';
  readonly serviceType: string;

  constructor(filter: EndpointFilter) {
    const region = filter.region === undefined ? 'any region' : `region ${filter.region}`;
    super(
      `No endpoint of service type '${filter.serviceType}' with interface ${filter.interfaces.join(' or ')} ` +
        `in ${region} in the service catalog`,
    );
    this.serviceType = filter.serviceType;
  }
}

/** `internalURL` → `internal`, `Public` → `public`. */
export function normalizeInterface(name: string): string {
  return name.toLowerCase().replace(/url$/, '');
}

/** The URL of the first matching endpoint, or null. Entries of any other shape are skipped, never thrown on. */
export function selectEndpoint(catalog: unknown, filter: EndpointFilter): string | null {
  if (!Array.isArray(catalog)) return null;
  const services = catalog.filter(
    (entry): entry is { endpoints: unknown[] } =>
      isRecord(entry) && entry['type'] === filter.serviceType && Array.isArray(entry['endpoints']),
  );
  for (const wanted of filter.interfaces.map(normalizeInterface)) {
    for (const service of services) {
      for (const endpoint of service.endpoints) {
        if (!isRecord(endpoint) || !regionMatches(endpoint, filter.region)) continue;
        const url = endpointUrl(endpoint, wanted);
        if (url !== null) return url;
      }
    }
  }
  return null;
}

function endpointUrl(endpoint: Record<string, unknown>, wanted: string): string | null {
  const v3 = endpoint['interface'];
  if (typeof v3 === 'string') {
    return normalizeInterface(v3) === wanted && typeof endpoint['url'] === 'string' ? endpoint['url'] : null;
  }
  const v2 = endpoint[`${wanted}URL`];
  return typeof v2 === 'string' ? v2 : null;
}

function regionMatches(endpoint: Record<string, unknown>, region: string | undefined): boolean {
  return region === undefined || endpoint['region_id'] === region || endpoint['region'] === region;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
