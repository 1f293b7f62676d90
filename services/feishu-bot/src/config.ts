import {
  type AdapterConfigBase,
  AdapterSystemSettings,
  readAdapterConfig,
  unsetIfBlank,
} from '@pincer/adapter-kit';
import { commonEnv, deepFreeze, type Env } from '@pincer/shared';
import { z } from 'zod';

const positiveInt = z.number().int().positive();

const Settings = z.looseObject({
  system: AdapterSystemSettings,
  feishu: z
    .strictObject({
      /** A message older than this when it arrives (after an outage, a reconnect replay) is stale. */
      stale_after_s: positiveInt.default(1800),
      /** What becomes of a stale message: dropped (counted and logged) or answered anyway. */
      stale_policy: z.enum(['drop', 'answer']).default('drop'),
      /** How long event_id / message_id are remembered to answer each message once (Feishu redelivers for ~7 h). */
      dedup_ttl_s: positiveInt.min(60).default(43_200),
      /** CardKit streaming: at least this long between two operations on one card (Feishu allows 10/s). */
      card_interval_ms: z.number().int().min(100).default(120),
      /** Fallback without CardKit: streamed PATCHes of a card message at most this often. */
      patch_interval_ms: z.number().int().min(200).default(1500),
      /** Rate limits the bot paces itself to (a 429 / 230020 from Feishu is still honoured). */
      limits: z
        .strictObject({
          /** Messages sent per chat (Feishu: 5/s per user and per group). */
          per_chat_per_sec: z.number().positive().default(5),
          /** Calls per API per app (Feishu: most APIs 50/s). */
          per_api_per_sec: z.number().positive().default(50),
        })
        .prefault({}),
      /** Outbound actions handled at once (finished replies wait for their chat's pacing). */
      outbound_concurrency: positiveInt.max(1000).default(64),
      /** Webhook mode: the largest event accepted, and how far X-Lark-Request-Timestamp may be from now. */
      webhook: z
        .strictObject({
          max_body_bytes: positiveInt.default(1_048_576),
          max_clock_skew_s: positiveInt.default(300),
        })
        .prefault({}),
    })
    .prefault({}),
});

const optionalSecret = (re: RegExp, message: string) => unsetIfBlank(z.string().regex(re, message));

const EnvSchema = z
  .object({
    ...commonEnv(8082),
    FEISHU_APP_ID: optionalSecret(
      /^cli_[0-9a-fA-F]{16}$/,
      'does not look like an app id (cli_ and 16 hex digits, from the developer console)',
    ),
    FEISHU_APP_SECRET: optionalSecret(/^[A-Za-z0-9]{8,128}$/, 'does not look like an app secret'),
    FEISHU_VERIFICATION_TOKEN: optionalSecret(
      /^[A-Za-z0-9_-]{8,128}$/,
      'does not look like a verification token',
    ),
    FEISHU_ENCRYPT_KEY: optionalSecret(/^\S{1,256}$/, 'must be the Encrypt Key from the console (no spaces)'),
    FEISHU_DOMAIN: z
      .url({
        protocol: /^https?$/,
        error: 'must be an http(s) URL (https://open.feishu.cn or https://open.larksuite.com)',
      })
      .default('https://open.feishu.cn'),
    FEISHU_MODE: z.enum(['ws', 'webhook'], { error: 'must be "ws" or "webhook"' }).default('ws'),
  })
  .superRefine((e, ctx) => {
    if (!!e.FEISHU_APP_ID !== !!e.FEISHU_APP_SECRET)
      ctx.addIssue({
        code: 'custom',
        path: [e.FEISHU_APP_ID ? 'FEISHU_APP_SECRET' : 'FEISHU_APP_ID'],
        message: 'is required together with the other app credential',
      });
    if (e.FEISHU_MODE === 'webhook' && e.FEISHU_APP_ID && !e.FEISHU_VERIFICATION_TOKEN)
      ctx.addIssue({
        code: 'custom',
        path: ['FEISHU_VERIFICATION_TOKEN'],
        message: 'is required in webhook mode (it is what tells Feishu events from forgeries)',
      });
  });

export type FeishuSettings = z.output<typeof Settings>['feishu'];

export interface FeishuConfig extends AdapterConfigBase {
  /** Both unset: the bot idles and says why. */
  appId: string | undefined;
  appSecret: string | undefined;
  verificationToken: string | undefined;
  encryptKey: string | undefined;
  domain: string;
  mode: 'ws' | 'webhook';
  feishu: FeishuSettings;
  secrets: readonly string[];
}

/** Reads and validates the environment and config.yaml; throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): FeishuConfig {
  const { e, s, base } = readAdapterConfig(EnvSchema, Settings, env);
  return deepFreeze({
    ...base,
    appId: e.FEISHU_APP_ID,
    appSecret: e.FEISHU_APP_SECRET,
    verificationToken: e.FEISHU_VERIFICATION_TOKEN,
    encryptKey: e.FEISHU_ENCRYPT_KEY,
    domain: e.FEISHU_DOMAIN.replace(/\/+$/, ''),
    mode: e.FEISHU_MODE,
    feishu: s.feishu,
    secrets: [e.FEISHU_APP_SECRET, e.FEISHU_VERIFICATION_TOKEN, e.FEISHU_ENCRYPT_KEY].filter(
      (x): x is string => !!x,
    ),
  });
}
