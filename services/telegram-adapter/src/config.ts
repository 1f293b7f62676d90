import {
  type AdapterConfigBase,
  AdapterSystemSettings,
  readAdapterConfig,
  unsetIfBlank,
} from '@pincer/adapter-kit';
import { commonEnv, deepFreeze, type Env } from '@pincer/shared';
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const SECRET = /^[A-Za-z0-9_-]{1,256}$/;

const Settings = z.looseObject({
  system: AdapterSystemSettings,
  telegram: z
    .strictObject({
      /** Seconds one getUpdates call waits for news (long polling). */
      poll_timeout_s: z.number().int().min(1).max(50).default(30),
      /** Streamed edits of a reply at most this often per chat (Telegram's flood limits). */
      edit_interval_ms: z
        .strictObject({
          direct: z.number().int().min(100).default(1000),
          group: z.number().int().min(100).default(3000),
        })
        .prefault({}),
      /** Telegram shows "typing…" for about 5 s; repeated this often until the reply is finished. */
      typing_interval_ms: z.number().int().min(500).max(5000).default(4000),
      /** Flood limits the adapter paces itself to (429s are still honoured if Telegram disagrees). */
      limits: z
        .strictObject({
          per_chat_per_sec: z.number().positive().default(1),
          per_chat_burst: positiveInt.default(3),
          per_group_per_min: z.number().positive().default(20),
          global_per_sec: z.number().positive().default(30),
        })
        .prefault({}),
      /** Outbound actions handled at once (finished replies wait for their chat's pacing). */
      outbound_concurrency: positiveInt.max(1000).default(64),
      /** An edited message: ignored (the answer stays with the original) or answered as a new message. */
      edited_messages: z.enum(['ignore', 'answer']).default('ignore'),
      /** Webhook mode: parallel pushes Telegram may make, and the largest update accepted. */
      webhook: z
        .strictObject({
          max_connections: positiveInt.max(100).default(40),
          max_body_bytes: positiveInt.default(1_048_576),
        })
        .prefault({}),
    })
    .prefault({}),
});

const EnvSchema = z
  .object({
    ...commonEnv(8081),
    TELEGRAM_BOT_TOKEN: unsetIfBlank(
      z
        .string()
        .regex(/^\d+:[A-Za-z0-9_-]{20,}$/, 'does not look like a bot token (123456:ABC… from @BotFather)'),
    ),
    TELEGRAM_API_ROOT: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .default('https://api.telegram.org'),
    TELEGRAM_MODE: z
      .enum(['polling', 'webhook'], { error: 'must be "polling" or "webhook"' })
      .default('polling'),
    TELEGRAM_WEBHOOK_URL: unsetIfBlank(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })),
    TELEGRAM_WEBHOOK_SECRET: unsetIfBlank(
      z.string().regex(SECRET, '1-256 characters of A-Z a-z 0-9 _ - (openssl rand -hex 32)'),
    ),
  })
  .superRefine((e, ctx) => {
    if (e.TELEGRAM_MODE !== 'webhook') return;
    if (!e.TELEGRAM_WEBHOOK_URL)
      ctx.addIssue({
        code: 'custom',
        path: ['TELEGRAM_WEBHOOK_URL'],
        message: 'is required in webhook mode',
      });
    if (!e.TELEGRAM_WEBHOOK_SECRET)
      ctx.addIssue({
        code: 'custom',
        path: ['TELEGRAM_WEBHOOK_SECRET'],
        message: 'is required in webhook mode (it is what authenticates Telegram)',
      });
  });

export type TelegramSettings = z.output<typeof Settings>['telegram'];

export interface TelegramConfig extends AdapterConfigBase {
  /** Unset: the adapter idles and says why. */
  token: string | undefined;
  apiRoot: string;
  mode: 'polling' | 'webhook';
  webhookUrl: string | undefined;
  webhookSecret: string | undefined;
  telegram: TelegramSettings;
  secrets: readonly string[];
}

/** Reads and validates the environment and config.yaml; throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): TelegramConfig {
  const { e, s, base } = readAdapterConfig(EnvSchema, Settings, env);
  return deepFreeze({
    ...base,
    token: e.TELEGRAM_BOT_TOKEN,
    apiRoot: e.TELEGRAM_API_ROOT.replace(/\/+$/, ''),
    mode: e.TELEGRAM_MODE,
    webhookUrl: e.TELEGRAM_WEBHOOK_URL,
    webhookSecret: e.TELEGRAM_WEBHOOK_SECRET,
    telegram: s.telegram,
    secrets: [e.TELEGRAM_BOT_TOKEN, e.TELEGRAM_WEBHOOK_SECRET].filter((x): x is string => !!x),
  });
}
