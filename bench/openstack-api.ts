// The REST calls the benchmark makes, straight from Node with one Keystone token (no OSC start-up in any number):
// nova-api (servers, services, flavors) and Glance (the image). What the lab's bench.py did through keystoneauth.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request } from 'node:http';

/** The microversion of every servers call: `networks: "none"` needs 2.37. */
export const SERVERS_MICROVERSION = '2.37';
/** Services by uuid (DELETE /os-services/{uuid}) need 2.53. */
const SERVICES_MICROVERSION = '2.53';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${method} ${url}: HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

interface HttpCall {
  readonly method: string;
  readonly url: string;
  readonly headers?: Record<string, string>;
  readonly json?: unknown;
  /** A file streamed as the body (image upload). */
  readonly file?: string;
  readonly timeoutMs?: number;
}

/** One request on its own connection: the control plane's uwsgi closes every connection after a response. */
async function http(call: HttpCall): Promise<HttpResult> {
  const headers: Record<string, string> = { Accept: 'application/json', ...call.headers };
  let body: Buffer | null = null;
  if (call.json !== undefined) {
    body = Buffer.from(JSON.stringify(call.json));
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = String(body.length);
  }
  if (call.file !== undefined) {
    headers['Content-Type'] = 'application/octet-stream';
    headers['Content-Length'] = String((await stat(call.file)).size);
  }
  return new Promise<HttpResult>((resolve, reject) => {
    const req = request(call.url, { method: call.method, headers, agent: false, timeout: call.timeoutMs ?? 120_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${call.method} ${call.url}: no answer in ${call.timeoutMs ?? 120_000} ms`)));
    req.on('error', reject);
    if (call.file !== undefined) {
      createReadStream(call.file).on('error', reject).pipe(req);
    } else {
      req.end(body ?? undefined);
    }
  });
}

/** The openrc variables the benchmark reads (test/e2e/support readOpenrc). */
export interface Credentials {
  readonly OS_AUTH_URL?: string;
  readonly OS_USERNAME?: string;
  readonly OS_PASSWORD?: string;
  readonly OS_PROJECT_NAME?: string;
  readonly OS_USER_DOMAIN_NAME?: string;
  readonly OS_PROJECT_DOMAIN_NAME?: string;
  readonly OS_REGION_NAME?: string;
}

interface CatalogEntry {
  readonly type: string;
  readonly endpoints: readonly { readonly interface: string; readonly region?: string; readonly url: string }[];
}

/** A server as GET /servers/detail lists it (the fields the benchmark reads). */
export interface ServerSummary {
  readonly id: string;
  readonly name: string;
  readonly status: string;
  readonly 'OS-EXT-SRV-ATTR:host'?: string | null;
  readonly fault?: { readonly message?: string };
}

export interface BootRequest {
  /** Nova names the servers `<name>-1 … <name>-N`. */
  readonly name: string;
  readonly imageRef: string;
  readonly flavorRef: string;
  /** Forced with availability_zone `nova:<host>`: the only candidate (admin). */
  readonly host: string;
  readonly count: number;
}

export class OpenStackApi {
  private constructor(
    private readonly token: string,
    readonly computeUrl: string,
    readonly imageUrl: string,
  ) {}

  /** A project-scoped password token and the catalog's compute and image endpoints. */
  static async connect(creds: Credentials): Promise<OpenStackApi> {
    const need = (key: keyof Credentials): string => {
      const value = creds[key];
      if (!value) throw new Error(`openrc has no ${key}`);
      return value;
    };
    const url = `${need('OS_AUTH_URL').replace(/\/$/, '')}/auth/tokens`;
    const res = await http({
      method: 'POST',
      url,
      json: {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: need('OS_USERNAME'), domain: { name: need('OS_USER_DOMAIN_NAME') }, password: need('OS_PASSWORD') } },
          },
          scope: { project: { name: need('OS_PROJECT_NAME'), domain: { name: need('OS_PROJECT_DOMAIN_NAME') } } },
        },
      },
    });
    if (res.status !== 201) throw new ApiError('POST', url, res.status, res.body);
    const token = res.headers['x-subject-token'];
    if (typeof token !== 'string') throw new Error('Keystone issued no X-Subject-Token');
    const catalog = (JSON.parse(res.body) as { token: { catalog: CatalogEntry[] } }).token.catalog;
    const endpoint = (type: string): string => {
      const found = catalog
        .find((entry) => entry.type === type)
        ?.endpoints.find((e) => e.interface === 'public' && (!creds.OS_REGION_NAME || !e.region || e.region === creds.OS_REGION_NAME));
      if (!found) throw new Error(`no public ${type} endpoint in the catalog`);
      return found.url.replace(/\/$/, '');
    };
    return new OpenStackApi(token, endpoint('compute'), endpoint('image'));
  }

  private async call<T>(method: string, url: string, options: { json?: unknown; file?: string; microversion?: string; ok?: number[] } = {}): Promise<T> {
    const headers: Record<string, string> = { 'X-Auth-Token': this.token };
    if (options.microversion) headers['OpenStack-API-Version'] = `compute ${options.microversion}`;
    const res = await http({ method, url, headers, ...(options.json === undefined ? {} : { json: options.json }), ...(options.file === undefined ? {} : { file: options.file }) });
    if (!(options.ok ?? [200, 201, 202, 204]).includes(res.status)) throw new ApiError(method, url, res.status, res.body);
    return (res.body ? JSON.parse(res.body) : undefined) as T;
  }

  /** One POST /servers with min_count = max_count = count. */
  async bootServers(boot: BootRequest): Promise<void> {
    await this.call('POST', `${this.computeUrl}/servers`, {
      microversion: SERVERS_MICROVERSION,
      json: {
        server: {
          name: boot.name,
          imageRef: boot.imageRef,
          flavorRef: boot.flavorRef,
          min_count: boot.count,
          max_count: boot.count,
          networks: 'none',
          availability_zone: `nova:${boot.host}`,
        },
      },
    });
  }

  /** GET /servers/detail of the servers whose name starts with `prefix` (Nova's name filter is a regex). */
  async listServers(prefix: string): Promise<ServerSummary[]> {
    const query = new URLSearchParams({ name: `^${prefix}` });
    const out = await this.call<{ servers: ServerSummary[] }>('GET', `${this.computeUrl}/servers/detail?${query}`, { microversion: SERVERS_MICROVERSION });
    return out.servers;
  }

  /** DELETE /servers/{id}; a server already gone is fine. */
  async deleteServer(id: string): Promise<void> {
    await this.call('DELETE', `${this.computeUrl}/servers/${id}`, { microversion: SERVERS_MICROVERSION, ok: [204, 404] });
  }

  /** The nova-compute service records of `host` (their uuids). */
  async computeServices(host: string): Promise<Array<{ id: string; host: string; state: string; status: string }>> {
    const query = new URLSearchParams({ host, binary: 'nova-compute' });
    const out = await this.call<{ services: Array<{ id: string; host: string; state: string; status: string }> }>('GET', `${this.computeUrl}/os-services?${query}`, {
      microversion: SERVICES_MICROVERSION,
    });
    return out.services;
  }

  /** Deletes the service record, and with it the compute node, its resource provider and the host mapping. */
  async deleteService(id: string): Promise<void> {
    await this.call('DELETE', `${this.computeUrl}/os-services/${id}`, { microversion: SERVICES_MICROVERSION, ok: [204, 404] });
  }

  async createFlavor(flavor: { name: string; vcpus: number; ram: number; disk: number }): Promise<string> {
    const out = await this.call<{ flavor: { id: string } }>('POST', `${this.computeUrl}/flavors`, { json: { flavor } });
    return out.flavor.id;
  }

  async deleteFlavor(id: string): Promise<void> {
    await this.call('DELETE', `${this.computeUrl}/flavors/${id}`, { ok: [202, 204, 404] });
  }

  async findFlavor(name: string): Promise<string | null> {
    const out = await this.call<{ flavors: Array<{ id: string; name: string }> }>('GET', `${this.computeUrl}/flavors?is_public=None`);
    return out.flavors.find((f) => f.name === name)?.id ?? null;
  }

  /** Creates a public docker/raw image, uploads `file`, and resolves with its id once Glance says active. */
  async uploadImage(name: string, file: string): Promise<string> {
    const image = await this.call<{ id: string }>('POST', `${this.imageUrl}/v2/images`, {
      json: { name, container_format: 'docker', disk_format: 'raw', visibility: 'public' },
    });
    await this.call('PUT', `${this.imageUrl}/v2/images/${image.id}/file`, { file });
    for (let i = 0; i < 120; i++) {
      const shown = await this.call<{ status: string }>('GET', `${this.imageUrl}/v2/images/${image.id}`);
      if (shown.status === 'active') return image.id;
      if (shown.status === 'killed' || shown.status === 'deleted') throw new Error(`image ${image.id} went ${shown.status}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`image ${image.id} did not become active`);
  }

  async findImages(name: string): Promise<string[]> {
    const out = await this.call<{ images: Array<{ id: string }> }>('GET', `${this.imageUrl}/v2/images?${new URLSearchParams({ name })}`);
    return out.images.map((i) => i.id);
  }

  async deleteImage(id: string): Promise<void> {
    await this.call('DELETE', `${this.imageUrl}/v2/images/${id}`, { ok: [204, 404] });
  }
}
