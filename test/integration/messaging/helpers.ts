// Shared plumbing for the messaging integration tests: the local broker, unique names, a log collector, rabbitmqctl,
// and cleanup of whatever a test declared. Everything talks to 127.0.0.1 only.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import * as amqp from 'amqplib';
import { createLogger, type Logger } from '../../../src/log';
import { MessagingSession, type MessagingSessionOptions } from '../../../src/messaging/amqp-session';
import { parseTransportUrl } from '../../../src/messaging/transport-url';

const run = promisify(execFile);

export const BROKER_URL = 'rabbit://guest:guest@127.0.0.1:5672/';
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/';

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

/** A pino logger that keeps every line (debug and up) in memory. */
export function collectingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (text.trim() !== '') lines.push(JSON.parse(text) as LogLine);
      }
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines };
}

export function newSession(logger: Logger, extra: Partial<MessagingSessionOptions> = {}): MessagingSession {
  return new MessagingSession({ url: parseTransportUrl(BROKER_URL), logger, processName: 'berth-test', ...extra });
}

export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', ['-q', ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export interface QueueInfo {
  name: string;
  durable: boolean;
  auto_delete: boolean;
  exclusive: boolean;
  arguments: [string, string, unknown][];
  consumers: number;
}

export async function listQueues(): Promise<QueueInfo[]> {
  const out = await rabbitmqctl('list_queues', 'name', 'durable', 'auto_delete', 'exclusive', 'arguments', 'consumers', '--formatter', 'json');
  return JSON.parse(out) as QueueInfo[];
}

export interface ExchangeInfo {
  name: string;
  type: string;
  durable: boolean;
  auto_delete: boolean;
  internal: boolean;
  arguments: unknown[];
}

export async function listExchanges(): Promise<ExchangeInfo[]> {
  const out = await rabbitmqctl('list_exchanges', 'name', 'type', 'durable', 'auto_delete', 'internal', 'arguments', '--formatter', 'json');
  return JSON.parse(out) as ExchangeInfo[];
}

export interface BindingInfo {
  source_name: string;
  destination_name: string;
  routing_key: string;
}

export async function listBindings(): Promise<BindingInfo[]> {
  const out = await rabbitmqctl('list_bindings', 'source_name', 'destination_name', 'routing_key', '--formatter', 'json');
  return JSON.parse(out) as BindingInfo[];
}

export interface ConsumerInfo {
  queue_name: string;
  consumer_tag: string;
  ack_required: boolean;
  prefetch_count: number;
}

export async function listConsumers(): Promise<ConsumerInfo[]> {
  const out = await rabbitmqctl('list_consumers', 'queue_name', 'consumer_tag', 'ack_required', 'prefetch_count', '--formatter', 'json');
  return JSON.parse(out) as ConsumerInfo[];
}

interface ConnectionInfo {
  timeout: number;
  client_properties: [string, string, unknown][];
}

/** The client properties our session sent and the negotiated heartbeat, as the broker recorded them. */
export async function brokerView(connectionName: string): Promise<{ properties: Map<string, unknown>; heartbeatSec: number } | null> {
  const out = await rabbitmqctl('list_connections', 'timeout', 'client_properties', '--formatter', 'json');
  for (const conn of JSON.parse(out) as ConnectionInfo[]) {
    const properties = new Map(conn.client_properties.map(([k, , v]) => [k, v] as const));
    if (properties.get('connection_name') === connectionName) return { properties, heartbeatSec: conn.timeout };
  }
  return null;
}

/** `rabbitmqctl close_connection` on the connection with this connection_name; returns how many were closed. */
export async function closeConnectionByName(connectionName: string): Promise<number> {
  // close_connection wants the pid as the tab-separated listing prints it (<rabbit@host.N.N.N>), not the JSON form.
  const out = await rabbitmqctl('list_connections', 'pid', 'client_properties');
  let closed = 0;
  for (const line of out.split('\n')) {
    const [pid, props] = line.split('\t');
    if (pid && props?.includes(`{"connection_name","${connectionName}"}`)) {
      await rabbitmqctl('close_connection', pid, 'berth test: forced close');
      closed++;
    }
  }
  return closed;
}

/** A plain amqplib connection for the test's own publishing, consuming and cleanup. */
export async function rawConnection(): Promise<amqp.ChannelModel> {
  const conn = await amqp.connect(AMQP_URL);
  conn.on('error', () => undefined);
  return conn;
}

/** Deletes queues and exchanges a test created (missing ones are fine). */
export async function cleanup(queues: readonly string[], exchanges: readonly string[] = []): Promise<void> {
  const conn = await rawConnection();
  try {
    for (const q of queues) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
    for (const x of exchanges) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await ch.deleteExchange(x).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Polls until `check` returns a value other than undefined (or the deadline passes, then throws). */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
