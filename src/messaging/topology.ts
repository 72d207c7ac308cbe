// The exchanges and queues oslo.messaging's impl_rabbit declares, with exactly its flags and arguments (one source of
// truth for server, client and notifier), and their declaration on a channel. A declaration that differs from an
// existing entity gets 406 from RabbitMQ; that becomes a TopologyMismatchError naming the entity and the option.
// Protocol: nova-compute-protocol.md §1.2 and §4.11.
import type { Channel } from 'amqplib';
import { TopologyMismatchError } from './errors';
import type { QueueFlags } from './types';

export const DEFAULT_QUEUE_FLAGS: QueueFlags = {
  durable: false,
  autoDelete: false,
  haQueues: false,
  quorumQueues: false,
  transientQueuesTtlSec: 1800,
};

/** Fills in oslo's defaults and rejects combinations oslo rejects. */
export function resolveQueueFlags(flags: Partial<QueueFlags> = {}): QueueFlags {
  const resolved: QueueFlags = { ...DEFAULT_QUEUE_FLAGS, ...flags };
  if (resolved.haQueues && resolved.quorumQueues) {
    throw new RangeError('rabbit_quorum_queue and rabbit_ha_queues are both enabled: a queue is quorum or HA, not both');
  }
  if (!Number.isInteger(resolved.transientQueuesTtlSec) || resolved.transientQueuesTtlSec < 1) {
    throw new RangeError(`rabbit_transient_queues_ttl must be a positive integer, got ${resolved.transientQueuesTtlSec}`);
  }
  return resolved;
}

/** A table value with an explicit AMQP type: py-amqp encodes Python ints as signed 32-bit ('I') when they fit. */
export interface TypedInteger {
  readonly '!': 'int' | 'long';
  readonly value: number;
}

export type QueueArgument = string | TypedInteger;

function pyInt(value: number): TypedInteger {
  return { '!': value >= -0x80000000 && value <= 0x7fffffff ? 'int' : 'long', value };
}

export interface ExchangeSpec {
  readonly name: string;
  readonly type: 'topic' | 'fanout' | 'direct';
  readonly durable: boolean;
  readonly autoDelete: boolean;
}

export interface QueueSpec {
  readonly name: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly arguments: Readonly<Record<string, QueueArgument>>;
}

type QueueKind = 'topic' | 'transient' | 'notification';

/** impl_rabbit._get_queue_arguments: HA for every queue, quorum for topic-like queues, x-expires for transient ones. */
export function queueArguments(flags: QueueFlags, kind: QueueKind): Record<string, QueueArgument> {
  const args: Record<string, QueueArgument> = {};
  if (flags.haQueues) args['x-ha-policy'] = 'all';
  if (flags.quorumQueues && kind !== 'transient') {
    args['x-queue-type'] = 'quorum';
    if (flags.quorumDeliveryLimit) args['x-delivery-limit'] = pyInt(flags.quorumDeliveryLimit);
    if (flags.quorumMaxMemoryLength) args['x-max-in-memory-length'] = pyInt(flags.quorumMaxMemoryLength);
    if (flags.quorumMaxMemoryBytes) args['x-max-in-memory-bytes'] = pyInt(flags.quorumMaxMemoryBytes);
  }
  if (kind === 'transient') args['x-expires'] = pyInt(flags.transientQueuesTtlSec * 1000);
  return args;
}

// Quorum queues are always durable, so oslo makes the topic entities durable with them.
const topicDurable = (flags: QueueFlags): boolean => flags.durable || flags.quorumQueues;

/** The control exchange (`nova`), used for RPC and notifications. */
export function controlExchange(name: string, flags: QueueFlags): ExchangeSpec {
  return { name, type: 'topic', durable: topicDurable(flags), autoDelete: flags.autoDelete };
}

/** A topic consumer queue: `compute`, `compute.<host>`. */
export function topicQueue(name: string, flags: QueueFlags): QueueSpec {
  return { name, durable: topicDurable(flags), autoDelete: flags.autoDelete, arguments: queueArguments(flags, 'topic') };
}

/** `<topic>_fanout`: never durable, deleted with its last binding. */
export function fanoutExchange(topic: string): ExchangeSpec {
  return { name: `${topic}_fanout`, type: 'fanout', durable: false, autoDelete: true };
}

/** `<topic>_fanout_<uuid4hex>`: one per server, expires when unused. */
export function fanoutQueue(name: string, flags: QueueFlags): QueueSpec {
  return { name, durable: false, autoDelete: false, arguments: queueArguments(flags, 'transient') };
}

/** `reply_<uuid4hex>`: reached through the default exchange, no binding. */
export function replyQueue(name: string, flags: QueueFlags): QueueSpec {
  return { name, durable: false, autoDelete: false, arguments: queueArguments(flags, 'transient') };
}

/** The queue a notifier declares, named like its routing key, so notifications wait for their consumer. */
export function notificationQueue(routingKey: string, exchange: ExchangeSpec, flags: QueueFlags): QueueSpec {
  return {
    name: routingKey,
    durable: exchange.durable,
    autoDelete: exchange.autoDelete,
    arguments: queueArguments(flags, 'notification'),
  };
}

function plainArguments(args: Readonly<Record<string, QueueArgument>>): Record<string, string | number> {
  return Object.fromEntries(Object.entries(args).map(([k, v]) => [k, typeof v === 'string' ? v : v.value]));
}

export function describeExchange(spec: ExchangeSpec): string {
  return `type=${spec.type} durable=${spec.durable} auto_delete=${spec.autoDelete}`;
}

export function describeQueue(spec: QueueSpec): string {
  return `durable=${spec.durable} auto_delete=${spec.autoDelete} exclusive=false arguments=${JSON.stringify(plainArguments(spec.arguments))}`;
}

// Which [oslo_messaging_rabbit] option decides each argument RabbitMQ can complain about.
const OPTION_FOR_ARGUMENT: Readonly<Record<string, string>> = {
  durable: 'amqp_durable_queues (or rabbit_quorum_queue)',
  auto_delete: 'amqp_auto_delete',
  'x-ha-policy': 'rabbit_ha_queues',
  'x-queue-type': 'rabbit_quorum_queue',
  'x-expires': 'rabbit_transient_queues_ttl',
  'x-delivery-limit': 'rabbit_quorum_delivery_limit',
  'x-max-in-memory-length': 'rabbit_quroum_max_memory_length',
  'x-max-in-memory-bytes': 'rabbit_quroum_max_memory_bytes',
};

/** Turns amqplib's 406 error into a TopologyMismatchError; anything else is returned unchanged. */
export function topologyError(err: unknown, entity: 'queue' | 'exchange', name: string, declared: string): unknown {
  if (!(err instanceof Error) || (err as { code?: unknown }).code !== 406) return err;
  const quoted = /with message "(.*)"$/s.exec(err.message);
  const serverText = quoted?.[1] ?? err.message;
  const argument = /inequivalent arg '([^']+)'/.exec(serverText)?.[1] ?? null;
  const option = argument === null ? null : (OPTION_FOR_ARGUMENT[argument] ?? null);
  return new TopologyMismatchError(entity, name, declared, serverText, argument, option);
}

export async function declareExchange(channel: Channel, spec: ExchangeSpec): Promise<void> {
  try {
    await channel.assertExchange(spec.name, spec.type, { durable: spec.durable, autoDelete: spec.autoDelete });
  } catch (err) {
    throw topologyError(err, 'exchange', spec.name, describeExchange(spec));
  }
}

export async function declareQueue(channel: Channel, spec: QueueSpec): Promise<void> {
  try {
    await channel.assertQueue(spec.name, {
      durable: spec.durable,
      autoDelete: spec.autoDelete,
      exclusive: false,
      arguments: { ...spec.arguments },
    });
  } catch (err) {
    throw topologyError(err, 'queue', spec.name, describeQueue(spec));
  }
}
