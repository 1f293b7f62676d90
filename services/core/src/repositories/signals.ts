import type { Redis } from 'ioredis';

/**
 * Cross-process signals in Redis: `/stop` reaches whichever core process is generating, the
 * per-user message rate, and which conversations have a reply being generated right now.
 */
export class Signals {
  private readonly redis: Redis;
  private readonly sub: Redis;
  private readonly prefix: string;
  private readonly stopHandlers = new Map<string, Set<() => void>>();
  private readonly reloadHandlers = new Set<(origin: string) => void>();

  constructor(redis: Redis, subscriber: Redis, prefix: string) {
    this.redis = redis;
    this.sub = subscriber;
    this.prefix = `${prefix}:core:`;
  }

  async start(): Promise<void> {
    await this.sub.subscribe(`${this.prefix}stop`, `${this.prefix}config`);
    this.sub.on('message', (channel: string, payload: string) => {
      if (channel === `${this.prefix}config`) {
        for (const h of this.reloadHandlers) h(payload);
        return;
      }
      for (const h of this.stopHandlers.get(payload) ?? []) h();
    });
  }

  /** Calls `handler` with the announcing process's id whenever a process announces a configuration reload. */
  onConfigReload(handler: (origin: string) => void): void {
    this.reloadHandlers.add(handler);
  }

  /** Tells every core process (this one included) that the configuration files should be read again. */
  async announceConfigReload(origin: string): Promise<void> {
    await this.redis.publish(`${this.prefix}config`, origin);
  }

  /** Registers a generation that `/stop` may cancel; returns the unregister function. */
  async generating(conversationId: string, onStop: () => void): Promise<() => Promise<void>> {
    let set = this.stopHandlers.get(conversationId);
    if (!set) this.stopHandlers.set(conversationId, (set = new Set()));
    set.add(onStop);
    // expires by itself if this process dies mid-reply
    await this.redis.set(`${this.prefix}gen:${conversationId}`, '1', 'PX', 15 * 60_000);
    return async () => {
      set.delete(onStop);
      if (set.size === 0) this.stopHandlers.delete(conversationId);
      await this.redis.del(`${this.prefix}gen:${conversationId}`);
    };
  }

  /** Asks every process to stop the conversation's reply; false when none is being generated. */
  async stop(conversationId: string): Promise<boolean> {
    const active = await this.redis.exists(`${this.prefix}gen:${conversationId}`);
    await this.redis.publish(`${this.prefix}stop`, conversationId);
    return active === 1;
  }

  /**
   * A message of `scope` has arrived and is being stored: announced first thing, in job-start order,
   * so a drainer of the scope can wait for it instead of answering a later message first. Counts
   * it against the sender's rate and asks whether the chat has a question waiting for a yes or no,
   * in the same round trip.
   */
  async arrive(
    scope: string,
    messageKey: string,
    order: number,
    sender: string,
    windowMs: number,
  ): Promise<{ count: number; approvalAsked: boolean }> {
    const pendingKey = `${this.prefix}arriving:${scope}`;
    const rateKey = `${this.prefix}rate:${sender}:${Math.floor(Date.now() / windowMs)}`;
    const res = (await this.redis
      .multi()
      .zadd(pendingKey, order, messageKey)
      .pexpire(pendingKey, 3_600_000)
      .incr(rateKey)
      .pexpire(rateKey, windowMs * 2)
      .exists(`${this.prefix}approval:${scope}`)
      .exec()) as [Error | null, number][];
    return { count: res[2]![1], approvalAsked: res[4]![1] === 1 };
  }

  /** Marks a chat as having a question waiting for its user's yes or no (until `ms` at most). */
  async approvalAsked(scope: string, ms: number): Promise<void> {
    await this.redis.set(`${this.prefix}approval:${scope}`, '1', 'PX', Math.max(1, ms));
  }

  /** The chat's question was answered or expired. */
  async approvalSettled(scope: string): Promise<void> {
    await this.redis.del(`${this.prefix}approval:${scope}`);
  }

  /** The message is stored (or will not be): drainers no longer wait for it. */
  async arrived(scope: string, messageKey: string): Promise<void> {
    await this.redis.zrem(`${this.prefix}arriving:${scope}`, messageKey);
  }

  /** Messages of the scope still being stored. */
  async arriving(scope: string): Promise<number> {
    return this.redis.zcard(`${this.prefix}arriving:${scope}`);
  }

  async close(): Promise<void> {
    await this.sub.quit().catch(() => this.sub.disconnect());
  }
}
