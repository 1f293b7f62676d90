import winston from 'winston';

export type Logger = winston.Logger;
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export interface LoggerOptions {
  service: string;
  level?: LogLevel;
  /** JSON lines (default) or human-readable lines for a terminal. */
  format?: 'json' | 'pretty';
  /** Log message text and prompts verbatim. Off by default: chat content is personal data. */
  logContent?: boolean;
  /** Extra values that must never appear in a log line (the service's own secrets). */
  secrets?: (string | undefined)[];
}

const SECRET_KEY =
  /pass(word)?|secret|token|authorization|api[-_]?key|cookie|encrypt[-_]?key|credential|private/i;
const CONTENT_KEY = /^(text|content|messages|prompt|input|reasoning|reasoning_content|arguments)$/i;
// values that look like credentials wherever they appear: bearer tokens, Telegram bot tokens, sk- keys
const SECRET_VALUE = /\b(Bearer\s+)[\w.~+/=-]{8,}|\b\d{6,12}:[\w-]{30,}\b|\bsk-[\w-]{16,}\b/g;

/**
 * Returns a copy of `value` with secrets and (unless allowed) message content replaced. Objects are
 * copied only along the paths that change.
 */
export function redact(value: unknown, logContent: boolean, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') return redactString(value, secrets);
  if (!value || typeof value !== 'object' || depth > 6) return value;
  if (value instanceof Error)
    return {
      name: value.name,
      message: redactString(value.message, secrets),
      stack: value.stack && redactString(value.stack, secrets),
    };
  if (Array.isArray(value)) return value.map((v) => redact(v, logContent, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactField(k, v, logContent, secrets, depth + 1);
  return out;
}

/** One field of a log line: secret-named fields and (unless allowed) message content are replaced. */
function redactField(
  key: string,
  v: unknown,
  logContent: boolean,
  secrets: readonly string[],
  depth: number,
): unknown {
  if (v === undefined || v === null) return v;
  if (SECRET_KEY.test(key) && typeof v !== 'boolean' && typeof v !== 'number') return '[redacted]';
  if (!logContent && CONTENT_KEY.test(key)) return `[content redacted, ${lengthOf(v)} chars]`;
  return redact(v, logContent, secrets, depth);
}

function lengthOf(v: unknown): number {
  return typeof v === 'string' ? v.length : (JSON.stringify(v)?.length ?? 0);
}

export function redactString(s: string, secrets: readonly string[]): string {
  let out = s.replace(SECRET_VALUE, (_m, bearer?: string) => (bearer ? `${bearer}[redacted]` : '[redacted]'));
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join('[redacted]');
  return out;
}

const redactFormat = winston.format((info, opts) => {
  const { logContent, secrets } = opts as { logContent: boolean; secrets: string[] };
  // top-level fields are replaced in place: winston's info object carries symbols we must keep
  for (const key of Object.keys(info))
    if (key !== 'level') info[key] = redactField(key, info[key], logContent, secrets, 0);
  return info;
});

/** The one logger factory: every line carries `service`; secrets and chat content are redacted. */
export function createLogger(opts: LoggerOptions): Logger {
  const secrets = (opts.secrets ?? []).filter((s): s is string => typeof s === 'string' && s.length >= 6);
  const base = [
    winston.format.errors({ stack: true }),
    redactFormat({ logContent: opts.logContent ?? false, secrets }),
    winston.format.timestamp(),
  ];
  const format =
    opts.format === 'pretty'
      ? winston.format.combine(
          ...base,
          winston.format.colorize(),
          winston.format.printf(({ timestamp, level, message, service, ...rest }) => {
            const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
            return `${timestamp} ${level} [${service}] ${message}${extra}`;
          }),
        )
      : winston.format.combine(...base, winston.format.json());
  return winston.createLogger({
    level: opts.level ?? 'info',
    defaultMeta: { service: opts.service },
    format,
    transports: [new winston.transports.Console({ stderrLevels: [] })],
  });
}

const REQUEST_ID = /^[\w.:@-]{1,128}$/;

/** A caller's request id if it is well-formed, otherwise a fresh one: it follows a message end to end. */
export function requestIdFrom(header: string | string[] | undefined, fresh: () => string): string {
  const v = Array.isArray(header) ? header[0] : header;
  return v && REQUEST_ID.test(v) ? v : fresh();
}
