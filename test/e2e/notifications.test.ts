// Notifications of a boot and a delete on a Berth host, as a listener of the control plane's bus sees them (nova.conf
// and berth.conf here: driver messagingv2, notification_format both). A queue of our own, bound to exchange `nova`
// for versioned_notifications.info and notifications.info, receives from Berth exactly the sequence the lab captured
// from Python's compute for the same operations, with publisher nova-compute:<host> (legacy: compute.<host>).
import assert from 'node:assert/strict';

import type * as amqp from 'amqplib';

import { buildBusyboxImage } from '../support/images';
import {
  BerthHost,
  NOVA_EXCHANGE,
  NOVA_EXCHANGE_OPTIONS,
  connectBroker,
  dockerStatus,
  requireControlPlane,
  waitFor,
} from './support';

interface Notification {
  readonly routingKey: string;
  readonly event_type: string;
  readonly publisher_id: string;
  readonly priority: string;
  readonly payload: Record<string, unknown>;
}

/** The instance a notification is about: versioned payloads carry it in nova_object.data, legacy ones as instance_id. */
function instanceOf(n: Notification): unknown {
  const data = n.payload['nova_object.data'];
  return data && typeof data === 'object' ? (data as Record<string, unknown>)['uuid'] : n.payload['instance_id'];
}

// What the lab captured from Debian's nova-compute (fake driver) for a boot and a delete.
const VERSIONED = ['instance.create.start', 'instance.create.end', 'instance.delete.start', 'instance.shutdown.start', 'instance.shutdown.end', 'instance.delete.end'];
const LEGACY = VERSIONED.map((type) => `compute.${type}`);

describe('notifications of a boot and a delete (e2e)', function () {
  this.timeout(240_000);
  let host: BerthHost;
  let connection: amqp.ChannelModel | undefined;
  const received: Notification[] = [];

  before(async function () {
    await requireControlPlane(this);
    const docker = (await dockerStatus()).up;
    if (!docker) console.warn('    note: Docker is not available; booting with the fake driver');
    host = new BerthHost({ suite: 'notify', ...(docker ? {} : { config: { docker: { driver: 'fake' } } }) });
    connection = await connectBroker();
    const channel = await connection.createChannel();
    // The exchange exactly as oslo declares it (a mismatch would be refused); our queue is ours alone and goes with us.
    await channel.assertExchange(NOVA_EXCHANGE, 'topic', NOVA_EXCHANGE_OPTIONS);
    const { queue } = await channel.assertQueue('', { exclusive: true, durable: false, autoDelete: true });
    for (const key of ['versioned_notifications.info', 'notifications.info']) await channel.bindQueue(queue, NOVA_EXCHANGE, key);
    await channel.consume(
      queue,
      (message) => {
        if (!message) return;
        const outer = JSON.parse(message.content.toString('utf8')) as Record<string, unknown>;
        const inner = JSON.parse(String(outer['oslo.message'])) as Omit<Notification, 'routingKey'>;
        received.push({ ...inner, routingKey: message.fields.routingKey });
      },
      { noAck: true },
    );
  });

  after(async function () {
    await connection?.close().catch(() => undefined);
    await host?.cleanup();
  });

  it('sends instance.create.* and instance.delete.* (versioned and legacy) with the host as publisher and the server uuid', async function () {
    const tar = await buildBusyboxImage('berth-e2e-notify:latest');
    const [, image, flavor] = await Promise.all([host.start(), host.uploadImage({ file: tar.tarPath }), host.createFlavor({ vcpus: 1, ramMb: 64, diskGb: 1 })]);
    const { server } = await host.bootServer({ flavor: flavor.id, image: image.id });
    await host.deleteServer(server.id);

    const about = (routingKey: string): Notification[] => received.filter((n) => n.routingKey === routingKey && instanceOf(n) === server.id);
    await waitFor(
      'instance.delete.end, versioned and legacy',
      async () => {
        const done = about('versioned_notifications.info').some((n) => n.event_type === 'instance.delete.end') && about('notifications.info').some((n) => n.event_type === 'compute.instance.delete.end');
        return done ? { done: true, value: undefined } : { done: false, seen: received.filter((n) => instanceOf(n) === server.id).map((n) => n.event_type) };
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );

    const versioned = about('versioned_notifications.info');
    assert.deepEqual(versioned.map((n) => n.event_type), VERSIONED);
    for (const n of versioned) {
      assert.equal(n.publisher_id, `nova-compute:${host.host}`, n.event_type);
      assert.equal(n.priority, 'INFO', n.event_type);
    }
    assert.equal(versioned[0]?.payload['nova_object.name'], 'InstanceCreatePayload');
    assert.equal(versioned[2]?.payload['nova_object.name'], 'InstanceActionPayload');

    const legacy = about('notifications.info');
    assert.deepEqual(legacy.map((n) => n.event_type), LEGACY);
    for (const n of legacy) assert.equal(n.publisher_id, `compute.${host.host}`, n.event_type);

    // The conductor, executing Service.create for Berth, announces the new service as the Python compute's would be.
    const created = received.find((n) => n.event_type === 'service.create' && n.publisher_id === `nova-compute:${host.host}`);
    assert.ok(created, 'service.create for the new host');
  });
});
