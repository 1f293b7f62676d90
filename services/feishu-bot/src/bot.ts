import { type AdapterHandle, AdapterProcess } from '@pincer/adapter-kit';
import { type Logger, QueueName } from '@pincer/shared';
import type { FeishuConfig } from './config.ts';
import { createApp } from './http/app.ts';
import { type EventHandler, LongConnection, webhookHandlers } from './repositories/events.ts';
import { FeishuApi, FeishuError } from './repositories/feishu.ts';
import { Ledger } from './repositories/ledger.ts';
import { acceptEvent, type IntakeDeps } from './services/intake.ts';
import { createMetrics } from './services/metrics.ts';
import { FeishuPresenter } from './services/presenter.ts';

export type BotHandle = AdapterHandle;

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
  const proc = new AdapterProcess({
    name: 'feishu-bot',
    redisUrl: config.redisUrl,
    redisPrefix: config.redisPrefix,
    log,
    idle,
  });
  const { signal } = proc.stopping;
  const state = {
    bot: undefined as { open_id: string; app_name: string } | undefined,
    lastEventAt: 0,
  };

  let handle: EventHandler | undefined;

  if (!idle) {
    api = new FeishuApi({
      appId: config.appId!,
      appSecret: config.appSecret!,
      domain: config.domain,
      metrics,
      log,
    });
    const ledger = new Ledger(proc.redis, config.redisPrefix, config.feishu.dedup_ttl_s);
    const presenter = new FeishuPresenter({ api, ledger, settings: config.feishu, metrics, log });
    const publisher = proc.startReplies({
      queue: QueueName.OutboundFeishu,
      platform: 'feishu',
      presenter,
      concurrency: config.feishu.outbound_concurrency,
    });
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
    health: () => {
      const ws = conn?.status();
      return proc.health(config.mode, {
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
      });
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
  const url = await proc.serve(app, opts.host ?? config.host, opts.port ?? config.port, config.mode);

  /** Who the bot is (its open_id recognises mentions), then the long connection. */
  const connect = async (client: FeishuApi, handleEvent: EventHandler) => {
    const bot = await client.botInfo();
    state.bot = bot;
    if (signal.aborted) return; // a connection opened now would outlive the shutdown
    if (config.mode === 'ws') {
      const c = new LongConnection({
        appId: config.appId!,
        appSecret: config.appSecret!,
        domain: config.domain,
        log,
        handle: handleEvent,
        onState: (up) => {
          metrics.connection.set(up ? 1 : 0);
          proc.phase = up ? 'ok' : 'connecting';
        },
      });
      conn = c;
      proc.phase = 'connecting';
      const up = new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (c.status().state === 'connected' || signal.aborted) {
            clearInterval(t);
            resolve();
          }
        }, 20);
      });
      c.start();
      await up;
    }
    if (signal.aborted) return;
    log.info('connected to Feishu', { bot: bot.app_name, open_id: bot.open_id, mode: config.mode });
  };
  const ready =
    api && handle
      ? proc.connect(
          () => connect(api, handle),
          (err) => {
            const denied = err instanceof FeishuError && err.api === 'token';
            return {
              unauthorized: denied,
              message: denied
                ? 'Feishu refused FEISHU_APP_ID / FEISHU_APP_SECRET'
                : 'cannot reach Feishu yet',
            };
          },
        )
      : Promise.resolve();
  // webhook mode may go quiet for long: a cheap bot-info call keeps "is Feishu reachable" honest
  proc.probe(() => {
    if (config.mode === 'webhook' && api && state.bot && Date.now() - api.lastContactAt > 60_000)
      api.botInfo().catch(() => {});
  });

  return {
    url,
    ready,
    // the long connection stops with the HTTP server: no event is taken once shutdown begins
    shutdown: (deadlineMs = 10_000) => proc.shutdown(deadlineMs, { stopIntake: () => conn?.close() }),
  };
}
