// withDeadline without a controller of the caller's: requests that start close together share one AbortController
// (a signal per request costs Node too much CPU on short calls), yet each one gets at least its whole deadline, fails
// with its own operation named, and one request's lateness never aborts another that already finished.
// The clock is real but the deadlines are tiny; nothing asserts how long anything took.
import assert from 'node:assert/strict';
import { inspect } from 'node:util';

import { RuntimeUnavailable } from '../../../driver/driver';
import { withDeadline } from '../../../driver/docker/engine-deadline';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A request that never answers unless aborted; records its signal. */
function hangingRequest(signals: AbortSignal[]) {
  return (signal: AbortSignal) =>
    new Promise<never>((_resolve, reject) => {
      signals.push(signal);
      signal.addEventListener('abort', () => reject(new Error('aborted by the signal')), { once: true });
    });
}

describe('withDeadline (shared deadline buckets)', () => {
  it('requests started together share one signal; each late one fails naming its own operation', async () => {
    const signals: AbortSignal[] = [];
    const calls = ['inspect', 'logs', 'stats'].map((operation) => withDeadline(operation, 40, hangingRequest(signals)));
    const results = await Promise.allSettled(calls);
    assert.equal(new Set(signals).size, 1, 'one shared signal');
    assert.ok(signals[0]?.aborted, 'the shared signal aborted the late requests');
    for (const [i, operation] of ['inspect', 'logs', 'stats'].entries()) {
      const result = results[i];
      assert.equal(result?.status, 'rejected');
      const reason = (result as PromiseRejectedResult).reason as Error;
      assert.ok(reason instanceof RuntimeUnavailable, String(reason));
      assert.match(reason.message, new RegExp(`Docker ${operation} did not answer within 0.04 s`));
    }
  });

  it('a request that answers in time resolves, and its bucket is retired without aborting anything', async () => {
    const signals: AbortSignal[] = [];
    const value = await withDeadline('inspect', 50, async (signal) => {
      signals.push(signal);
      await sleep(5);
      return 42;
    });
    assert.equal(value, 42);
    await sleep(80);
    assert.equal(signals[0]?.aborted, false, 'nothing was pending when the window passed');
  });

  it('a request that joins a bucket late still gets its whole deadline', async () => {
    const signals: AbortSignal[] = [];
    // Opens a bucket (window 10 ms for a 100 ms deadline) and keeps it busy.
    const first = withDeadline('first', 100, hangingRequest(signals));
    await sleep(8);
    let answered = false;
    // Joins the same bucket near the end of its window, answers 95 ms later: within its own 100 ms.
    const second = withDeadline('second', 100, async (signal) => {
      signals.push(signal);
      await sleep(95);
      answered = true;
      return 'ok';
    });
    const [a, b] = await Promise.allSettled([first, second]);
    if (signals[0] === signals[1]) {
      assert.equal(b.status, 'fulfilled', 'the late joiner kept its whole deadline');
      assert.ok(answered);
    }
    assert.equal(a.status, 'rejected');
  });

  it('a request that throws synchronously fails with its own error and leaves nothing pending', async () => {
    await assert.rejects(
      withDeadline('create', 30, () => {
        throw new TypeError('bad options');
      }),
      TypeError,
    );
  });

  it('a caller with its own controller gets it (and only it) aborted at the deadline', async () => {
    const own = new AbortController();
    const signals: AbortSignal[] = [];
    await assert.rejects(withDeadline('ping', 20, hangingRequest(signals), own), /Docker ping did not answer within 0.02 s/);
    assert.equal(signals[0], own.signal);
    assert.ok(own.signal.aborted);
  });

  it('the signals handed out print cheaply (docker-modem inspects every request’s options)', () => {
    const signals: AbortSignal[] = [];
    void withDeadline('inspect', 10, hangingRequest(signals)).catch(() => undefined);
    assert.equal(inspect({ signal: signals[0] }, { showHidden: true, depth: Infinity }), '{ signal: [AbortSignal] }');
  });
});
