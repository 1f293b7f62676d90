import { AppError, type Logger } from '@pincer/shared';
import type { ApiKey } from '../config.ts';
import type { RateLimitStore } from '../repositories/rate-limits.ts';
import type { Json } from '../repositories/upstream-client.ts';
import type { ProxyMetrics } from './metrics.ts';

/**
 * Per-key requests/tokens per minute. Tokens are pre-charged from the prompt estimate and corrected
 * with the real usage afterwards, off the request path. If Redis is unreachable the request goes
 * through (counted in pincer_llm_rate_limit_errors_total): limits must not take the assistant down.
 */
export class Limits {
  private readonly store: RateLimitStore | undefined;
  private readonly metrics: ProxyMetrics;
  private readonly log: Logger;

  constructor(store: RateLimitStore | undefined, metrics: ProxyMetrics, log: Logger) {
    this.store = store;
    this.metrics = metrics;
    this.log = log;
  }

  async charge(key: ApiKey, tokens: number): Promise<Record<string, string>> {
    if (!this.store || (!key.rpm && !key.tpm)) return {};
    let d: Awaited<ReturnType<RateLimitStore['check']>>;
    try {
      d = await this.store.check(key.name, key.rpm ?? 0, key.tpm ?? 0, tokens);
    } catch (err) {
      this.metrics.rateLimitErrors.inc();
      this.log.warn('rate limit check failed; letting the request through', {
        key: key.name,
        error: (err as Error).message,
      });
      return {};
    }
    const headers: Record<string, string> = {};
    if (key.rpm) {
      headers['x-ratelimit-limit-requests'] = String(key.rpm);
      headers['x-ratelimit-remaining-requests'] = String(d.remainingRequests);
      headers['x-ratelimit-reset-requests'] = `${d.resetSeconds}s`;
    }
    if (key.tpm) {
      headers['x-ratelimit-limit-tokens'] = String(key.tpm);
      headers['x-ratelimit-remaining-tokens'] = String(d.remainingTokens);
      headers['x-ratelimit-reset-tokens'] = `${d.resetSeconds}s`;
    }
    if (!d.allowed) {
      this.metrics.rateLimited.inc({ key: key.name, limit: d.limit! });
      const limit = d.limit === 'requests' ? `${key.rpm} requests` : `${key.tpm} tokens`;
      throw new AppError(
        429,
        'rate_limit_exceeded',
        `Rate limit reached for key '${key.name}': ${limit} per minute. Retry after ${d.resetSeconds}s.`,
        {
          type: d.limit === 'requests' ? 'requests' : 'tokens',
          headers: { ...headers, 'retry-after': String(d.resetSeconds) },
        },
      );
    }
    return headers;
  }

  /** Replaces the token estimate with the real usage (fire and forget). */
  settle(key: ApiKey, estimated: number, usage: Json | undefined): void {
    if (!this.store || !key.tpm) return;
    const actual = usage
      ? (usage.total_tokens ?? (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0))
      : 0;
    this.store.adjustTokens(key.name, actual - estimated).catch(() => this.metrics.rateLimitErrors.inc());
  }
}
