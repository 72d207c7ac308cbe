// oslo's ObsoleteReplyQueuesCache: reply queues we gave up on (the caller is gone). For a minute, further replies to
// them are dropped at once instead of each being retried for kombu_missing_consumer_retry_timeout.

const SIZE = 200;
const TTL_MS = 60_000;

export class ObsoleteReplyQueues {
  // Insertion-ordered: the oldest entry is evicted first when full.
  private readonly expiry = new Map<string, number>();

  constructor(
    private readonly ttlMs: number = TTL_MS,
    private readonly size: number = SIZE,
    private readonly now: () => number = Date.now,
  ) {}

  add(replyQ: string): void {
    this.expiry.delete(replyQ);
    this.expiry.set(replyQ, this.now() + this.ttlMs);
    while (this.expiry.size > this.size) {
      const oldest = this.expiry.keys().next().value;
      if (oldest === undefined) break;
      this.expiry.delete(oldest);
    }
  }

  has(replyQ: string): boolean {
    const until = this.expiry.get(replyQ);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.expiry.delete(replyQ);
    return false;
  }
}
