// Smoke of the e2e harness against the running control plane (test/e2e/control-plane.sh up): the catalog, the
// control services, a Glance upload of a real docker archive, Berth's config, and a fake compute peer.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadConfig } from '../../src/config';
import { silentLogger } from '../../src/log';
import { buildBusyboxImage } from '../support/images';
import {
  AIO,
  deleteComputeService,
  deleteQueues,
  deleteImage,
  discoverHosts,
  downloadImage,
  findResourceProvider,
  hostMappings,
  listComputeServices,
  openstackJson,
  providerInventory,
  requireControlPlane,
  runControlPlaneScript,
  showImage,
  uploadImage,
  waitForComputeService,
} from './support';

interface CatalogEntry {
  Name: string;
  Type: string;
  Endpoints: { interface: string; region: string; url: string }[];
}

describe('e2e control plane (control-plane.sh)', function () {
  this.timeout(180_000);

  let dir: string;

  before(async function () {
    await requireControlPlane(this);
    dir = await mkdtemp(join(tmpdir(), 'berth-e2e-smoke-'));
  });

  after(async function () {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('has identity, image, placement, compute and network in the catalog, on loopback, in RegionOne', async function () {
    const catalog = await openstackJson<CatalogEntry[]>(['catalog', 'list']);
    const byType = new Map(catalog.map((entry) => [entry.Type, entry]));
    for (const type of ['identity', 'image', 'placement', 'compute', 'network']) {
      const entry = byType.get(type);
      assert.ok(entry, `catalog has ${type}`);
      assert.deepEqual(entry.Endpoints.map((e) => e.interface).sort(), ['admin', 'internal', 'public'], type);
      for (const endpoint of entry.Endpoints) {
        assert.match(endpoint.url, /^http:\/\/127\.0\.0\.1:\d+/, `${type} ${endpoint.interface}`);
        assert.equal(endpoint.region, 'RegionOne');
      }
    }
  });

  it('reports nova-conductor and nova-scheduler up', async function () {
    const services = await listComputeServices();
    for (const binary of ['nova-conductor', 'nova-scheduler']) {
      const service = services.find((s) => s.Binary === binary);
      assert.ok(service, `${binary} has a service record`);
      assert.equal(service.State, 'up', binary);
      assert.equal(service.Status, 'enabled', binary);
    }
  });

  it('stores a docker save archive in Glance as container format docker, byte for byte', async function () {
    const image = await buildBusyboxImage('berth-e2e-smoke:latest');
    const name = `berth-e2e-smoke-${randomBytes(4).toString('hex')}`;
    const uploaded = await uploadImage({ name, file: image.tarPath });
    try {
      assert.equal(uploaded.status, 'active');
      assert.equal(uploaded.container_format, 'docker');
      assert.equal(uploaded.disk_format, 'raw');
      assert.equal(uploaded.size, image.size);
      assert.equal(uploaded.visibility, 'public');
      assert.equal(uploaded.properties['os_hash_algo'], 'sha512');
      assert.equal(uploaded.properties['os_hash_value'], image.sha512);
      const copy = join(dir, 'download.tar');
      await downloadImage(uploaded.id, copy);
      assert.equal(createHash('sha512').update(await readFile(copy)).digest('hex'), image.sha512);
    } finally {
      await deleteImage(uploaded.id);
    }
    await assert.rejects(showImage(uploaded.id), /No Image found|could not be found|No image with a name or ID/i);
  });

  it('wrote a berth.conf that Berth loads without a warning', function () {
    const warnings: unknown[] = [];
    const logger = silentLogger();
    logger.warn = ((...args: unknown[]) => void warnings.push(args)) as typeof logger.warn;
    const config = loadConfig([AIO.berthConf], { logger });
    assert.deepEqual(warnings, []);
    assert.equal(config.DEFAULT.transport_url.startsWith('rabbit://openstack:'), true);
    assert.equal(config.placement.username, 'nova');
    assert.equal(config.service_user.send_service_user_token, true);
    assert.deepEqual(config.oslo_messaging_notifications.driver, ['messagingv2']);
    assert.equal(config.notifications.notification_format, 'both');
    assert.equal(config.docker.host_url, 'unix:///var/run/docker.sock');
  });

  it('runs Debian nova-compute with FakeDriver as a peer host, mapped to cell1 with inventory in Placement', async function () {
    const host = `e2e-fake-${randomBytes(3).toString('hex')}`;
    try {
      await runControlPlaneScript(['fake-compute', host]);
      const service = await waitForComputeService(host, 'up');
      assert.equal(service.Status, 'enabled');
      // the script mapped it already; a second discovery finds nothing new and changes nothing
      assert.match(await discoverHosts(), /cell1/);
      assert.deepEqual(
        (await hostMappings()).filter((m) => m.host === host).map((m) => m.cell),
        ['cell1'],
      );
      const provider = await findResourceProvider(host);
      assert.ok(provider, `a resource provider named ${host}`);
      const inventory = await providerInventory(provider.uuid);
      assert.deepEqual(Object.keys(inventory).sort(), ['DISK_GB', 'MEMORY_MB', 'VCPU']);
      assert.ok((inventory['VCPU']?.total ?? 0) > 0);
    } finally {
      await runControlPlaneScript(['stop-fake-compute', host]);
      await deleteComputeService(host);
      await deleteQueues([`compute.${host}`]);
    }
    assert.equal(await findResourceProvider(host), null, 'deleting the service removed its resource provider');
  });
});
