// Polling with a deadline: e2e tests wait for remote state (a server status, a service going up), never sleep blindly.

export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
  constructor(
    readonly description: string,
    readonly timeoutMs: number,
    /** What the probe saw last, to say how far it got. */
    readonly lastSeen: unknown,
  ) {
    super(`timed out after ${timeoutMs} ms waiting for ${description}; last seen: ${render(lastSeen)}`);
  }
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

/** What a probe answers: `done` with the value to resolve with, or not done with what it saw (for the timeout message). */
export type Probe<T> = () => Promise<{ done: true; value: T } | { done: false; seen: unknown }>;

/**
 * Calls `probe` until it reports done or the deadline passes (WaitTimeoutError). An error thrown by the probe ends the
 * wait at once: a server gone to ERROR is an answer, not something to wait out.
 */
export async function waitFor<T>(description: string, probe: Probe<T>, options: WaitOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const intervalMs = options.intervalMs ?? 1_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await probe();
    if (answer.done) return answer.value;
    if (Date.now() + intervalMs > deadline) throw new WaitTimeoutError(description, timeoutMs, answer.seen);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function render(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
