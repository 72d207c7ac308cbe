// A stand-in for MessagingSession that records what the Notifier publishes (or fails every publish), so tests
// see the exact wire messages: exchange, routing key and the decoded 2.0 envelope.
import type { MessagingSession, PublishRequest } from '../../../src/messaging';
import { decodeBody } from '../../../src/messaging';

export interface PublishedNotification {
  readonly exchange: string | undefined;
  readonly routingKey: string;
  readonly message: Record<string, unknown>;
}

export class RecordingSession {
  readonly requests: PublishRequest[] = [];
  private readonly failure: Error | undefined;

  constructor(options: { fail?: Error } = {}) {
    this.failure = options.fail;
  }

  async publish(request: PublishRequest): Promise<void> {
    this.requests.push(request);
    if (this.failure) throw this.failure;
  }

  get published(): PublishedNotification[] {
    return this.requests.map((r) => ({ exchange: r.exchange?.name, routingKey: r.routingKey, message: decodeBody(r.body) }));
  }

  asSession(): MessagingSession {
    return this as unknown as MessagingSession;
  }
}
