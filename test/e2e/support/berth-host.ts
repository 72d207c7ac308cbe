// One Berth compute host for one e2e suite: a host name unique to the run, Berth started (and restarted) for it and
// mapped to cell1, servers booted onto it, and everything the suite made there removed afterwards: servers, images,
// flavors, the Berth process, the host's service record and queue, its state directory. Repeated runs leave no hosts.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

import { type BerthExit, type BerthProcess, type ConfigOverrides, startBerth } from './berth-process';
import {
  type Flavor,
  type FlavorSpec,
  type Server,
  createFlavor,
  createServer,
  deleteComputeService,
  deleteFlavor,
  deleteServer,
  waitForComputeService,
  waitForServerDeleted,
  waitForServerStatus,
} from './compute';
import { AIO } from './control-plane';
import { type DockerEngine, sharedDockerEngine } from './docker-engine';
import { type Image, type ImageUpload, deleteImage, uploadImage } from './image';
import { discoverHosts } from './nova-manage';
import { OpenStackCliError } from './openstack-cli';
import { deleteQueues } from './rabbit';

/** `e2e-<suite>-<6 hex>`: unique per run, so hosts of earlier or concurrent runs never get in the way. */
export function uniqueHostName(suite: string): string {
  return `e2e-${suite}-${randomBytes(3).toString('hex')}`;
}

/** `b`'s options over `a`'s, section by section. */
export function mergeConfig(a: ConfigOverrides, b: ConfigOverrides): ConfigOverrides {
  const out: Record<string, Record<string, ConfigOverrides[string][string]>> = {};
  for (const source of [a, b]) {
    for (const [section, options] of Object.entries(source)) out[section] = { ...out[section], ...options };
  }
  return out;
}

export interface BerthHostOptions {
  /** A short word naming the suite (part of the host name). */
  readonly suite: string;
  /** Config overrides for every start of this host. */
  readonly config?: ConfigOverrides;
  /** The engine Berth drives ([docker] host_url); default the machine's shared engine. */
  readonly docker?: DockerEngine;
}

export interface StartOptions {
  /** Overrides for this start only (over the host's). */
  readonly config?: ConfigOverrides;
  /** Run `nova-manage cell_v2 discover_hosts` once the host is up (the first time only); default true. */
  readonly map?: boolean;
  /** How long Berth may take to be up (its log line, then nova-api's service list); default 120 s. */
  readonly upTimeoutMs?: number;
  /**
   * Wait for nova-api to list the service up (default true). A host an operator forced down never shows up, though
   * it runs (and its init_host does its work) all the same: then only Berth's own log line is waited for.
   */
  readonly waitForServiceUp?: boolean;
}

export class BerthHost {
  readonly host: string;
  readonly docker: DockerEngine;
  private current: BerthProcess | null = null;
  private mapped = false;
  private named = 0;
  private readonly servers = new Set<string>();
  private readonly flavors = new Set<string>();
  private readonly images = new Set<string>();

  constructor(private readonly options: BerthHostOptions) {
    this.host = uniqueHostName(options.suite);
    this.docker = options.docker ?? sharedDockerEngine();
  }

  /** The Berth process of the latest start. */
  get berth(): BerthProcess {
    if (!this.current) throw new Error(`berth ${this.host} was never started`);
    return this.current;
  }

  get running(): boolean {
    return this.current !== null && this.current.exit === null;
  }

  get statePath(): string {
    return join(AIO.stateDir, this.host);
  }

  /** A fresh name for something this suite creates (`<host>-<n>-<what>`). */
  name(what: string): string {
    this.named++;
    return `${this.host}-${this.named}-${what}`;
  }

  private baseConfig(): ConfigOverrides {
    // Containers carry their compute host's name: Berth sees (and reaps) only this host's, even on a shared engine.
    return mergeConfig({ docker: { host_url: this.docker.hostUrl } }, this.options.config ?? {});
  }

  /**
   * Starts Berth (again) and waits until it says it is up and nova-api lists the service up; resolves with the
   * milliseconds that took. The first start maps the host to cell1 unless `map` is false.
   */
  async start(options: StartOptions = {}): Promise<number> {
    if (this.running) throw new Error(`berth ${this.host} is already running`);
    const started = Date.now();
    const deadline = started + (options.upTimeoutMs ?? 120_000);
    const berth = await startBerth({ host: this.host, config: mergeConfig(this.baseConfig(), options.config ?? {}) });
    this.current = berth;
    await berth.waitForLog((line) => line.msg === 'berth-compute is up', { timeoutMs: deadline - Date.now(), description: 'berth-compute is up' });
    if (options.waitForServiceUp !== false) {
      await waitForComputeService(this.host, 'up', { intervalMs: 500, timeoutMs: Math.max(deadline - Date.now(), 1_000) });
    }
    const ms = Date.now() - started;
    if (options.map !== false) await this.map();
    return ms;
  }

  /** Maps the host to cell1 (once); the scheduler never picks an unmapped host. */
  async map(): Promise<string> {
    if (this.mapped) return '';
    const report = await discoverHosts();
    this.mapped = true;
    return report;
  }

  /** SIGTERM, as an operator stops it. */
  async stop(graceMs?: number): Promise<BerthExit> {
    return this.berth.stop(graceMs);
  }

  async createFlavor(spec: Omit<FlavorSpec, 'name'> & { readonly name?: string }): Promise<Flavor> {
    const flavor = await createFlavor({ ...spec, name: spec.name ?? this.name('flavor') });
    this.flavors.add(flavor.id);
    return flavor;
  }

  async uploadImage(upload: Omit<ImageUpload, 'name'> & { readonly name?: string }): Promise<Image> {
    const image = await uploadImage({ ...upload, name: upload.name ?? this.name('image') });
    this.images.add(image.id);
    return image;
  }

  /** Something made another way (a snapshot image) that cleanup() must remove too. */
  trackImage(id: string): void {
    this.images.add(id);
  }

  /** Boots a server onto this host without waiting (status BUILD). */
  async createServer(spec: { readonly flavor: string; readonly image: string; readonly name?: string; readonly properties?: Readonly<Record<string, string>> }): Promise<Server> {
    const server = await createServer({ ...spec, name: spec.name ?? this.name('server'), host: this.host });
    this.servers.add(server.id);
    return server;
  }

  /** Boots a server onto this host and waits until it is ACTIVE; resolves with it and the milliseconds it took. */
  async bootServer(spec: Parameters<BerthHost['createServer']>[0]): Promise<{ server: Server; ms: number }> {
    const started = Date.now();
    const created = await this.createServer(spec);
    const server = await waitForServerStatus(created.id, 'ACTIVE', { intervalMs: 500 });
    return { server, ms: Date.now() - started };
  }

  /** Deletes a server and waits until it is gone; resolves with the milliseconds that took. */
  async deleteServer(id: string): Promise<number> {
    const started = Date.now();
    await deleteServer(id);
    await waitForServerDeleted(id, { intervalMs: 500 });
    this.servers.delete(id);
    return Date.now() - started;
  }

  /**
   * Removes everything: servers first (with Berth running, started again if need be, so their containers go too),
   * then Berth, leftover containers, images (Glance and the engine's cache), flavors, the service record (which
   * takes the compute node and its resource provider along), the host's queue and its state directory. Every
   * step is tried; the failures are thrown together at the end.
   */
  async cleanup(): Promise<void> {
    const problems: Error[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        problems.push(new Error(`${what}: ${(err as Error).message}`));
      }
    };
    // Independent CLI calls run side by side: each costs a Python start-up.
    const each = (ids: Iterable<string>, what: string, fn: (id: string) => Promise<unknown>): Promise<unknown> =>
      Promise.all([...ids].map((id) => attempt(`${what} ${id}`, () => fn(id))));
    const servers = [...this.servers];
    if (servers.length > 0 && this.current !== null) {
      if (!this.running) await attempt('start Berth again to delete the servers', () => this.start());
      await each(servers, 'delete server', async (id) => {
        await deleteServer(id);
        await waitForServerDeleted(id, { intervalMs: 1_000 });
      });
    }
    if (this.current) await attempt('stop Berth', () => this.berth.stop());
    await attempt('remove leftover containers', () => this.docker.removeInstanceContainers(servers));
    await Promise.all([
      each(this.images, 'delete image', async (id) => {
        try {
          await deleteImage(id);
        } catch (err) {
          if (!(err instanceof OpenStackCliError && /No Image found|could not be found|No image with a name or ID/i.test(err.stderr))) throw err;
        }
      }),
      attempt('remove cached images', () => this.docker.removeCachedImages(this.images)),
      each(this.flavors, 'delete flavor', deleteFlavor),
      attempt('delete the compute service', () => deleteComputeService(this.host)),
      attempt('delete the host queue', () => deleteQueues([`compute.${this.host}`])),
      attempt('remove the state directory', () => rm(this.statePath, { recursive: true, force: true })),
    ]);
    if (problems.length > 0) throw new AggregateError(problems, `cleanup of ${this.host}: ${problems.map((p) => p.message).join('; ')}`);
  }
}
