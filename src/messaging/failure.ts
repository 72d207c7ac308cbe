// Exceptions on the wire (oslo.messaging _drivers/common.py serialize_remote_exception / deserialize_remote_exception).
// A handler throws a RemoteFailure to make the CALL's reply carry exactly that Python exception; the RPC client
// rejects with a RemoteFailure when a reply carries one. Protocol: nova-compute-protocol.md §1.9.

export interface FailurePayload {
  class: string;
  module: string;
  message: string;
  tb: string[];
  args: unknown[];
  kwargs: Record<string, unknown>;
}

export class RemoteFailure extends Error {
  override readonly name = 'RemoteFailure';
  /** Python class name, e.g. `InstanceNotFound`. */
  readonly className: string;
  /** Python module, e.g. `nova.exception`, `builtins`, `oslo_messaging.rpc.dispatcher`. */
  readonly module: string;
  readonly args: unknown[];
  readonly kwargs: Record<string, unknown>;
  readonly tb: string[];

  constructor(
    className: string,
    module: string,
    message: string,
    init: { args?: unknown[]; kwargs?: Record<string, unknown>; tb?: string[]; cause?: unknown } = {},
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.className = className;
    this.module = module;
    this.args = init.args ?? [message];
    this.kwargs = init.kwargs ?? {};
    this.tb = init.tb ?? [];
  }

  /** `true` when this is one of the named exception classes. */
  is(...classNames: string[]): boolean {
    return classNames.includes(this.className);
  }

  toPayload(): FailurePayload {
    return {
      class: this.className,
      module: this.module,
      message: this.message,
      tb: this.tb,
      args: this.args,
      kwargs: this.kwargs,
    };
  }

  /** The `failure` value of a reply: a JSON *string*. */
  serialize(): string {
    return JSON.stringify(this.toPayload());
  }

  /** Parses a reply's `failure` string; never throws (a garbled failure becomes a RemoteError). */
  static deserialize(failure: unknown): RemoteFailure {
    let data: unknown = failure;
    if (typeof failure === 'string') {
      try {
        data = JSON.parse(failure);
      } catch {
        return new RemoteFailure('RemoteError', 'oslo_messaging.exceptions', String(failure));
      }
    }
    if (typeof data !== 'object' || data === null) {
      return new RemoteFailure('RemoteError', 'oslo_messaging.exceptions', String(failure));
    }
    const d = data as Partial<Record<keyof FailurePayload, unknown>>;
    let className = typeof d.class === 'string' ? d.class : 'RemoteError';
    if (className.endsWith('_Remote')) className = className.slice(0, -'_Remote'.length);
    const module = typeof d.module === 'string' ? d.module : 'oslo_messaging.exceptions';
    const message = typeof d.message === 'string' ? d.message : '';
    return new RemoteFailure(className, module, message, {
      args: Array.isArray(d.args) ? d.args : [message],
      kwargs: typeof d.kwargs === 'object' && d.kwargs !== null && !Array.isArray(d.kwargs) ? (d.kwargs as Record<string, unknown>) : {},
      tb: Array.isArray(d.tb) ? d.tb.map(String) : [],
    });
  }
}

/** Turns anything a handler threw into the failure a Python server would have sent. */
export function toRemoteFailure(err: unknown): RemoteFailure {
  if (err instanceof RemoteFailure) return err;
  if (err instanceof Error) {
    // Not a Nova exception: Python callers rebuild only nova.exception/builtins classes, so anything else arrives
    // as oslo_messaging.RemoteError (nova-api answers 500), which is the honest outcome for an internal error.
    return new RemoteFailure(err.name || 'Error', 'berth', err.message, {
      tb: (err.stack ?? '').split('\n').map((l) => l + '\n'),
    });
  }
  return new RemoteFailure('Error', 'berth', String(err));
}
