// RpcServer: oslo's RPC server for topic T and server H. It declares Python's topology (§1.2), consumes the queues
// `T`, `T.H` and `T_fanout_<hex>`, acks each message on receipt (oslo 14: at-most-once), drops duplicates, dispatches
// to the endpoints with oslo's rules and, for a CALL, always replies — with the result or with the failure Python
// would have sent — to the default exchange, routing key `_reply_q`. Bad input is answered or logged, never fatal.
import { randomUUID } from 'node:crypto';
import type * as amqp from 'amqplib';
import type { Logger } from '../log';
import type { MessagingSession, SetupContext, SetupRegistration } from './amqp-session';
import { DedupeRing } from './dedupe-ring';
import type { Dispatch } from './dispatcher';
import { pythonException, selectEndpoint, validateEndpoints } from './dispatcher';
import { encodeEnvelope, jsonText, messageProperties } from './envelope';
import { NoRouteError } from './errors';
import { RemoteFailure, toRemoteFailure } from './failure';
import type { ParsedDelivery, ReplyAddress, RpcRequest } from './incoming-message';
import { parseRpcDelivery } from './incoming-message';
import { ObsoleteReplyQueues } from './obsolete-reply-queues';
import type { ExchangeSpec, QueueSpec } from './topology';
import {
  controlExchange,
  declareExchange,
  declareQueue,
  fanoutExchange,
  fanoutQueue,
  resolveQueueFlags,
  topicQueue,
} from './topology';
import type { IncomingCall, QueueFlags, RpcEndpoint } from './types';

export interface RpcServerOptions {
  readonly session: MessagingSession;
  readonly topic: string;
  /** The server name (`[DEFAULT] host`). */
  readonly server: string;
  readonly endpoints: readonly RpcEndpoint[];
  readonly logger: Logger;
  /** `[DEFAULT] control_exchange`; Nova sets `nova`. Default `nova`. */
  readonly exchange?: string;
  readonly queueFlags?: Partial<QueueFlags>;
  /** Declare and consume `<topic>_fanout` as oslo always does (Zed sends compute nothing there). Default true. */
  readonly fanout?: boolean;
  /** Bodies larger than this are refused before parsing. Default 16 MiB. */
  readonly maxMessageBytes?: number;
  /** `kombu_missing_consumer_retry_timeout` (s): how long a reply to a missing reply queue is retried. Default 60. */
  readonly missingReplyQueueRetryTimeoutSec?: number;
}

export type RpcServerState = 'created' | 'starting' | 'running' | 'stopped' | 'closed';

/** A message being handled (CALL or CAST), from receipt until its reply was sent. */
export interface InFlightMessage {
  readonly method: string | null;
  /** `_msg_id` of a CALL, `_unique_id` of a CAST. */
  readonly messageId: string;
  readonly requestId: string | null;
  readonly isCall: boolean;
  readonly startedAt: Date;
}

export interface DrainReport {
  /** True when nothing was still running when drain returned. */
  readonly drained: boolean;
  readonly unfinished: readonly InFlightMessage[];
}

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const REPLY_RETRY_INTERVAL_MS = 250;

type Outcome = { readonly result: unknown } | { readonly failure: RemoteFailure };

function describe(value: unknown): string {
  return typeof value === 'string' ? value : jsonText(value);
}

/** Python `int(value)` for the call-monitor timeout; NaN where Python raises. */
function clientTimeoutSeconds(value: unknown): number {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : Number.NaN;
  if (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  return Number.NaN;
}

function truthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object' && value !== null) return Object.keys(value).length > 0;
  return Boolean(value);
}

export class RpcServer {
  /** `<topic>_fanout_<uuid4 hex>`, fixed for the life of the server (re-declared on reconnect). */
  readonly fanoutQueueName: string;
  private currentState: RpcServerState = 'created';
  private readonly session: MessagingSession;
  private readonly endpoints: readonly RpcEndpoint[];
  private readonly log: Logger;
  private readonly exchange: ExchangeSpec;
  private readonly queues: readonly QueueSpec[];
  private readonly fanout: { exchange: ExchangeSpec; queue: QueueSpec } | null;
  private readonly topic: string;
  private readonly maxMessageBytes: number;
  private readonly replyRetryMs: number;
  private readonly dedupe = new DedupeRing();
  private readonly obsoleteReplyQueues = new ObsoleteReplyQueues();
  private readonly inFlight = new Map<number, { info: InFlightMessage; done: Promise<void> }>();
  private readonly shutdown = new AbortController();
  private nextTaskId = 0;
  private registration: SetupRegistration | null = null;
  private consumer: { channel: amqp.Channel; tags: string[] } | null = null;

  constructor(options: RpcServerOptions) {
    validateEndpoints(options.endpoints);
    const flags = resolveQueueFlags(options.queueFlags);
    this.session = options.session;
    this.endpoints = options.endpoints;
    this.topic = options.topic;
    this.exchange = controlExchange(options.exchange ?? 'nova', flags);
    this.queues = [topicQueue(options.topic, flags), topicQueue(`${options.topic}.${options.server}`, flags)];
    this.fanoutQueueName = `${options.topic}_fanout_${randomUUID().replace(/-/g, '')}`;
    this.fanout =
      options.fanout === false
        ? null
        : { exchange: fanoutExchange(options.topic), queue: fanoutQueue(this.fanoutQueueName, flags) };
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.replyRetryMs = (options.missingReplyQueueRetryTimeoutSec ?? 60) * 1000;
    this.log = options.logger.child({ component: 'rpc-server', topic: options.topic, server: options.server });
  }

  get state(): RpcServerState {
    return this.currentState;
  }

  /** Messages being handled right now. */
  get inFlightMessages(): readonly InFlightMessage[] {
    return [...this.inFlight.values()].map((t) => t.info);
  }

  /** Declares the topology and starts consuming; rejects on a TopologyMismatchError (the flags disagree). */
  async start(): Promise<void> {
    if (this.currentState !== 'created') throw new Error(`RpcServer cannot start from state ${this.currentState}`);
    this.currentState = 'starting';
    try {
      this.registration = await this.session.addSetup(`rpc-server ${this.queues[1]?.name}`, (ctx) => this.setup(ctx));
    } catch (err) {
      this.currentState = 'closed';
      throw err;
    }
    if (this.isState('starting')) this.currentState = 'running';
    this.log.info({ queues: this.queues.map((q) => q.name), fanout_queue: this.fanout?.queue.name ?? null }, 'RPC server consuming');
  }

  /** Cancels the consumers: no new messages; the ones in flight go on. */
  async stopConsuming(): Promise<void> {
    if (this.currentState === 'stopped' || this.currentState === 'closed') return;
    this.currentState = 'stopped';
    const consumer = this.consumer;
    this.consumer = null;
    if (consumer) {
      for (const tag of consumer.tags) await consumer.channel.cancel(tag).catch(() => undefined);
    }
    this.log.info({ in_flight: this.inFlight.size }, 'RPC server stopped consuming');
  }

  /** Waits up to graceMs for the messages in flight (handlers and their replies); reports what did not finish. */
  async drain(graceMs: number): Promise<DrainReport> {
    const running = [...this.inFlight.values()].map((t) => t.done);
    if (running.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled(running),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }
    const unfinished = this.inFlightMessages;
    if (unfinished.length > 0) {
      this.log.warn(
        { unfinished: unfinished.map((m) => ({ method: m.method, message_id: m.messageId, request_id: m.requestId })) },
        `${unfinished.length} RPC handlers still running after the ${graceMs} ms grace`,
      );
    }
    return { drained: unfinished.length === 0, unfinished };
  }

  /** Stops consuming, deletes the fanout queue (as oslo does on a clean shutdown) and releases the channel. */
  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    await this.stopConsuming();
    this.currentState = 'closed';
    this.shutdown.abort();
    const fanout = this.fanout;
    if (fanout && this.session.state !== 'closed') {
      await this.session
        .withChannel((ch) => ch.deleteQueue(fanout.queue.name))
        .catch((err: unknown) => this.log.warn({ err: String(err), queue: fanout.queue.name }, 'could not delete the fanout queue'));
    }
    await this.registration?.remove();
    this.registration = null;
  }

  // A method, so TypeScript does not keep a narrowing of the state across awaits.
  private isState(state: RpcServerState): boolean {
    return this.currentState === state;
  }

  private async setup(ctx: SetupContext): Promise<void> {
    if (!this.isState('starting') && !this.isState('running')) return;
    const channel = await ctx.createChannel();
    await declareExchange(channel, this.exchange);
    for (const queue of this.queues) {
      await declareQueue(channel, queue);
      await channel.bindQueue(queue.name, this.exchange.name, queue.name);
    }
    const consumed = [...this.queues];
    if (this.fanout) {
      await declareExchange(channel, this.fanout.exchange);
      await declareQueue(channel, this.fanout.queue);
      await channel.bindQueue(this.fanout.queue.name, this.fanout.exchange.name, this.topic);
      consumed.push(this.fanout.queue);
    }
    // Consumer tags "1", "2", "3" per channel, as kombu numbers them; no basic.qos (prefetch 0 = unlimited).
    const tags: string[] = [];
    for (const [index, queue] of consumed.entries()) {
      const { consumerTag } = await channel.consume(queue.name, (msg) => this.onDelivery(channel, msg), {
        noAck: false,
        consumerTag: String(index + 1),
      });
      tags.push(consumerTag);
    }
    if (!this.isState('starting') && !this.isState('running')) {
      // stopConsuming() ran while we were setting up (e.g. after a reconnect): do not keep these consumers.
      for (const tag of tags) await channel.cancel(tag).catch(() => undefined);
      return;
    }
    this.consumer = { channel, tags };
  }

  private onDelivery(channel: amqp.Channel, msg: amqp.ConsumeMessage | null): void {
    if (msg === null) {
      // basic.cancel from the broker (queue deleted): drop the channel so the session declares and consumes again.
      this.log.warn('consumer cancelled by the broker; re-declaring');
      void channel.close().catch(() => undefined);
      return;
    }
    if (!this.isState('running') && !this.isState('starting')) {
      // Arrived after stopConsuming: leave it for another server.
      try {
        channel.nack(msg, false, true);
      } catch {
        // the channel is gone; the broker requeues it anyway
      }
      return;
    }
    try {
      channel.ack(msg);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'Discarding RPC request due to failed acknowledge');
      return;
    }
    // A throw from a delivery callback would reach amqplib's frame handling: keep every failure here.
    try {
      this.track(parseRpcDelivery(msg.content, this.maxMessageBytes), msg.content.length);
    } catch (err) {
      this.log.error({ bytes: msg.content.length, err: String(err) }, 'RPC message could not be handled; dropped');
    }
  }

  private track(parsed: ParsedDelivery, bytes: number): void {
    const id = ++this.nextTaskId;
    let info: InFlightMessage;
    let work: () => Promise<void>;
    if (parsed.kind === 'invalid') {
      info = {
        method: null,
        messageId: parsed.replyTo?.msgId ?? parsed.uniqueId ?? '-',
        requestId: parsed.requestId,
        isCall: parsed.replyTo !== null,
        startedAt: new Date(),
      };
      work = () => this.handleInvalid(parsed, info, bytes);
    } else {
      const { request } = parsed;
      info = {
        method: typeof request.fields.method === 'string' ? request.fields.method : null,
        messageId: request.replyTo?.msgId ?? (request.uniqueId === undefined ? '-' : describe(request.uniqueId)),
        requestId: request.context.request_id,
        isCall: request.replyTo !== null,
        startedAt: new Date(),
      };
      work = () => this.handleRequest(request, info);
    }
    const done = work().catch((err: unknown) => {
      this.log.error({ request_id: info.requestId, message_id: info.messageId, err: String(err) }, 'RPC message handling failed');
    });
    this.inFlight.set(id, { info, done });
    void done.finally(() => this.inFlight.delete(id));
  }

  private messageLog(info: InFlightMessage): Logger {
    return this.log.child({ request_id: info.requestId, message_id: info.messageId, ...(info.method ? { method: info.method } : {}) });
  }

  private async handleInvalid(parsed: Extract<ParsedDelivery, { kind: 'invalid' }>, info: InFlightMessage, bytes: number): Promise<void> {
    const log = this.messageLog(info);
    const details = { bytes, exception: parsed.failure.className, reason: parsed.failure.message };
    if (parsed.replyTo) {
      log.warn(details, 'undecodable RPC message; replying with a failure');
      await this.reply(parsed.replyTo, { failure: parsed.failure }, log);
    } else {
      log.warn(details, 'undecodable RPC message without a reply address dropped');
    }
  }

  private async handleRequest(request: RpcRequest, info: InFlightMessage): Promise<void> {
    const log = this.messageLog(info);
    if (this.dedupe.seen(request.uniqueId)) {
      log.warn({ unique_id: describe(request.uniqueId) }, 'ignoring duplicate message');
      return;
    }
    if (request.unanswerable) {
      log.warn('CALL without a usable _msg_id/_reply_q: handled, but no reply can be sent');
    }
    log.debug({ call: request.replyTo !== null }, 'received RPC message');
    let dispatch: Dispatch;
    try {
      dispatch = selectEndpoint(this.endpoints, request.fields);
    } catch (err) {
      await this.finish(request, { failure: toRemoteFailure(err) }, log);
      return;
    }
    const call: IncomingCall = {
      method: dispatch.method,
      namespace: dispatch.namespace,
      version: dispatch.version,
      args: dispatch.args,
      context: request.context,
      isCall: request.replyTo !== null,
      messageId: info.messageId,
    };
    const monitor = request.replyTo ? this.startCallMonitor(request.replyTo, request.clientTimeout, log) : null;
    let outcome: Outcome;
    try {
      outcome = { result: await dispatch.handler(call) };
    } catch (err) {
      if (!(err instanceof RemoteFailure)) {
        log.error({ err: err instanceof Error ? err.stack ?? err.message : String(err) }, 'Exception during message handling');
      }
      outcome = { failure: toRemoteFailure(err) };
    } finally {
      monitor?.stop();
    }
    await this.finish(request, outcome, log);
  }

  private async finish(request: RpcRequest, outcome: Outcome, log: Logger): Promise<void> {
    if ('failure' in outcome) {
      const detail = { exception: outcome.failure.className, module: outcome.failure.module, reason: outcome.failure.message };
      if (request.replyTo) log.info(detail, 'RPC CALL failed; replying with the failure');
      else log.warn(detail, 'RPC CAST failed; dropped (a CAST gets no reply)');
    }
    if (request.replyTo) await this.reply(request.replyTo, outcome, log);
  }

  /** Builds the final reply; a result that cannot be serialised becomes a failure instead of no reply at all. */
  private encodeReply(replyTo: ReplyAddress, outcome: Outcome): Buffer {
    const message = (result: unknown, failure: string | null): Buffer =>
      encodeEnvelope({ result, failure, ending: true, _msg_id: replyTo.msgId, _unique_id: randomUUID().replace(/-/g, '') });
    if ('failure' in outcome) {
      let failure: string;
      try {
        failure = outcome.failure.serialize();
      } catch {
        const { className, module, message: text } = outcome.failure;
        failure = new RemoteFailure(className, module, text, { args: [text], kwargs: {}, tb: outcome.failure.tb }).serialize();
      }
      return message(null, failure);
    }
    try {
      return message(outcome.result ?? null, null);
    } catch (err) {
      const failure = pythonException('TypeError', 'builtins', `result is not JSON serializable: ${String(err)}`);
      return message(null, failure.serialize());
    }
  }

  private async reply(replyTo: ReplyAddress, outcome: Outcome, log: Logger): Promise<void> {
    const body = this.encodeReply(replyTo, outcome);
    const { msgId, replyQ } = replyTo;
    if (this.obsoleteReplyQueues.has(replyQ)) {
      log.warn({ reply_q: replyQ }, `${replyQ} doesn't exist, drop reply to ${msgId}`);
      return;
    }
    const deadline = Date.now() + this.replyRetryMs;
    for (;;) {
      try {
        await this.session.publish({
          exchange: null,
          routingKey: replyQ,
          body,
          properties: messageProperties(),
          mandatory: true,
          signal: this.shutdown.signal,
        });
        log.debug({ reply_q: replyQ }, 'sent reply');
        return;
      } catch (err) {
        if (!(err instanceof NoRouteError)) {
          log.error({ reply_q: replyQ, err: String(err) }, 'Can not send reply for message');
          return;
        }
        if (Date.now() >= deadline || this.shutdown.signal.aborted) {
          this.obsoleteReplyQueues.add(replyQ);
          log.error(
            { reply_q: replyQ },
            `The reply ${msgId} failed to send after ${this.replyRetryMs / 1000} seconds due to a missing queue (${replyQ}). Abandoning...`,
          );
          return;
        }
        log.debug({ reply_q: replyQ }, `The reply ${msgId} could not be sent due to a missing queue (${replyQ}). Retrying...`);
        await this.pause(REPLY_RETRY_INTERVAL_MS);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(finish, ms);
      const signal = this.shutdown.signal;
      function finish(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', finish);
        resolve();
      }
      signal.addEventListener('abort', finish, { once: true });
    });
  }

  /**
   * oslo's call-monitor watchdog: when the caller sent an integer `_timeout`, heartbeat (an empty reply with
   * `ending: false`) every `_timeout/2` seconds while the handler runs. Stops at the first failed heartbeat.
   */
  private startCallMonitor(replyTo: ReplyAddress, clientTimeout: unknown, log: Logger): { stop(): void } | null {
    if (!truthy(clientTimeout)) return null;
    const intervalSec = clientTimeoutSeconds(clientTimeout) / 2;
    if (!(intervalSec >= 1)) {
      log.warn({ client_timeout: describe(clientTimeout) }, `Client provided an invalid timeout value of ${describe(clientTimeout)}`);
      return null;
    }
    let stopped = false;
    let timer: NodeJS.Timeout | null = null;
    const beat = async (): Promise<void> => {
      timer = null;
      if (stopped) return;
      try {
        await this.session.publish({
          exchange: null,
          routingKey: replyTo.replyQ,
          body: encodeEnvelope({
            result: null,
            failure: null,
            ending: false,
            _msg_id: replyTo.msgId,
            _unique_id: randomUUID().replace(/-/g, ''),
          }),
          properties: messageProperties(),
          mandatory: true,
          retry: 0,
        });
        log.debug({ interval_sec: intervalSec }, 'sent call-monitor heartbeat');
      } catch (err) {
        log.debug({ err: String(err) }, 'Call-monitor heartbeat failed');
        return;
      }
      if (!stopped) timer = setTimeout(() => void beat(), intervalSec * 1000);
    };
    timer = setTimeout(() => void beat(), intervalSec * 1000);
    return {
      stop: () => {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
  }
}
