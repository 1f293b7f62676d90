import { type ConfigProblem, ConfigError, type Logger } from '@pincer/shared';
import { type CoreConfig, reloadConfig, type Route } from '../config.ts';

/**
 * What a reload may change in a running process. Everything else is read once at start (pool
 * sizes, queues, the Redis prefix, the knowledge and memory services' settings) and needs a restart.
 */
const RELOADABLE = ['routes', 'core', 'access', 'rateLimit', 'audit'] as const;
/** Never compared or shown: secrets, and what only the environment sets (the environment cannot change under a process). */
const IGNORED = new Set(['secrets', 'llmProxyKey', 'adminToken', 'databaseUrl', 'redisUrl', 'configDir']);

export interface ConfigCheck {
  ok: boolean;
  /** After a reload through the API: whether the other core processes were told (Redis reachable). */
  propagated?: boolean;
  problems: ConfigProblem[];
  /** Settings that differ between the files and what runs, as dotted paths (`core.system_prompt`, `routes`). */
  changes: string[];
  /** The changed settings a reload cannot apply: restart core for them. */
  restart_required: string[];
}

const canonical = (v: unknown) =>
  JSON.stringify(v, (_k, x: unknown) => (x instanceof RegExp ? `/${x.source}/${x.flags}` : x));

/** Top-level sections whose value differs, one level deeper for objects (`access.telegram`). */
function differences(a: CoreConfig, b: CoreConfig): string[] {
  const out: string[] = [];
  for (const key of Object.keys(b) as (keyof CoreConfig)[]) {
    if (IGNORED.has(key)) continue;
    const x = a[key] as unknown;
    const y = b[key] as unknown;
    if (canonical(x) === canonical(y)) continue;
    const plain = (v: unknown): v is Record<string, unknown> =>
      !!v && typeof v === 'object' && !Array.isArray(v);
    if (plain(x) && plain(y)) {
      for (const sub of new Set([...Object.keys(x), ...Object.keys(y)]))
        if (canonical(x[sub]) !== canonical(y[sub])) out.push(`${key}.${sub}`);
    } else out.push(key);
  }
  return out;
}

const isReloadable = (change: string) => (RELOADABLE as readonly string[]).includes(change.split('.')[0]!);

/** Internal names as the operator writes them (config.yaml paths, environment variables). */
const AS_WRITTEN: Record<string, string> = {
  maxConcurrency: 'system.max_concurrency',
  jobLockMs: 'system.job_lock_ms',
  redisPrefix: 'system.redis_prefix',
  'rateLimit.limit': 'security.rate_limit',
  'rateLimit.windowMs': 'security.rate_limit',
  port: 'PORT',
  host: 'HOST',
  logLevel: 'LOG_LEVEL',
  logFormat: 'LOG_FORMAT',
  logContent: 'LOG_CONTENT',
  llmProxyUrl: 'LLM_PROXY_URL',
};
const asWritten = (changes: string[]) => [...new Set(changes.map((c) => AS_WRITTEN[c] ?? c))];

/** A URL without its user, password and query (where credentials would be). */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(not a URL)';
  }
}

/** A route as the API shows it (regular expressions as their source). */
export function describeRoute(r: Route) {
  return {
    index: r.index,
    match: r.match
      ? {
          platforms: r.match.platforms ?? null,
          chat_type: r.match.chatType ?? null,
          content: r.match.content?.source ?? null,
          commands: r.match.commands ?? null,
          event: r.match.event ?? null,
        }
      : null,
    action: r.action,
    model: r.model ?? null,
    system_prompt: r.systemPrompt ?? null,
    knowledge: r.knowledge ?? false,
    workflow: r.workflow ?? null,
  };
}

/**
 * The configuration a core process runs with, and its reload. `live` is the object every service
 * holds; a reload replaces its reloadable sections in place, so the next message sees them.
 */
export class ConfigManager {
  readonly live: CoreConfig;
  private source: CoreConfig;
  private readonly log: Logger;
  private readonly load: (current: CoreConfig) => CoreConfig;
  loadedAt = new Date();

  constructor(initial: CoreConfig, log: Logger, load: (current: CoreConfig) => CoreConfig = reloadConfig) {
    this.source = initial;
    // the sections stay frozen; only the top level is replaced on reload
    this.live = { ...initial };
    this.log = log;
    this.load = load;
  }

  /** Reads the files and compares them with what runs; applies nothing. */
  check(): ConfigCheck & { next?: CoreConfig } {
    let next: CoreConfig;
    try {
      next = this.load(this.source);
    } catch (err) {
      if (err instanceof ConfigError)
        return { ok: false, problems: err.problems, changes: [], restart_required: [] };
      throw err;
    }
    const changes = differences(this.live, next);
    return {
      ok: true,
      problems: [],
      changes: asWritten(changes),
      restart_required: asWritten(changes.filter((c) => !isReloadable(c))),
      next,
    };
  }

  /** Reads the files and, when they are valid, applies every reloadable change. Invalid files change nothing. */
  reload(reason: string): ConfigCheck {
    const { next, ...result } = this.check();
    if (!next) {
      this.log.warn('configuration not reloaded: invalid', { reason, problems: result.problems.length });
      return result;
    }
    const live = this.live as unknown as Record<string, unknown>;
    for (const key of RELOADABLE) live[key] = next[key];
    this.source = next;
    this.loadedAt = new Date();
    this.log.info('configuration reloaded', {
      reason,
      changes: result.changes,
      restartRequired: result.restart_required,
    });
    return result;
  }

  /** The running configuration without secrets or connection strings. */
  view() {
    const c = this.live;
    const view = {
      loaded_at: this.loadedAt.toISOString(),
      source: { dir: c.configDir },
      routes: c.routes.map(describeRoute),
      settings: {
        system: { redis_prefix: c.redisPrefix, max_concurrency: c.maxConcurrency, job_lock_ms: c.jobLockMs },
        core: c.core,
        access: c.access,
        security: { rate_limit: c.rateLimit },
        audit: c.audit,
        knowledge: c.knowledge,
        memory: c.memory,
        llm_proxy_url: redactUrl(c.llmProxyUrl),
      },
    };
    // a secret interpolated into a setting (`${VAR}` in the YAML) is masked wherever it landed
    let json = JSON.stringify(view);
    for (const s of c.secrets)
      if (s.length >= 4) json = json.split(JSON.stringify(s).slice(1, -1)).join('[redacted]');
    return JSON.parse(json) as typeof view;
  }
}
