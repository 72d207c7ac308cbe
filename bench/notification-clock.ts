// A second clock for the boot runs, beside the API polling: when each instance's compute said `instance.create.end`
// (sent after the ACTIVE save, by nova-compute and Berth alike) and `instance.delete.end`, from a queue of our own
// bound to Nova's versioned notifications. It costs nova-api nothing and is exact to the millisecond, where a poll of
// GET /servers/detail under load takes up to a second.
import { randomBytes } from 'node:crypto';

import * as amqp from 'amqplib';

import type { TransportUrl } from '../src/messaging/transport-url';

const ROUTING_KEY = 'versioned_notifications.info';

interface VersionedNotification {
  readonly event_type?: string;
  readonly payload?: { readonly 'nova_object.data'?: { readonly uuid?: string } };
}

export class NotificationClock {
  /** event type → instance uuid → when the notification arrived (epoch ms). */
  private readonly seen = new Map<string, Map<string, number>>();

  private constructor(
    private readonly connection: amqp.ChannelModel,
    private readonly channel: amqp.Channel,
    private readonly queue: string,
  ) {}

  static async start(url: TransportUrl, exchange: string): Promise<NotificationClock> {
    const host = url.hosts[0];
    if (!host) throw new Error('the transport URL names no host');
    const connection = await amqp.connect({
      hostname: host.hostname,
      port: host.port,
      username: host.username,
      password: host.password,
      vhost: url.virtualHost,
    });
    const channel = await connection.createChannel();
    const queue = `berth-bench-notifications-${randomBytes(4).toString('hex')}`;
    await channel.assertQueue(queue, { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, exchange, ROUTING_KEY);
    const clock = new NotificationClock(connection, channel, queue);
    await channel.consume(queue, (msg) => msg && clock.onMessage(msg.content), { noAck: true });
    return clock;
  }

  private onMessage(content: Buffer): void {
    const at = performance.timeOrigin + performance.now();
    try {
      const envelope = JSON.parse(content.toString('utf8')) as { 'oslo.message'?: string };
      const message = JSON.parse(envelope['oslo.message'] ?? '{}') as VersionedNotification;
      const uuid = message.payload?.['nova_object.data']?.uuid;
      if (!message.event_type || !uuid) return;
      let byUuid = this.seen.get(message.event_type);
      if (!byUuid) this.seen.set(message.event_type, (byUuid = new Map()));
      if (!byUuid.has(uuid)) byUuid.set(uuid, at);
    } catch {
      // not a versioned notification of an instance: not ours to time
    }
  }

  /** When the last of `uuids` sent `eventType` (epoch ms), null while any has not. */
  lastOf(eventType: string, uuids: readonly string[]): number | null {
    const byUuid = this.seen.get(eventType);
    let last = 0;
    for (const uuid of uuids) {
      const at = byUuid?.get(uuid);
      if (at === undefined) return null;
      last = Math.max(last, at);
    }
    return uuids.length > 0 ? last : null;
  }

  /** Waits up to `timeoutMs` for the last of `uuids` to send `eventType` (notifications may trail the API view). */
  async waitForLast(eventType: string, uuids: readonly string[], timeoutMs: number): Promise<number | null> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const last = this.lastOf(eventType, uuids);
      if (last !== null || performance.now() > deadline) return last;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async close(): Promise<void> {
    await this.channel.deleteQueue(this.queue).catch(() => undefined);
    await this.connection.close().catch(() => undefined);
  }
}
