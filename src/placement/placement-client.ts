// The Placement calls a compute host makes (nova-compute-protocol.md §6; Nova's scheduler/client/report.py), with
// Nova's microversions. Stateless: every update re-reads the provider's generation, skips the PUT when nothing
// changed, and on a concurrent update re-reads and retries like Nova's @retries (4 attempts). It never touches
// aggregates: nova-api and nova-manage own them.
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '../log';
import type { HttpClient, HttpMethod } from '../identity/http-client';
import type { KeystoneSession } from '../identity/keystone-session';
import { InvalidResponse, RequestError, type FailedRequest } from '../identity/request-error';
import { requestIdHeaders, requestLogFields, type RequestIds } from '../identity/request-id';
import { inventoriesEqual, type Inventories, type InventoryRecord } from './inventory';
import {
  AllocationMoveFailed,
  InventoryInUse,
  ResourceProviderInUse,
  ResourceProviderNameConflict,
  ResourceProviderUpdateConflict,
  TraitCreationFailed,
} from './placement-errors';

export const PLACEMENT_SERVICE_TYPE = 'placement';

/** The microversion of each call, as Nova Zed's report client sends them (§6.2, §6.3). */
export const PLACEMENT_MICROVERSIONS = Object.freeze({
  providerTree: '1.14',
  getProvider: '1.14',
  createProvider: '1.20',
  traits: '1.6',
  setInventories: '1.26',
  consumerAllocations: '1.28',
});

/** Nova's @retries: the first try and three more. */
export const MAX_UPDATE_ATTEMPTS = 4;

export interface ResourceProvider {
  readonly uuid: string;
  readonly name: string;
  readonly generation: number;
  readonly parent_provider_uuid?: string | null;
  readonly root_provider_uuid?: string;
}

export interface ProviderInventories {
  readonly generation: number;
  readonly inventories: Inventories;
}

export interface ProviderTraits {
  readonly generation: number;
  readonly traits: readonly string[];
}

export interface ConsumerAllocations {
  /** Keyed by resource provider UUID. */
  readonly allocations: Readonly<
    Record<string, { readonly generation?: number; readonly resources: Readonly<Record<string, number>> }>
  >;
  readonly consumer_generation?: number | null;
  readonly project_id?: string;
  readonly user_id?: string;
}

export interface ProviderAllocations {
  readonly generation: number;
  /** Keyed by consumer UUID. */
  readonly allocations: Readonly<Record<string, { readonly resources: Readonly<Record<string, number>> }>>;
}

export interface TraitChange {
  /** Traits the provider must have. */
  readonly wanted: Iterable<string>;
  /** Traits Berth decides about: those not wanted are removed; traits outside this set (and `wanted`) are kept. */
  readonly managed: Iterable<string>;
}

export interface PlacementClientOptions {
  readonly logger?: Logger;
  /** Retry n waits a random time up to (n-1) × this, like Nova's uniform(0, retry × 2 s). Default 2000. */
  readonly conflictRetryDelayMs?: number;
}

interface CallOptions {
  readonly version?: string;
  readonly json?: unknown;
}

export class PlacementClient {
  private readonly http: HttpClient;
  private readonly logger: Logger;
  private readonly conflictRetryDelayMs: number;

  constructor(
    private readonly session: KeystoneSession,
    options: PlacementClientOptions = {},
  ) {
    this.http = session.http.defaults({ headers: { Accept: 'application/json' } });
    this.logger = options.logger ?? silentLogger();
    this.conflictRetryDelayMs = options.conflictRetryDelayMs ?? 2000;
  }

  /** GET /resource_providers?in_tree=U: U and every provider in its tree; empty when U does not exist. */
  async getProviderTree(ctx: RequestIds, uuid: string): Promise<ResourceProvider[]> {
    const path = `/resource_providers?in_tree=${encodeURIComponent(uuid)}`;
    const data = await this.call(ctx, 'GET', path, { version: PLACEMENT_MICROVERSIONS.providerTree });
    return providerList(data, get(path));
  }

  /** GET /resource_providers/U; null when placement has no such provider. */
  async getResourceProvider(ctx: RequestIds, uuid: string): Promise<ResourceProvider | null> {
    const path = `/resource_providers/${encodeURIComponent(uuid)}`;
    try {
      const data = await this.call(ctx, 'GET', path, { version: PLACEMENT_MICROVERSIONS.getProvider });
      return provider(data, get(path));
    } catch (err) {
      if (err instanceof RequestError && err.status === 404) return null;
      throw err;
    }
  }

  /**
   * The root provider U named `name`, created when its tree is empty. A name held by another provider is fatal
   * for this node (ResourceProviderNameConflict, naming the stale provider); a UUID created concurrently is read.
   */
  async ensureResourceProvider(ctx: RequestIds, uuid: string, name: string): Promise<ResourceProvider> {
    const existing = (await this.getProviderTree(ctx, uuid)).find((rp) => rp.uuid === uuid);
    if (existing !== undefined) return existing;
    const path = '/resource_providers';
    try {
      const created = await this.call(ctx, 'POST', path, {
        version: PLACEMENT_MICROVERSIONS.createProvider,
        json: { uuid, name },
      });
      this.logger.info({ ...requestLogFields(ctx), rp_uuid: uuid, rp_name: name }, 'created resource provider');
      return provider(created, { method: 'POST', url: path });
    } catch (err) {
      if (!(err instanceof RequestError) || err.status !== 409) throw err;
      // Nova's test (report.py _create_resource_provider): the detail names the duplicate column.
      if (JSON.stringify(err.response.body).includes('Conflicting resource provider name:')) {
        throw new ResourceProviderNameConflict(uuid, name, await this.findUuidByName(ctx, name), { cause: err });
      }
      const raced = await this.getResourceProvider(ctx, uuid);
      if (raced === null) throw err;
      return raced;
    }
  }

  /** GET /resource_providers/U/inventories (no microversion, as Nova). */
  async getInventories(ctx: RequestIds, uuid: string): Promise<ProviderInventories> {
    const path = `/resource_providers/${encodeURIComponent(uuid)}/inventories`;
    return providerInventories(await this.call(ctx, 'GET', path, {}), get(path));
  }

  /**
   * Makes U's inventory exactly `inventories` (an empty record removes all). No PUT when placement already has
   * it. 409 placement.inventory.inuse → InventoryInUse; any other 409 is a stale generation: re-read and retry.
   */
  async setInventories(
    ctx: RequestIds,
    uuid: string,
    inventories: Inventories,
  ): Promise<ProviderInventories & { readonly changed: boolean }> {
    const path = `/resource_providers/${encodeURIComponent(uuid)}/inventories`;
    let lastConflict: RequestError | undefined;
    for (let attempt = 1; attempt <= MAX_UPDATE_ATTEMPTS; attempt++) {
      await this.pauseBeforeRetry(attempt);
      const current = await this.getInventories(ctx, uuid);
      if (inventoriesEqual(current.inventories, inventories)) return { ...current, changed: false };
      try {
        const data = await this.call(ctx, 'PUT', path, {
          version: PLACEMENT_MICROVERSIONS.setInventories,
          json: { resource_provider_generation: current.generation, inventories },
        });
        this.logger.info(
          { ...requestLogFields(ctx), rp_uuid: uuid, generation: current.generation, inventories },
          'updated inventory',
        );
        return { ...providerInventories(data, { method: 'PUT', url: path }), changed: true };
      } catch (err) {
        if (!(err instanceof RequestError) || err.status !== 409) throw err;
        if (err.errorCode === 'placement.inventory.inuse') {
          throw new InventoryInUse(uuid, detailOf(err), { cause: err });
        }
        lastConflict = err;
        this.logger.info(
          { ...requestLogFields(ctx), rp_uuid: uuid, attempt, error: detailOf(err) },
          'inventory update conflicted; re-reading the provider',
        );
      }
    }
    throw new ResourceProviderUpdateConflict(uuid, 'inventory', MAX_UPDATE_ATTEMPTS, { cause: lastConflict });
  }

  /** GET /resource_providers/U/traits (1.6). */
  async getTraits(ctx: RequestIds, uuid: string): Promise<ProviderTraits> {
    const path = `/resource_providers/${encodeURIComponent(uuid)}/traits`;
    const data = await this.call(ctx, 'GET', path, { version: PLACEMENT_MICROVERSIONS.traits });
    return providerTraits(data, get(path));
  }

  /**
   * Adds the wanted traits and removes the managed-but-unwanted ones, keeping every trait someone else set.
   * Missing CUSTOM_ traits are created first. No PUT when nothing changes; a 409 re-reads and retries.
   */
  async setTraits(
    ctx: RequestIds,
    uuid: string,
    change: TraitChange,
  ): Promise<ProviderTraits & { readonly changed: boolean }> {
    const wanted = new Set(change.wanted);
    const managed = new Set([...change.managed, ...wanted]);
    const path = `/resource_providers/${encodeURIComponent(uuid)}/traits`;
    let lastConflict: RequestError | undefined;
    for (let attempt = 1; attempt <= MAX_UPDATE_ATTEMPTS; attempt++) {
      await this.pauseBeforeRetry(attempt);
      const current = await this.getTraits(ctx, uuid);
      const have = new Set(current.traits);
      const next = [...current.traits.filter((t) => !managed.has(t)), ...wanted].sort();
      if (next.length === have.size && next.every((t) => have.has(t))) return { ...current, changed: false };
      const adding = [...wanted].filter((t) => !have.has(t));
      await this.ensureTraits(ctx, adding);
      try {
        const data = await this.call(ctx, 'PUT', path, {
          version: PLACEMENT_MICROVERSIONS.traits,
          json: { resource_provider_generation: current.generation, traits: next },
        });
        this.logger.info({ ...requestLogFields(ctx), rp_uuid: uuid, traits: next }, 'updated traits');
        return { ...providerTraits(data, { method: 'PUT', url: path }), changed: true };
      } catch (err) {
        if (!(err instanceof RequestError) || err.status !== 409) throw err;
        lastConflict = err;
        this.logger.info(
          { ...requestLogFields(ctx), rp_uuid: uuid, attempt, error: detailOf(err) },
          'trait update conflicted; re-reading the provider',
        );
      }
    }
    throw new ResourceProviderUpdateConflict(uuid, 'traits', MAX_UPDATE_ATTEMPTS, { cause: lastConflict });
  }

  /** GET /allocations/<consumer> (1.28); a consumer placement does not know has empty allocations. */
  async getAllocationsForConsumer(ctx: RequestIds, consumerUuid: string): Promise<ConsumerAllocations> {
    const path = `/allocations/${encodeURIComponent(consumerUuid)}`;
    const data = await this.call(ctx, 'GET', path, { version: PLACEMENT_MICROVERSIONS.consumerAllocations });
    if (!isRecord(data) || !isRecord(data['allocations'])) throw invalid(get(path), 'no allocations object');
    return data as unknown as ConsumerAllocations;
  }

  /**
   * Nova's move_allocations: the source consumer's allocations become the target's (replacing what it held) and the
   * source ends with none, in one POST /allocations (1.28). True when moved, or when the target holds allocations
   * and the source none (moved before). A consumer generation conflict is AllocationMoveFailed; another concurrent
   * update re-reads both and retries (@retries); any other refusal, or running out of retries, is false.
   */
  async moveAllocations(ctx: RequestIds, sourceConsumer: string, targetConsumer: string): Promise<boolean> {
    const path = '/allocations';
    let lastConflict: RequestError | undefined;
    for (let attempt = 1; attempt <= MAX_UPDATE_ATTEMPTS; attempt++) {
      await this.pauseBeforeRetry(attempt);
      const source = await this.getAllocationsForConsumer(ctx, sourceConsumer);
      const target = await this.getAllocationsForConsumer(ctx, targetConsumer);
      const hasSource = Object.keys(source.allocations).length > 0;
      if (Object.keys(target.allocations).length > 0 && !hasSource) {
        this.logger.info(
          { ...requestLogFields(ctx), source_consumer: sourceConsumer, target_consumer: targetConsumer },
          'Allocations not found for consumer %s; assuming they were already moved to consumer %s',
          sourceConsumer,
          targetConsumer,
        );
        return true;
      }
      const body = {
        [sourceConsumer]: {
          allocations: {},
          project_id: source.project_id,
          user_id: source.user_id,
          consumer_generation: source.consumer_generation,
        },
        [targetConsumer]: {
          allocations: Object.fromEntries(
            Object.entries(source.allocations).map(([rp, a]) => [rp, { resources: a.resources }]),
          ),
          project_id: source.project_id,
          user_id: source.user_id,
          consumer_generation: target.consumer_generation ?? null,
        },
      };
      try {
        await this.call(ctx, 'POST', path, { version: PLACEMENT_MICROVERSIONS.consumerAllocations, json: body });
        this.logger.info(
          { ...requestLogFields(ctx), source_consumer: sourceConsumer, target_consumer: targetConsumer },
          'moved allocations',
        );
        return true;
      } catch (err) {
        if (!(err instanceof RequestError) || err.status !== 409) {
          if (err instanceof RequestError) {
            this.logger.warn(
              { ...requestLogFields(ctx), consumer_uuid: targetConsumer, status: err.status, error: detailOf(err) },
              'Unable to post allocations for consumer %s',
              targetConsumer,
            );
            return false;
          }
          throw err;
        }
        if (err.errorCode === 'placement.concurrent_update' && detailOf(err).includes('consumer generation conflict')) {
          throw new AllocationMoveFailed(sourceConsumer, targetConsumer, detailOf(err), { cause: err });
        }
        if (err.errorCode !== 'placement.concurrent_update') {
          this.logger.warn(
            { ...requestLogFields(ctx), consumer_uuid: targetConsumer, status: err.status, error: detailOf(err) },
            'Unable to post allocations for consumer %s',
            targetConsumer,
          );
          return false;
        }
        lastConflict = err;
        this.logger.info(
          { ...requestLogFields(ctx), attempt, error: detailOf(err) },
          'allocation move conflicted with another update of the providers; re-reading',
        );
      }
    }
    // Nova's @retries gives up with False.
    this.logger.warn(
      { ...requestLogFields(ctx), attempts: MAX_UPDATE_ATTEMPTS, error: lastConflict ? detailOf(lastConflict) : null },
      'Failed scheduler client operation move_allocations: out of retries',
    );
    return false;
  }

  /**
   * Nova's remove_provider_tree_from_instance_allocation: the consumer keeps every allocation except those against the
   * tree rooted at `rootProviderUuid`, written back with PUT /allocations/<consumer> (1.28, with the consumer
   * generation read just before; an empty set is allowed from 1.28 on). False, with Nova's error log, when the
   * consumer has no allocations at all or placement refuses the PUT; true when written, or when nothing referenced
   * the tree (a warning, as Nova). Evacuation: the source's share goes when it comes back, the destination's when
   * the evacuation fails there.
   */
  async removeProviderTreeFromInstanceAllocation(ctx: RequestIds, consumerUuid: string, rootProviderUuid: string): Promise<boolean> {
    const log = { ...requestLogFields(ctx), consumer_uuid: consumerUuid, rp_uuid: rootProviderUuid };
    const current = await this.getAllocationsForConsumer(ctx, consumerUuid);
    if (Object.keys(current.allocations).length === 0) {
      this.logger.error(log, 'Expected to find current allocations for %s, but found none.', consumerUuid);
      return false;
    }
    const tree = new Set((await this.getProviderTree(ctx, rootProviderUuid)).map((rp) => rp.uuid));
    const kept = Object.entries(current.allocations).filter(([rp]) => !tree.has(rp));
    if (kept.length === Object.keys(current.allocations).length) {
      this.logger.warn(log, 'Expected to find allocations referencing resource provider tree rooted at %s for %s, but found none.', rootProviderUuid, consumerUuid);
      return true;
    }
    const path = `/allocations/${encodeURIComponent(consumerUuid)}`;
    const body = {
      allocations: Object.fromEntries(kept.map(([rp, a]) => [rp, { resources: a.resources }])),
      consumer_generation: current.consumer_generation ?? null,
      project_id: current.project_id,
      user_id: current.user_id,
    };
    try {
      await this.call(ctx, 'PUT', path, { version: PLACEMENT_MICROVERSIONS.consumerAllocations, json: body });
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      this.logger.warn({ ...log, status: err.status, error: detailOf(err) }, 'Failed to save allocation for %s. Got HTTP %s', consumerUuid, err.status);
      return false;
    }
    this.logger.info(log, 'removed the allocations of %s against provider tree %s', consumerUuid, rootProviderUuid);
    return true;
  }

  /** DELETE /allocations/<consumer> (no microversion): true when deleted, false when there was nothing (404). */
  async deleteAllocationsForConsumer(ctx: RequestIds, consumerUuid: string): Promise<boolean> {
    const deleted = await this.deleteTolerating404(ctx, `/allocations/${encodeURIComponent(consumerUuid)}`);
    if (deleted) this.logger.info({ ...requestLogFields(ctx), consumer_uuid: consumerUuid }, 'deleted allocations');
    return deleted;
  }

  /** GET /resource_providers/U/allocations (1.0): every consumer's allocation against U. */
  async getProviderAllocations(ctx: RequestIds, uuid: string): Promise<ProviderAllocations> {
    const path = `/resource_providers/${encodeURIComponent(uuid)}/allocations`;
    const data = await this.call(ctx, 'GET', path, {});
    if (!isRecord(data) || !isRecord(data['allocations'])) throw invalid(get(path), 'no allocations object');
    return {
      generation: generationOf(data, get(path)),
      allocations: data['allocations'] as ProviderAllocations['allocations'],
    };
  }

  /** DELETE /resource_providers/U: true when deleted, false when absent; 409 → ResourceProviderInUse. */
  async deleteResourceProvider(ctx: RequestIds, uuid: string): Promise<boolean> {
    try {
      const deleted = await this.deleteTolerating404(ctx, `/resource_providers/${encodeURIComponent(uuid)}`);
      if (deleted) this.logger.info({ ...requestLogFields(ctx), rp_uuid: uuid }, 'deleted resource provider');
      return deleted;
    } catch (err) {
      if (err instanceof RequestError && err.status === 409) throw new ResourceProviderInUse(uuid, { cause: err });
      throw err;
    }
  }

  /** GET /traits?name=in:… then PUT /traits/CUSTOM_… for the missing custom ones (1.6). */
  private async ensureTraits(ctx: RequestIds, traits: readonly string[]): Promise<void> {
    if (traits.length === 0) return;
    const path = `/traits?name=in:${traits.map(encodeURIComponent).join(',')}`;
    const data = await this.call(ctx, 'GET', path, { version: PLACEMENT_MICROVERSIONS.traits });
    if (!isRecord(data) || !Array.isArray(data['traits'])) throw invalid(get(path), 'no traits list');
    const known = new Set(data['traits'] as unknown[]);
    for (const trait of traits.filter((t) => !known.has(t))) {
      if (!trait.startsWith('CUSTOM_')) {
        throw new TraitCreationFailed(
          trait,
          'placement knows no such standard trait; only CUSTOM_ ones can be created',
        );
      }
      try {
        await this.call(ctx, 'PUT', `/traits/${encodeURIComponent(trait)}`, {
          version: PLACEMENT_MICROVERSIONS.traits,
        });
      } catch (err) {
        throw new TraitCreationFailed(trait, err instanceof Error ? err.message : String(err), { cause: err });
      }
    }
  }

  private async findUuidByName(ctx: RequestIds, name: string): Promise<string | null> {
    try {
      const path = `/resource_providers?name=${encodeURIComponent(name)}`;
      const data = await this.call(ctx, 'GET', path, { version: PLACEMENT_MICROVERSIONS.getProvider });
      return providerList(data, get(path))[0]?.uuid ?? null;
    } catch (err) {
      this.logger.warn({ ...requestLogFields(ctx), err }, 'could not look up the provider holding our name');
      return null;
    }
  }

  private async deleteTolerating404(ctx: RequestIds, path: string): Promise<boolean> {
    try {
      await this.call(ctx, 'DELETE', path, {});
      return true;
    } catch (err) {
      if (err instanceof RequestError && err.status === 404) return false;
      throw err;
    }
  }

  private async pauseBeforeRetry(attempt: number): Promise<void> {
    if (attempt === 1 || this.conflictRetryDelayMs <= 0) return;
    await sleep(Math.random() * (attempt - 1) * this.conflictRetryDelayMs);
  }

  private async call(ctx: RequestIds, method: HttpMethod, path: string, options: CallOptions): Promise<unknown> {
    const endpoint = await this.session.getEndpoint({ serviceType: PLACEMENT_SERVICE_TYPE });
    const url = `${endpoint.replace(/\/+$/, '')}${path}`;
    const res = await this.session.withToken((token) =>
      this.http.request<unknown>({
        method,
        url,
        headers: {
          'X-Auth-Token': token,
          ...(options.version === undefined ? {} : { 'OpenStack-API-Version': `placement ${options.version}` }),
          ...requestIdHeaders(ctx),
        },
        ...(options.json === undefined ? {} : { json: options.json }),
        log: requestLogFields(ctx),
      }),
    );
    return res.data;
  }
}

function detailOf(err: RequestError): string {
  const first = (err.response.body as { errors?: Array<{ detail?: unknown }> } | null)?.errors?.[0]?.detail;
  return typeof first === 'string' ? first.trim() : err.message;
}

function get(path: string): FailedRequest {
  return { method: 'GET', url: path };
}

function invalid(at: FailedRequest, detail: string): InvalidResponse {
  return new InvalidResponse(at, 200, detail);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function generationOf(data: Record<string, unknown>, at: FailedRequest): number {
  const generation = data['resource_provider_generation'];
  if (typeof generation !== 'number') throw invalid(at, 'no resource_provider_generation');
  return generation;
}

function provider(data: unknown, at: FailedRequest): ResourceProvider {
  if (!isRecord(data) || typeof data['uuid'] !== 'string' || typeof data['name'] !== 'string') {
    throw invalid(at, 'not a resource provider');
  }
  if (typeof data['generation'] !== 'number') throw invalid(at, 'resource provider without generation');
  return data as unknown as ResourceProvider;
}

function providerList(data: unknown, at: FailedRequest): ResourceProvider[] {
  if (!isRecord(data) || !Array.isArray(data['resource_providers'])) throw invalid(at, 'no resource_providers list');
  return (data['resource_providers'] as unknown[]).map((rp) => provider(rp, at));
}

function providerInventories(data: unknown, at: FailedRequest): ProviderInventories {
  if (!isRecord(data) || !isRecord(data['inventories'])) throw invalid(at, 'no inventories object');
  return {
    generation: generationOf(data, at),
    inventories: data['inventories'] as Record<string, InventoryRecord>,
  };
}

function providerTraits(data: unknown, at: FailedRequest): ProviderTraits {
  if (!isRecord(data) || !Array.isArray(data['traits'])) throw invalid(at, 'no traits list');
  if (!(data['traits'] as unknown[]).every((t) => typeof t === 'string')) throw invalid(at, 'a trait is not a string');
  return { generation: generationOf(data, at), traits: data['traits'] as string[] };
}
