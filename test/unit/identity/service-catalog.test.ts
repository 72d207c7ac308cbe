import assert from 'node:assert/strict';
import { EndpointNotFound, normalizeInterface, selectEndpoint } from '../../../src/identity/service-catalog';

const v3 = [
  { type: 'compute', endpoints: [{ interface: 'internal', region_id: 'RegionOne', url: 'http://127.0.0.1:8774' }] },
  {
    type: 'placement',
    endpoints: [
      { interface: 'public', region_id: 'RegionOne', url: 'http://127.0.0.1:1/public-one' },
      { interface: 'internal', region_id: 'RegionTwo', url: 'http://127.0.0.1:1/internal-two' },
      { interface: 'internal', region_id: 'RegionOne', url: 'http://127.0.0.1:1/internal-one' },
      { interface: 'admin', region: 'RegionOne', url: 'http://127.0.0.1:1/admin-one' },
    ],
  },
];

// As nova-api forwards it in _context_service_catalog (captures/fake-driver-lifecycle.jsonl).
const v2 = [
  {
    type: 'image',
    name: 'glance',
    endpoints: [
      {
        region: 'RegionOne',
        publicURL: 'http://127.0.0.1:9292/public',
        adminURL: 'http://127.0.0.1:9292/admin',
        internalURL: 'http://127.0.0.1:9292/internal',
      },
    ],
  },
];

describe('identity/service-catalog', () => {
  it('takes the first interface of the preference list that the region has', () => {
    const pick = (interfaces: string[], region?: string) =>
      selectEndpoint(v3, { serviceType: 'placement', interfaces, region });
    assert.equal(pick(['internal', 'public'], 'RegionOne'), 'http://127.0.0.1:1/internal-one');
    assert.equal(pick(['public', 'internal'], 'RegionOne'), 'http://127.0.0.1:1/public-one');
    assert.equal(pick(['internal'], 'RegionTwo'), 'http://127.0.0.1:1/internal-two');
    assert.equal(pick(['public'], 'RegionTwo'), null);
    assert.equal(pick(['admin'], 'RegionOne'), 'http://127.0.0.1:1/admin-one', 'v3 `region` also matches');
    assert.equal(pick(['internal']), 'http://127.0.0.1:1/internal-two', 'no region: the first internal one');
  });

  it('reads the v2-style catalog of the RPC context', () => {
    const pick = (interfaces: string[], region?: string) =>
      selectEndpoint(v2, { serviceType: 'image', interfaces, region });
    assert.equal(pick(['internal', 'public']), 'http://127.0.0.1:9292/internal');
    assert.equal(pick(['publicURL']), 'http://127.0.0.1:9292/public');
    assert.equal(pick(['internal'], 'RegionOne'), 'http://127.0.0.1:9292/internal');
    assert.equal(pick(['internal'], 'Elsewhere'), null);
  });

  it('skips garbage instead of throwing', () => {
    const filter = { serviceType: 'image', interfaces: ['public'] };
    for (const catalog of [
      null,
      undefined,
      'x',
      {},
      [null, 1, { type: 'image' }, { type: 'image', endpoints: [null, 3] }],
    ]) {
      assert.equal(selectEndpoint(catalog, filter), null);
    }
    assert.equal(
      selectEndpoint([{ type: 'image', endpoints: [{ interface: 'public', url: 42 }] }], filter),
      null,
      'a non-string url is no endpoint',
    );
  });

  it('normalizes interface names', () => {
    assert.equal(normalizeInterface('internalURL'), 'internal');
    assert.equal(normalizeInterface('Public'), 'public');
  });

  it('EndpointNotFound says what was looked for', () => {
    const err = new EndpointNotFound({ serviceType: 'placement', interfaces: ['internal', 'public'], region: 'R1' });
    assert.equal(err.name, 'EndpointNotFound');
    assert.equal(err.serviceType, 'placement');
    assert.match(err.message, /'placement' with interface internal or public in region R1/);
  });
});
