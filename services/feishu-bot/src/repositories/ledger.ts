import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** How long a claim made by an intake that may still crash holds (Feishu's first redelivery is 15 s later). */
const CLAIM_MS = 10_000;

const SET_IF = `if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 else return 0 end`;

/**
 * Claims every key or none: returns 0, or the 1-based index of the first key already taken in ('done'),
 * or minus that index when another intake still holds its claim (it may have died before queueing).
 * A key holding this claim's own token is ours: ioredis sends a script again when Redis went away
 * before its reply, and that second run must not take its own claim for a duplicate.
 */
const CLAIM_ALL = `for i, key in ipairs(KEYS) do
  local v = redis.call('get', key)
  if v ~= ARGV[2] and not redis.call('set', key, ARGV[2], 'PX', ARGV[1], 'NX') then
    for j = 1, i - 1 do redis.call('del', KEYS[j]) end
    if v == 'done' then return i end
    return -i
  end
end
return 0`;

/**
 * Another intake is taking the same event or message in and has not confirmed it: it may still do so,
 * or it died first. The event is refused so that the platform delivers it again; by then it is either
 * taken in (a duplicate) or the dead intake's claim has lapsed (CLAIM_MS) and it is taken in afresh.
 * Acknowledging it as a duplicate instead would lose the message when the other intake died.
 */
export class ClaimHeld extends Error {
  constructor(key: string) {
    super(`the same ${key} is being taken in by another intake: deliver it again`);
    this.name = 'ClaimHeld';
  }
}

/**
 * What the bot remembers in Redis, shared by every replica: which events and messages were already
 * taken in (so each message is answered once across redeliveries, reconnect replays and replicas),
 * and the "Typing" reaction on each message being answered.
 */
export class Ledger {
  private readonly redis: Redis;
  private readonly p: string;
  private readonly ttlS: number;
  private readonly claimMs: number;

  constructor(redis: Redis, prefix: string, dedupTtlS: number, claimMs = CLAIM_MS) {
    this.redis = redis;
    this.p = `${prefix}:feishu`;
    this.ttlS = dedupTtlS;
    this.claimMs = claimMs;
  }

  /**
   * Claims the keys for an intake. Returns the first key already taken in (a duplicate), or undefined:
   * then the caller owns them until `confirm` (kept for the dedup TTL) or `release` (given back).
   * Throws `ClaimHeld` when another intake holds a claim on one of them and has not confirmed it yet.
   */
  async claim(
    keys: Array<{ name: 'event_id' | 'message_id'; id: string }>,
  ): Promise<'event_id' | 'message_id' | undefined> {
    if (!keys.length) return undefined;
    // one round trip on the intake path, however many keys
    const taken = (await this.redis.eval(
      CLAIM_ALL,
      keys.length,
      ...keys.map((k) => this.seenKey(k)),
      this.claimMs,
      `claimed:${randomUUID()}`,
    )) as number;
    if (taken < 0) throw new ClaimHeld(keys[-taken - 1]!.name);
    return taken ? keys[taken - 1]!.name : undefined;
  }

  async confirm(keys: Array<{ name: string; id: string }>): Promise<void> {
    const m = this.redis.multi();
    for (const k of keys) m.set(this.seenKey(k), 'done', 'EX', this.ttlS);
    await m.exec();
  }

  async release(keys: Array<{ name: string; id: string }>): Promise<void> {
    if (keys.length) await this.redis.del(...keys.map((k) => this.seenKey(k)));
  }

  private seenKey(k: { name: string; id: string }) {
    return `${this.p}:seen:${k.name}:${k.id}`;
  }

  /** Remembers a message the bot sent, so a user's reply to it counts as addressed to the bot. */
  async markOwn(messageId: string): Promise<void> {
    await this.redis.set(`${this.p}:own:${messageId}`, '1', 'EX', 30 * 24 * 3600);
  }

  async isOwn(messageId: string): Promise<boolean> {
    return (await this.redis.exists(`${this.p}:own:${messageId}`)) === 1;
  }

  private reactionKey(messageId: string) {
    return `${this.p}:typing:${messageId}`;
  }

  /** Whether this caller should add the Typing reaction to the message (only the first one does). */
  async claimReaction(messageId: string): Promise<boolean> {
    return (await this.redis.set(this.reactionKey(messageId), 'pending', 'EX', 3600, 'NX')) === 'OK';
  }

  /** Records the reaction added; false when the reply finished meanwhile (the caller removes it again). */
  async saveReaction(messageId: string, reactionId: string): Promise<boolean> {
    return (await this.redis.eval(SET_IF, 1, this.reactionKey(messageId), 'pending', reactionId, 3600)) === 1;
  }

  /** The reply is done: returns the reaction to remove, if one was added. */
  async endReaction(messageId: string): Promise<string | undefined> {
    const old = await this.redis.set(this.reactionKey(messageId), 'done', 'EX', 3600, 'GET');
    return old && old !== 'pending' && old !== 'done' ? old : undefined;
  }
}
