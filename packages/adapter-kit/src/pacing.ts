import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Token buckets for a platform's flood limits, kept in process: `reserve` takes a slot and says how
 * long to wait for it, so callers pace themselves instead of collecting 429s.
 */
export class Bucket {
  private tokens: number;
  private updated: number;
  private readonly ratePerMs: number;
  private readonly capacity: number;

  /** `rate` tokens per `perMs`, holding at most `burst`. */
  constructor(rate: number, perMs: number, burst = 1) {
    this.ratePerMs = rate / perMs;
    this.capacity = Math.max(1, burst);
    this.tokens = this.capacity;
    this.updated = Date.now();
  }

  private refill(now: number) {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.updated) * this.ratePerMs);
    this.updated = now;
  }

  /** Milliseconds until a token is available (0 = now), without taking it. */
  delay(now = Date.now()): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) / this.ratePerMs);
  }

  /**
   * Takes a token now and says how long to wait until it is due (0 = now). The balance may go
   * negative, so callers are served in the order they asked — no thundering herd of waiters
   * re-checking the same bucket, where the unlucky ones wait far longer than their turn.
   */
  reserve(now = Date.now()): number {
    this.refill(now);
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens / this.ratePerMs);
  }

  /** The platform said to wait: nothing before `ms` from now. */
  block(ms: number, now = Date.now()): void {
    this.refill(now);
    this.tokens = Math.min(this.tokens, -ms * this.ratePerMs);
  }

  /** Full and untouched for a while: the owner may drop it. */
  idle(now = Date.now()): boolean {
    this.refill(now);
    return this.tokens >= this.capacity;
  }
}

/** Buckets per key (chat), created on first use and dropped once idle. */
export class KeyedBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly make: (key: string) => Bucket;
  private sweeps = 0;

  constructor(make: (key: string) => Bucket) {
    this.make = make;
  }

  get(key: string): Bucket {
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, (b = this.make(key)));
    if (++this.sweeps >= 1000) this.sweep();
    return b;
  }

  private sweep() {
    this.sweeps = 0;
    const now = Date.now();
    for (const [k, b] of this.buckets) if (b.idle(now)) this.buckets.delete(k);
  }
}

/**
 * Reserves a slot in each bucket (one call, one slot: a send counted by the chat and by the API) and
 * waits until all of them are due. Slots are reserved in order of asking: fair under load.
 */
export async function waitForSlots(a: Bucket, b?: Bucket): Promise<void> {
  const now = Date.now();
  const wait = Math.max(a.reserve(now), b?.reserve(now) ?? 0);
  if (wait > 0) await sleep(wait);
}
