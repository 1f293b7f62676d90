import path from 'node:path';
import {
  type ConfigProblem,
  ConfigError,
  deepFreeze,
  DEFAULT_REDIS_PREFIX,
  type Env,
  commonEnv,
  RedisPrefix,
  readYamlConfig,
  validateConfig,
  validateEnv,
  checkConfigSections,
} from '@pincer/shared';
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const ACTIONS = [
  'send_welcome_message',
  'help',
  'new_conversation',
  'choose_model',
  'stop',
  'process_with_llm',
  'knowledge_base',
  'remember',
  'forget',
  'memories',
] as const;
export type ActionName = (typeof ACTIONS)[number];

const PlatformAccess = z.strictObject({
  /** Direct chats: anyone, only allow_users, or anyone an admin approved through a pairing code. */
  direct: z.enum(['open', 'allowlist', 'pairing']).default('pairing'),
  /** Groups: answer only when addressed, always, or never. */
  groups: z.enum(['mention', 'open', 'off']).default('mention'),
  allow_users: z.array(z.coerce.string()).default([]),
  /** Groups allowed when non-empty (empty: every group the bot is in). */
  allow_groups: z.array(z.coerce.string()).default([]),
});

const RATE = /^(\d+)\s*\/\s*(s|sec|second|m|min|minute|h|hour)$/;

const ConfigFile = z.looseObject({
  system: z
    .looseObject({
      redis_prefix: RedisPrefix.optional(),
      /** Conversations answered at once by one core process. */
      max_concurrency: positiveInt.max(256).default(8),
      /** How soon a crashed process's message is taken over by another (ms; its lock must lapse first). */
      job_lock_ms: z.number().int().min(1000).max(600_000).default(30_000),
    })
    .prefault({}),
  core: z
    .strictObject({
      system_prompt: z
        .string()
        .default(
          'You are Pincer, a helpful assistant. Answer in the language the user writes in. Be concise.',
        ),
      /** At most this many earlier messages go into the prompt (the context window may allow fewer). */
      history_messages: positiveInt.max(1000).default(50),
      /** Groups: one conversation for the whole group, or one per member. */
      group_conversations: z.enum(['per_group', 'per_member']).default('per_group'),
      /** Model for conversations that chose none (default: llm-proxy's default model). */
      default_model: z.string().optional(),
      /** Minimum time between streamed updates of a reply, per platform (ms). */
      stream_interval_ms: z
        .strictObject({
          telegram: z.number().int().min(0).default(1000),
          feishu: z.number().int().min(0).default(200),
        })
        .prefault({}),
      welcome_message: z
        .string()
        .default("Hello! I'm Pincer, your assistant. Ask me anything. /help lists what I can do."),
      help_message: z
        .string()
        .default(
          'Just write to me. Commands:\n/new — start a new conversation\n/model — list models, /model <name> — switch\n/stop — stop the answer being written\n/help — this message',
        ),
      /** Total time a reply may take before the user is told the model is too slow (ms). */
      reply_timeout_ms: positiveInt.default(600_000),
    })
    .prefault({}),
  access: z
    .strictObject({
      telegram: PlatformAccess.prefault({}),
      feishu: PlatformAccess.prefault({ direct: 'open' }),
      pairing: z
        .strictObject({ code_ttl_minutes: positiveInt.default(60), max_pending: positiveInt.default(100) })
        .prefault({}),
    })
    .prefault({}),
  security: z
    .strictObject({
      /** Messages per user, e.g. "100/min", "5/s", "1000/hour". */
      rate_limit: z.string().regex(RATE, 'write it as N/s, N/min or N/hour').default('100/min'),
    })
    .prefault({}),
  audit: z
    .strictObject({ include_content: z.boolean().default(false), retention_days: positiveInt.default(180) })
    .prefault({}),
  knowledge: z
    .strictObject({
      /** Registry id of the embedding model (llm-proxy /v1/embeddings). */
      embedding_model: z.string().min(1).default('nomic-embed-text'),
      /** Chunk size and the overlap between neighbouring chunks (tokens, estimated). */
      chunk_tokens: z.number().int().min(64).max(4000).default(350),
      overlap_tokens: z.number().int().min(0).max(1000).default(60),
      /** Chunks placed in the prompt for /kb and automatic retrieval. */
      top_k: positiveInt.max(50).default(5),
      /** Candidates each half (vector, full text) contributes before fusion. */
      candidates: positiveInt.max(500).default(50),
      /** Vector matches below this cosine similarity are ignored (0: any positive similarity counts). */
      min_similarity: z.number().min(0).max(1).default(0),
      /** Largest upload or posted document (bytes). */
      max_document_bytes: positiveInt.default(25 * 1024 * 1024),
      /** Texts sent to the embedding model per request. */
      embedding_batch: positiveInt.max(512).default(32),
      /** Documents ingested at once by one core process. */
      ingest_concurrency: positiveInt.max(16).default(1),
    })
    .refine((k) => k.overlap_tokens <= k.chunk_tokens / 2, {
      message: 'overlap_tokens must be at most half of chunk_tokens',
      path: ['overlap_tokens'],
    })
    .prefault({}),
  memory: z
    .strictObject({
      /** Long-term memory: /remember, /forget, /memories, and memories placed in prompts. */
      enabled: z.boolean().default(true),
      /** After exchanges, a background job asks the model for durable facts about the user. */
      extract: z.boolean().default(true),
      /** Model for the extraction (default: core's default model). */
      extraction_model: z.string().optional(),
      /** Wait after an exchange before extracting, so a burst of messages is read in one job (ms). */
      extract_delay_ms: z.number().int().min(0).max(3_600_000).default(20_000),
      /** Prompt budget for a user's memories (tokens, estimated). */
      prompt_tokens: positiveInt.max(8000).default(400),
      /** Memories kept per user; the oldest extracted ones make room for new ones. */
      max_per_user: positiveInt.max(10_000).default(200),
      /** Groups: memories are personal, so by default they are used and extracted in direct chats only. */
      in_groups: z.boolean().default(false),
      /** Whether admins may read memory content through the API (they may always count and delete). */
      admin_can_read: z.boolean().default(false),
    })
    .prefault({}),
});

const Match = z.strictObject({
  platform: z
    .union([z.enum(['telegram', 'feishu', 'api']), z.array(z.enum(['telegram', 'feishu', 'api']))])
    .optional(),
  chat_type: z.enum(['direct', 'group']).optional(),
  content: z.string().optional(),
  command: z.union([z.string(), z.array(z.string())]).optional(),
  event: z.enum(['message', 'bot_added']).optional(),
});

const RouteAction = {
  action: z.enum(ACTIONS, {
    error: (i) => `unknown action "${String(i.input)}" (known: ${ACTIONS.join(', ')})`,
  }),
  model: z.string().optional(),
  system_prompt: z.string().optional(),
  /** process_with_llm: search the knowledge base for every message and give the model what it finds. */
  knowledge: z.boolean().optional(),
};

const MatchRoute = z.strictObject({ match: Match, ...RouteAction });
const DefaultRoute = z.strictObject({ default: z.strictObject(RouteAction) });
// each rule is checked on its own: a union would report only "invalid input" for the whole rule
const RoutingFile = z.strictObject({ routes: z.array(z.unknown()).min(1, 'add at least one rule') });

const EnvSchema = z.object({
  // 0 asks the system for a free port (tests, local runs)
  ...commonEnv(8080),
  DATABASE_URL: z
    .string({ error: 'is required (postgres://user:password@host:5432/db)' })
    .regex(/^postgres(ql)?:\/\//, 'must start with postgres://'),
  LLM_PROXY_URL: z
    .url({ error: 'must be a URL such as http://llm-proxy:8000/v1' })
    .default('http://127.0.0.1:8000/v1'),
  LLM_PROXY_API_KEY: z
    .string({ error: 'is required (the key llm-proxy accepts from core)' })
    .min(16, 'must be at least 16 characters'),
  PINCER_ADMIN_TOKEN: z.string().min(24, 'must be at least 24 characters (openssl rand -hex 32)').optional(),
});

export interface Route {
  /** 1-based position in routing.yaml, for messages. */
  index: number;
  match?: {
    platforms?: readonly string[];
    chatType?: 'direct' | 'group';
    content?: RegExp;
    commands?: readonly string[];
    event?: 'message' | 'bot_added';
  };
  action: ActionName;
  model?: string;
  systemPrompt?: string;
  /** Automatic retrieval from the knowledge base (process_with_llm routes). */
  knowledge?: boolean;
}

export type CoreSettings = z.output<typeof ConfigFile>;

export interface CoreConfig {
  /** The folder config.yaml and routing.yaml were read from. */
  configDir: string;
  port: number;
  host: string;
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  logFormat: 'json' | 'pretty';
  logContent: boolean;
  llmProxyUrl: string;
  llmProxyKey: string;
  adminToken: string | undefined;
  maxConcurrency: number;
  jobLockMs: number;
  core: CoreSettings['core'];
  access: CoreSettings['access'];
  rateLimit: { limit: number; windowMs: number };
  audit: CoreSettings['audit'];
  knowledge: CoreSettings['knowledge'];
  memory: CoreSettings['memory'];
  routes: readonly Route[];
  secrets: readonly string[];
}

function parseRate(s: string): { limit: number; windowMs: number } {
  const m = RATE.exec(s)!;
  const unit = m[2]![0];
  return { limit: Number(m[1]), windowMs: unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000 };
}

/** Reads and validates the environment, config.yaml and routing.yaml; throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): CoreConfig {
  const problems: ConfigProblem[] = [];
  const e = validateEnv(EnvSchema, env, problems);
  const dir = path.resolve(e?.PINCER_CONFIG_DIR ?? env.PINCER_CONFIG_DIR ?? './config');

  const mainSrc = readYamlConfig(path.join(dir, 'config.yaml'), env, problems);
  checkConfigSections(mainSrc, problems);
  const main = validateConfig(ConfigFile, mainSrc, problems);

  const routingSrc = readYamlConfig(path.join(dir, 'routing.yaml'), env, problems, { required: true });
  const routing = validateConfig(RoutingFile, routingSrc, problems);
  const routes: Route[] = [];
  routing?.routes.forEach((raw, i) => {
    const isDefault = !!raw && typeof raw === 'object' && 'default' in raw;
    const r = validateConfig(
      isDefault ? DefaultRoute : MatchRoute,
      { file: routingSrc.file, data: raw, lineOf: (p) => routingSrc.lineOf(['routes', i, ...p]) },
      problems,
      ['routes', i],
    ) as z.output<typeof MatchRoute> | z.output<typeof DefaultRoute> | undefined;
    if (!r) return;
    const where = { file: routingSrc.file, path: `routes[${i}]` };
    const action = 'default' in r ? r.default : r;
    if (action.knowledge && action.action !== 'process_with_llm')
      problems.push({
        ...where,
        line: routingSrc.lineOf(['routes', i]),
        message: `rule ${i + 1}: knowledge: true works with process_with_llm only (knowledge_base always searches)`,
      });
    if ('default' in r) {
      if (i !== routing.routes.length - 1)
        problems.push({
          ...where,
          line: routingSrc.lineOf(['routes', i]),
          message: `rule ${i + 1}: the default rule must be the last one`,
        });
      routes.push({
        index: i + 1,
        action: r.default.action,
        model: r.default.model,
        systemPrompt: r.default.system_prompt,
        knowledge: r.default.knowledge,
      });
      return;
    }
    let content: RegExp | undefined;
    if (r.match.content !== undefined) {
      try {
        content = new RegExp(r.match.content, 'su');
      } catch (err) {
        problems.push({
          ...where,
          path: `${where.path}.match.content`,
          line: routingSrc.lineOf(['routes', i, 'match', 'content']),
          message: `rule ${i + 1}: bad regular expression: ${(err as Error).message}`,
        });
      }
    }
    const list = <T>(v: T | T[] | undefined) => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);
    routes.push({
      index: i + 1,
      match: {
        platforms: list(r.match.platform),
        chatType: r.match.chat_type,
        content,
        commands: list(r.match.command)?.map((c) => c.replace(/^\//, '').toLowerCase()),
        event: r.match.event,
      },
      action: r.action,
      model: r.model,
      systemPrompt: r.system_prompt,
      knowledge: r.knowledge,
    });
  });
  if (routing && !routes.some((r) => !r.match)) {
    problems.push({
      file: routingSrc.file,
      path: 'routes',
      message: 'add a last rule `- default: { action: process_with_llm }` so every message has an answer',
    });
  }

  if (problems.length || !e || !main || !routing) throw new ConfigError(problems);
  const secrets = [e.LLM_PROXY_API_KEY, e.PINCER_ADMIN_TOKEN, passwordOf(e.DATABASE_URL)].filter(
    (s): s is string => !!s,
  );
  const config: CoreConfig = deepFreeze({
    configDir: dir,
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisPrefix: main.system.redis_prefix ?? DEFAULT_REDIS_PREFIX,
    logLevel: e.LOG_LEVEL as CoreConfig['logLevel'],
    logFormat: e.LOG_FORMAT,
    logContent: e.LOG_CONTENT === 'true',
    llmProxyUrl: e.LLM_PROXY_URL.replace(/\/+$/, ''),
    llmProxyKey: e.LLM_PROXY_API_KEY,
    adminToken: e.PINCER_ADMIN_TOKEN,
    maxConcurrency: main.system.max_concurrency,
    jobLockMs: main.system.job_lock_ms,
    core: main.core,
    access: main.access,
    rateLimit: parseRate(main.security.rate_limit),
    audit: main.audit,
    knowledge: main.knowledge,
    memory: main.memory,
    routes,
    secrets,
  });
  sources.set(config, env);
  return config;
}

const sources = new WeakMap<CoreConfig, Env>();

/** Reads the files `config` came from again, with the same environment (a reload). */
export function reloadConfig(config: CoreConfig): CoreConfig {
  return loadConfig(sources.get(config) ?? process.env);
}

function passwordOf(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}
