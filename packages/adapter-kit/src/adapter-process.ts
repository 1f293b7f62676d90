import { createServer, type RequestListener, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { listen, type Logger } from '@pincer/shared';
import { Redis } from 'ioredis';
import { InboundPublisher } from './inbound.ts';
import { type Presenter, ReplyRunner } from './replies.ts';

/** A started adapter, as its main and its tests hold it. */
export interface AdapterHandle {
  url: string;
  /** Resolves once the bot knows who it is and receives messages (or at once when idle). */
  ready: Promise<void>;
  shutdown(deadlineMs?: number): Promise<void>;
}

export interface AdapterProcessOptions {
  /** The service, as log lines name it: `feishu-bot`, `telegram-adapter`. */
  name: string;
  redisUrl: string;
  redisPrefix: string;
  log: Logger;
  /** No credentials: the adapter serves health and metrics only, and says why. */
  idle: boolean;
}

/**
 * What every adapter's process has around its platform: one Redis connection, the inbound publisher
 * and the reply runner, the health fields, a connect loop that retries until the platform answers,
 * and the shutdown order.
 */
export class AdapterProcess {
  readonly redis: Redis;
  /** Aborted when shutdown begins: nothing new is started after it. */
  readonly stopping = new AbortController();
  /** What /healthz reports: idle, starting, connecting, ok or unauthorized, and why it is not ok. */
  phase: string;
  error: string | undefined;
  private readonly o: AdapterProcessOptions;
  private publisher?: InboundPublisher;
  private runner?: Pick<ReplyRunner<unknown>, 'active' | 'close'>;
  private server?: Server;
  private probeTimer?: NodeJS.Timeout;

  constructor(o: AdapterProcessOptions) {
    this.o = o;
    this.phase = o.idle ? 'idle' : 'starting';
    this.redis = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
    this.redis.on('error', (err) => o.log.debug('redis error', { error: err.message }));
  }

  /** Starts the reply runner on the platform's outbound queue; returns the publisher for the intake. */
  startReplies<S>(o: {
    queue: string;
    platform: string;
    presenter: Presenter<S>;
    concurrency: number;
  }): InboundPublisher {
    const runner = new ReplyRunner<S>({
      connection: this.redis,
      prefix: this.o.redisPrefix,
      log: this.o.log,
      ...o,
    });
    runner.start();
    this.runner = runner;
    this.publisher = new InboundPublisher(this.redis, this.o.redisPrefix);
    return this.publisher;
  }

  /** The /healthz answer: ok while Redis answers; the platform's own fields amid the common ones. */
  async health(
    mode: string,
    platform: Record<string, unknown>,
  ): Promise<{ ok: boolean; body: Record<string, unknown> }> {
    const redisOk = await this.redis.ping().then(
      () => true,
      () => false,
    );
    const body: Record<string, unknown> = {
      status: !redisOk ? 'unavailable' : this.phase,
      mode,
      redis: redisOk,
      ...platform,
      ...(this.runner ? { replies_in_progress: this.runner.active } : {}),
      ...(this.error ? { error: this.error } : {}),
    };
    return { ok: redisOk, body };
  }

  /** Serves HTTP; resolves with the local URL (port 0 picks a free one). */
  async serve(app: RequestListener, host: string, port: number, mode: string): Promise<string> {
    this.server = createServer(app);
    const bound = await listen(this.server, port, host);
    this.o.log.info(`${this.o.name} listening`, { port: bound, mode, idle: this.o.idle });
    return `http://127.0.0.1:${bound}`;
  }

  /**
   * Runs `attempt` (who the bot is, then receiving) until it succeeds or shutdown begins, 1 s, 2 s …
   * 60 s apart: the platform may be unreachable for a while. `failed` says what to log, and whether the
   * platform refused the credentials.
   */
  async connect(
    attempt: () => Promise<void>,
    failed: (err: Error) => { unauthorized: boolean; message: string },
  ): Promise<void> {
    const { signal } = this.stopping;
    for (let backoff = 1000; !signal.aborted; backoff = Math.min(60_000, backoff * 2)) {
      try {
        await attempt();
        if (signal.aborted) return;
        this.phase = 'ok';
        this.error = undefined;
        return;
      } catch (err) {
        const e = err as Error;
        const f = failed(e);
        this.phase = f.unauthorized ? 'unauthorized' : 'starting';
        this.error = e.message;
        this.o.log.error(f.message, { error: e.message, retry_in_ms: backoff });
        await sleep(backoff, undefined, { signal }).catch(() => {});
      }
    }
  }

  /** Runs `check` every 30 s until shutdown (a webhook may go quiet for long: reachability stays honest). */
  probe(check: () => void): void {
    this.probeTimer = setInterval(check, 30_000).unref();
  }

  /**
   * Stops taking messages first (HTTP and `stopIntake`), then finishes the replies in flight, then
   * closes connections; waits at most `deadlineMs` for the first two. The runner ends the show in
   * progress before Redis goes: its per-reply lock must not outlive the process.
   */
  async shutdown(
    deadlineMs: number,
    o: { stopIntake?: () => Promise<void> | void; afterReplies?: () => void } = {},
  ): Promise<void> {
    this.stopping.abort();
    clearInterval(this.probeTimer);
    const timer = new AbortController();
    const deadline = sleep(deadlineMs, undefined, { signal: timer.signal }).catch(() => {});
    const server = this.server;
    const closed = new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await Promise.race([Promise.all([closed, o.stopIntake?.()]), deadline]);
    await Promise.race([this.runner?.close(), deadline]);
    timer.abort();
    o.afterReplies?.();
    await this.publisher?.close().catch(() => {});
    await this.redis.quit().catch(() => {});
    this.o.log.info(`${this.o.name} stopped`);
  }
}
