// A fake RpcCaller: records every request (as the JSON that would go on the wire) and answers from a script.
import type { RequestContext, RpcCaller, Target } from '../../../src/messaging/types';

export interface RecordedRequest {
  readonly kind: 'call' | 'cast';
  readonly context: RequestContext;
  readonly target: Target;
  readonly method: string;
  /** JSON-roundtripped, so it is exactly what a JSON encoder would send. */
  readonly args: Record<string, unknown>;
  readonly options: { timeoutMs?: number } | undefined;
}

/** A scripted answer: a result, a thrown error, or a function of the request. */
export type Answer = { result: unknown } | { error: Error } | ((request: RecordedRequest) => unknown);

export class RecordingRpc implements RpcCaller {
  readonly requests: RecordedRequest[] = [];
  readonly #answers: Answer[] = [];

  /** Queues answers for the next calls, in order. */
  answer(...answers: Answer[]): this {
    this.#answers.push(...answers);
    return this;
  }

  async call(
    context: RequestContext,
    target: Target,
    method: string,
    args: Record<string, unknown>,
    options?: { timeoutMs?: number },
  ): Promise<unknown> {
    const request = this.#record('call', context, target, method, args, options);
    const answer = this.#answers.shift();
    if (answer === undefined) throw new Error(`RecordingRpc: no answer scripted for ${method}`);
    if (typeof answer === 'function') return answer(request);
    if ('error' in answer) throw answer.error;
    // The reply crosses the wire too: hand back a copy.
    return structuredClone(answer.result);
  }

  async cast(context: RequestContext, target: Target, method: string, args: Record<string, unknown>): Promise<void> {
    this.#record('cast', context, target, method, args, undefined);
  }

  /** The only request made (fails if there were several or none). */
  only(): RecordedRequest {
    if (this.requests.length !== 1) throw new Error(`expected one request, got ${this.requests.length}`);
    return this.requests[0] as RecordedRequest;
  }

  #record(
    kind: 'call' | 'cast',
    context: RequestContext,
    target: Target,
    method: string,
    args: Record<string, unknown>,
    options: { timeoutMs?: number } | undefined,
  ): RecordedRequest {
    const request: RecordedRequest = {
      kind,
      context: structuredClone(context),
      target,
      method,
      args: JSON.parse(JSON.stringify(args)) as Record<string, unknown>,
      options,
    };
    this.requests.push(request);
    return request;
  }
}
