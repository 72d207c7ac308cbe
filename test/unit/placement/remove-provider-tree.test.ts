// PlacementClient.removeProviderTreeFromInstanceAllocation: Nova's report client method of the same name, which the
// evacuation uses on both hosts (the destination when it fails, the source when it comes back).
import assert from 'node:assert/strict';
import nock from 'nock';
import { PlacementClient } from '../../../src/placement/placement-client';
import { interceptTokens, PLACEMENT, passwordSession, useNock } from '../identity/keystone-fixtures';

const SOURCE = 'c0c0c0c0-1111-4222-8333-444444444444';
const DEST = 'd0d0d0d0-1111-4222-8333-444444444444';
const CHILD = 'e0e0e0e0-1111-4222-8333-444444444444';
const CONSUMER = 'a1a1a1a1-1111-4222-8333-444444444444';
const CTX = { request_id: 'req-11111111-2222-4333-8444-555555555555' };
const RESOURCES = { VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 };

function placement(version: string | null) {
  const reqheaders: Record<string, string> = { 'x-auth-token': 'tok-1', accept: 'application/json', 'x-openstack-request-id': CTX.request_id };
  if (version !== null) reqheaders['openstack-api-version'] = `placement ${version}`;
  return nock(PLACEMENT, { reqheaders });
}

const rp = (uuid: string, root = uuid) => ({ uuid, name: uuid, generation: 1, parent_provider_uuid: root === uuid ? null : root, root_provider_uuid: root, links: [] });

function client(): PlacementClient {
  return new PlacementClient(passwordSession(), { conflictRetryDelayMs: 0 });
}

describe('placement/placement-client: removeProviderTreeFromInstanceAllocation', () => {
  useNock();
  beforeEach(() => interceptTokens(1));
  afterEach(() => {
    const pending = nock.pendingMocks().filter((m) => !m.includes('/v3/auth/tokens'));
    nock.cleanAll();
    assert.deepEqual(pending, [], 'every expected request was made');
  });

  it('PUTs the allocations without the tree (root and children) at 1.28 with the consumer generation', async () => {
    placement('1.28')
      .get(`/allocations/${CONSUMER}`)
      .reply(200, {
        allocations: { [SOURCE]: { generation: 4, resources: RESOURCES }, [CHILD]: { generation: 1, resources: { X: 1 } }, [DEST]: { generation: 2, resources: RESOURCES } },
        consumer_generation: 7,
        project_id: 'p',
        user_id: 'u',
      });
    placement('1.14').get('/resource_providers').query({ in_tree: SOURCE }).reply(200, { resource_providers: [rp(SOURCE), rp(CHILD, SOURCE)] });
    let body: unknown;
    placement('1.28')
      .put(`/allocations/${CONSUMER}`, (b: unknown) => {
        body = b;
        return true;
      })
      .reply(204);
    assert.equal(await client().removeProviderTreeFromInstanceAllocation(CTX, CONSUMER, SOURCE), true);
    assert.deepEqual(body, { allocations: { [DEST]: { resources: RESOURCES } }, consumer_generation: 7, project_id: 'p', user_id: 'u' });
  });

  it('no allocations at all: false, no PUT', async () => {
    placement('1.28').get(`/allocations/${CONSUMER}`).reply(200, { allocations: {} });
    assert.equal(await client().removeProviderTreeFromInstanceAllocation(CTX, CONSUMER, SOURCE), false);
  });

  it('nothing against the tree: true, no PUT', async () => {
    placement('1.28')
      .get(`/allocations/${CONSUMER}`)
      .reply(200, { allocations: { [DEST]: { generation: 2, resources: RESOURCES } }, consumer_generation: 1, project_id: 'p', user_id: 'u' });
    placement('1.14').get('/resource_providers').query({ in_tree: SOURCE }).reply(200, { resource_providers: [rp(SOURCE)] });
    assert.equal(await client().removeProviderTreeFromInstanceAllocation(CTX, CONSUMER, SOURCE), true);
  });

  it('placement refuses the PUT (a consumer generation conflict): false, as Nova (no retry)', async () => {
    placement('1.28')
      .get(`/allocations/${CONSUMER}`)
      .reply(200, { allocations: { [SOURCE]: { generation: 4, resources: RESOURCES } }, consumer_generation: 1, project_id: 'p', user_id: 'u' });
    placement('1.14').get('/resource_providers').query({ in_tree: SOURCE }).reply(200, { resource_providers: [rp(SOURCE)] });
    placement('1.28')
      .put(`/allocations/${CONSUMER}`, { allocations: {}, consumer_generation: 1, project_id: 'p', user_id: 'u' })
      .reply(409, { errors: [{ status: 409, code: 'placement.concurrent_update', detail: 'consumer generation conflict' }] });
    assert.equal(await client().removeProviderTreeFromInstanceAllocation(CTX, CONSUMER, SOURCE), false);
  });
});
