import type { Redis } from 'ioredis';

/**
 * Keeps a chat's "typing…" indicator alive: Telegram shows it for about 5 s, so it is repeated
 * every few seconds until the reply is finished. The "still typing" flag lives in Redis, so the
 * process that finishes a reply stops the indicator another process started.
 */
export class TypingKeeper {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly intervalMs: number;

  constructor(redis: Redis, prefix: string, intervalMs: number) {
    this.redis = redis;
    this.prefix = prefix;
    this.intervalMs = intervalMs;
  }

  private key(k: string) {
    return `${this.prefix}:typing:${k}`;
  }

  /**
   * Shows typing now (via `tick`) and every interval while the flag lives, at most `maxMs`; starting
   * again extends the flag (core's typing action after the adapter's own at intake).
   */
  async start(k: string, maxMs: number, tick: () => Promise<void>): Promise<void> {
    await this.redis.set(this.key(k), '1', 'PX', maxMs);
    const running = this.timers.get(k);
    if (running) return;
    const beat = async () => {
      this.timers.delete(k);
      if (!(await this.redis.exists(this.key(k)).catch(() => 0))) return;
      await tick().catch(() => {});
      this.timers.set(k, setTimeout(beat, this.intervalMs).unref());
    };
    await tick().catch(() => {});
    this.timers.set(k, setTimeout(beat, this.intervalMs).unref());
  }

  async stop(k: string): Promise<void> {
    clearTimeout(this.timers.get(k));
    this.timers.delete(k);
    await this.redis.del(this.key(k));
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
