import type { Redis } from 'ioredis';

const MONTH = 30 * 24 * 3600;

/**
 * What the adapter remembers about chats, in Redis (shared by every adapter process): chats it can no
 * longer write to, groups that became supergroups, and the polling offset and poller lease.
 */
export class ChatStore {
  private readonly redis: Redis;
  private readonly p: string;

  constructor(redis: Redis, prefix: string) {
    this.redis = redis;
    this.p = `${prefix}:telegram`;
  }

  /** The chat id to write to (a migrated group's new id) and whether the bot may write there. */
  async resolve(chatId: string): Promise<{ chatId: string; gone?: string }> {
    // asked before every show: one round trip, a second only for a migrated group
    const [to, goneHere] = await this.redis.mget(`${this.p}:migrated:${chatId}`, `${this.p}:gone:${chatId}`);
    const id = to ?? chatId;
    const gone = to ? await this.redis.get(`${this.p}:gone:${to}`) : goneHere;
    return gone ? { chatId: id, gone } : { chatId: id };
  }

  async markGone(chatId: string, reason: string): Promise<void> {
    await this.redis.set(`${this.p}:gone:${chatId}`, reason, 'EX', MONTH);
  }

  /** The user wrote again or the bot was added back: it may write there again. */
  async markPresent(chatId: string): Promise<void> {
    await this.redis.del(`${this.p}:gone:${chatId}`);
  }

  async markMigrated(from: string, to: string): Promise<void> {
    await this.redis.set(`${this.p}:migrated:${from}`, to, 'EX', 3 * MONTH);
  }

  async offset(): Promise<number | undefined> {
    const v = await this.redis.get(`${this.p}:offset`);
    return v ? Number(v) : undefined;
  }

  async saveOffset(offset: number): Promise<void> {
    await this.redis.set(`${this.p}:offset`, String(offset), 'EX', MONTH);
  }

  /** One poller at a time across processes (Telegram answers 409 to a second one). */
  async leasePoller(owner: string, ms: number): Promise<boolean> {
    const key = `${this.p}:poller`;
    const ok = await this.redis.set(key, owner, 'PX', ms, 'NX');
    if (ok === 'OK') return true;
    if ((await this.redis.get(key)) !== owner) return false;
    await this.redis.pexpire(key, ms);
    return true;
  }

  async releasePoller(owner: string): Promise<void> {
    const key = `${this.p}:poller`;
    if ((await this.redis.get(key)) === owner) await this.redis.del(key);
  }
}
