// The named errors of the messaging layer. Each sets `name` so logs and `instanceof`-free checks can tell them apart.
// Python-side exceptions that travel in a reply's `failure` are RemoteFailure (failure.ts), not these.

/** The transport URL cannot be used; the message names the problem and never contains a password. */
export class TransportUrlError extends Error {
  override readonly name = 'TransportUrlError';
  constructor(
    problem: string,
    /** The URL with every password replaced by `***`. */
    readonly redactedUrl: string,
  ) {
    super(`invalid transport_url ${redactedUrl}: ${problem}`);
  }
}

/** A mandatory publish came back with basic.return: no queue is bound for that routing key (e.g. a vanished reply queue). */
export class NoRouteError extends Error {
  override readonly name = 'NoRouteError';
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
    readonly replyCode: number,
    readonly replyText: string,
  ) {
    super(`message to exchange '${exchange}' with routing key '${routingKey}' was returned: ${replyCode} ${replyText}`);
  }
}

/** The broker refused a publish with basic.nack (internal error, queue overflow with reject-publish, …). */
export class PublishNackedError extends Error {
  override readonly name = 'PublishNackedError';
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
  ) {
    super(`broker nacked the message to exchange '${exchange}' with routing key '${routingKey}'`);
  }
}

/**
 * RabbitMQ answered a declaration with 406 PRECONDITION_FAILED: the entity exists with other flags than ours. This is
 * a deployment mismatch (our [oslo_messaging_rabbit] options differ from the services that declared it first).
 */
export class TopologyMismatchError extends Error {
  override readonly name = 'TopologyMismatchError';
  constructor(
    readonly entity: 'queue' | 'exchange',
    readonly entityName: string,
    /** What we asked for, e.g. `durable=false auto_delete=false arguments={"x-expires":1800000}`. */
    readonly declared: string,
    /** The broker's text, e.g. `PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'compute' …`. */
    readonly serverText: string,
    /** The mismatching argument as the broker names it (`durable`, `auto_delete`, `x-expires`, `type`, …), if known. */
    readonly argument: string | null,
    /** The [oslo_messaging_rabbit] option that controls that argument, if any. */
    readonly option: string | null,
  ) {
    super(
      `${entity} '${entityName}' already exists with different flags: ${serverText}; we declared ${declared}` +
        (option === null
          ? ''
          : `. Make [oslo_messaging_rabbit] ${option} match the rest of the deployment (or delete the ${entity} so it is re-declared)`),
    );
  }
}

/** The session (or the component using it) was closed; the operation cannot complete. */
export class SessionClosedError extends Error {
  override readonly name = 'SessionClosedError';
  constructor(what = 'messaging session closed') {
    super(what);
  }
}

/** The operation was given up by its caller (AbortSignal) before it completed. */
export class PublishAbortedError extends Error {
  override readonly name = 'PublishAbortedError';
  constructor() {
    super('publish aborted by the caller');
  }
}

/** No reply arrived in time (oslo_messaging.MessagingTimeout). */
export class MessagingTimeout extends Error {
  override readonly name = 'MessagingTimeout';
  constructor(readonly msgId: string) {
    super(`Timed out waiting for a reply to message ID ${msgId}`);
  }
}

/** A target that cannot be used for the operation, e.g. a CALL to a fanout target (oslo_messaging.InvalidTarget). */
export class InvalidTarget extends Error {
  override readonly name = 'InvalidTarget';
}

/** An AMQP body that is not an oslo message (not JSON, not an envelope, unsupported envelope version, …). */
export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
  constructor(
    message: string,
    /** The Python exception oslo would have raised decoding it: class and module. */
    readonly pythonClass: string,
    readonly pythonModule: string,
  ) {
    super(message);
  }
}
