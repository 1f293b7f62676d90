import { hash } from 'node:crypto';
import path from 'node:path';
import {
  checkConfigSections,
  ConfigError,
  type ConfigProblem,
  DEFAULT_REDIS_PREFIX,
  deepFreeze,
  type Env,
  commonEnv,
  RedisPrefix,
  pathString,
  readYamlConfig,
  validateConfig,
  validateEnv,
} from '@pincer/shared';
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const ms = (def: number) => positiveInt.default(def);

const NodeSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  max_concurrency: positiveInt.default(4),
  name: z
    .string()
    .regex(/^[\w.-]{1,64}$/, 'letters, digits, . _ - only')
    .optional(),
});

const ProviderSchema = z.strictObject({
  type: z.enum(['openai', 'ollama'], { error: 'must be "openai" or "ollama"' }),
  nodes: z.array(NodeSchema).min(1, 'needs at least one node'),
  api_key: z.coerce.string().optional(),
  headers: z.record(z.string(), z.coerce.string()).default({}),
  /** Ollama: how long the model stays loaded after a request (Ollama's own default of 5 m reloads big models often). */
  keep_alive: z.union([z.string(), z.number()]).default('30m'),
  timeouts: z
    .strictObject({
      connect_ms: ms(5_000),
      // big MoE models with CPU offload can take minutes to the first token
      first_token_ms: ms(300_000),
      idle_ms: ms(120_000),
      total_ms: ms(1_800_000),
    })
    .prefault({}),
  queue: z.strictObject({ size: z.number().int().min(0).default(64), timeout_ms: ms(60_000) }).prefault({}),
  health: z
    .strictObject({
      path: z.string().startsWith('/').optional(),
      interval_ms: ms(15_000),
      timeout_ms: ms(3_000),
    })
    .prefault({}),
  breaker: z
    .strictObject({
      failure_threshold: positiveInt.default(3),
      cooldown_ms: ms(15_000),
      max_cooldown_ms: ms(300_000),
    })
    .prefault({}),
  retries: z
    .strictObject({ attempts: z.number().int().min(0).max(5).default(1), backoff_ms: ms(200) })
    .prefault({}),
});

export const CAPABILITIES = ['chat', 'code', 'tools', 'vision', 'embeddings', 'reasoning', 'json'] as const;

const ModelSchema = z.strictObject({
  name: z.string().optional(),
  provider: z.string(),
  model_id: z.coerce.string(),
  context_window: positiveInt.default(8192),
  max_tokens: positiveInt.default(2048),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().min(0).max(1).optional(),
  capabilities: z.array(z.enum(CAPABILITIES)).default(['chat']),
  priority: z.number().int().default(0),
  aliases: z.array(z.coerce.string()).default([]),
});

const ModelsFileSchema = z.strictObject({
  providers: z.record(z.string().regex(/^[\w.-]+$/, 'provider ids: letters, digits, . _ -'), ProviderSchema),
  models: z.record(z.string().regex(/^[\w.:/-]+$/, 'model ids: letters, digits, . _ : / -'), ModelSchema),
  routing: z
    .strictObject({
      default_model: z.string().optional(),
      fallbacks: z.record(z.string(), z.array(z.string())).default({}),
      load_balance: z.enum(['least_busy', 'round_robin']).default('least_busy'),
    })
    .prefault({}),
});

type Located = { path: (string | number)[]; message: string };

/**
 * Cross-references in models.yml (providers, aliases, fallbacks, default model). Runs on the raw data
 * even when the shape check failed, so one run reports every problem.
 */
function crossCheck(raw: unknown): Located[] {
  const out: Located[] = [];
  const f = (raw ?? {}) as Record<string, unknown>;
  const obj = (v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  const providers = obj(f.providers);
  const models = obj(f.models);
  const routing = obj(f.routing);
  const names = new Map<string, string>();
  for (const id of Object.keys(models)) names.set(id, id);
  for (const [id, mv] of Object.entries(models)) {
    const m = obj(mv);
    if (typeof m.provider === 'string' && !providers[m.provider]) {
      out.push({
        path: ['models', id, 'provider'],
        message: `unknown provider "${m.provider}" (known: ${Object.keys(providers).join(', ') || 'none'})`,
      });
    }
    const cw = typeof m.context_window === 'number' ? m.context_window : 8192;
    if (typeof m.max_tokens === 'number' && m.max_tokens >= cw)
      out.push({
        path: ['models', id, 'max_tokens'],
        message: `must be smaller than context_window (${cw})`,
      });
    for (const alias of Array.isArray(m.aliases) ? m.aliases : []) {
      const taken = names.get(String(alias));
      if (taken && taken !== id)
        out.push({ path: ['models', id, 'aliases'], message: `"${alias}" already names model "${taken}"` });
      names.set(String(alias), id);
    }
  }
  if (Object.keys(models).length === 0) out.push({ path: ['models'], message: 'declare at least one model' });
  if (typeof routing.default_model === 'string' && !names.has(routing.default_model)) {
    out.push({ path: ['routing', 'default_model'], message: `unknown model "${routing.default_model}"` });
  }
  for (const [from, list] of Object.entries(obj(routing.fallbacks))) {
    if (!names.has(from))
      out.push({ path: ['routing', 'fallbacks', from], message: `unknown model "${from}"` });
    (Array.isArray(list) ? list : []).forEach((to, i) => {
      if (!names.has(String(to)))
        out.push({ path: ['routing', 'fallbacks', from, i], message: `unknown model "${to}"` });
      else if (names.get(String(to)) === names.get(from))
        out.push({ path: ['routing', 'fallbacks', from, i], message: 'a model cannot fall back to itself' });
    });
  }
  return out;
}

const KeySchema = z
  .strictObject({
    name: z.string().regex(/^[\w.-]{1,64}$/, 'letters, digits, . _ - only'),
    /** The key itself, usually `${SOME_ENV_VAR}`; hashed at load and never kept in memory in clear. */
    key: z.coerce.string().min(16, 'keys must be at least 16 characters').optional(),
    /** Or its SHA-256 in hex, so the clear key never appears in config at all. */
    key_sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits')
      .optional(),
    rpm: positiveInt.optional(),
    tpm: positiveInt.optional(),
    models: z.array(z.string()).optional(),
    /** May read /status (node addresses and errors); core's LLM_PROXY_API_KEY always may. */
    admin: z.boolean().default(false),
  })
  .refine((k) => (k.key === undefined) !== (k.key_sha256 === undefined), {
    message: 'give exactly one of key or key_sha256',
  });

const ConfigFileSchema = z.looseObject({
  system: z
    .looseObject({
      redis_prefix: RedisPrefix.optional(),
    })
    .optional(),
  llm_proxy: z
    .strictObject({
      max_body_bytes: positiveInt.default(20 * 1024 * 1024),
      keys: z.array(KeySchema).default([]),
      /** Probe nodes actively (off only for tests that script health by hand). */
      active_health_checks: z.boolean().default(true),
    })
    .prefault({}),
});

const EnvSchema = z.object({
  ...commonEnv(8000),
  LLM_PROXY_API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
});

export type ProviderConfig = z.output<typeof ProviderSchema>;
export type ModelConfig = z.output<typeof ModelSchema>;
export type ModelsFile = z.output<typeof ModelsFileSchema>;

export interface ApiKey {
  name: string;
  sha256: string;
  rpm?: number;
  tpm?: number;
  /** Registry ids this key may use; undefined = all. */
  models?: ReadonlySet<string>;
  /** May see operational detail (/status). */
  admin?: boolean;
}

export interface ProxyConfig {
  port: number;
  host: string;
  redisUrl: string;
  redisPrefix: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  logFormat: 'json' | 'pretty';
  logContent: boolean;
  configDir: string;
  maxBodyBytes: number;
  activeHealthChecks: boolean;
  apiKeys: readonly ApiKey[];
  /** Values that must never be logged. */
  secrets: readonly string[];
  models: ModelsFile;
}

export const sha256 = (s: string): string => hash('sha256', s, 'hex');

/** Reads and validates the environment, models.yml and config.yaml; throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): ProxyConfig {
  const problems: ConfigProblem[] = [];
  const e = validateEnv(EnvSchema, env, problems);
  const dir = path.resolve(e?.PINCER_CONFIG_DIR ?? env.PINCER_CONFIG_DIR ?? './config');

  const modelsSrc = readYamlConfig(path.join(dir, 'models.yml'), env, problems, { required: true });
  let models = validateConfig(ModelsFileSchema, modelsSrc, problems);
  if (modelsSrc.data !== undefined) {
    for (const p of crossCheck(modelsSrc.data)) {
      problems.push({
        file: modelsSrc.file,
        line: modelsSrc.lineOf(p.path),
        path: pathString(p.path),
        message: p.message,
      });
      models = undefined;
    }
  }
  const mainSrc = readYamlConfig(path.join(dir, 'config.yaml'), env, problems);
  checkConfigSections(mainSrc, problems);
  const main = validateConfig(ConfigFileSchema, mainSrc, problems);

  const apiKeys: ApiKey[] = [];
  const secrets: string[] = [];
  if (e?.LLM_PROXY_API_KEY) {
    apiKeys.push({ name: 'core', sha256: sha256(e.LLM_PROXY_API_KEY), admin: true });
    secrets.push(e.LLM_PROXY_API_KEY);
  }
  if (main && models) {
    const modelNames = new Set([
      ...Object.keys(models.models),
      ...Object.values(models.models).flatMap((m) => m.aliases),
    ]);
    main.llm_proxy.keys.forEach((k, i) => {
      for (const m of k.models ?? []) {
        if (!modelNames.has(m))
          problems.push({
            file: mainSrc.file,
            line: mainSrc.lineOf(['llm_proxy', 'keys', i, 'models']),
            path: `llm_proxy.keys[${i}].models`,
            message: `unknown model "${m}"`,
          });
      }
      if (k.key) secrets.push(k.key);
      const hash = k.key_sha256 ?? sha256(k.key!);
      if (apiKeys.some((a) => a.sha256 === hash))
        problems.push({
          file: mainSrc.file,
          path: `llm_proxy.keys[${i}]`,
          message: 'the same key is declared twice',
        });
      apiKeys.push({
        name: k.name,
        sha256: hash,
        rpm: k.rpm,
        tpm: k.tpm,
        models: k.models && new Set(k.models),
        admin: k.admin,
      });
    });
  }
  for (const p of Object.values(models?.providers ?? {}))
    if (p.api_key && p.api_key !== 'EMPTY') secrets.push(p.api_key);
  if (e && apiKeys.length === 0 && main) {
    problems.push({
      file: 'environment',
      path: 'LLM_PROXY_API_KEY',
      message: 'no API key is configured: set LLM_PROXY_API_KEY (and/or llm_proxy.keys in config.yaml)',
    });
  }
  if (problems.length || !e || !models || !main) throw new ConfigError(problems);

  return deepFreeze({
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    redisPrefix: main.system?.redis_prefix ?? DEFAULT_REDIS_PREFIX,
    logLevel: e.LOG_LEVEL as ProxyConfig['logLevel'],
    logFormat: e.LOG_FORMAT,
    logContent: e.LOG_CONTENT === 'true',
    configDir: dir,
    maxBodyBytes: main.llm_proxy.max_body_bytes,
    activeHealthChecks: main.llm_proxy.active_health_checks,
    apiKeys,
    secrets,
    models,
  });
}
