import type { Logger } from '@pincer/shared';
import type { Redis } from 'ioredis';

// Sliding-window estimate over two fixed one-minute windows: count = current + previous * (1 - elapsed).
// Checks requests and tokens together and charges both only if both fit, in one round trip.
const CHECK = `
local w = tonumber(ARGV[3])
local rc = tonumber(redis.call('GET', KEYS[1]) or '0')
local rp = tonumber(redis.call('GET', KEYS[2]) or '0')
local tc = tonumber(redis.call('GET', KEYS[3]) or '0')
local tp = tonumber(redis.call('GET', KEYS[4]) or '0')
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local tokens = tonumber(ARGV[4])
local reqs = rc + rp * w
local toks = tc + tp * w
if rpm > 0 and reqs + 1 > rpm then return {1, math.floor(rpm - reqs), math.floor(tpm - toks)} end
if tpm > 0 and toks > 0 and toks + tokens > tpm then return {2, math.floor(rpm - reqs), math.floor(tpm - toks)} end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], 130000)
redis.call('INCRBY', KEYS[3], tokens)
redis.call('PEXPIRE', KEYS[3], 130000)
return {0, math.floor(rpm - reqs - 1), math.floor(tpm - toks - tokens)}
`;

export interface LimitDecision {
  allowed: boolean;
  /** Which limit refused: requests or tokens. */
  limit?: 'requests' | 'tokens';
  remainingRequests: number;
  remainingTokens: number;
  /** Seconds until the current window rolls over. */
  resetSeconds: number;
}

/** Per-key requests- and tokens-per-minute counters in Redis, shared by every proxy replica. */
export class RateLimitStore {
  private readonly redis: Redis;
  private readonly prefix: string;

  /** ioredis's connection state ('ready' when usable). */
  get status(): string {
    return this.redis.status;
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  constructor(redis: Redis, prefix: string) {
    this.redis = redis;
    this.prefix = `${prefix}:llm:rl:`;
    this.redis.defineCommand('pincerLimit', { numberOfKeys: 4, lua: CHECK });
  }

  private keys(name: string, now: number): { cur: number; w: number; k: string[] } {
    const win = Math.floor(now / 60_000);
    const elapsed = (now % 60_000) / 60_000;
    const base = this.prefix + name;
    return {
      cur: win,
      w: 1 - elapsed,
      k: [`${base}:r:${win}`, `${base}:r:${win - 1}`, `${base}:t:${win}`, `${base}:t:${win - 1}`],
    };
  }

  /** Charges one request and `tokens` (an estimate) against the key's limits if both fit. */
  async check(
    name: string,
    rpm: number,
    tpm: number,
    tokens: number,
    now = Date.now(),
  ): Promise<LimitDecision> {
    const { w, k } = this.keys(name, now);
    const [code, remReq, remTok] = (await (
      this.redis as unknown as { pincerLimit: (...a: (string | number)[]) => Promise<number[]> }
    ).pincerLimit(...k, rpm, tpm, w.toFixed(4), Math.max(0, Math.round(tokens)))) as [number, number, number];
    return {
      allowed: code === 0,
      limit: code === 1 ? 'requests' : code === 2 ? 'tokens' : undefined,
      remainingRequests: Math.max(0, remReq),
      remainingTokens: Math.max(0, remTok),
      resetSeconds: Math.ceil((60_000 - (now % 60_000)) / 1000),
    };
  }

  /** Corrects the token charge once the real usage is known (estimate → actual). */
  async adjustTokens(name: string, delta: number, now = Date.now()): Promise<void> {
    if (!delta) return;
    const { k } = this.keys(name, now);
    await this.redis.multi().incrby(k[2]!, Math.round(delta)).pexpire(k[2]!, 130_000).exec();
  }
}

/**
 * Connects to Redis for the limits (ioredis is loaded only when some key has limits). Commands time
 * out after 250 ms and are not queued while disconnected, so a hung or absent Redis fails the
 * limits open instead of holding requests.
 */
export async function connectRateLimitStore(
  url: string,
  prefix: string,
  log: Logger,
): Promise<RateLimitStore> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 250,
    lazyConnect: true,
  });
  redis.on('error', (err) => log.debug('redis error', { error: err.message }));
  await redis
    .connect()
    .catch((err: Error) =>
      log.warn('redis unreachable at start; limits fail open until it is back', { error: err.message }),
    );
  return new RateLimitStore(redis, prefix);
}
