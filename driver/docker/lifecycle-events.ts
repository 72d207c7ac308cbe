// Docker's event stream for our containers → LifecycleEvents, whoever caused the change. The stream is re-opened
// with backoff when it breaks (dockerd restart), resuming just after the last event seen so none is lost.
//
// Opening the stream has the API deadline (a hung engine never sends the headers); once open, the stream is idle by
// design, so it has none: after api timeout without a byte the driver pings the engine, and an engine that does not
// answer in time is taken for dead: the stream is dropped and re-opened like a broken one (a silently dead TCP path
// would otherwise keep it open, and every event lost, forever).
//
// `die` comes with every exit (stop, kill, OOM kill, the guest ending), so `stop` and `kill` would only repeat it.
// Whether an exit was a crash is read from the container and from the `oom` events (see OomTracker).
// `docker commit` (snapshot) pauses the container briefly, so a snapshot of a running instance reports
// paused/resumed; the manager ignores lifecycle events while a task is in progress, as Nova does.

import { StringDecoder } from 'node:string_decoder';

import type Docker from 'dockerode';
import type { Logger } from 'pino';

import type { LifecycleEvent, LifecycleTransition } from '../driver';
import { LABEL, containerName, ownedLabelFilter } from './container-config';
import { enginePing } from './docker-connection';
import { withDeadline } from './engine-deadline';

const EVENTS = ['start', 'die', 'oom', 'pause', 'unpause', 'destroy'];
const MAX_RECONNECT_DELAY_MS = 30_000;
/** A Docker event is well under 4 KiB; a longer line without an end is not one. */
const MAX_EVENT_LINE = 1024 * 1024;

/** The fields of a Docker event we read. */
export interface DockerEvent {
  readonly Type?: string;
  readonly Action?: string;
  readonly id?: string;
  readonly time?: number;
  readonly Actor?: { readonly ID?: string; readonly Attributes?: Readonly<Record<string, string>> };
}

/** What the mapping needs to know about the container at the time of the event. */
export interface EventContext {
  readonly suspended: boolean;
  /** For `die`: whether the container is dead or was OOM-killed. */
  readonly crashed: boolean;
}

export function transitionOf(action: string, context: EventContext): LifecycleTransition | null {
  switch (action) {
    case 'start':
      return 'started';
    case 'die':
      return context.crashed ? 'died' : 'stopped';
    case 'pause':
      return context.suspended ? 'suspended' : 'paused';
    case 'unpause':
      return 'resumed';
    default:
      return null;
  }
}

export interface LifecycleEventStreamOptions {
  readonly docker: Docker;
  readonly logger: Logger;
  readonly reconnectDelayMs: number;
  /** Deadline for opening the stream and for the liveness ping of an idle one; also how idle it may get unasked. */
  readonly apiTimeoutMs: number;
  /** Nova's host: only containers labelled for it are reported (null: every labelled container). */
  readonly computeHost: string | null;
  /** Reads what transitionOf needs; called in event order, one event at a time. */
  readonly contextOf: (uuid: string, containerId: string, action: string) => Promise<EventContext>;
  readonly emit: (event: LifecycleEvent) => void;
}

export class LifecycleEventStream {
  private stream: NodeJS.ReadableStream | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Fires when the open stream has been silent for apiTimeoutMs: time to ask whether the engine is alive. */
  private idleTimer: NodeJS.Timeout | null = null;
  /** Aborts the request in flight (opening, or a liveness ping) on close(). */
  private pending: AbortController | null = null;
  private closed = false;
  private delayMs: number;
  /** Resume point for the next open: the last event's timeNano + 1 ns, as Docker's `seconds.nanos`. */
  private since: string | null = null;
  /** Events are mapped one at a time, in stream order (a `die` must not overtake the `start` after it). */
  private queue: Promise<void> = Promise.resolve();
  private readonly oom = new OomTracker();

  constructor(private readonly options: LifecycleEventStreamOptions) {
    this.delayMs = options.reconnectDelayMs;
  }

  start(): void {
    this.open();
  }

  /** Stops the stream and any pending re-open. Events already being mapped are still delivered. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.stopIdleCheck();
    this.pending?.abort();
    this.pending = null;
    const stream = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | null;
    this.stream = null;
    stream?.destroy?.();
    await this.queue;
  }

  private open(): void {
    const filters = { type: ['container'], label: ownedLabelFilter(this.options.computeHost), event: EVENTS };
    // dockerode's types want a number for `since`; Docker takes `seconds.nanoseconds`, which keeps the resume exact.
    const query = (this.since === null ? { filters } : { filters, since: this.since }) as Docker.GetEventsOptions;
    const controller = new AbortController();
    this.pending = controller;
    const opening = (signal: AbortSignal) => this.options.docker.getEvents({ ...query, abortSignal: signal });
    withDeadline('open of the event stream', this.options.apiTimeoutMs, opening, controller).then(
      (stream) => {
        if (this.pending === controller) this.pending = null;
        this.attach(stream);
      },
      (error: unknown) => {
        if (this.pending === controller) this.pending = null;
        this.reconnect(error);
      },
    );
  }

  private attach(stream: NodeJS.ReadableStream): void {
    if (this.closed) {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      return;
    }
    this.stream = stream;
    this.delayMs = this.options.reconnectDelayMs;
    this.options.logger.debug('docker event stream open');
    const decoder = new StringDecoder('utf8');
    let buffered = '';
    this.armIdleCheck(stream);
    stream.on('data', (chunk: Buffer | string) => {
      this.armIdleCheck(stream);
      buffered += typeof chunk === 'string' ? chunk : decoder.write(chunk);
      if (buffered.length > MAX_EVENT_LINE && !buffered.includes('\n')) {
        this.options.logger.warn({ bytes: buffered.length }, 'oversized docker event line dropped');
        buffered = '';
      }
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) this.receive(line);
      }
    });
    let ended = false;
    const onEnd = (error?: unknown) => {
      if (ended) return;
      ended = true;
      if (this.stream === stream) {
        this.stream = null;
        this.stopIdleCheck();
      }
      if (!this.closed) this.reconnect(error ?? new Error('the event stream ended'));
    };
    stream.on('end', () => onEnd());
    stream.on('close', () => onEnd());
    stream.on('error', (error: unknown) => onEnd(error));
  }

  private armIdleCheck(stream: NodeJS.ReadableStream): void {
    this.stopIdleCheck();
    this.idleTimer = setTimeout(() => this.checkEngine(stream), this.options.apiTimeoutMs);
  }

  private stopIdleCheck(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** The stream has been silent: an engine that answers a ping is alive (and merely quiet); else drop the stream. */
  private checkEngine(stream: NodeJS.ReadableStream): void {
    this.idleTimer = null;
    const controller = new AbortController();
    this.pending = controller;
    withDeadline('ping', this.options.apiTimeoutMs, (signal) => enginePing(this.options.docker, signal), controller).then(
      () => {
        if (this.pending === controller) this.pending = null;
        if (this.stream === stream) this.armIdleCheck(stream);
      },
      (error: unknown) => {
        if (this.pending === controller) this.pending = null;
        if (this.stream !== stream) return;
        this.options.logger.warn({ err: error }, 'the Docker Engine does not answer; dropping the event stream');
        (stream as NodeJS.ReadableStream & { destroy: (error?: Error) => void }).destroy(error as Error);
      },
    );
  }

  private reconnect(error: unknown): void {
    if (this.closed) return;
    this.options.logger.warn({ err: error, retry_in_ms: this.delayMs }, 'docker event stream broken; re-opening');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closed) this.open();
    }, this.delayMs);
    this.delayMs = Math.min(this.delayMs * 2, MAX_RECONNECT_DELAY_MS);
  }

  private receive(line: string): void {
    let event: DockerEvent;
    try {
      event = JSON.parse(line) as DockerEvent;
    } catch {
      this.options.logger.warn({ line: line.slice(0, 200) }, 'unparseable docker event ignored');
      return;
    }
    // timeNano exceeds a double's precision; read it from the text.
    const timeNano = /"timeNano":(\d+)/.exec(line)?.[1];
    if (timeNano) this.since = resumePoint(timeNano);
    const uuid = event.Actor?.Attributes?.[LABEL.instanceUuid];
    const containerId = event.Actor?.ID ?? event.id;
    const action = event.Action;
    if (event.Type !== 'container' || !uuid || !containerId || !action) return;
    // Ours means labelled and named for the instance, as in listInstances.
    if (event.Actor?.Attributes?.['name'] !== containerName(uuid)) return;
    const at = timeNano ? new Date(Number(BigInt(timeNano) / 1_000_000n)) : new Date((event.time ?? 0) * 1000);
    const crash = this.oom.observe(action, containerId, event.Actor?.Attributes?.['exitCode']);
    if (action === 'oom' || action === 'destroy') {
      // A late OOM notification corrects the `stopped` already reported for this exit.
      if (crash) this.enqueue(uuid, action, async () => 'died', at);
      return;
    }
    this.enqueue(uuid, action, async () => {
      const context = await this.options.contextOf(uuid, containerId, action);
      return transitionOf(action, crash ? { ...context, crashed: true } : context);
    }, at);
  }

  private enqueue(uuid: string, action: string, map: () => Promise<LifecycleTransition | null>, at: Date): void {
    this.queue = this.queue.then(async () => {
      try {
        const transition = await map();
        if (transition) this.options.emit({ uuid, transition, at });
      } catch (error) {
        this.options.logger.warn({ err: error, instance_uuid: uuid, action }, 'docker event could not be mapped');
      }
    });
  }
}

/**
 * Tells OOM kills from other exits by the events alone. An OOM kill ends PID 1 with SIGKILL (exit 137); Docker
 * usually sends `oom` before `die`, but not always, and an OOM that spared PID 1 does not make a later exit a crash.
 */
export class OomTracker {
  /** Containers the OOM killer struck since they last started. */
  private readonly struck = new Set<string>();
  /** Containers that exited with 137 since they last started. */
  private readonly killed = new Set<string>();

  /** True when this event reveals that the container's exit was an OOM kill. */
  observe(action: string, containerId: string, exitCode: string | undefined): boolean {
    switch (action) {
      case 'start':
      case 'destroy':
        this.struck.delete(containerId);
        this.killed.delete(containerId);
        return false;
      case 'oom':
        if (this.killed.delete(containerId)) return true;
        this.struck.add(containerId);
        return false;
      case 'die':
        if (exitCode !== '137') {
          this.struck.delete(containerId);
          return false;
        }
        if (this.struck.delete(containerId)) return true;
        this.killed.add(containerId);
        return false;
      default:
        return false;
    }
  }
}

/** `seconds.nanoseconds` of timeNano + 1 ns: Docker's `since` is inclusive. */
export function resumePoint(timeNano: string): string {
  const next = BigInt(timeNano) + 1n;
  return `${next / 1_000_000_000n}.${(next % 1_000_000_000n).toString().padStart(9, '0')}`;
}
