// The webhook pusher: POSTs each pending update as compact JSON, one at a time per chat and up to
// max_connections at once, and keeps an update pending until the receiver answers 2xx. Failures are
// retried on a schedule and described in getWebhookInfo the way the real server words them.

import type { QueuedUpdate, UpdateQueue } from './updates.ts';
import { nowSeconds } from './world.ts';

export interface WebhookConfig {
  url: string;
  secret_token?: string;
  max_connections: number;
  allowed_updates?: string[];
  ip_address: string;
}

export interface PusherOptions {
  retryDelaysMs: number[];
  timeoutMs: number;
  /** A 2xx answer whose body is a JSON object with "method" is a Bot API call made in reply. */
  onReply: (call: Record<string, unknown>) => void;
  changed: () => void;
}

const RESET = Symbol('webhook reset');
const TIMEOUT = Symbol('webhook timeout');

interface Attempt {
  failures: number;
  nextAt: number;
}

function describeFailure(err: unknown, timedOut: boolean): string {
  if (timedOut) return 'Read timeout expired';
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return 'Connection refused';
    case 'ECONNRESET':
      return 'Connection reset by peer';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'Failed to resolve host: Name or service not known';
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return 'Webhook connection closed';
    default:
      return cause?.message ?? (err instanceof Error ? err.message : String(err));
  }
}

export class WebhookPusher {
  config: WebhookConfig | undefined;
  lastErrorDate: number | undefined;
  lastErrorMessage: string | undefined;
  delivered = 0;
  private readonly attempts = new Map<number, Attempt>();
  private readonly inFlight = new Map<number, AbortController>();
  private timer: NodeJS.Timeout | undefined;
  private pumping = false;
  private again = false;
  private closed = false;
  private readonly queue: UpdateQueue;
  private readonly opts: PusherOptions;

  constructor(queue: UpdateQueue, opts: PusherOptions) {
    this.queue = queue;
    this.opts = opts;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  set(config: WebhookConfig): void {
    this.abortAll();
    this.config = config;
    this.lastErrorDate = undefined;
    this.lastErrorMessage = undefined;
    this.attempts.clear();
    this.pump();
  }

  clear(): void {
    this.abortAll();
    this.config = undefined;
    this.attempts.clear();
    this.opts.changed();
  }

  close(): void {
    this.closed = true;
    this.abortAll();
  }

  private abortAll(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const ac of this.inFlight.values()) ac.abort(RESET);
    this.inFlight.clear();
  }

  /** Starts every push that may start now and schedules a wake-up for the next retry. */
  pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.pumpOnce();
      } while (this.again);
    } finally {
      this.pumping = false;
    }
  }

  private pumpOnce(): void {
    const config = this.config;
    if (!config || this.closed) return;
    const now = Date.now();
    const seenQueues = new Set<string>();
    let wakeAt = Infinity;
    for (const update of this.queue.pending) {
      if (this.inFlight.size >= config.max_connections) break;
      const key = update.chatId !== undefined ? `c${update.chatId}` : `u${update.update_id}`;
      if (seenQueues.has(key)) continue;
      seenQueues.add(key);
      if (this.inFlight.has(update.update_id)) continue;
      const attempt = this.attempts.get(update.update_id);
      if (attempt && attempt.nextAt > now) {
        wakeAt = Math.min(wakeAt, attempt.nextAt);
        continue;
      }
      this.send(config, update);
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (wakeAt !== Infinity) {
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          this.pump();
        },
        Math.max(0, wakeAt - now),
      );
    }
  }

  private send(config: WebhookConfig, update: QueuedUpdate): void {
    const ac = new AbortController();
    this.inFlight.set(update.update_id, ac);
    const timeout = setTimeout(() => ac.abort(TIMEOUT), this.opts.timeoutMs);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'Accept-Encoding': 'gzip, deflate',
    };
    if (config.secret_token) headers['X-Telegram-Bot-Api-Secret-Token'] = config.secret_token;
    void (async () => {
      let failure: string | undefined;
      let retryAfterS = 0;
      let reply: Record<string, unknown> | undefined;
      try {
        const res = await fetch(config.url, {
          method: 'POST',
          headers,
          body: JSON.stringify(update.json),
          signal: ac.signal,
        });
        const body = await res.text();
        if (res.status >= 200 && res.status <= 299) {
          reply = parseReply(body);
        } else {
          failure = `Wrong response from the webhook: ${res.status} ${res.statusText}`;
          retryAfterS = Number(res.headers.get('retry-after') ?? 0) || 0;
        }
      } catch (err) {
        if (ac.signal.reason === RESET) return;
        failure = describeFailure(err, ac.signal.reason === TIMEOUT);
      } finally {
        clearTimeout(timeout);
        if (this.inFlight.get(update.update_id) === ac) this.inFlight.delete(update.update_id);
      }
      if (this.config !== config || this.closed) return;
      if (failure === undefined) {
        this.attempts.delete(update.update_id);
        this.delivered++;
        this.queue.remove(update.update_id);
        if (reply) this.opts.onReply(reply);
      } else {
        const failures = (this.attempts.get(update.update_id)?.failures ?? 0) + 1;
        const delays = this.opts.retryDelaysMs;
        const delay = delays[Math.min(failures - 1, delays.length - 1)] ?? 1000;
        this.attempts.set(update.update_id, {
          failures,
          nextAt: Date.now() + Math.max(delay, Math.min(retryAfterS, 3600) * 1000),
        });
        this.lastErrorDate = nowSeconds();
        this.lastErrorMessage = failure;
        this.opts.changed();
      }
      this.pump();
    })();
  }
}

function parseReply(body: string): Record<string, unknown> | undefined {
  if (!body.trim().startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(body) as unknown;
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      typeof (parsed as Record<string, unknown>)['method'] === 'string'
    )
      return parsed as Record<string, unknown>;
  } catch {
    // Any 2xx acknowledges; a body that is not a method call is ignored.
  }
  return undefined;
}
