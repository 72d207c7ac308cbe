import assert from 'node:assert/strict';
import nock from 'nock';
import { InvalidResponse, RequestError } from '../../../src/identity/request-error';
import { PlacementClient } from '../../../src/placement/placement-client';
import {
  InventoryInUse,
  ResourceProviderInUse,
  ResourceProviderNameConflict,
  ResourceProviderUpdateConflict,
  TraitCreationFailed,
} from '../../../src/placement/placement-errors';
import { buildComputeInventory } from '../../../src/placement/inventory';
import { collectingLogger, interceptTokens, PLACEMENT, passwordSession, useNock } from '../identity/keystone-fixtures';

const U = 'c0c0c0c0-1111-4222-8333-444444444444';
const STALE = 'dead0000-1111-4222-8333-444444444444';
const CONSUMER = 'a1a1a1a1-1111-4222-8333-444444444444';
const CTX = { request_id: 'req-11111111-2222-4333-8444-555555555555' };
const GLOBAL_CTX = { request_id: CTX.request_id, global_request_id: 'req-99999999-2222-4333-8444-555555555555' };

const inventory = buildComputeInventory({
  vcpus: 16,
  memoryMb: 64298,
  diskGb: 450,
  reservedHostCpus: 0,
  reservedHostMemoryMb: 512,
  reservedHostDiskMb: 0,
  initialCpuAllocationRatio: 16,
  initialRamAllocationRatio: 1.5,
  initialDiskAllocationRatio: 1,
});

const rp = (uuid: string, name: string, generation = 0) => ({
  uuid,
  name,
  generation,
  parent_provider_uuid: null,
  root_provider_uuid: uuid,
  links: [],
});

const conflict = (code: string, detail: string) => ({
  errors: [{ status: 409, title: 'Conflict', detail, code, request_id: 'req-p' }],
});

/** nock for placement with the headers every call must carry; `version` null = no microversion header. */
function placement(version: string | null, ctx: { request_id: string; global_request_id?: string } = CTX) {
  const reqheaders: Record<string, string> = {
    'x-auth-token': 'tok-1',
    accept: 'application/json',
    'x-openstack-request-id': ctx.global_request_id ?? ctx.request_id,
  };
  if (version !== null) reqheaders['openstack-api-version'] = `placement ${version}`;
  return nock(PLACEMENT, { reqheaders, badheaders: version === null ? ['openstack-api-version'] : [] });
}

/** A body matcher for nock (its types do not take readonly records). */
function asJson(value: unknown): nock.DataMatcherMap {
  return JSON.parse(JSON.stringify(value)) as nock.DataMatcherMap;
}

function client(): PlacementClient {
  return new PlacementClient(passwordSession(), { conflictRetryDelayMs: 0 });
}

describe('placement/placement-client', () => {
  useNock();
  beforeEach(() => interceptTokens(1));
  afterEach(() => {
    const pending = nock.pendingMocks().filter((m) => !m.includes('/v3/auth/tokens'));
    nock.cleanAll();
    assert.deepEqual(pending, [], 'every expected request was made');
  });

  describe('providers', () => {
    it('getProviderTree: GET /resource_providers?in_tree=U at 1.14', async () => {
      placement('1.14')
        .get('/resource_providers')
        .query({ in_tree: U })
        .reply(200, { resource_providers: [rp(U, 'n1', 3)] });
      const tree = await client().getProviderTree(CTX, U);
      assert.deepEqual(
        tree.map((p) => [p.uuid, p.name, p.generation]),
        [[U, 'n1', 3]],
      );
    });

    it('sends the global request id when the context has one', async () => {
      placement('1.14', GLOBAL_CTX)
        .get('/resource_providers')
        .query({ in_tree: U })
        .reply(200, { resource_providers: [] });
      assert.deepEqual(await client().getProviderTree(GLOBAL_CTX, U), []);
    });

    it('getResourceProvider: 200 → the provider, 404 → null', async () => {
      placement('1.14').get(`/resource_providers/${U}`).reply(200, rp(U, 'n1'));
      placement('1.14')
        .get(`/resource_providers/${U}`)
        .reply(404, { errors: [{ status: 404 }] });
      const c = client();
      assert.equal((await c.getResourceProvider(CTX, U))?.name, 'n1');
      assert.equal(await c.getResourceProvider(CTX, U), null);
    });

    it('ensureResourceProvider: an existing provider is returned without a POST', async () => {
      placement('1.14')
        .get('/resource_providers')
        .query({ in_tree: U })
        .reply(200, { resource_providers: [rp(U, 'n1', 7)] });
      assert.equal((await client().ensureResourceProvider(CTX, U, 'n1')).generation, 7);
    });

    it('ensureResourceProvider: an empty tree → POST {uuid, name} at 1.20, returning the new provider', async () => {
      placement('1.14').get('/resource_providers').query({ in_tree: U }).reply(200, { resource_providers: [] });
      placement('1.20').post('/resource_providers', { uuid: U, name: 'n1' }).reply(200, rp(U, 'n1'));
      const { logger, lines } = collectingLogger();
      const created = await new PlacementClient(passwordSession(), { logger }).ensureResourceProvider(CTX, U, 'n1');
      assert.deepEqual([created.uuid, created.name, created.generation], [U, 'n1', 0]);
      assert.ok(lines.some((l) => l.includes('created resource provider') && l.includes(CTX.request_id)));
    });

    it('ensureResourceProvider: 409 on the name → ResourceProviderNameConflict naming the stale provider', async () => {
      placement('1.14').get('/resource_providers').query({ in_tree: U }).reply(200, { resource_providers: [] });
      placement('1.20')
        .post('/resource_providers')
        .reply(409, conflict('placement.duplicate_name', 'Conflicting resource provider name: n1 already exists.'));
      placement('1.14')
        .get('/resource_providers')
        .query({ name: 'n1' })
        .reply(200, { resource_providers: [rp(STALE, 'n1')] });
      const err = await client()
        .ensureResourceProvider(CTX, U, 'n1')
        .catch((e: unknown) => e);
      assert.ok(err instanceof ResourceProviderNameConflict);
      assert.equal(err.name, 'ResourceProviderNameConflict');
      assert.equal(err.staleUuid, STALE);
      assert.equal(err.providerName, 'n1');
      assert.match(err.message, new RegExp(`already used by resource provider ${STALE}`));
      assert.ok(err.cause instanceof RequestError);
    });

    it('ensureResourceProvider: 409 on the uuid (created concurrently) → GET it at 1.14 and go on', async () => {
      placement('1.14').get('/resource_providers').query({ in_tree: U }).reply(200, { resource_providers: [] });
      placement('1.20')
        .post('/resource_providers')
        .reply(409, conflict('placement.duplicate_name', `Conflicting resource provider uuid: ${U} already exists.`));
      placement('1.14')
        .get(`/resource_providers/${U}`)
        .reply(200, rp(U, 'n1', 2));
      assert.equal((await client().ensureResourceProvider(CTX, U, 'n1')).generation, 2);
    });

    it('deleteResourceProvider: 204 → true, 404 → false, 409 → ResourceProviderInUse (no microversion)', async () => {
      placement(null).delete(`/resource_providers/${U}`).reply(204);
      placement(null).delete(`/resource_providers/${U}`).reply(404, {});
      placement(null).delete(`/resource_providers/${U}`).reply(409, conflict('placement.resource_provider.inuse', 'x'));
      const c = client();
      assert.equal(await c.deleteResourceProvider(CTX, U), true);
      assert.equal(await c.deleteResourceProvider(CTX, U), false);
      await assert.rejects(
        c.deleteResourceProvider(CTX, U),
        (e: unknown) => e instanceof ResourceProviderInUse && e.uuid === U,
      );
    });

    it('a body that is not what placement documents is an InvalidResponse', async () => {
      placement('1.14').get('/resource_providers').query({ in_tree: U }).reply(200, { providers: [] });
      placement('1.14')
        .get('/resource_providers')
        .query({ in_tree: U })
        .reply(200, { resource_providers: [{ uuid: U }] });
      const c = client();
      await assert.rejects(c.getProviderTree(CTX, U), InvalidResponse);
      await assert.rejects(c.getProviderTree(CTX, U), InvalidResponse);
    });
  });

  describe('inventory', () => {
    const path = `/resource_providers/${U}/inventories`;

    it('getInventories: GET without a microversion', async () => {
      placement(null).get(path).reply(200, { resource_provider_generation: 4, inventories: inventory });
      assert.deepEqual(await client().getInventories(CTX, U), { generation: 4, inventories: inventory });
    });

    it('setInventories: PUT at 1.26 with the generation read just before', async () => {
      placement(null).get(path).reply(200, { resource_provider_generation: 4, inventories: {} });
      placement('1.26')
        .put(path, asJson({ resource_provider_generation: 4, inventories: inventory }))
        .reply(200, { resource_provider_generation: 5, inventories: inventory });
      assert.deepEqual(await client().setInventories(CTX, U, inventory), {
        generation: 5,
        inventories: inventory,
        changed: true,
      });
    });

    it('setInventories: no PUT when placement already has this inventory', async () => {
      placement(null).get(path).reply(200, { resource_provider_generation: 4, inventories: inventory });
      const result = await client().setInventories(CTX, U, inventory);
      assert.equal(result.changed, false);
      assert.equal(result.generation, 4);
    });

    it('setInventories: 409 placement.concurrent_update → re-read the generation and retry', async () => {
      placement(null).get(path).reply(200, { resource_provider_generation: 4, inventories: {} });
      placement('1.26')
        .put(path, (body: { resource_provider_generation: number }) => body.resource_provider_generation === 4)
        .reply(409, conflict('placement.concurrent_update', 'resource provider generation conflict'));
      placement(null).get(path).reply(200, { resource_provider_generation: 6, inventories: {} });
      placement('1.26')
        .put(path, (body: { resource_provider_generation: number }) => body.resource_provider_generation === 6)
        .reply(200, { resource_provider_generation: 7, inventories: inventory });
      assert.equal((await client().setInventories(CTX, U, inventory)).generation, 7);
    });

    it('setInventories: a conflict whose re-read shows the inventory already set ends without a PUT', async () => {
      placement(null).get(path).reply(200, { resource_provider_generation: 4, inventories: {} });
      placement('1.26').put(path).reply(409, conflict('placement.concurrent_update', 'x'));
      placement(null).get(path).reply(200, { resource_provider_generation: 5, inventories: inventory });
      assert.equal((await client().setInventories(CTX, U, inventory)).changed, false);
    });

    it('setInventories: gives up after 4 attempts with ResourceProviderUpdateConflict', async () => {
      placement(null).get(path).times(4).reply(200, { resource_provider_generation: 4, inventories: {} });
      placement('1.26').put(path).times(4).reply(409, conflict('placement.concurrent_update', 'x'));
      await assert.rejects(
        client().setInventories(CTX, U, inventory),
        (e: unknown) => e instanceof ResourceProviderUpdateConflict && e.uuid === U && /4 times/.test(e.message),
      );
    });

    it('setInventories: 409 placement.inventory.inuse → InventoryInUse, not retried', async () => {
      placement(null).get(path).reply(200, { resource_provider_generation: 4, inventories: inventory });
      placement('1.26')
        .put(path)
        .reply(
          409,
          conflict('placement.inventory.inuse', 'update conflict: Inventory for VCPU on provider is in use.'),
        );
      const smaller = { ...inventory, VCPU: { ...inventory['VCPU']!, total: 1, max_unit: 1 } };
      await assert.rejects(
        client().setInventories(CTX, U, smaller),
        (e: unknown) => e instanceof InventoryInUse && /Inventory for VCPU/.test(e.message),
      );
    });

    it('setInventories: other errors pass through as RequestError', async () => {
      placement(null).get(path).reply(200, { resource_provider_generation: 4, inventories: {} });
      placement('1.26')
        .put(path)
        .reply(400, { errors: [{ status: 400, detail: 'bad' }] });
      await assert.rejects(
        client().setInventories(CTX, U, inventory),
        (e: unknown) => e instanceof RequestError && e.status === 400,
      );
    });
  });

  describe('traits', () => {
    const path = `/resource_providers/${U}/traits`;

    it('getTraits: GET at 1.6', async () => {
      placement('1.6')
        .get(path)
        .reply(200, { resource_provider_generation: 2, traits: ['COMPUTE_NODE'] });
      assert.deepEqual(await client().getTraits(CTX, U), { generation: 2, traits: ['COMPUTE_NODE'] });
    });

    it('setTraits: keeps traits set by others, adds wanted, removes managed-but-unwanted', async () => {
      placement('1.6')
        .get(path)
        .reply(200, {
          resource_provider_generation: 2,
          traits: ['CUSTOM_RACK_A', 'COMPUTE_STATUS_DISABLED', 'HW_CPU_X86_AVX2'],
        });
      placement('1.6')
        .get('/traits')
        .query({ name: 'in:COMPUTE_NODE' })
        .reply(200, { traits: ['COMPUTE_NODE'] });
      placement('1.6')
        .put(path, {
          resource_provider_generation: 2,
          traits: ['COMPUTE_NODE', 'CUSTOM_RACK_A', 'HW_CPU_X86_AVX2'],
        })
        .reply(200, { resource_provider_generation: 3, traits: ['COMPUTE_NODE', 'CUSTOM_RACK_A', 'HW_CPU_X86_AVX2'] });
      const result = await client().setTraits(CTX, U, {
        wanted: ['COMPUTE_NODE'],
        managed: ['COMPUTE_NODE', 'COMPUTE_STATUS_DISABLED', 'COMPUTE_NET_ATTACH_INTERFACE'],
      });
      assert.equal(result.changed, true);
      assert.equal(result.generation, 3);
    });

    it('setTraits: no PUT when nothing changes', async () => {
      placement('1.6')
        .get(path)
        .reply(200, { resource_provider_generation: 2, traits: ['COMPUTE_NODE', 'CUSTOM_X'] });
      const result = await client().setTraits(CTX, U, {
        wanted: ['COMPUTE_NODE'],
        managed: ['COMPUTE_STATUS_DISABLED'],
      });
      assert.equal(result.changed, false);
    });

    it('setTraits: creates missing CUSTOM_ traits first (PUT /traits/CUSTOM_… at 1.6)', async () => {
      placement('1.6').get(path).reply(200, { resource_provider_generation: 2, traits: [] });
      placement('1.6')
        .get('/traits')
        .query({ name: 'in:COMPUTE_NODE,CUSTOM_BERTH_DOCKER' })
        .reply(200, { traits: ['COMPUTE_NODE'] });
      placement('1.6').put('/traits/CUSTOM_BERTH_DOCKER').reply(201);
      placement('1.6')
        .put(path, { resource_provider_generation: 2, traits: ['COMPUTE_NODE', 'CUSTOM_BERTH_DOCKER'] })
        .reply(200, { resource_provider_generation: 3, traits: ['COMPUTE_NODE', 'CUSTOM_BERTH_DOCKER'] });
      await client().setTraits(CTX, U, { wanted: ['COMPUTE_NODE', 'CUSTOM_BERTH_DOCKER'], managed: [] });
    });

    it('setTraits: a missing standard trait cannot be created → TraitCreationFailed, provider untouched', async () => {
      placement('1.6').get(path).reply(200, { resource_provider_generation: 2, traits: [] });
      placement('1.6').get('/traits').query({ name: 'in:COMPUTE_FUTURE_THING' }).reply(200, { traits: [] });
      await assert.rejects(
        client().setTraits(CTX, U, { wanted: ['COMPUTE_FUTURE_THING'], managed: [] }),
        (e: unknown) => e instanceof TraitCreationFailed && e.trait === 'COMPUTE_FUTURE_THING',
      );
    });

    it('setTraits: 409 → re-read the traits and retry with the new generation', async () => {
      placement('1.6').get(path).reply(200, { resource_provider_generation: 2, traits: [] });
      placement('1.6')
        .get('/traits')
        .query({ name: 'in:COMPUTE_NODE' })
        .times(2)
        .reply(200, { traits: ['COMPUTE_NODE'] });
      placement('1.6')
        .put(path)
        .reply(409, { errors: [{ status: 409, detail: 'generation conflict' }] });
      placement('1.6')
        .get(path)
        .reply(200, { resource_provider_generation: 3, traits: ['CUSTOM_NEW'] });
      placement('1.6')
        .put(path, { resource_provider_generation: 3, traits: ['COMPUTE_NODE', 'CUSTOM_NEW'] })
        .reply(200, { resource_provider_generation: 4, traits: ['COMPUTE_NODE', 'CUSTOM_NEW'] });
      assert.equal((await client().setTraits(CTX, U, { wanted: ['COMPUTE_NODE'], managed: [] })).generation, 4);
    });
  });

  describe('allocations', () => {
    it('getAllocationsForConsumer: GET /allocations/<uuid> at 1.28', async () => {
      const body = {
        allocations: { [U]: { generation: 3, resources: { VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 } } },
        consumer_generation: 1,
        project_id: 'p',
        user_id: 'u',
      };
      placement('1.28').get(`/allocations/${CONSUMER}`).reply(200, body);
      assert.deepEqual(await client().getAllocationsForConsumer(CTX, CONSUMER), body);
    });

    it('deleteAllocationsForConsumer: DELETE without microversion; 204 → true, 404 → false', async () => {
      placement(null).delete(`/allocations/${CONSUMER}`).reply(204);
      placement(null)
        .delete(`/allocations/${CONSUMER}`)
        .reply(404, { errors: [{ status: 404 }] });
      const c = client();
      assert.equal(await c.deleteAllocationsForConsumer(CTX, CONSUMER), true);
      assert.equal(await c.deleteAllocationsForConsumer(CTX, CONSUMER), false);
    });

    it('deleteAllocationsForConsumer: a 500 is thrown', async () => {
      placement(null).delete(`/allocations/${CONSUMER}`).reply(500, 'boom');
      await assert.rejects(
        client().deleteAllocationsForConsumer(CTX, CONSUMER),
        (e: unknown) => e instanceof RequestError && e.status === 500,
      );
    });

    it('getProviderAllocations: GET /resource_providers/U/allocations without microversion', async () => {
      const allocations = { [CONSUMER]: { resources: { VCPU: 1 } } };
      placement(null)
        .get(`/resource_providers/${U}/allocations`)
        .reply(200, { resource_provider_generation: 9, allocations });
      assert.deepEqual(await client().getProviderAllocations(CTX, U), { generation: 9, allocations });
    });
  });

  it('a 401 re-authenticates once and retries with the new token', async () => {
    interceptTokens(1); // tok-1 comes from beforeEach; this one answers tok-1 again: count matters, not the value
    nock(PLACEMENT).get('/resource_providers').query({ in_tree: U }).reply(401, {});
    nock(PLACEMENT).get('/resource_providers').query({ in_tree: U }).reply(200, { resource_providers: [] });
    assert.deepEqual(await client().getProviderTree(CTX, U), []);
  });
});
