// Deadlines on Docker Engine requests. A dockerd that accepts the connection and never answers (hung, overloaded, a
// wedged containerd) must not hold an instance in a task state forever: every request carries an AbortSignal, and
// when its deadline passes the request is aborted (docker-modem destroys the socket) and the call fails with
// RuntimeUnavailable naming the operation and the deadline, which the manager turns into a fault.
//   withDeadline        a total deadline, for requests that answer once (inspect, create, stop + its grace period…);
//   InactivityDeadline  for streams (load, save): it fires only when no bytes moved for its time while we wait for
//                       the engine, so a slow but progressing transfer is never cut.

import { setMaxListeners } from 'node:events';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';

import { RuntimeUnavailable } from '../driver';

/** setTimeout's range: a longer delay would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The error of a request that missed its deadline. */
export function deadlineExceeded(operation: string, ms: number, kind: 'answer' | 'inactivity' = 'answer'): RuntimeUnavailable {
  const missed = kind === 'answer' ? `did not answer within ${seconds(ms)}` : `moved no bytes for ${seconds(ms)}`;
  return new RuntimeUnavailable(`Docker ${operation} ${missed}; the request was aborted (the engine is hung or overloaded)`);
}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

/**
 * Runs one request with a total deadline. `call` must hand the signal to the request (dockerode's `abortSignal`);
 * when the deadline passes first, the signal aborts it and the returned promise rejects at once with
 * RuntimeUnavailable, whatever the request does afterwards. A caller that wants to cancel the request itself passes
 * its own controller; the others share one (see DeadlineBucket).
 */
export function withDeadline<T>(
  operation: string,
  ms: number,
  call: (signal: AbortSignal) => Promise<T>,
  controller?: AbortController,
): Promise<T> {
  return controller === undefined ? bucketed(operation, ms, call) : ownDeadline(operation, ms, call, controller);
}

function ownDeadline<T>(operation: string, ms: number, call: (signal: AbortSignal) => Promise<T>, controller: AbortController): Promise<T> {
  cheapToInspect(controller.signal);
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      const error = deadlineExceeded(operation, ms);
      controller.abort(error);
      reject(error);
    }, Math.min(ms, MAX_TIMER_MS));
    let pending: Promise<T>;
    try {
      pending = call(controller.signal);
    } catch (error) {
      clearTimeout(timer);
      reject(error);
      return;
    }
    // After the deadline fired, the request's own (abort) rejection settles nothing and goes nowhere.
    pending.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * Requests with the same deadline that start within one bucket's window share an AbortController and a timer. A
 * signal of its own per request costs Node about as much CPU as a short Engine call itself (measured: console log
 * CALLs/s fell 15–20 %), while a shared one costs next to nothing. The bucket fires `window + ms` after it opened,
 * so every request in it still gets at least its full deadline (and at most `window` more); only requests still
 * pending then are aborted, and each fails with its own operation named. A bucket whose requests all settled is
 * retired at once, so no timer outlives the requests.
 */
class DeadlineBucket {
  readonly controller = new AbortController();
  /** Fails one pending request with its own error. */
  readonly pending = new Set<() => void>();
  readonly joinUntil: number;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly ms: number, now: number) {
    const window = Math.max(1, Math.min(1000, Math.floor(ms / 10)));
    this.joinUntil = now + window;
    this.timer = setTimeout(() => this.fire(), Math.min(window + ms, MAX_TIMER_MS));
    // Pending requests keep the process alive through their sockets; the timer itself must not.
    this.timer.unref();
    // Every request in the bucket listens on the one signal (until it ends): many listeners are expected, not a leak.
    setMaxListeners(0, this.controller.signal);
    cheapToInspect(this.controller.signal);
  }

  /** The request settled: forget it; the last one retires the bucket. */
  settled(fail: () => void): void {
    this.pending.delete(fail);
    if (this.pending.size === 0) this.retire();
  }

  private retire(): void {
    clearTimeout(this.timer);
    if (buckets.get(this.ms) === this) buckets.delete(this.ms);
  }

  private fire(): void {
    this.retire();
    const late = [...this.pending];
    this.pending.clear();
    if (late.length === 0) return;
    this.controller.abort(deadlineExceeded('requests', this.ms));
    for (const fail of late) fail();
  }
}

const buckets = new Map<number, DeadlineBucket>();

/**
 * docker-modem formats every request's options with util.inspect (showHidden) for its debug log, enabled or not; an
 * AbortSignal's own inspect is costly enough to show in a profile of short calls. This one prints a fixed string.
 */
function cheapToInspect(signal: AbortSignal): void {
  if (Object.prototype.hasOwnProperty.call(signal, inspect.custom)) return;
  Object.defineProperty(signal, inspect.custom, { value: () => '[AbortSignal]' });
}

function bucketFor(ms: number): DeadlineBucket {
  const now = Date.now();
  const open = buckets.get(ms);
  if (open !== undefined && now < open.joinUntil) return open;
  const bucket = new DeadlineBucket(ms, now);
  buckets.set(ms, bucket);
  return bucket;
}

function bucketed<T>(operation: string, ms: number, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const bucket = bucketFor(ms);
    let done = false;
    const fail = () => {
      done = true;
      reject(deadlineExceeded(operation, ms));
    };
    bucket.pending.add(fail);
    let pending: Promise<T>;
    try {
      pending = call(bucket.controller.signal);
    } catch (error) {
      bucket.settled(fail);
      reject(error);
      return;
    }
    // After the deadline fired, the request's own (abort) rejection settles nothing and goes nowhere.
    pending.then(
      (value) => {
        if (done) return;
        bucket.settled(fail);
        resolve(value);
      },
      (error: unknown) => {
        if (done) return;
        bucket.settled(fail);
        reject(error);
      },
    );
  });
}

/**
 * A deadline that starts again whenever bytes move. Give `signal` to the request; call touch() when bytes moved or
 * the wait for the engine begins, pause() while the engine is not the one we wait for (our consumer is busy), and
 * finish() when done. When it fires, the request is aborted; failure() turns the request's error into the deadline's.
 */
export class InactivityDeadline {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly operation: string, private readonly ms: number) {
    cheapToInspect(this.controller.signal);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The engine has `ms` (default: this deadline's time) from now to move the next byte. */
  touch(ms: number = this.ms): void {
    this.stopTimer();
    if (this.controller.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.controller.abort(deadlineExceeded(this.operation, ms, 'inactivity'));
    }, Math.min(ms, MAX_TIMER_MS));
  }

  pause(): void {
    this.stopTimer();
  }

  finish(): void {
    this.stopTimer();
  }

  /** What a failed request should throw: the deadline's error when it fired, else the request's own. */
  failure(error: unknown): unknown {
    return this.controller.signal.aborted ? this.controller.signal.reason : error;
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** A request body: each chunk the engine takes is progress. */
export function uploadWithDeadline(source: AsyncIterable<Buffer>, deadline: InactivityDeadline): Readable {
  return Readable.from(
    (async function* () {
      for await (const chunk of source) {
        deadline.touch();
        yield chunk;
      }
    })(),
    { objectMode: false },
  );
}

/**
 * A response body: the deadline runs only while our consumer waits for the engine, so a slow consumer (a Glance
 * upload) is never blamed on Docker. Ends the deadline when the stream ends; fails with the deadline's error.
 */
export function downloadWithDeadline(source: AsyncIterable<Buffer>, deadline: InactivityDeadline): Readable {
  return Readable.from(
    (async function* () {
      try {
        deadline.touch();
        for await (const chunk of source) {
          deadline.pause();
          yield chunk;
          deadline.touch();
        }
      } catch (error) {
        throw deadline.failure(error);
      } finally {
        deadline.finish();
      }
    })(),
    { objectMode: false },
  );
}
