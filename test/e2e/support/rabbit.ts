// The control plane's RabbitMQ for tests that talk to the bus themselves (amqplib, beside Berth and Nova): the broker
// Berth's config names, the `nova` exchange as oslo declares it, and removal of a departed host's queue.
import * as amqp from 'amqplib';

import { loadConfig } from '../../../src/config';
import { silentLogger } from '../../../src/log';
import { parseTransportUrl } from '../../../src/messaging/transport-url';
import { AIO } from './control-plane';

/** Nova's control exchange, with oslo's default flags (topic, not durable, not auto-delete). */
export const NOVA_EXCHANGE = 'nova';
export const NOVA_EXCHANGE_OPTIONS: amqp.Options.AssertExchange = { durable: false, autoDelete: false };

/** The amqp:// URL of the first broker in berth.conf's transport_url (the control plane's RabbitMQ). */
export function amqpUrl(berthConf: string = AIO.berthConf): string {
  const config = loadConfig([berthConf], { logger: silentLogger() });
  const url = parseTransportUrl(config.DEFAULT.transport_url);
  const [first] = url.hosts;
  if (!first) throw new Error(`no broker in the transport_url of ${berthConf}`);
  const vhost = url.virtualHost === '/' ? '' : encodeURIComponent(url.virtualHost);
  return `amqp://${encodeURIComponent(first.username)}:${encodeURIComponent(first.password)}@${first.hostname}:${first.port}/${vhost}`;
}

/** A connection to the control plane's broker; the caller closes it. */
export function connectBroker(): Promise<amqp.ChannelModel> {
  return amqp.connect(amqpUrl());
}

/** Deletes queues (a host's `compute.<host>` outlives its service: oslo declares it non-auto-delete). */
export async function deleteQueues(names: readonly string[]): Promise<void> {
  const connection = await connectBroker();
  try {
    const channel = await connection.createChannel();
    for (const name of names) await channel.deleteQueue(name);
    await channel.close();
  } finally {
    await connection.close();
  }
}
