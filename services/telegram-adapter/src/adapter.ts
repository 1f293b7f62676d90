import { type AdapterHandle, AdapterProcess, TypingKeeper } from '@pincer/adapter-kit';
import { type Logger, QueueName } from '@pincer/shared';
import type { TelegramConfig } from './config.ts';
import { createApp } from './http/app.ts';
import { ChatStore } from './repositories/chats.ts';
import { TelegramApi, TelegramError } from './repositories/telegram.ts';
import { accept, type IntakeDeps, Poller } from './services/intake.ts';
import { createMetrics } from './services/metrics.ts';
import { TelegramPresenter } from './services/presenter.ts';

export type { AdapterHandle };

/** Starts the adapter: HTTP (health, metrics, webhook), the outbound reply runner and the intake. */
export async function startAdapter(
  config: TelegramConfig,
  log: Logger,
  opts: { host?: string; port?: number } = {},
): Promise<AdapterHandle> {
  let api: TelegramApi | undefined;
  const reachable = () => !!api && Date.now() - api.lastContactAt < 120_000;
  const metrics = createMetrics(config.token ? reachable : undefined);
  const proc = new AdapterProcess({
    name: 'telegram-adapter',
    redisUrl: config.redisUrl,
    redisPrefix: config.redisPrefix,
    log,
    idle: !config.token,
  });

  let poller: Poller | undefined;
  let typing: TypingKeeper | undefined;
  let deps: IntakeDeps | undefined;

  if (config.token) {
    api = new TelegramApi(config.token, config.apiRoot, metrics);
    const store = new ChatStore(proc.redis, config.redisPrefix);
    typing = new TypingKeeper(
      proc.redis,
      `${config.redisPrefix}:telegram`,
      config.telegram.typing_interval_ms,
    );
    const presenter = new TelegramPresenter({ api, store, typing, settings: config.telegram, metrics, log });
    const publisher = proc.startReplies({
      queue: QueueName.OutboundTelegram,
      platform: 'telegram',
      presenter,
      concurrency: config.telegram.outbound_concurrency,
    });
    deps = { api, publisher, store, typing, settings: config.telegram, metrics, log };
  } else {
    log.warn('TELEGRAM_BOT_TOKEN is not set: the Telegram adapter idles (set it and restart to connect)');
  }

  const app = createApp({
    log,
    registry: metrics.registry,
    health: () =>
      proc.health(config.mode, {
        telegram: api
          ? {
              reachable: reachable(),
              last_contact_at: api.lastContactAt || null,
              last_failure: api.lastFailure ?? null,
            }
          : { reachable: false, reason: 'TELEGRAM_BOT_TOKEN is not set' },
        ...(deps?.me ? { bot: { id: deps.me.id, username: deps.me.username } } : {}),
        ...(poller ? { poller: { leader: poller.leader, last_poll_at: poller.lastPollAt || null } } : {}),
      }),
    ...(config.mode === 'webhook' && deps
      ? {
          webhook: {
            secret: config.webhookSecret!,
            maxBodyBytes: config.telegram.webhook.max_body_bytes,
            accept: (u) => accept(deps, [u]),
          },
        }
      : {}),
  });
  const url = await proc.serve(app, opts.host ?? config.host, opts.port ?? config.port, config.mode);

  /** Who the bot is, then the webhook or the poller. */
  const connect = async (client: TelegramApi, d: IntakeDeps) => {
    const me = await client.getMe();
    d.me = me;
    if (config.mode === 'webhook') {
      await client.setWebhook(
        config.webhookUrl!,
        config.webhookSecret!,
        config.telegram.webhook.max_connections,
      );
    } else {
      await client.deleteWebhook(); // getUpdates answers 409 while a webhook is set
    }
    if (proc.stopping.signal.aborted) return; // a poller started now would outlive the shutdown
    if (config.mode !== 'webhook') {
      poller = new Poller(d);
      poller.start();
    }
    log.info('connected to Telegram', { bot: me.username, mode: config.mode });
  };
  const ready =
    api && deps
      ? proc.connect(
          () => connect(api, deps),
          (err) => {
            const unauthorized = err instanceof TelegramError && err.failure.kind === 'unauthorized';
            return {
              unauthorized,
              message: unauthorized ? 'Telegram refused TELEGRAM_BOT_TOKEN' : 'cannot reach Telegram yet',
            };
          },
        )
      : Promise.resolve();
  // webhook mode may go quiet for long: a cheap getMe keeps "is Telegram reachable" honest
  proc.probe(() => {
    if (api && deps?.me && Date.now() - api.lastContactAt > 60_000) api.getMe().catch(() => {});
  });

  return {
    url,
    ready,
    shutdown: (deadlineMs = 10_000) =>
      proc.shutdown(deadlineMs, { stopIntake: () => poller?.stop(), afterReplies: () => typing?.close() }),
  };
}
