// MessagingSession owns the AMQP connection and keeps it alive the way oslo's impl_rabbit (kombu) does: failover
// over the URL's hosts, reconnect backoff rabbit_retry_interval + n·rabbit_retry_backoff capped at
// rabbit_interval_max, and on every (re)connect the registered setups run again (declare topology, start consuming),
// so consumers and publishers do not notice a broker restart. Publishing goes through a confirm channel: a publish
// resolves when the broker acked it, a mandatory publish that comes back becomes a NoRouteError.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import * as amqp from 'amqplib';
import type { Logger } from '../log';
import {
  NoRouteError,
  PublishAbortedError,
  PublishNackedError,
  SessionClosedError,
  TopologyMismatchError,
} from './errors';
import type { ExchangeSpec, QueueSpec } from './topology';
import { declareExchange, declareQueue } from './topology';
import type { TransportHost, TransportUrl } from './transport-url';
import { describeHost } from './transport-url';

export type SessionState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface SessionTlsOptions {
  /** `[oslo_messaging_rabbit] ssl_ca_file`: the CA that signed the broker's certificate (else the system store). */
  readonly caFile?: string;
  /** `ssl_cert_file` / `ssl_key_file`: our client certificate, when the broker asks for one. */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** `ssl_enforce_hostname_verification` (oslo default false): also require the certificate to name the host. */
  readonly enforceHostnameVerification?: boolean;
}

export interface MessagingSessionOptions {
  readonly url: TransportUrl;
  readonly logger: Logger;
  /** `heartbeat_timeout_threshold` (s), negotiated as the AMQP heartbeat; 0 disables. Default 60. */
  readonly heartbeatSec?: number;
  /** `rabbit_login_method`; default AMQPLAIN like oslo. */
  readonly loginMethod?: 'AMQPLAIN' | 'PLAIN' | 'EXTERNAL';
  /** `[oslo_messaging_rabbit] ssl`: TLS with these options; absent or null = plain TCP. The server is always verified. */
  readonly ssl?: SessionTlsOptions | null;
  /** `rabbit_retry_interval` (s), default 1. */
  readonly retryIntervalSec?: number;
  /** `rabbit_retry_backoff` (s), default 2. */
  readonly retryBackoffSec?: number;
  /** `rabbit_interval_max` (s), default 30. */
  readonly intervalMaxSec?: number;
  /** How long one TCP/TLS/AMQP handshake may take before the next host is tried. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** First part of the connection name `<process>:<pid>:<uuid4>`; default the script's file name, like sys.argv[0]. */
  readonly processName?: string;
  /** Shuffle the hosts once, as oslo does with several hosts (then round-robin). Default true. */
  readonly shuffleHosts?: boolean;
}

export interface SessionEvents {
  connected: [info: { host: string }];
  disconnected: [error: Error | undefined];
  closed: [];
  /** A registered setup failed while connected (e.g. a TopologyMismatchError after a reconnect); it is retried. */
  'setup-error': [name: string, error: Error];
  blocked: [reason: string];
  unblocked: [];
}

/** What a setup callback gets on each (re)connect. */
export interface SetupContext {
  /** A channel on the current connection. If the broker closes it later, the setup runs again. */
  createChannel(): Promise<amqp.Channel>;
}

export type SetupFn = (ctx: SetupContext) => Promise<void>;

export interface SetupRegistration {
  readonly name: string;
  /** Stops re-running the setup and closes its channels. */
  remove(): Promise<void>;
}

export interface PublishRequest {
  /** Declared (with exactly these flags) before the first publish on a channel; null = the default exchange "". */
  readonly exchange: ExchangeSpec | null;
  readonly routingKey: string;
  readonly body: Buffer;
  readonly properties: amqp.Options.Publish;
  /** basic.return → NoRouteError instead of a silent drop. */
  readonly mandatory?: boolean;
  /** Declared and bound to `exchange` with `routingKey` once per channel, so messages wait for a consumer. */
  readonly queue?: QueueSpec;
  /** Gives up waiting for a connection (a publish already handed to the broker still completes). */
  readonly signal?: AbortSignal;
  /** How many channel/connection losses to ride out; default unlimited, like oslo's retry=None. */
  readonly retry?: number;
}

interface CompiledOptions {
  readonly hosts: readonly TransportHost[];
  readonly virtualHost: string;
  readonly heartbeatSec: number;
  readonly loginMethod: 'AMQPLAIN' | 'PLAIN' | 'EXTERNAL';
  readonly tls: ConnectionOptions | null;
  readonly retryIntervalSec: number;
  readonly retryBackoffSec: number;
  readonly intervalMaxSec: number;
  readonly connectTimeoutMs: number;
}

interface PendingReturn {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  returned: { replyCode: number; replyText: string } | null;
}

interface PublishChannel {
  readonly channel: amqp.ConfirmChannel;
  readonly declaredExchanges: Set<string>;
  readonly declaredQueues: Set<string>;
  readonly mandatory: PendingReturn[];
  closed: boolean;
}

interface SetupEntry {
  readonly name: string;
  readonly fn: SetupFn;
  readonly channels: Set<amqp.Channel>;
  firstRun: { resolve: () => void; reject: (err: Error) => void } | null;
  running: boolean;
  rerunWanted: boolean;
  failures: number;
  retryTimer: NodeJS.Timeout | null;
  removed: boolean;
}

interface ConnectionWaiter {
  resolve: (conn: amqp.ChannelModel) => void;
  reject: (err: Error) => void;
}

const CLOSE_CONFIRM_WAIT_MS = 5000;

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a non-negative number, got ${value}`);
  return value;
}

function compile(options: MessagingSessionOptions): CompiledOptions {
  const hosts = [...options.url.hosts];
  if (hosts.length === 0) throw new RangeError('transport URL has no host');
  if ((options.shuffleHosts ?? true) && hosts.length > 1) {
    for (let i = hosts.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [hosts[i], hosts[j]] = [hosts[j] as TransportHost, hosts[i] as TransportHost];
    }
  }
  let tls: ConnectionOptions | null = null;
  if (options.ssl) {
    const ssl = options.ssl;
    tls = {
      rejectUnauthorized: true,
      ...(ssl.caFile ? { ca: readFileSync(ssl.caFile) } : {}),
      ...(ssl.certFile ? { cert: readFileSync(ssl.certFile) } : {}),
      ...(ssl.keyFile ? { key: readFileSync(ssl.keyFile) } : {}),
      // oslo checks the chain always but the host name only on request; keep that contract.
      ...(ssl.enforceHostnameVerification ? {} : { checkServerIdentity: () => undefined }),
    };
  }
  return {
    hosts,
    virtualHost: options.url.virtualHost,
    heartbeatSec: positive('heartbeat_timeout_threshold', options.heartbeatSec ?? 60),
    loginMethod: options.loginMethod ?? 'AMQPLAIN',
    tls,
    retryIntervalSec: positive('rabbit_retry_interval', options.retryIntervalSec ?? 1),
    retryBackoffSec: positive('rabbit_retry_backoff', options.retryBackoffSec ?? 2),
    intervalMaxSec: positive('rabbit_interval_max', options.intervalMaxSec ?? 30),
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs ?? 5000),
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function amqpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export class MessagingSession extends EventEmitter<SessionEvents> {
  readonly connectionName: string;
  private readonly opts: CompiledOptions;
  private readonly log: Logger;
  private currentState: SessionState = 'idle';
  private conn: amqp.ChannelModel | null = null;
  private host: TransportHost | null = null;
  private generation = 0;
  private hostIndex = 0;
  private connectLoop: Promise<void> | null = null;
  private readonly waiters = new Set<ConnectionWaiter>();
  private pubPromise: Promise<PublishChannel> | null = null;
  private readonly setups: SetupEntry[] = [];
  private readonly sleepers = new Set<() => void>();
  private closing: Promise<void> | null = null;

  constructor(options: MessagingSessionOptions) {
    super();
    this.opts = compile(options);
    const processName = options.processName ?? basename(process.argv[1] ?? process.argv0);
    this.connectionName = `${processName}:${process.pid}:${randomUUID()}`;
    this.log = options.logger.child({ component: 'amqp-session', connection_name: this.connectionName });
  }

  get state(): SessionState {
    return this.currentState;
  }

  /** `host:port` of the broker we are connected to, or null. */
  get connectedHost(): string | null {
    return this.host && this.conn ? describeHost(this.host) : null;
  }

  /** Connects (retrying with backoff for as long as it takes); resolves once connected. */
  async start(): Promise<void> {
    if (this.currentState === 'closed') throw new SessionClosedError();
    if (this.currentState === 'idle') {
      this.currentState = 'connecting';
      this.kickConnectLoop();
    }
    await this.waitConnected();
  }

  /**
   * Registers a setup that runs now (once connected) and again on every reconnect, in registration order.
   * Resolves after its first successful run; rejects if that run hits a TopologyMismatchError or ACCESS_REFUSED
   * (a deployment error that retrying cannot fix) or if the session closes first.
   */
  async addSetup(name: string, fn: SetupFn): Promise<SetupRegistration> {
    if (this.currentState === 'closed') throw new SessionClosedError();
    const entry: SetupEntry = {
      name,
      fn,
      channels: new Set(),
      firstRun: null,
      running: false,
      rerunWanted: false,
      failures: 0,
      retryTimer: null,
      removed: false,
    };
    const firstRun = new Promise<void>((resolve, reject) => {
      entry.firstRun = { resolve, reject };
    });
    this.setups.push(entry);
    if (this.currentState === 'connected') void this.runSetup(entry, this.generation);
    await firstRun;
    return { name, remove: () => this.removeSetup(entry) };
  }

  /** Publishes on the confirm channel; resolves when the broker confirmed it. */
  async publish(request: PublishRequest): Promise<void> {
    const exchangeName = request.exchange?.name ?? '';
    let losses = 0;
    for (;;) {
      if (request.signal?.aborted) throw new PublishAbortedError();
      const pub = await this.publishChannel(request.signal);
      try {
        await this.prepareDestination(pub, request);
        await this.confirmPublish(pub, request, exchangeName);
        return;
      } catch (err) {
        const code = amqpCode(err);
        if (
          err instanceof NoRouteError ||
          err instanceof PublishNackedError ||
          err instanceof TopologyMismatchError ||
          err instanceof RangeError ||
          err instanceof TypeError ||
          code === 403 ||
          code === 406
        ) {
          throw err;
        }
        losses++;
        if (request.retry !== undefined && losses > request.retry) throw err;
        this.log.warn(
          { exchange: exchangeName, routing_key: request.routingKey, err: errorText(err), attempt: losses },
          'publish interrupted by a channel or connection loss; publishing again',
        );
        // While still connected, the channel died on its own: do not spin.
        if (this.currentState === 'connected') await this.sleep(this.backoffSec(losses - 1) * 1000);
      }
    }
  }

  /** A short-lived channel for one-off operations (e.g. deleting a queue on shutdown). */
  async withChannel<T>(fn: (channel: amqp.Channel) => Promise<T>): Promise<T> {
    const conn = await this.waitConnected();
    const channel = await conn.createChannel();
    channel.on('error', (err: Error) => this.log.debug({ err: err.message }, 'one-off channel closed by the broker'));
    try {
      return await fn(channel);
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Stops reconnecting, waits briefly for outstanding publisher confirms, closes every channel and the connection. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const wasConnected = this.conn;
    this.currentState = 'closed';
    for (const wake of [...this.sleepers]) wake();
    for (const waiter of this.waiters) waiter.reject(new SessionClosedError());
    this.waiters.clear();
    for (const entry of this.setups) {
      entry.removed = true;
      if (entry.retryTimer) clearTimeout(entry.retryTimer);
      entry.firstRun?.reject(new SessionClosedError());
      entry.firstRun = null;
    }
    const pub = await this.pubPromise?.catch(() => null);
    this.pubPromise = null;
    if (pub && !pub.closed) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        pub.channel.waitForConfirms().catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, CLOSE_CONFIRM_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    for (const entry of this.setups.splice(0)) await this.closeSetupChannels(entry);
    this.conn = null;
    if (wasConnected) {
      await wasConnected.close().catch(() => undefined);
      this.log.info('closed the AMQP connection');
    }
    this.announce('closed');
  }

  /** Emits without letting a throwing listener break the session's own bookkeeping. */
  private announce<K extends keyof SessionEvents>(event: K, ...args: SessionEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: SessionEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ event, err: errorText(err) }, 'a session event listener threw');
    }
  }

  // ---- connection ------------------------------------------------------------------------------------------

  private kickConnectLoop(): void {
    this.connectLoop ??= this.runConnectLoop().finally(() => {
      this.connectLoop = null;
    });
  }

  /** kombu: try each host in turn; after a full round without success, sleep the next backoff interval. */
  private async runConnectLoop(): Promise<void> {
    const { hosts } = this.opts;
    let failures = 0;
    while (this.currentState !== 'closed') {
      const host = hosts[this.hostIndex % hosts.length] as TransportHost;
      this.hostIndex++;
      let conn: amqp.ChannelModel;
      try {
        conn = await this.open(host);
      } catch (err) {
        failures++;
        if (this.isClosed()) return;
        if (failures % hosts.length !== 0) {
          this.log.warn({ host: describeHost(host), err: errorText(err) }, `AMQP server on ${describeHost(host)} is unreachable; trying the next host`);
          continue;
        }
        const delay = this.backoffSec(failures / hosts.length - 1);
        this.log.error(
          { host: describeHost(host), err: errorText(err), retry_in_sec: delay },
          `AMQP server on ${describeHost(host)} is unreachable: ${errorText(err)}. Trying again in ${delay} seconds.`,
        );
        await this.sleep(delay * 1000);
        continue;
      }
      if (this.isClosed()) {
        await conn.close().catch(() => undefined);
        return;
      }
      this.attach(conn, host);
      return;
    }
  }

  // A method, so TypeScript does not keep a narrowing of the state across awaits.
  private isClosed(): boolean {
    return this.currentState === 'closed';
  }

  private backoffSec(attempt: number): number {
    const { retryIntervalSec, retryBackoffSec, intervalMaxSec } = this.opts;
    return Math.min(intervalMaxSec, (retryIntervalSec || 1) + attempt * retryBackoffSec);
  }

  private open(host: TransportHost): Promise<amqp.ChannelModel> {
    const { loginMethod, tls, heartbeatSec, virtualHost, connectTimeoutMs } = this.opts;
    const credentials =
      loginMethod === 'EXTERNAL'
        ? amqp.credentials.external()
        : loginMethod === 'PLAIN'
          ? amqp.credentials.plain(host.username, host.password)
          : amqp.credentials.amqplain(host.username, host.password);
    return amqp.connect(
      {
        protocol: tls ? 'amqps' : 'amqp',
        hostname: host.hostname,
        port: host.port,
        // amqplib unescapes the vhost once more; keep a literal '%' literal.
        vhost: virtualHost.replace(/%/g, '%25'),
        heartbeat: heartbeatSec,
        locale: 'en_US',
      },
      {
        ...(tls ?? {}),
        credentials,
        noDelay: true,
        timeout: connectTimeoutMs,
        clientProperties: {
          capabilities: {
            authentication_failure_close: true,
            'connection.blocked': true,
            consumer_cancel_notify: true,
          },
          connection_name: this.connectionName,
        },
      },
    );
  }

  private attach(conn: amqp.ChannelModel, host: TransportHost): void {
    this.generation++;
    const generation = this.generation;
    this.conn = conn;
    this.host = host;
    this.pubPromise = null;
    conn.on('error', (err: Error) => this.log.warn({ err: err.message }, 'AMQP connection error'));
    conn.on('close', (err?: Error) => this.onConnectionClosed(generation, err));
    conn.on('blocked', (reason: string) => {
      this.log.error({ reason }, `The broker has blocked the connection: ${reason}`);
      this.announce('blocked', reason);
    });
    conn.on('unblocked', () => {
      this.log.info('The broker has unblocked the connection');
      this.announce('unblocked');
    });
    this.currentState = 'connected';
    this.log.info({ host: describeHost(host) }, `Connected to AMQP server on ${describeHost(host)}`);
    for (const waiter of this.waiters) waiter.resolve(conn);
    this.waiters.clear();
    this.announce('connected', { host: describeHost(host) });
    void this.runAllSetups(generation);
  }

  private onConnectionClosed(generation: number, err: Error | undefined): void {
    if (generation !== this.generation || this.currentState === 'closed') return;
    const host = this.host ? describeHost(this.host) : 'broker';
    this.conn = null;
    this.pubPromise = null;
    this.currentState = 'disconnected';
    this.log.error({ host, err: err ? err.message : null }, `AMQP connection to ${host} lost; reconnecting`);
    this.announce('disconnected', err);
    this.kickConnectLoop();
  }

  private waitConnected(signal?: AbortSignal): Promise<amqp.ChannelModel> {
    if (this.currentState === 'closed') return Promise.reject(new SessionClosedError());
    if (this.currentState === 'idle') return Promise.reject(new Error('messaging session not started'));
    if (this.conn && this.currentState === 'connected') return Promise.resolve(this.conn);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.delete(waiter);
        reject(new PublishAbortedError());
      };
      const waiter: ConnectionWaiter = {
        resolve: (conn) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(conn);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A delay that close() cuts short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  // ---- setups ----------------------------------------------------------------------------------------------

  private async runAllSetups(generation: number): Promise<void> {
    for (const entry of [...this.setups]) {
      if (generation !== this.generation) return;
      await this.runSetup(entry, generation);
    }
  }

  private async runSetup(entry: SetupEntry, generation: number): Promise<void> {
    if (entry.removed || generation !== this.generation || !this.conn) return;
    if (entry.running) {
      entry.rerunWanted = true;
      return;
    }
    entry.running = true;
    const conn = this.conn;
    try {
      await this.closeSetupChannels(entry);
      await entry.fn({
        createChannel: async () => {
          const channel = await conn.createChannel();
          this.track(entry, channel, generation);
          return channel;
        },
      });
      if (generation !== this.generation) return; // lost meanwhile; the reconnect runs it again
      entry.failures = 0;
      entry.firstRun?.resolve();
      entry.firstRun = null;
      this.log.debug({ setup: entry.name }, 'setup done');
    } catch (err) {
      await this.closeSetupChannels(entry);
      if (entry.removed || generation !== this.generation || this.currentState !== 'connected') return;
      const error = err instanceof Error ? err : new Error(String(err));
      const fatal = error instanceof TopologyMismatchError || amqpCode(error) === 403;
      if (fatal && entry.firstRun) {
        this.log.error({ setup: entry.name, err: error.message }, `${entry.name}: ${error.message}`);
        entry.firstRun.reject(error);
        entry.firstRun = null;
        this.dropSetup(entry);
        return;
      }
      const delay = this.backoffSec(entry.failures);
      entry.failures++;
      this.log.error(
        { setup: entry.name, err: error.message, retry_in_sec: delay },
        `${entry.name}: setup failed: ${error.message}; retrying in ${delay} seconds`,
      );
      this.announce('setup-error', entry.name, error);
      this.scheduleRerun(entry, delay);
    } finally {
      entry.running = false;
      if (entry.rerunWanted) {
        entry.rerunWanted = false;
        void this.runSetup(entry, this.generation);
      }
    }
  }

  private track(entry: SetupEntry, channel: amqp.Channel, generation: number): void {
    entry.channels.add(channel);
    channel.on('error', (err: Error) => this.log.warn({ setup: entry.name, err: err.message }, 'channel closed by the broker'));
    channel.on('close', () => {
      if (!entry.channels.delete(channel)) return; // we closed it
      // amqplib closes the channels just before it reports the connection closed: decide after that.
      setImmediate(() => {
        if (entry.removed || entry.running || generation !== this.generation || this.currentState !== 'connected') return;
        this.log.warn({ setup: entry.name }, `${entry.name}: channel lost while connected; setting up again`);
        this.scheduleRerun(entry, this.backoffSec(entry.failures));
        entry.failures++;
      });
    });
  }

  private scheduleRerun(entry: SetupEntry, delaySec: number): void {
    if (entry.retryTimer || entry.removed) return;
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = null;
      void this.runSetup(entry, this.generation);
    }, delaySec * 1000);
  }

  private async closeSetupChannels(entry: SetupEntry): Promise<void> {
    const channels = [...entry.channels];
    entry.channels.clear();
    await Promise.all(channels.map((ch) => ch.close().catch(() => undefined)));
  }

  private dropSetup(entry: SetupEntry): void {
    entry.removed = true;
    if (entry.retryTimer) clearTimeout(entry.retryTimer);
    entry.retryTimer = null;
    const index = this.setups.indexOf(entry);
    if (index >= 0) this.setups.splice(index, 1);
  }

  private async removeSetup(entry: SetupEntry): Promise<void> {
    this.dropSetup(entry);
    await this.closeSetupChannels(entry);
  }

  // ---- publishing ------------------------------------------------------------------------------------------

  private async publishChannel(signal?: AbortSignal): Promise<PublishChannel> {
    for (;;) {
      const conn = await this.waitConnected(signal);
      this.pubPromise ??= this.openPublishChannel(conn);
      const pending = this.pubPromise;
      try {
        const pub = await pending;
        if (!pub.closed) return pub;
      } catch (err) {
        if (conn === this.conn) throw err; // the connection is fine; opening a channel itself failed
      }
      if (this.pubPromise === pending) this.pubPromise = null;
    }
  }

  private async openPublishChannel(conn: amqp.ChannelModel): Promise<PublishChannel> {
    const channel = await conn.createConfirmChannel();
    const pub: PublishChannel = {
      channel,
      declaredExchanges: new Set(),
      declaredQueues: new Set(),
      mandatory: [],
      closed: false,
    };
    channel.on('error', (err: Error) => this.log.warn({ err: err.message }, 'publish channel closed by the broker'));
    channel.on('close', () => {
      pub.closed = true;
    });
    channel.on('return', (msg: amqp.Message) => {
      const { exchange, routingKey } = msg.fields;
      const pending = pub.mandatory.find(
        (p) => p.returned === null && p.exchange === exchange && p.routingKey === routingKey && p.content.equals(msg.content),
      );
      const fields = msg.fields as amqp.MessageFields & { replyCode?: number; replyText?: string };
      if (pending) pending.returned = { replyCode: fields.replyCode ?? 312, replyText: fields.replyText ?? 'NO_ROUTE' };
    });
    return pub;
  }

  private async prepareDestination(pub: PublishChannel, request: PublishRequest): Promise<void> {
    const { exchange, queue } = request;
    if (exchange && !pub.declaredExchanges.has(exchange.name)) {
      await declareExchange(pub.channel, exchange);
      pub.declaredExchanges.add(exchange.name);
    }
    if (exchange && queue && !pub.declaredQueues.has(queue.name)) {
      await declareQueue(pub.channel, queue);
      await pub.channel.bindQueue(queue.name, exchange.name, request.routingKey);
      pub.declaredQueues.add(queue.name);
    }
  }

  private confirmPublish(pub: PublishChannel, request: PublishRequest, exchangeName: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const tracked: PendingReturn | null = request.mandatory
        ? { exchange: exchangeName, routingKey: request.routingKey, content: request.body, returned: null }
        : null;
      if (tracked) pub.mandatory.push(tracked);
      const untrack = (): void => {
        if (tracked) pub.mandatory.splice(pub.mandatory.indexOf(tracked), 1);
      };
      const confirmed = (err: unknown): void => {
        untrack();
        // amqplib reports a basic.nack with exactly this error; anything else means the channel closed.
        if (err instanceof Error && err.message === 'message nacked') reject(new PublishNackedError(exchangeName, request.routingKey));
        else if (err) reject(err);
        else if (tracked?.returned) {
          reject(new NoRouteError(exchangeName, request.routingKey, tracked.returned.replyCode, tracked.returned.replyText));
        } else resolve();
      };
      try {
        pub.channel.publish(
          exchangeName,
          request.routingKey,
          request.body,
          { ...request.properties, mandatory: request.mandatory === true },
          confirmed,
        );
      } catch (err) {
        untrack();
        reject(err);
      }
    });
  }
}
