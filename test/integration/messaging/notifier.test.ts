// Notifier on the real broker: what lands in `<topic>.<priority>` is shaped like the notifications the captured
// nova-compute published (fake-driver-lifecycle.jsonl), for both messaging drivers; failures are logged, not thrown.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import type { MessagingSession } from '../../../src/messaging/amqp-session';
import { adminContext } from '../../../src/messaging/context';
import { Notifier } from '../../../src/messaging/notifier';
import type { RequestContext } from '../../../src/messaging/types';
import { cleanup, collectingLogger, listQueues, newSession, rawConnection, uniqueName } from './helpers';

function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

interface TraceRecord {
  event: string;
  exchange: string;
  routing_key: string;
  properties: Record<string, unknown>;
  body: string;
  oslo_message: Record<string, unknown>;
}

const capture = join(repoRoot(), '../shared/lab/captures/fake-driver-lifecycle.jsonl');
const captured = (eventType: string): TraceRecord => {
  const record = readFileSync(capture, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as TraceRecord)
    .find((r) => r.event === 'publish' && r.oslo_message['event_type'] === eventType);
  assert.ok(record, `no ${eventType} in the capture`);
  return record;
};

describe('messaging Notifier on RabbitMQ', function () {
  this.timeout(60_000);

  const exchange = uniqueName('berth_notif_x');
  const topic = uniqueName('berth_notifications');
  let session: MessagingSession;

  before(async () => {
    session = newSession(collectingLogger().logger);
    await session.start();
  });

  after(async () => {
    await session?.close();
    await cleanup([`${topic}.info`, `${topic}.error`, `${topic}_bare.info`], [exchange]);
  });

  async function take(queue: string): Promise<{ body: Buffer; properties: Record<string, unknown> }> {
    const conn = await rawConnection();
    try {
      const ch = await conn.createChannel();
      const msg = await ch.get(queue, { noAck: true });
      assert.ok(msg, `a message in ${queue}`);
      return { body: msg.content, properties: msg.properties as unknown as Record<string, unknown> };
    } finally {
      await conn.close();
    }
  }

  it('publishes messagingv2 notifications shaped like the captured compute.instance.create.start', async () => {
    const reference = captured('compute.instance.create.start');
    const { logger } = collectingLogger();
    const notifier = new Notifier({ session, logger, driver: 'messagingv2', topics: [topic], publisherId: 'compute.berth-1', exchange });
    const userContext: RequestContext = {
      ...adminContext(),
      user: 'u1',
      user_id: 'u1',
      project: 'p1',
      project_id: 'p1',
      user_domain: 'default',
      project_domain: 'default',
      is_admin: false,
      roles: ['member', 'reader'],
      auth_token: 'gAAAA-secret',
      remote_address: '10.0.0.1',
      service_catalog: [{ type: 'image' }],
      user_name: 'demo',
      project_name: 'demo',
    };
    await notifier.info(userContext, 'compute.instance.create.start', { instance_id: 'i-1' });
    const queue = (await listQueues()).find((q) => q.name === `${topic}.info`);
    assert.deepEqual(queue && { durable: queue.durable, auto_delete: queue.auto_delete, arguments: queue.arguments }, {
      durable: false,
      auto_delete: false,
      arguments: [],
    });
    const { body, properties } = await take(`${topic}.info`);
    const outer = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(outer), ['oslo.version', 'oslo.message']);
    const ours = JSON.parse(String(outer['oslo.message'])) as Record<string, unknown>;
    assert.deepEqual(Object.keys(ours), Object.keys(reference.oslo_message), 'same keys in the same order');
    assert.equal(ours['publisher_id'], 'compute.berth-1');
    assert.equal(ours['event_type'], 'compute.instance.create.start');
    assert.equal(ours['priority'], 'INFO');
    assert.deepEqual(ours['payload'], { instance_id: 'i-1' });
    assert.match(String(ours['message_id']), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.match(String(ours['timestamp']), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$/);
    assert.match(String(ours['_unique_id']), /^[0-9a-f]{32}$/);
    // The sanitised context: ids and names survive, the token, catalog and address do not.
    assert.equal(ours['_context_request_id'], userContext.request_id);
    assert.equal(ours['_context_user_id'], 'u1');
    assert.equal(ours['_context_user_identity'], 'u1 p1 - default default');
    assert.deepEqual(ours['_context_roles'], ['member', 'reader']);
    assert.equal(ours['_context_auth_token'], null);
    assert.deepEqual(ours['_context_service_catalog'], []);
    assert.equal(ours['_context_remote_address'], null);
    assert.equal(JSON.stringify(ours).includes('gAAAA-secret'), false);
    // Properties as kombu sets them (the trace shows exactly these).
    assert.deepEqual(
      { contentType: properties['contentType'], contentEncoding: properties['contentEncoding'], deliveryMode: properties['deliveryMode'], priority: properties['priority'], headers: properties['headers'], expiration: properties['expiration'] },
      { contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, priority: 0, headers: {}, expiration: undefined },
    );
    assert.deepEqual(reference.properties, { priority: 0, delivery_mode: 2, headers: {}, content_encoding: 'utf-8', content_type: 'application/json' });
  });

  it('publishes versioned notifications on error priority and bare (1.0) ones with the messaging driver', async () => {
    const reference = captured('instance.create.start');
    const { logger } = collectingLogger();
    const v2 = new Notifier({ session, logger, driver: ['messagingv2'], topics: [topic], publisherId: 'nova-compute:berth-1', exchange });
    await v2.error(adminContext(), 'instance.create.error', { 'nova_object.name': 'InstanceActionPayload' });
    const err = JSON.parse(String((JSON.parse((await take(`${topic}.error`)).body.toString()) as Record<string, unknown>)['oslo.message'])) as Record<string, unknown>;
    assert.equal(err['priority'], 'ERROR');
    assert.equal(err['publisher_id'], 'nova-compute:berth-1');
    assert.deepEqual(Object.keys(err), Object.keys(reference.oslo_message));
    const bare = new Notifier({ session, logger, driver: 'messaging', topics: [`${topic}_bare`], publisherId: 'compute.berth-1', exchange });
    await bare.info(adminContext(), 'compute.instance.exists', {});
    const raw = JSON.parse((await take(`${topic}_bare.info`)).body.toString()) as Record<string, unknown>;
    assert.equal(raw['oslo.version'], undefined);
    assert.equal(raw['event_type'], 'compute.instance.exists');
    assert.equal(raw['_context_is_admin'], true);
  });

  it('logs a notification it cannot send instead of failing the caller', async () => {
    const conflicting = uniqueName('berth_notif_conflict');
    const conn = await rawConnection();
    const ch = await conn.createChannel();
    await ch.assertExchange(conflicting, 'fanout', { durable: true, autoDelete: false });
    const { logger, lines } = collectingLogger();
    const notifier = new Notifier({ session, logger, driver: 'messagingv2', topics: [topic], publisherId: 'compute.x', exchange: conflicting });
    const context = adminContext();
    await notifier.info(context, 'compute.instance.create.start', {}); // resolves
    const line = lines.find((l) => l.level === 'error');
    assert.ok(line);
    assert.equal(line.msg, `Could not send notification to ${topic}.info`);
    assert.equal(line['request_id'], context.request_id);
    assert.equal(line['event_type'], 'compute.instance.create.start');
    assert.match(String(line['err']), /TopologyMismatchError|already exists with different flags/);
    await ch.deleteExchange(conflicting);
    await conn.close();
  });

  it('sends nothing with noop or no driver, and writes the log driver to the log', async () => {
    const { logger, lines } = collectingLogger();
    const none = new Notifier({ session: null, logger, driver: [], publisherId: 'compute.x' });
    const noop = new Notifier({ session: null, logger, driver: 'noop', publisherId: 'compute.x' });
    assert.equal(none.enabled, false);
    assert.equal(noop.enabled, false);
    await none.info(adminContext(), 'e', {});
    await noop.info(adminContext(), 'e', {});
    const log = new Notifier({ session: null, logger, driver: 'log', publisherId: 'compute.x' });
    await log.warn(adminContext(), 'compute.instance.power_off.end', { state: 'stopped' });
    const line = lines.find((l) => l.msg === 'notification compute.instance.power_off.end');
    assert.equal(line?.level, 'warn');
    assert.deepEqual((line?.['notification'] as Record<string, unknown>)['payload'], { state: 'stopped' });
    assert.throws(() => new Notifier({ session: null, logger, driver: 'kafka', publisherId: 'x' }), /driver 'kafka'/);
    assert.throws(() => new Notifier({ session: null, logger, driver: 'messagingv2', publisherId: 'x' }), /needs a messaging session/);
  });
});
