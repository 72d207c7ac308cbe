// RpcClient: oslo's RPC client. CALLs carry `_msg_id`/`_reply_q`/`_timeout`, are published with `expiration` and
// wait for the reply on this client's `reply_<hex>` queue (declared lazily, re-declared on reconnect); CASTs and
// fanout CASTs resolve on the publisher confirm. Protocol: §1.7, §1.8, §1.11.
import { randomUUID } from 'node:crypto';
import type * as amqp from 'amqplib';
import type { Logger } from '../log';
import type { MessagingSession, SetupContext, SetupRegistration } from './amqp-session';
import { packContext } from './context';
import { DedupeRing } from './dedupe-ring';
import { decodeBody, encodeEnvelope, jsonText, messageProperties } from './envelope';
import { InvalidTarget, MessagingTimeout, SessionClosedError } from './errors';
import { RemoteFailure } from './failure';
import type { ExchangeSpec } from './topology';
import { controlExchange, declareQueue, fanoutExchange, replyQueue, resolveQueueFlags } from './topology';
import type { CallOptions, QueueFlags, RequestContext, RpcCaller, Target } from './types';

export interface RpcClientOptions {
  readonly session: MessagingSession;
  readonly logger: Logger;
  /** `[DEFAULT] control_exchange`; default `nova`. */
  readonly exchange?: string;
  readonly queueFlags?: Partial<QueueFlags>;
  /** `[DEFAULT] rpc_response_timeout` in ms; default 60 000. */
  readonly timeoutMs?: number;
}

interface PendingCall {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly abort: AbortController;
  readonly callMonitorMs: number | null;
  timer: NodeJS.Timeout | null;
  monitorTimer: NodeJS.Timeout | null;
  /** The last non-null result or failure (the legacy form sends it before the `ending` message). */
  final: { value: unknown } | null;
}

const hex = (): string => randomUUID().replace(/-/g, '');

function truthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object' && value !== null) return Object.keys(value).length > 0;
  return Boolean(value);
}

export class RpcClient implements RpcCaller {
  /** `reply_<uuid4 hex>`: this client's reply queue. */
  readonly replyQueueName = `reply_${hex()}`;
  private readonly session: MessagingSession;
  private readonly log: Logger;
  private readonly flags: QueueFlags;
  private readonly exchangeName: string;
  private readonly timeoutMs: number;
  private readonly pending = new Map<string, PendingCall>();
  private readonly dedupe = new DedupeRing();
  private replyReady: Promise<void> | null = null;
  private registration: SetupRegistration | null = null;
  private closed = false;

  constructor(options: RpcClientOptions) {
    this.session = options.session;
    this.flags = resolveQueueFlags(options.queueFlags);
    this.exchangeName = options.exchange ?? 'nova';
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.log = options.logger.child({ component: 'rpc-client', reply_q: this.replyQueueName });
  }

  /** CALLs waiting for their reply. */
  get pendingCalls(): number {
    return this.pending.size;
  }

  call(
    context: RequestContext,
    target: Target,
    method: string,
    args: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<unknown> {
    if (this.closed) return Promise.reject(new SessionClosedError('RPC client closed'));
    if (target.fanout) return Promise.reject(new InvalidTarget('A call cannot be used with fanout'));
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const callMonitorSec = options.callMonitorTimeoutSec ?? null;
    const msgId = hex();
    const message: Record<string, unknown> = {
      method,
      args,
      ...(target.namespace == null ? {} : { namespace: target.namespace }),
      version: target.version,
      _msg_id: msgId,
      _reply_q: this.replyQueueName,
      _timeout: callMonitorSec,
      _unique_id: hex(),
      ...packContext(context),
    };
    const { exchange, routingKey } = this.destination(target);
    const log = this.log.child({ request_id: context.request_id, message_id: msgId, method });
    return new Promise<unknown>((resolve, reject) => {
      const call: PendingCall = {
        resolve,
        reject,
        abort: new AbortController(),
        callMonitorMs: callMonitorSec ? callMonitorSec * 1000 : null,
        timer: null,
        monitorTimer: null,
        final: null,
      };
      call.timer = setTimeout(() => this.settle(msgId, new MessagingTimeout(msgId)), timeoutMs);
      this.pending.set(msgId, call);
      this.armCallMonitor(msgId, call);
      log.debug({ exchange: exchange.name, routing_key: routingKey }, 'CALL');
      const send = async (): Promise<void> => {
        await this.ensureReplyConsumer();
        if (!this.pending.has(msgId)) return; // timed out while the reply queue was being set up
        await this.session.publish({
          exchange,
          routingKey,
          body: encodeEnvelope(message),
          properties: messageProperties(timeoutMs),
          signal: call.abort.signal,
        });
      };
      send().catch((err: unknown) => this.settle(msgId, err instanceof Error ? err : new Error(String(err))));
    });
  }

  async cast(context: RequestContext, target: Target, method: string, args: Record<string, unknown>): Promise<void> {
    if (this.closed) throw new SessionClosedError('RPC client closed');
    const message: Record<string, unknown> = {
      method,
      args,
      ...(target.namespace == null ? {} : { namespace: target.namespace }),
      version: target.version,
      _unique_id: hex(),
      ...packContext(context),
    };
    const { exchange, routingKey } = this.destination(target);
    this.log.debug({ request_id: context.request_id, method, exchange: exchange.name, routing_key: routingKey }, 'CAST');
    await this.session.publish({ exchange, routingKey, body: encodeEnvelope(message), properties: messageProperties() });
  }

  /** Fails the waiting CALLs and stops consuming the reply queue (it expires by itself, as oslo leaves it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const msgId of [...this.pending.keys()]) this.settle(msgId, new SessionClosedError('RPC client closed'));
    await this.replyReady?.catch(() => undefined);
    await this.registration?.remove();
    this.registration = null;
  }

  private destination(target: Target): { exchange: ExchangeSpec; routingKey: string } {
    if (target.fanout) return { exchange: fanoutExchange(target.topic), routingKey: '' };
    return {
      exchange: controlExchange(target.exchange ?? this.exchangeName, this.flags),
      routingKey: target.server ? `${target.topic}.${target.server}` : target.topic,
    };
  }

  private ensureReplyConsumer(): Promise<void> {
    this.replyReady ??= this.session
      .addSetup(`rpc-client ${this.replyQueueName}`, (ctx) => this.setupReplyQueue(ctx))
      .then(
        (registration) => {
          if (this.closed) return registration.remove();
          this.registration = registration;
          return undefined;
        },
        (err: unknown) => {
          this.replyReady = null;
          throw err;
        },
      );
    return this.replyReady;
  }

  private async setupReplyQueue(ctx: SetupContext): Promise<void> {
    const channel = await ctx.createChannel();
    await declareQueue(channel, replyQueue(this.replyQueueName, this.flags));
    await channel.consume(this.replyQueueName, (msg) => this.onReply(channel, msg), { noAck: false, consumerTag: '1' });
  }

  private onReply(channel: amqp.Channel, msg: amqp.ConsumeMessage | null): void {
    if (msg === null) {
      this.log.warn('reply consumer cancelled by the broker; re-declaring');
      void channel.close().catch(() => undefined);
      return;
    }
    try {
      channel.ack(msg);
    } catch {
      // channel gone: the broker redelivers it after the reconnect
      return;
    }
    // A throw from a delivery callback would reach amqplib's frame handling: keep every failure here.
    try {
      this.handleReply(msg);
    } catch (err) {
      this.log.error({ bytes: msg.content.length, err: String(err) }, 'reply could not be handled; dropped');
    }
  }

  private handleReply(msg: amqp.ConsumeMessage): void {
    let data: Record<string, unknown>;
    try {
      data = decodeBody(msg.content);
    } catch (err) {
      this.log.warn({ err: String(err), bytes: msg.content.length }, 'undecodable reply dropped');
      return;
    }
    const msgId = data['_msg_id'];
    const messageId = typeof msgId === 'string' ? msgId : jsonText(msgId);
    if (this.dedupe.seen(data['_unique_id'])) {
      this.log.debug({ message_id: messageId }, 'duplicate reply dropped');
      return;
    }
    const call = typeof msgId === 'string' ? this.pending.get(msgId) : undefined;
    if (!call) {
      this.log.debug({ message_id: messageId }, 'No calling threads waiting for msg_id');
      return;
    }
    // oslo ReplyWaiter: a failure wins, then a non-null result; `ending` completes the call; an empty non-ending
    // reply is a call-monitor heartbeat.
    const reply = truthy(data['failure']) ? RemoteFailure.deserialize(data['failure']) : (data['result'] ?? null);
    const ending = truthy(data['ending']);
    if (reply !== null) call.final = { value: reply };
    else if (!ending) {
      this.log.debug({ message_id: msgId }, 'Call monitor heartbeat received; renewing timeout timer');
      this.armCallMonitor(msgId as string, call);
    }
    if (ending) this.settle(msgId as string, null);
  }

  private armCallMonitor(msgId: string, call: PendingCall): void {
    if (call.callMonitorMs === null) return;
    if (call.monitorTimer) clearTimeout(call.monitorTimer);
    call.monitorTimer = setTimeout(() => this.settle(msgId, new MessagingTimeout(msgId)), call.callMonitorMs);
  }

  /** Completes a pending CALL: with `err`, or with its final reply. Later replies for it are ignored. */
  private settle(msgId: string, err: Error | null): void {
    const call = this.pending.get(msgId);
    if (!call) return;
    this.pending.delete(msgId);
    if (call.timer) clearTimeout(call.timer);
    if (call.monitorTimer) clearTimeout(call.monitorTimer);
    call.abort.abort();
    if (err) call.reject(err);
    else if (call.final?.value instanceof RemoteFailure) call.reject(call.final.value);
    else call.resolve(call.final ? call.final.value : null);
  }
}
