// Flood control as bots meet it: a token bucket per chat (1/s with a small burst), a one-minute window
// per group, and a global bucket. A refused call costs nothing and learns when to come back.

import type { FloodOptions } from './types.ts';

export const DEFAULT_FLOOD: Required<FloodOptions> = {
  perChatPerSec: 1,
  perChatBurst: 3,
  perGroupPerMin: 20,
  globalPerSec: 30,
};

class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  private readonly capacity: number;
  private readonly perMs: number;

  constructor(capacity: number, perSec: number, now: number) {
    this.capacity = capacity;
    this.perMs = perSec / 1000;
    this.tokens = capacity;
    this.updatedAt = now;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.updatedAt) * this.perMs);
    this.updatedAt = now;
  }

  /** ms until one token is available (0 when available now). */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : (1 - this.tokens) / this.perMs;
  }

  take(): void {
    this.tokens -= 1;
  }
}

class SlidingWindow {
  private readonly stamps: number[] = [];
  private readonly limit: number;
  private readonly windowMs: number;

  constructor(limit: number, windowMs: number) {
    this.limit = limit;
    this.windowMs = windowMs;
  }

  waitMs(now: number): number {
    while (this.stamps.length && (this.stamps[0] as number) <= now - this.windowMs) this.stamps.shift();
    if (this.stamps.length < this.limit) return 0;
    return (this.stamps[0] as number) + this.windowMs - now;
  }

  take(now: number): void {
    this.stamps.push(now);
  }
}

export class FloodControl {
  private readonly opts: Required<FloodOptions>;
  private readonly chats = new Map<number, TokenBucket>();
  private readonly groups = new Map<number, SlidingWindow>();
  private readonly global: TokenBucket;

  constructor(opts: FloodOptions) {
    this.opts = { ...DEFAULT_FLOOD, ...opts };
    this.global = new TokenBucket(this.opts.globalPerSec, this.opts.globalPerSec, Date.now());
  }

  /**
   * Takes a slot for one message into the chat, or returns the whole seconds to wait (≥ 1), counted
   * from when the busiest bucket frees.
   */
  acquire(chatId: number, isGroup: boolean, now = Date.now()): number | undefined {
    let chat = this.chats.get(chatId);
    if (!chat) {
      chat = new TokenBucket(this.opts.perChatBurst, this.opts.perChatPerSec, now);
      this.chats.set(chatId, chat);
    }
    let group: SlidingWindow | undefined;
    if (isGroup) {
      group = this.groups.get(chatId);
      if (!group) {
        group = new SlidingWindow(this.opts.perGroupPerMin, 60_000);
        this.groups.set(chatId, group);
      }
    }
    const wait = Math.max(chat.waitMs(now), group?.waitMs(now) ?? 0, this.global.waitMs(now));
    if (wait > 0) return Math.max(1, Math.ceil(wait / 1000));
    chat.take();
    group?.take(now);
    this.global.take();
    return undefined;
  }
}
