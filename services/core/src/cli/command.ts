/** The `pincer` command framework: command table, argument parsing, help, exit codes. */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

/** Exit codes scripts can rely on. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A check or an operation failed (exit 1); the message is printed as `pincer: <message>`. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.failed) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** The command line was wrong (exit 2); the command's usage is printed after the message. */
export class UsageError extends CliError {
  readonly usage: string;
  constructor(message: string, usage: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
    this.usage = usage;
  }
}

export type Values = Record<string, string | boolean | string[] | undefined>;

/** What a command sees: its parsed arguments, the environment and where to write. */
export interface Context {
  values: Values;
  positionals: string[];
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  /** Throws a UsageError carrying this command's usage. */
  usage(message: string): never;
}

export interface Command {
  /** The words that select it: ['keys', 'create']. */
  path: string[];
  /** Shown after the path in usage lines: '<name> --role ROLE'. */
  args: string;
  summary: string;
  /** Further help: arguments, options, examples. */
  details?: string;
  options?: ParseArgsOptionsConfig;
  /** Resolves with the exit code (default 0). */
  run(ctx: Context): Promise<number | void>;
}

/** Options every command accepts. */
const GLOBAL_OPTIONS: ParseArgsOptionsConfig = {
  url: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const GLOBAL_HELP = `Connection (commands that call core's API):
  --url URL      core's base URL (default: $PINCER_URL, else http://127.0.0.1:$PORT, PORT=8080)
  --token TOKEN  admin token or API key (default: $PINCER_ADMIN_TOKEN)
  -h, --help     this help

Exit status: 0 done, 1 a check or an operation failed, 2 the command line was wrong.`;

const usageLine = (c: Command) => `pincer ${c.path.join(' ')}${c.args ? ` ${c.args}` : ''}`;

/** The short reminder printed after a usage error. */
export function shortUsage(c: Command): string {
  return `usage: ${usageLine(c)}\n("pincer ${c.path.join(' ')} --help" explains more)\n`;
}

/** Help for one command. */
function commandHelp(c: Command): string {
  return `usage: ${usageLine(c)}\n\n${c.summary}${c.details ? `\n\n${c.details}` : ''}\n\n${GLOBAL_HELP}\n`;
}

/** Help for every command under `prefix` (all of them for []). */
function groupHelp(commands: Command[], prefix: string[]): string {
  const under = commands.filter((c) => prefix.every((w, i) => c.path[i] === w));
  const name = (c: Command) => `pincer ${c.path.join(' ')}`;
  const width = Math.max(...under.map((c) => name(c).length));
  const lines = under.map((c) => `  ${name(c).padEnd(width)}  ${c.summary}`);
  const more = prefix.length ? `pincer ${prefix.join(' ')}` : 'pincer <command>';
  return `usage: ${more} [options]\n\nCommands:\n${lines.join('\n')}\n\n"${more} --help" explains one command.\n\n${GLOBAL_HELP}\n`;
}

interface Selected {
  command: Command;
  values: Values;
  positionals: string[];
}

/** What the command line asks for: a command with its arguments, or help text (with its exit code). */
export function select(
  commands: Command[],
  argv: string[],
): Selected | { help: string; exitCode: number; error?: string } {
  // first pass, lenient: find the command words whatever options surround them
  const known: ParseArgsOptionsConfig = { ...GLOBAL_OPTIONS };
  for (const c of commands) Object.assign(known, c.options);
  const { tokens } = parseArgs({
    args: argv,
    options: known,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const words = tokens.filter((t) => t.kind === 'positional');
  const wantsHelp = tokens.some((t) => t.kind === 'option' && t.name === 'help');

  let matched: Command | undefined;
  let depth = 0;
  for (const c of commands) {
    if (c.path.every((w, i) => words[i]?.value === w) && c.path.length > depth) {
      matched = c;
      depth = c.path.length;
    }
  }
  if (!matched) {
    const prefix: string[] = [];
    while (
      words[prefix.length] &&
      commands.some((c) => [...prefix, words[prefix.length]!.value].every((w, i) => c.path[i] === w))
    )
      prefix.push(words[prefix.length]!.value);
    const help = groupHelp(commands, prefix);
    const extra = words[prefix.length];
    if (extra) return { help, exitCode: EXIT.usage, error: `unknown command "${extra.value}"` };
    // `pincer` alone or `pincer keys`: a command is missing unless help was asked for
    return wantsHelp
      ? { help, exitCode: EXIT.ok }
      : { help, exitCode: EXIT.usage, error: 'which command? (see below)' };
  }
  if (wantsHelp) return { help: commandHelp(matched), exitCode: EXIT.ok };

  // second pass, strict: the command's own options only, its words removed
  const skip = new Set(words.slice(0, depth).map((t) => t.index));
  const rest = argv.filter((_, i) => !skip.has(i));
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...GLOBAL_OPTIONS, ...matched.options },
      strict: true,
      allowPositionals: true,
    });
    return { command: matched, values: values as Values, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message, shortUsage(matched));
  }
}

/** A positive integer option, or a usage error. */
export function intOption(ctx: Context, name: string, fallback: number): number {
  const raw = ctx.values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) ctx.usage(`--${name} must be a positive integer`);
  return n;
}

/** Pads columns for a human-readable table (the --json output is for scripts). */
function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return `${all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n')}\n`;
}

/** What a list command prints: the rows as JSON with --json, else a table, or `none` when there are none. */
export function writeList<T>(
  ctx: Context,
  rows: T[],
  none: string,
  header: string[],
  cells: (row: T) => string[],
): void {
  if (ctx.values.json) ctx.stdout.write(`${JSON.stringify(rows)}\n`);
  else if (rows.length === 0) ctx.stdout.write(`${none}\n`);
  else ctx.stdout.write(table(header, rows.map(cells)));
}

/** An id as the API gives it (API keys, pairing requests). */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Why a connection failed, in a word an operator can search for (fetch hides it in `cause`). */
export function errorReason(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? (e.message || e.code || String(err));
}
