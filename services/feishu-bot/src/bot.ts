import { createServer } from 'node:http';
import { InboundPublisher, ReplyRunner } from '@pincer/adapter-kit';
import { listen, type Logger, QueueName } from '@pincer/shared';
import { Redis } from 'ioredis';
import type { FeishuConfig } from './config.ts';
import { createApp } from './http/app.ts';
import { type EventHandler, LongConnection, webhookHandlers } from './repositories/events.ts';
import { FeishuApi, FeishuError } from './repositories/feishu.ts';
import { Ledger } from './repositories/ledger.ts';
import { acceptEvent, type IntakeDeps } from './services/intake.ts';
import { createMetrics } from './services/metrics.ts';
import { FeishuPresenter, type FsReplyState } from './services/presenter.ts';

export interface BotHandle {
  url: string;
  /** Resolves once the bot knows who it is and receives events (or at once when idle). */
  ready: Promise<void>;
  shutdown(deadlineMs?: number): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts the bot: HTTP (health, metrics, webhook), the outbound reply runner and the event intake. */
export async function startBot(
  config: FeishuConfig,
  log: Logger,
  opts: { host?: string; port?: number } = {},
): Promise<BotHandle> {
  let api: FeishuApi | undefined;
  let conn: LongConnection | undefined;
  const idle = !config.appId || !config.appSecret;
  const connected = () =>
    config.mode === 'ws'
      ? conn?.status().state === 'connected'
      : !!api && Date.now() - api.lastContactAt < 120_000;
  const metrics = createMetrics(idle ? undefined : connected);
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  redis.on('error', (err) => log.debug('redis error', { error: err.message }));
  const state = {
    phase: idle ? 'idle' : 'starting',
    bot: undefined as { open_id: string; app_name: string } | undefined,
    error: undefined as string | undefined,
    lastEventAt: 0,
  };
  const stopping = new AbortController();

  let runner: ReplyRunner<FsReplyState> | undefined;
  let publisher: InboundPublisher | undefined;
  let handle: EventHandler | undefined;

  if (!idle) {
    api = new FeishuApi({
      appId: config.appId!,
      appSecret: config.appSecret!,
      domain: config.domain,
      metrics,
      log,
    });
    const ledger = new Ledger(redis, config.redisPrefix, config.feishu.dedup_ttl_s);
    publisher = new InboundPublisher(redis, config.redisPrefix);
    const presenter = new FeishuPresenter({ api, ledger, settings: config.feishu, metrics, log });
    runner = new ReplyRunner<FsReplyState>({
      connection: redis,
      prefix: config.redisPrefix,
      queue: QueueName.OutboundFeishu,
      platform: 'feishu',
      presenter,
      log,
      concurrency: config.feishu.outbound_concurrency,
    });
    runner.start();
    const deps: IntakeDeps = {
      publisher,
      ledger,
      settings: config.feishu,
      metrics,
      log,
      botOpenId: () => state.bot?.open_id,
      ...(config.verificationToken ? { verificationToken: config.verificationToken } : {}),
    };
    handle = async (type, event) => {
      state.lastEventAt = Date.now();
      await acceptEvent(deps, type, event);
    };
  } else {
    log.warn(
      'FEISHU_APP_ID / FEISHU_APP_SECRET are not set: the Feishu bot idles (set them and restart to connect)',
    );
  }
  if (!idle && config.mode === 'webhook' && !config.encryptKey)
    log.warn(
      'FEISHU_ENCRYPT_KEY is not set: webhook pushes are neither encrypted nor signed (set an Encrypt Key)',
    );

  const app = createApp({
    log,
    registry: metrics.registry,
    health: async () => {
      const redisOk = await redis.ping().then(
        () => true,
        () => false,
      );
      const ws = conn?.status();
      const body: Record<string, unknown> = {
        status: !redisOk ? 'unavailable' : state.phase,
        mode: config.mode,
        redis: redisOk,
        feishu: api
          ? {
              domain: config.domain,
              reachable: Date.now() - api.lastContactAt < 10 * 60_000,
              last_contact_at: api.lastContactAt || null,
              last_failure: api.lastFailure ?? null,
              last_event_at: state.lastEventAt || null,
            }
          : { reachable: false, reason: 'FEISHU_APP_ID / FEISHU_APP_SECRET are not set' },
        ...(state.bot ? { bot: state.bot } : {}),
        ...(ws ? { connection: ws } : {}),
        ...(runner ? { replies_in_progress: runner.active } : {}),
        ...(state.error ? { error: state.error } : {}),
      };
      return { ok: redisOk, body };
    },
    ...(config.mode === 'webhook' && handle
      ? {
          webhook: {
            maxBodyBytes: config.feishu.webhook.max_body_bytes,
            handlers: webhookHandlers({
              encryptKey: config.encryptKey,
              verificationToken: config.verificationToken!,
              maxClockSkewS: config.feishu.webhook.max_clock_skew_s,
              log,
              handle,
              reject: (reason) => metrics.webhookRejected.inc({ reason }),
            }),
          },
        }
      : {}),
  });
  const server = createServer(app);
  const port = await listen(server, opts.port ?? config.port, opts.host ?? config.host);
  log.info('feishu-bot listening', { port, mode: config.mode, idle });

  /** Who the bot is (its open_id recognises mentions), then the long connection; retried until it works. */
  const connect = async () => {
    if (!api || !handle) return;
    for (let backoff = 1000; !stopping.signal.aborted; backoff = Math.min(60_000, backoff * 2)) {
      try {
        state.bot = await api.botInfo();
        if (config.mode === 'ws') {
          const c = new LongConnection({
            appId: config.appId!,
            appSecret: config.appSecret!,
            domain: config.domain,
            log,
            handle,
            onState: (up) => {
              metrics.connection.set(up ? 1 : 0);
              if (state.phase !== 'idle') state.phase = up ? 'ok' : 'connecting';
            },
          });
          conn = c;
          state.phase = 'connecting';
          const up = new Promise<void>((resolve) => {
            const t = setInterval(() => {
              if (c.status().state === 'connected' || stopping.signal.aborted) {
                clearInterval(t);
                resolve();
              }
            }, 20);
          });
          c.start();
          await up;
        }
        if (stopping.signal.aborted) return;
        state.phase = 'ok';
        state.error = undefined;
        log.info('connected to Feishu', {
          bot: state.bot.app_name,
          open_id: state.bot.open_id,
          mode: config.mode,
        });
        return;
      } catch (err) {
        const denied = err instanceof FeishuError && err.api === 'token';
        state.phase = denied ? 'unauthorized' : 'starting';
        state.error = (err as Error).message;
        log.error(denied ? 'Feishu refused FEISHU_APP_ID / FEISHU_APP_SECRET' : 'cannot reach Feishu yet', {
          error: (err as Error).message,
          retry_in_ms: backoff,
        });
        await sleep(backoff);
      }
    }
  };
  const ready = connect();
  // webhook mode may go quiet for long: a cheap bot-info call keeps "is Feishu reachable" honest
  const probe = setInterval(() => {
    if (config.mode === 'webhook' && api && state.bot && Date.now() - api.lastContactAt > 60_000)
      api.botInfo().catch(() => {});
  }, 30_000).unref();

  return {
    url: `http://127.0.0.1:${port}`,
    ready,
    async shutdown(deadlineMs = 10_000) {
      stopping.abort();
      clearInterval(probe);
      const deadline = sleep(deadlineMs);
      // stop taking events first, then finish the replies in flight, then close connections
      conn?.close();
      await new Promise<void>((r) => server.close(() => r()));
      // the runner ends the show in progress before Redis goes (its per-reply lock must not outlive us)
      await Promise.race([runner?.close(), deadline]);
      await publisher?.close().catch(() => {});
      await redis.quit().catch(() => {});
      log.info('feishu-bot stopped');
    },
  };
}
