import { createServer } from 'node:http';
import { InboundPublisher, ReplyRunner, TypingKeeper } from '@pincer/adapter-kit';
import { listen, type Logger, QueueName } from '@pincer/shared';
import { Redis } from 'ioredis';
import type { TelegramConfig } from './config.ts';
import { createApp } from './http/app.ts';
import { ChatStore } from './repositories/chats.ts';
import { TelegramApi, TelegramError } from './repositories/telegram.ts';
import { accept, type IntakeDeps, Poller } from './services/intake.ts';
import { createMetrics } from './services/metrics.ts';
import type { BotIdentity } from './services/normalise.ts';
import { TelegramPresenter } from './services/presenter.ts';

export interface AdapterHandle {
  url: string;
  /** Resolves once the bot knows who it is and receives updates (or at once when idle). */
  ready: Promise<void>;
  shutdown(deadlineMs?: number): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts the adapter: HTTP (health, metrics, webhook), the outbound reply runner and the intake. */
export async function startAdapter(
  config: TelegramConfig,
  log: Logger,
  opts: { host?: string; port?: number } = {},
): Promise<AdapterHandle> {
  let api: TelegramApi | undefined;
  const reachable = () => !!api && Date.now() - api.lastContactAt < 120_000;
  const metrics = createMetrics(config.token ? reachable : undefined);
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  redis.on('error', (err) => log.debug('redis error', { error: err.message }));
  const state = {
    phase: config.token ? 'starting' : 'idle',
    me: undefined as BotIdentity | undefined,
    error: undefined as string | undefined,
  };
  const stopping = new AbortController();

  let poller: Poller | undefined;
  let runner: ReplyRunner<unknown> | undefined;
  let publisher: InboundPublisher | undefined;
  let typing: TypingKeeper | undefined;
  let deps: IntakeDeps | undefined;

  if (config.token) {
    api = new TelegramApi(config.token, config.apiRoot, metrics);
    const store = new ChatStore(redis, config.redisPrefix);
    typing = new TypingKeeper(redis, `${config.redisPrefix}:telegram`, config.telegram.typing_interval_ms);
    publisher = new InboundPublisher(redis, config.redisPrefix);
    const presenter = new TelegramPresenter({ api, store, typing, settings: config.telegram, metrics, log });
    runner = new ReplyRunner({
      connection: redis,
      prefix: config.redisPrefix,
      queue: QueueName.OutboundTelegram,
      platform: 'telegram',
      presenter,
      log,
      concurrency: config.telegram.outbound_concurrency,
    }) as ReplyRunner<unknown>;
    runner.start();
    deps = { api, publisher, store, typing, settings: config.telegram, metrics, log, me: undefined as never };
  } else {
    log.warn('TELEGRAM_BOT_TOKEN is not set: the Telegram adapter idles (set it and restart to connect)');
  }

  const app = createApp({
    log,
    registry: metrics.registry,
    health: async () => {
      const redisOk = await redis.ping().then(
        () => true,
        () => false,
      );
      const body: Record<string, unknown> = {
        status: !redisOk ? 'unavailable' : state.phase,
        mode: config.mode,
        redis: redisOk,
        telegram: api
          ? {
              reachable: reachable(),
              last_contact_at: api.lastContactAt || null,
              last_failure: api.lastFailure ?? null,
            }
          : { reachable: false, reason: 'TELEGRAM_BOT_TOKEN is not set' },
        ...(state.me ? { bot: { id: state.me.id, username: state.me.username } } : {}),
        ...(poller ? { poller: { leader: poller.leader, last_poll_at: poller.lastPollAt || null } } : {}),
        ...(runner ? { replies_in_progress: runner.active } : {}),
        ...(state.error ? { error: state.error } : {}),
      };
      return { ok: redisOk, body };
    },
    ...(config.mode === 'webhook' && deps
      ? {
          webhook: {
            secret: config.webhookSecret!,
            maxBodyBytes: config.telegram.webhook.max_body_bytes,
            accept: async (u) => {
              if (!deps.me) throw new Error('not ready: bot identity unknown yet');
              await accept(deps, [u]);
            },
          },
        }
      : {}),
  });
  const server = createServer(app);
  const port = await listen(server, opts.port ?? config.port, opts.host ?? config.host);
  log.info('telegram-adapter listening', { port, mode: config.mode, idle: !config.token });

  /** Who the bot is, then the webhook or the poller; retried until it works (Telegram may be unreachable). */
  const connect = async () => {
    if (!api || !deps) return;
    for (let backoff = 1000; !stopping.signal.aborted; backoff = Math.min(60_000, backoff * 2)) {
      try {
        const me = await api.getMe();
        deps.me = me;
        state.me = me;
        if (config.mode === 'webhook') {
          await api.setWebhook(
            config.webhookUrl!,
            config.webhookSecret!,
            config.telegram.webhook.max_connections,
          );
        } else {
          await api.deleteWebhook(); // getUpdates answers 409 while a webhook is set
          poller = new Poller(deps);
          poller.start();
        }
        state.phase = 'ok';
        state.error = undefined;
        log.info('connected to Telegram', { bot: me.username, mode: config.mode });
        return;
      } catch (err) {
        const unauthorized = err instanceof TelegramError && err.failure.kind === 'unauthorized';
        state.phase = unauthorized ? 'unauthorized' : 'starting';
        state.error = (err as Error).message;
        log.error(unauthorized ? 'Telegram refused TELEGRAM_BOT_TOKEN' : 'cannot reach Telegram yet', {
          error: (err as Error).message,
          retry_in_ms: backoff,
        });
        await sleep(backoff);
      }
    }
  };
  const ready = connect();
  // webhook mode may go quiet for long: a cheap getMe keeps "is Telegram reachable" honest
  const probe = setInterval(() => {
    if (api && deps?.me && Date.now() - api.lastContactAt > 60_000) api.getMe().catch(() => {});
  }, 30_000).unref();

  return {
    url: `http://127.0.0.1:${port}`,
    ready,
    async shutdown(deadlineMs = 10_000) {
      stopping.abort();
      clearInterval(probe);
      const deadline = sleep(deadlineMs);
      // stop taking updates first, then finish the replies in flight, then close connections
      await new Promise<void>((r) => server.close(() => r()));
      await Promise.race([poller?.stop(), deadline]);
      await Promise.race([runner?.close(), deadline]);
      typing?.close();
      await publisher?.close().catch(() => {});
      await redis.quit().catch(() => {});
      log.info('telegram-adapter stopped');
    },
  };
}
