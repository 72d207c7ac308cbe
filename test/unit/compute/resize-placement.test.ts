// The allocation swap of a resize revert (and of a failed prep_resize/resize_instance): Nova's report client
// move_allocations — read both consumers, then one POST /allocations at 1.28 that empties the source and gives its
// allocations to the target, with both consumer generations; "already moved" when only the target holds any.
import assert from 'node:assert/strict';
import nock from 'nock';
import { AllocationMoveFailed, PlacementClient } from '../../../src/placement';
import { interceptTokens, PLACEMENT, passwordSession, useNock } from '../identity/keystone-fixtures';

const RP = 'c0c0c0c0-1111-4222-8333-444444444444';
const MIGRATION = 'a1a1a1a1-1111-4222-8333-444444444444';
const INSTANCE = 'b2b2b2b2-1111-4222-8333-444444444444';
const CTX = { request_id: 'req-11111111-2222-4333-8444-555555555555' };

function placement(version: string) {
  return nock(PLACEMENT, { reqheaders: { 'x-auth-token': 'tok-1', 'openstack-api-version': `placement ${version}` } });
}

const consumer = (resources: Record<string, number> | null, generation: number | null) => ({
  allocations: resources ? { [RP]: { generation: 5, resources } } : {},
  consumer_generation: generation,
  project_id: 'p1',
  user_id: 'u1',
});

const OLD = { VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 };
const NEW = { VCPU: 2, MEMORY_MB: 1024, DISK_GB: 1 };

describe('compute: the resize allocation swap (PlacementClient.moveAllocations)', () => {
  useNock();
  beforeEach(() => interceptTokens(1));
  afterEach(() => {
    const pending = nock.pendingMocks().filter((m) => !m.includes('/v3/auth/tokens'));
    nock.cleanAll();
    assert.deepEqual(pending, [], 'every expected request was made');
  });

  const client = (): PlacementClient => new PlacementClient(passwordSession(), { conflictRetryDelayMs: 0 });

  it('POSTs /allocations at 1.28: the source emptied, the target given the source\'s allocations', async () => {
    placement('1.28').get(`/allocations/${MIGRATION}`).reply(200, consumer(OLD, 1));
    placement('1.28').get(`/allocations/${INSTANCE}`).reply(200, consumer(NEW, 3));
    let body: unknown;
    placement('1.28')
      .post('/allocations', (b: unknown) => {
        body = b;
        return true;
      })
      .reply(204);
    assert.equal(await client().moveAllocations(CTX, MIGRATION, INSTANCE), true);
    assert.deepEqual(body, {
      [MIGRATION]: { allocations: {}, project_id: 'p1', user_id: 'u1', consumer_generation: 1 },
      [INSTANCE]: { allocations: { [RP]: { resources: OLD } }, project_id: 'p1', user_id: 'u1', consumer_generation: 3 },
    });
  });

  it('a target that holds allocations while the source holds none: already moved, nothing posted', async () => {
    placement('1.28').get(`/allocations/${MIGRATION}`).reply(200, consumer(null, null));
    placement('1.28').get(`/allocations/${INSTANCE}`).reply(200, consumer(OLD, 4));
    assert.equal(await client().moveAllocations(CTX, MIGRATION, INSTANCE), true);
  });

  it('a consumer generation conflict is AllocationMoveFailed', async () => {
    placement('1.28').get(`/allocations/${MIGRATION}`).reply(200, consumer(OLD, 1));
    placement('1.28').get(`/allocations/${INSTANCE}`).reply(200, consumer(NEW, 3));
    placement('1.28')
      .post('/allocations')
      .reply(409, { errors: [{ status: 409, code: 'placement.concurrent_update', detail: 'consumer generation conflict - expected 3 but got 4' }] });
    await assert.rejects(client().moveAllocations(CTX, MIGRATION, INSTANCE), AllocationMoveFailed);
  });

  it('a provider changed meanwhile: both consumers read again and the move retried', async () => {
    for (let i = 0; i < 2; i++) {
      placement('1.28').get(`/allocations/${MIGRATION}`).reply(200, consumer(OLD, 1));
      placement('1.28').get(`/allocations/${INSTANCE}`).reply(200, consumer(NEW, 3));
    }
    placement('1.28')
      .post('/allocations')
      .reply(409, { errors: [{ status: 409, code: 'placement.concurrent_update', detail: 'resource provider generation conflict' }] });
    placement('1.28').post('/allocations').reply(204);
    assert.equal(await client().moveAllocations(CTX, MIGRATION, INSTANCE), true);
  });

  it('another refusal (400) is false, as Nova\'s move_allocations returns', async () => {
    placement('1.28').get(`/allocations/${MIGRATION}`).reply(200, consumer(OLD, 1));
    placement('1.28').get(`/allocations/${INSTANCE}`).reply(200, consumer(NEW, 3));
    placement('1.28').post('/allocations').reply(400, { errors: [{ status: 400, code: 'placement.undefined_code', detail: 'bad' }] });
    assert.equal(await client().moveAllocations(CTX, MIGRATION, INSTANCE), false);
  });
});
