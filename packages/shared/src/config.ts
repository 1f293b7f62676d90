import { readFileSync } from 'node:fs';
import { isMap, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { LOG_LEVELS } from './logger.ts';

/** One thing wrong with the configuration, located as precisely as we can. */
export interface ConfigProblem {
  file?: string;
  line?: number;
  path: string;
  message: string;
}

/** Thrown when configuration is invalid; carries every problem found, not just the first. */
export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(formatProblems(problems));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatProblems(problems: ConfigProblem[]): string {
  const lines = problems.map((p) => {
    const where = [p.file, p.line].filter((x) => x !== undefined).join(':');
    const path = p.path ? `${p.path}: ` : '';
    return `  - ${where ? `${where}: ` : ''}${path}${p.message}`;
  });
  return `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`;
}

export type Env = Record<string, string | undefined>;

// ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; $${ is a literal ${
const VAR_RE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])((?:[^}\\]|\\.)*))?\}/g;

/**
 * Replaces `${VAR:-default}` expressions in a string, the way docker compose does. A string that is one
 * expression alone becomes a typed scalar (number, boolean) so `port: ${PORT:-8000}` stays a number.
 */
export function interpolateString(input: string, env: Env, onError: (message: string) => void): unknown {
  if (!input.includes('$')) return input;
  let whole = false;
  const out = input.replace(
    VAR_RE,
    (match, name: string | undefined, colon: string, op: string, arg = '') => {
      if (match === '$${') return '${';
      whole = match.length === input.length;
      const raw = env[name!];
      const missing = colon ? raw === undefined || raw === '' : raw === undefined;
      if (!op) {
        if (raw === undefined) onError(`environment variable ${name} is not set`);
        return raw ?? '';
      }
      if (!missing) return raw!;
      if (op === '-') return arg.replace(/\\(.)/g, '$1');
      onError(arg ? `${name}: ${arg}` : `environment variable ${name} is required`);
      return '';
    },
  );
  if (whole) {
    if (/^-?\d+(\.\d+)?$/.test(out)) return Number(out);
    if (out === 'true' || out === 'false') return out === 'true';
  }
  return out;
}

/** Interpolates every string in a parsed YAML tree (values only, never keys: no structure from the environment). */
export function interpolate(
  value: unknown,
  env: Env,
  onError: (path: string, message: string) => void,
  path: (string | number)[] = [],
): unknown {
  if (typeof value === 'string') return interpolateString(value, env, (m) => onError(pathString(path), m));
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, onError, [...path, i]));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, onError, [...path, k]);
    return out;
  }
  return value;
}

export function pathString(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s ? `.${String(p)}` : String(p);
  }
  return s;
}

/** A parsed YAML file with the means to find the line of any path in it. */
export interface YamlSource {
  file: string;
  data: unknown;
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

/**
 * Reads and interpolates a YAML file. Syntax and interpolation problems are appended to `problems`;
 * a missing optional file yields `{}`.
 */
export function readYamlConfig(
  file: string,
  env: Env,
  problems: ConfigProblem[],
  opts: { required?: boolean } = {},
): YamlSource {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !opts.required) return { file, data: {}, lineOf: () => undefined };
    problems.push({ file, path: '', message: code === 'ENOENT' ? 'file not found' : `cannot read: ${code}` });
    return { file, data: undefined, lineOf: () => undefined };
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  for (const e of doc.errors) {
    problems.push({
      file,
      line: e.linePos?.[0]?.line,
      path: '',
      message: `YAML: ${e.message.split('\n')[0]}`,
    });
  }
  if (doc.errors.length) return { file, data: undefined, lineOf: () => undefined };
  const lineOf = (path: readonly PropertyKey[]): number | undefined => {
    // walk up to the deepest existing node so a missing key points at its parent
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as unknown[], true);
      const range = (node as { range?: [number, number, number] } | undefined)?.range;
      if (range) return lineCounter.linePos(range[0]).line;
    }
    return undefined;
  };
  const raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  if (!isMap(doc.contents) && doc.contents !== null) {
    problems.push({ file, line: 1, path: '', message: 'expected a mapping at the top level' });
    return { file, data: undefined, lineOf };
  }
  const data = interpolate(raw, env, (path, message) =>
    problems.push({ file, line: lineOf(path.split(/\.|\[|\]/).filter(Boolean)), path, message }),
  );
  return { file, data, lineOf };
}

/** Validates `data` against a zod schema, turning every issue into a located problem. */
export function validateConfig<S extends z.ZodType>(
  schema: S,
  source: Pick<YamlSource, 'file' | 'data' | 'lineOf'>,
  problems: ConfigProblem[],
  /** Where `source.data` sits in its file, when it is a part of it (problem paths are prefixed). */
  prefix: (string | number)[] = [],
): z.output<S> | undefined {
  if (source.data === undefined) return undefined;
  const result = schema.safeParse(source.data);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const path = issue.path as PropertyKey[];
    let message = issue.message;
    if (issue.code === 'unrecognized_keys')
      message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (a typo?)`;
    // an unknown key is best located at the key itself
    const at = issue.code === 'unrecognized_keys' ? [...path, issue.keys[0]!] : path;
    problems.push({
      file: source.file,
      line: source.lineOf(at),
      path: pathString([...prefix, ...path]),
      message,
    });
  }
  return undefined;
}

/** Validates the environment with a zod schema; problems are reported against "environment". */
export function validateEnv<S extends z.ZodType>(
  schema: S,
  env: Env,
  problems: ConfigProblem[],
): z.output<S> | undefined {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    problems.push({
      file: 'environment',
      path: pathString(issue.path as PropertyKey[]),
      message: issue.message,
    });
  }
  return undefined;
}

/** Deep-freezes a validated config so no code can change it after start. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Top-level sections of config/config.yaml. Each service validates its own section strictly and
 * ignores the others, but a section name nobody knows is a typo and stops every service.
 */
export const CONFIG_SECTIONS = [
  'system',
  'access',
  'security',
  'audit',
  'llm_proxy',
  'core',
  'telegram',
  'feishu',
  'memory',
  'knowledge',
  'tools',
  'automations',
  'console',
] as const;

/** Reports top-level sections of config.yaml that no service knows (a typo stops every service). */
export function checkConfigSections(source: YamlSource, problems: ConfigProblem[]): void {
  if (!source.data || typeof source.data !== 'object') return;
  for (const key of Object.keys(source.data)) {
    if (!(CONFIG_SECTIONS as readonly string[]).includes(key)) {
      problems.push({
        file: source.file,
        line: source.lineOf([key]),
        path: key,
        message: `unknown section (known: ${CONFIG_SECTIONS.join(', ')})`,
      });
    }
  }
}

/** `system.redis_prefix`: the prefix of every Redis key and queue (config.yaml). */
export const RedisPrefix = z.string().regex(/^[\w.-]+$/, 'letters, digits, . _ - only');

/** Environment fields every service reads (the operator's contract in DESIGN.md); PORT 0 picks a free port. */
export function commonEnv(defaultPort: number) {
  return {
    PORT: z.coerce
      .number({ error: 'must be a port number' })
      .int()
      .min(0, 'must be a port number')
      .max(65535, 'must be a port number')
      .default(defaultPort),
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
      .default('redis://127.0.0.1:6379'),
    /** Address to listen on: every interface in a container; 127.0.0.1 for a process on a shared host. */
    HOST: z
      .union([z.ipv4(), z.ipv6(), z.literal('localhost')], { error: 'must be an IP address' })
      .default('0.0.0.0'),
    PINCER_CONFIG_DIR: z.string().default('./config'),
    LOG_LEVEL: z.enum(LOG_LEVELS as [string, ...string[]]).default('info'),
    LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
    LOG_CONTENT: z.enum(['true', 'false']).default('false'),
  };
}
