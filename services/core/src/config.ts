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
import { CronExpressionParser } from 'cron-parser';
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
  'tasks',
  'run_workflow',
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

export const ROLES = ['admin', 'operator', 'auditor', 'user'] as const;
export type Role = (typeof ROLES)[number];

/** An IANA time zone name that this Node.js knows. */
const TimeZone = z.string().refine(
  (tz) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'unknown time zone (use an IANA name such as Europe/Berlin or Asia/Shanghai)' },
);

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/** A typed parameter of a declared command: what the model may fill into its argument template. */
const CommandParam = z.strictObject({
  type: z.enum(['string', 'integer', 'number', 'boolean']).default('string'),
  description: z.string().default(''),
  /** string: the value must match this regular expression (anchored by you). */
  pattern: z.string().optional(),
  enum: z
    .array(z.union([z.string(), z.number()]))
    .min(1)
    .optional(),
  max_length: positiveInt.max(4096).default(256),
  minimum: z.number().optional(),
  maximum: z.number().optional(),
  /** The parameter may be left out; it then takes this value. */
  default: z.union([z.string(), z.number(), z.boolean()]).optional(),
  /** string values may start with "-" (off by default so a value cannot become an option). */
  allow_dash: z.boolean().default(false),
});

const CommandSpec = z.strictObject({
  description: z.string().min(1, 'say what the command does (the model reads it)'),
  /** The program and its arguments; "{name}" inside an element is replaced by a parameter's value. */
  argv: z.array(z.string().min(1)).min(1, 'give the program and its arguments'),
  params: z
    .record(z.string().regex(/^[a-z][a-z0-9_]*$/, 'parameter names: lower case, digits, _'), CommandParam)
    .default({}),
  /** "local", or a host declared under tools.hosts (run over SSH). */
  host: z.string().default('local'),
  /** The least role a user needs to run it. */
  role: z.enum(ROLES).default('operator'),
  /** Ask before running: the user in the chat, an operator, or nobody. */
  confirm: z.enum(['user', 'operator', 'none']).default('user'),
  timeout_ms: z.number().int().min(100).max(3_600_000).default(30_000),
  output_max_bytes: z.number().int().min(256).max(10_485_760).default(16_384),
  /** Working directory (local commands). */
  cwd: z.string().optional(),
});

const HttpAllow = z.strictObject({
  /** Where requests may go: scheme, host, optional port and a path prefix, e.g. https://api.example.com/v2/ */
  url: z.url({ error: 'must be an absolute http(s) URL such as https://api.example.com/' }),
  methods: z.array(z.enum(HTTP_METHODS)).min(1).default(['GET']),
  role: z.enum(ROLES).default('user'),
  /** Methods that ask first (default: every method but GET and HEAD). */
  confirm_methods: z.array(z.enum(HTTP_METHODS)).default(['POST', 'PUT', 'PATCH', 'DELETE']),
  /** Who is asked for those. */
  confirm: z.enum(['user', 'operator']).default('user'),
  /** Headers core adds (credentials); never shown to the model. */
  headers: z.record(z.string(), z.string()).default({}),
});

const SshHost = z.strictObject({
  address: z.string().min(1),
  user: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  identity_file: z.string().optional(),
  known_hosts_file: z.string().optional(),
});

const ToolsSection = z.strictObject({
  /** Function calling for models whose registry entry has the `tools` capability. */
  enabled: z.boolean().default(true),
  /** Model calls per turn that may use tools; the last one must answer in words. */
  max_rounds: positiveInt.max(20).default(5),
  /** For the current time, reminders and schedules when none is given. */
  timezone: TimeZone.default('UTC'),
  /** How long an approval waits for a yes before it counts as no (s). */
  approval_timeout_s: positiveInt.max(86_400).default(120),
  /** A tool result handed to the model is cut to this many characters. */
  result_max_chars: z.number().int().min(256).max(200_000).default(8_000),
  /** TypeScript or JavaScript modules, one tool each (relative to the config folder). */
  plugins_dir: z.string().default('plugins'),
  builtin: z
    .strictObject({
      time: z.boolean().default(true),
      memory: z.boolean().default(true),
      knowledge: z.boolean().default(true),
      tasks: z.boolean().default(true),
    })
    .prefault({}),
  http: z
    .strictObject({
      timeout_ms: z.number().int().min(100).max(600_000).default(15_000),
      max_response_bytes: z.number().int().min(1024).max(52_428_800).default(1_048_576),
      allow: z.array(HttpAllow).default([]),
    })
    .prefault({}),
  hosts: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/), SshHost).default({}),
  commands: z
    .record(z.string().regex(/^[a-z][a-z0-9_]*$/, 'command names: lower case, digits, _'), CommandSpec)
    .default({}),
  /** The ssh client (OpenSSH) used for commands on declared hosts. */
  ssh_binary: z.string().default('ssh'),
});

const AutomationsSection = z.strictObject({
  /** Scheduled tasks and reminders (and /tasks). */
  enabled: z.boolean().default(true),
  /** Active tasks one user may have. */
  max_tasks_per_user: positiveInt.max(10_000).default(50),
  /** A recurring task a user creates may not run more often than this (s). */
  min_interval_s: positiveInt.default(300),
});

const WorkflowStep = z
  .strictObject({
    /** A name later steps can refer to as {{steps.<id>}} (default: step1, step2, …). */
    id: z
      .string()
      .regex(/^[a-z][a-z0-9_]*$/)
      .optional(),
    /** A tool call: the tool's name and its arguments (strings may use templates). */
    tool: z.string().optional(),
    args: z.record(z.string(), z.unknown()).default({}),
    /** A model prompt; {{previous}} is the previous step's output. */
    prompt: z.string().optional(),
    model: z.string().optional(),
    /** A message to a chat (default: the chat that started the run). */
    message: z.string().optional(),
    to: z
      .strictObject({
        platform: z.enum(['telegram', 'feishu']),
        chat_id: z.coerce.string(),
        chat_type: z.enum(['direct', 'group']).default('direct'),
        thread_id: z.coerce.string().optional(),
      })
      .optional(),
    /** What a failure of this step does: stop the run (default) or carry on. */
    on_error: z.enum(['stop', 'continue']).default('stop'),
  })
  .refine((s) => [s.tool, s.prompt, s.message].filter((x) => x !== undefined).length === 1, {
    message: 'a step is exactly one of tool, prompt or message',
  });

const Workflow = z.strictObject({
  description: z.string().default(''),
  /** The role its tool steps run with (it is written by the operator, so its calls need no approval). */
  role: z.enum(ROLES).default('operator'),
  schedule: z.strictObject({ cron: z.string().min(1), timezone: TimeZone.optional() }).optional(),
  steps: z.array(WorkflowStep).min(1, 'give at least one step'),
});

// each workflow is checked on its own, so one mistake does not hide the others'
const WorkflowsFile = z.strictObject({
  workflows: z
    .record(
      z.string().regex(/^[a-z][a-z0-9_-]*$/, 'workflow names: lower case, digits, _ and -'),
      z.unknown(),
    )
    .default({}),
});

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
  tools: ToolsSection.prefault({}),
  automations: AutomationsSection.prefault({}),
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
  /** run_workflow: the workflow in workflows.yaml the message starts (its text is {{input.text}}). */
  workflow: z.string().optional(),
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
  /** run_workflow routes: the workflow started. */
  workflow?: string;
}

export type ToolsSettings = z.output<typeof ToolsSection>;
export type CommandSettings = z.output<typeof CommandSpec>;
export type HttpAllowSettings = z.output<typeof HttpAllow>;
export type WorkflowSettings = z.output<typeof Workflow>;
export type WorkflowStepSettings = z.output<typeof WorkflowStep>;

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
  tools: ToolsSettings;
  automations: CoreSettings['automations'];
  /** workflows.yaml (empty when the file is absent). */
  workflows: Readonly<Record<string, WorkflowSettings>>;
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
        workflow: r.default.workflow,
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
      workflow: r.workflow,
    });
  });
  const workflowsSrc = readYamlConfig(path.join(dir, 'workflows.yaml'), env, problems);
  const workflowsFile = validateConfig(WorkflowsFile, workflowsSrc, problems);
  const workflows: Record<string, WorkflowSettings> = {};
  for (const [name, raw] of Object.entries(workflowsFile?.workflows ?? {})) {
    const w = validateConfig(
      Workflow,
      {
        file: workflowsSrc.file,
        data: raw ?? {},
        lineOf: (p) => workflowsSrc.lineOf(['workflows', name, ...p]),
      },
      problems,
      ['workflows', name],
    );
    if (w) workflows[name] = w;
  }
  // checked even when another section has a mistake, so every problem is listed at once
  const toolsParsed = ToolsSection.safeParse((mainSrc.data as { tools?: unknown } | undefined)?.tools ?? {});
  if (toolsParsed.success) checkTools(toolsParsed.data, mainSrc, problems);
  checkWorkflows(workflows, toolsParsed.data?.timezone ?? 'UTC', workflowsSrc, problems);
  routes.forEach((r, i) => {
    const line = routingSrc.lineOf(['routes', i]);
    const where = { file: routingSrc.file, path: `routes[${i}]`, line };
    if (r.action === 'run_workflow' && (!r.workflow || !workflows[r.workflow]))
      problems.push({
        ...where,
        message: r.workflow
          ? `rule ${i + 1}: no workflow "${r.workflow}" in workflows.yaml (known: ${Object.keys(workflows).join(', ') || 'none'})`
          : `rule ${i + 1}: run_workflow needs workflow: <name>`,
      });
    if (r.workflow && r.action !== 'run_workflow')
      problems.push({ ...where, message: `rule ${i + 1}: workflow: works with action run_workflow only` });
  });
  if (routing && !routes.some((r) => !r.match)) {
    problems.push({
      file: routingSrc.file,
      path: 'routes',
      message: 'add a last rule `- default: { action: process_with_llm }` so every message has an answer',
    });
  }

  if (problems.length || !e || !main || !routing) throw new ConfigError(problems);
  const secrets = [
    e.LLM_PROXY_API_KEY,
    e.PINCER_ADMIN_TOKEN,
    passwordOf(e.DATABASE_URL),
    // credentials core adds to allowlisted REST calls
    // (content settings such as Accept are not secrets, and short values would mask common words)
    ...main.tools.http.allow.flatMap((a) =>
      Object.entries(a.headers)
        .filter(([name]) => !/^(accept.*|content-type|user-agent)$/i.test(name))
        .map(([, v]) => v.replace(/^(Bearer|Basic|Token)\s+/i, ''))
        .filter((v) => v.length >= 8),
    ),
  ].filter((s): s is string => !!s);
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
    tools: main.tools,
    automations: main.automations,
    workflows,
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

type Source = { file: string; lineOf(path: readonly PropertyKey[]): number | undefined };

/** What the schema cannot say about tools: hosts that exist, templates that name declared parameters. */
function checkTools(tools: ToolsSettings, src: Source, problems: ConfigProblem[]): void {
  const at = (p: (string | number)[], message: string) =>
    problems.push({
      file: src.file,
      line: src.lineOf(['tools', ...p]),
      path: `tools${p.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('')}`,
      message,
    });
  for (const [name, c] of Object.entries(tools.commands)) {
    if (c.host !== 'local' && !tools.hosts[c.host])
      at(['commands', name, 'host'], `no host "${c.host}" under tools.hosts (or use local)`);
    const used = new Set<string>();
    c.argv.forEach((arg, i) => {
      for (const m of arg.matchAll(/\{([^{}]*)\}/g)) {
        used.add(m[1]!);
        if (!c.params[m[1]!])
          at(
            ['commands', name, 'argv', i],
            `"{${m[1]}}" is not one of params (${Object.keys(c.params).join(', ') || 'none declared'})`,
          );
      }
    });
    if (/\{[^{}]*\}/.test(c.argv[0]!))
      at(['commands', name, 'argv', 0], 'the program itself cannot be a parameter');
    for (const [pname, param] of Object.entries(c.params)) {
      if (!used.has(pname))
        at(['commands', name, 'params', pname], `parameter "${pname}" is not used in argv`);
      if (param.pattern !== undefined) {
        try {
          new RegExp(param.pattern, 'u');
        } catch (err) {
          at(
            ['commands', name, 'params', pname, 'pattern'],
            `bad regular expression: ${(err as Error).message}`,
          );
        }
      }
    }
  }
  tools.http.allow.forEach((a, i) => {
    if (!/^https?:$/.test(new URL(a.url).protocol))
      at(['http', 'allow', i, 'url'], 'only http and https URLs');
    const names = Object.keys(a.headers).map((h) => h.toLowerCase());
    if (names.some((h) => ['host', 'content-length', 'transfer-encoding', 'connection'].includes(h)))
      at(
        ['http', 'allow', i, 'headers'],
        'host, content-length, transfer-encoding and connection are set by core',
      );
  });
}

/** Workflows: valid schedules. */
function checkWorkflows(
  workflows: Record<string, WorkflowSettings>,
  timezone: string,
  src: Source,
  problems: ConfigProblem[],
): void {
  for (const [name, w] of Object.entries(workflows)) {
    if (w.schedule) {
      const err = cronProblem(w.schedule.cron, w.schedule.timezone ?? timezone);
      if (err)
        problems.push({
          file: src.file,
          line: src.lineOf(['workflows', name, 'schedule', 'cron']),
          path: `workflows.${name}.schedule.cron`,
          message: err,
        });
    }
    const ids = new Set<string>();
    w.steps.forEach((s, i) => {
      const id = s.id ?? `step${i + 1}`;
      if (ids.has(id))
        problems.push({
          file: src.file,
          line: src.lineOf(['workflows', name, 'steps', i]),
          path: `workflows.${name}.steps[${i}]`,
          message: `step id "${id}" is used twice`,
        });
      ids.add(id);
    });
  }
}

/** Why a cron expression cannot be used (undefined when it can): five fields, or six with seconds. */
export function cronProblem(expr: string, timezone: string): string | undefined {
  const fields = expr.trim().split(/\s+/).length;
  if (fields < 5 || fields > 6)
    return `"${expr}" is not a cron expression (five fields: minute hour day month weekday)`;
  try {
    CronExpressionParser.parse(expr, { tz: timezone, strict: false });
    return undefined;
  } catch (err) {
    return `"${expr}" is not a valid cron expression: ${(err as Error).message}`;
  }
}
