// The services around the compute manager, in memory: Placement (allocations, provider, inventory, traits), Glance
// images (real docker archives on disk, so the real FakeDriver loads them), the scheduler fanout, and a notifier that
// records instead of publishing.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ImageSource } from '../../../driver/driver';
import { createDockerArchive, tarArchive } from '../../../driver/image-archive';
import type { ProviderPort } from '../../../src/compute/resource-tracker';
import type { ImagePort, PlacementPort, SchedulerPort } from '../../../src/compute/ports';
import type { NotificationAction } from '../../../src/compute/states';
import type { RemoteFailure } from '../../../src/messaging/failure';
import type { RequestContext } from '../../../src/messaging/types';
import type { InstanceNotificationExtras, InstanceNotifier, NotificationPhase } from '../../../src/notifications';
import type { Instance } from '../../../src/objects';
import type {
  ConsumerAllocations,
  Inventories,
  ProviderAllocations,
  ProviderInventories,
  ProviderTraits,
  ResourceProvider,
  TraitChange,
} from '../../../src/placement';

/** One consumer's allocations as placement keeps them (GET /allocations/<consumer> 1.28). */
export interface FakeConsumer {
  allocations: Record<string, { resources: Record<string, number> }>;
  project_id: string;
  user_id: string;
  generation: number;
}

export class FakePlacement implements PlacementPort, ProviderPort {
  /** Consumers whose allocations were deleted, in order. */
  readonly deletedAllocations: string[] = [];
  readonly providers = new Map<string, { name: string; generation: number; inventories: Inventories; traits: string[] }>();

  async deleteAllocationsForConsumer(_ctx: unknown, consumerUuid: string): Promise<boolean> {
    this.deletedAllocations.push(consumerUuid);
    return this.consumers.delete(consumerUuid);
  }

  /** Allocations against providers, as the scheduler left them: provider uuid → consumer uuids. */
  readonly allocations = new Map<string, string[]>();
  /** Consumers with their allocations (what the scheduler and the conductor wrote, what moves change). */
  readonly consumers = new Map<string, FakeConsumer>();
  /** Every POST /allocations the compute made: [source consumer, target consumer]. */
  readonly moves: Array<[string, string]> = [];

  async getProviderAllocations(_ctx: unknown, uuid: string): Promise<ProviderAllocations> {
    const consumers = this.allocations.get(uuid) ?? [];
    const held = [...this.consumers].filter(([, c]) => uuid in c.allocations).map(([id, c]) => [id, { resources: c.allocations[uuid]?.resources ?? {} }]);
    return {
      generation: this.providers.get(uuid)?.generation ?? 0,
      allocations: { ...Object.fromEntries(consumers.map((c) => [c, { resources: { VCPU: 1, MEMORY_MB: 128 } }])), ...Object.fromEntries(held) },
    };
  }

  /** PUT /allocations/<consumer>, as the scheduler claims (resources against one provider). */
  allocate(consumerUuid: string, providerUuid: string, resources: Record<string, number>, owner = { project_id: 'p', user_id: 'u' }): void {
    const generation = (this.consumers.get(consumerUuid)?.generation ?? 0) + 1;
    this.consumers.set(consumerUuid, { allocations: { [providerUuid]: { resources: { ...resources } } }, ...owner, generation });
  }

  async getAllocationsForConsumer(_ctx: unknown, consumerUuid: string): Promise<ConsumerAllocations> {
    const c = this.consumers.get(consumerUuid);
    if (!c) return { allocations: {} };
    return structuredClone({ allocations: c.allocations, consumer_generation: c.generation, project_id: c.project_id, user_id: c.user_id });
  }

  /** report.py move_allocations: the source's allocations replace the target's; the source holds nothing after. */
  async moveAllocations(_ctx: unknown, sourceUuid: string, targetUuid: string): Promise<boolean> {
    this.moves.push([sourceUuid, targetUuid]);
    const source = this.consumers.get(sourceUuid);
    if (!source) return this.consumers.has(targetUuid);
    const generation = (this.consumers.get(targetUuid)?.generation ?? 0) + 1;
    this.consumers.set(targetUuid, { ...structuredClone(source), generation });
    this.consumers.delete(sourceUuid);
    return true;
  }

  /** Every remove_provider_tree_from_instance_allocation: [consumer, root provider]. */
  readonly treeRemovals: Array<[string, string]> = [];

  /** report.py remove_provider_tree_from_instance_allocation (a provider tree here is the one provider). */
  async removeProviderTreeFromInstanceAllocation(_ctx: unknown, consumerUuid: string, rootUuid: string): Promise<boolean> {
    this.treeRemovals.push([consumerUuid, rootUuid]);
    const c = this.consumers.get(consumerUuid);
    if (!c || Object.keys(c.allocations).length === 0) return false;
    delete c.allocations[rootUuid];
    c.generation++;
    return true;
  }

  async ensureResourceProvider(_ctx: unknown, uuid: string, name: string): Promise<ResourceProvider> {
    let rp = this.providers.get(uuid);
    if (!rp) {
      rp = { name, generation: 0, inventories: {}, traits: [] };
      this.providers.set(uuid, rp);
    }
    return { uuid, name: rp.name, generation: rp.generation };
  }

  async getInventories(_ctx: unknown, uuid: string): Promise<ProviderInventories> {
    const rp = this.provider(uuid);
    return { generation: rp.generation, inventories: rp.inventories };
  }

  async setInventories(_ctx: unknown, uuid: string, inventories: Inventories): Promise<ProviderInventories & { readonly changed: boolean }> {
    const rp = this.provider(uuid);
    rp.inventories = structuredClone(inventories);
    rp.generation++;
    return { generation: rp.generation, inventories: rp.inventories, changed: true };
  }

  async setTraits(_ctx: unknown, uuid: string, change: TraitChange): Promise<ProviderTraits & { readonly changed: boolean }> {
    const rp = this.provider(uuid);
    const wanted = new Set(change.wanted);
    const managed = new Set([...change.managed, ...wanted]);
    rp.traits = [...rp.traits.filter((t) => !managed.has(t)), ...wanted].sort();
    rp.generation++;
    return { generation: rp.generation, traits: rp.traits, changed: true };
  }

  private provider(uuid: string): { name: string; generation: number; inventories: Inventories; traits: string[] } {
    const rp = this.providers.get(uuid);
    if (!rp) throw new Error(`fake placement: no resource provider ${uuid}`);
    return rp;
  }
}

/** Glance as the manager sees it: every image is a real one-layer docker archive written on fetch. */
export class FakeImages implements ImagePort {
  readonly fetched: string[] = [];
  readonly deleted: string[] = [];
  readonly uploads: Array<{ imageId: string; bytes: number; properties: Readonly<Record<string, string>> }> = [];

  source(_context: RequestContext, image: Readonly<Record<string, unknown>>): ImageSource {
    const id = String(image['id'] ?? '');
    return {
      id,
      name: String(image['name'] ?? ''),
      containerFormat: String(image['container_format'] ?? ''),
      diskFormat: String(image['disk_format'] ?? ''),
      size: typeof image['size'] === 'number' ? image['size'] : null,
      properties: (image['properties'] as Record<string, unknown> | undefined) ?? {},
      fetch: async () => {
        this.fetched.push(id);
        const { archive } = createDockerArchive({ cmd: ['/bin/sh'], labels: { 'org.openstack.glance.id': id } }, tarArchive([]));
        const path = join(tmpdir(), `berth-compute-test-${id}.${randomBytes(6).toString('hex')}.tar`);
        await writeFile(path, archive);
        return path;
      },
    };
  }

  async show(_context: RequestContext, imageId: string): Promise<Record<string, unknown>> {
    return { id: imageId, name: `image ${imageId}`, container_format: 'docker', disk_format: 'raw', status: 'active' };
  }

  async uploadSnapshot(_context: RequestContext, imageId: string, data: Readable, properties: Readonly<Record<string, string>>): Promise<void> {
    let bytes = 0;
    for await (const chunk of data) bytes += (chunk as Buffer).length;
    this.uploads.push({ imageId, bytes, properties });
  }

  async delete(_context: RequestContext, imageId: string): Promise<void> {
    this.deleted.push(imageId);
  }

  /** What listBackups answers (newest first). */
  backups: string[] = [];

  async listBackups(): Promise<string[]> {
    return [...this.backups];
  }
}

export class FakeScheduler implements SchedulerPort {
  readonly updated: Array<{ requestId: string; uuids: string[] }> = [];
  readonly deleted: Array<{ requestId: string; uuid: string }> = [];
  readonly synced: string[][] = [];

  async updateInstanceInfo(context: RequestContext, instances: readonly Instance[]): Promise<void> {
    this.updated.push({ requestId: context.request_id, uuids: instances.map((i) => String(i.get('uuid'))) });
  }

  async deleteInstanceInfo(context: RequestContext, instanceUuid: string): Promise<void> {
    this.deleted.push({ requestId: context.request_id, uuid: instanceUuid });
  }

  async syncInstanceInfo(_context: RequestContext, instanceUuids: readonly string[]): Promise<void> {
    this.synced.push([...instanceUuids]);
  }
}

export interface RecordedNotification {
  readonly requestId: string;
  readonly instanceUuid: string;
  /** `<action>.<phase>`, e.g. `power_off.start` (the legacy event type without `compute.instance.`). */
  readonly event: string;
  readonly extras: InstanceNotificationExtras;
  /** The instance's vm_state / task_state when it was sent. */
  readonly vmState: unknown;
  readonly taskState: unknown;
}

export interface RecordedException {
  readonly requestId: string;
  readonly method: string;
  readonly error: RemoteFailure;
  readonly args: Record<string, unknown>;
}

export class RecordingNotifier implements InstanceNotifier {
  readonly notifications: RecordedNotification[] = [];
  readonly exceptions: RecordedException[] = [];

  async instanceAction(
    context: RequestContext,
    instance: Instance,
    action: NotificationAction,
    phase: NotificationPhase,
    extras: InstanceNotificationExtras = {},
  ): Promise<void> {
    this.notifications.push({
      requestId: context.request_id,
      instanceUuid: String(instance.get('uuid')),
      event: `${action}.${phase}`,
      extras,
      vmState: instance.get('vm_state'),
      taskState: instance.get('task_state'),
    });
  }

  async exception(context: RequestContext, method: string, error: RemoteFailure, args: Record<string, unknown>): Promise<void> {
    this.exceptions.push({ requestId: context.request_id, method, error, args });
  }

  eventsFor(requestId: string): string[] {
    return this.notifications.filter((n) => n.requestId === requestId).map((n) => n.event);
  }

  /** `<event> <vm_state>/<task_state>` as the legacy payload's state and state_description would say. */
  statesFor(requestId: string): string[] {
    return this.notifications.filter((n) => n.requestId === requestId).map((n) => `${n.event} ${String(n.vmState)}/${String(n.taskState ?? '')}`);
  }
}
