import type { CommandSettings, ToolsSettings } from '../../config.ts';
import { type ProcessResult, runProcess } from '../../repositories/processes.ts';
import { type Confirmation, roleAllows, type Tool, type ToolContext, ToolError } from './types.ts';

type Param = CommandSettings['params'][string];
type SshHostSettings = ToolsSettings['hosts'][string];

const PLACEHOLDER = /\{([a-z][a-z0-9_]*)\}/g;

/**
 * run_command: the commands the operator declared under tools.commands, each a fixed program whose
 * arguments the model may only fill through typed, checked parameters. Undefined when none is declared.
 */
export function commandTool(tools: ToolsSettings, deps: { run?: typeof runProcess } = {}): Tool | undefined {
  const commands = tools.commands;
  const names = Object.keys(commands);
  if (names.length === 0) return undefined;
  const run = deps.run ?? runProcess;
  const specOf = (args: Record<string, unknown>) =>
    typeof args.command === 'string' && Object.hasOwn(commands, args.command)
      ? commands[args.command]
      : undefined;

  return {
    name: 'run_command',
    description: describeCommands(commands),
    parameters: {
      type: 'object',
      properties: {
        command: { type: 'string', enum: names, description: 'which declared command to run' },
        args: {
          type: 'object',
          description: "the command's parameters by name; leave out those with a default to use it",
        },
      },
      required: ['command'],
      additionalProperties: false,
    },
    source: 'builtin',
    role: 'user',
    offeredTo: (caller) => Object.values(commands).some((c) => roleAllows(caller.role, c.role)),
    // refused before anyone is asked to approve it
    authorize(args, caller) {
      const spec = specOf(args);
      if (!spec) return `there is no command named "${String(args.command)}" (declared: ${names.join(', ')})`;
      if (!roleAllows(caller.role, spec.role))
        return `the command ${String(args.command)} needs the role ${spec.role}`;
      try {
        commandArguments(spec, args.args);
      } catch (err) {
        return (err as Error).message;
      }
      return undefined;
    },
    confirm(args): Confirmation {
      // an unknown command is refused by run; asking first would only delay that
      return specOf(args)?.confirm ?? 'none';
    },
    describe(args) {
      const name = String(args.command);
      const spec = specOf(args);
      if (!spec) return `run_command ${name}`;
      let shown: Record<string, unknown>;
      try {
        shown = commandArguments(spec, args.args);
      } catch {
        shown = isPlainObject(args.args) ? args.args : {};
      }
      const parts = [name, ...Object.entries(shown).map(([k, v]) => `${k}=${displayValue(v)}`)];
      if (spec.host !== 'local') parts.push('on', spec.host);
      return parts.join(' ');
    },
    async run(args, ctx) {
      const name = String(args.command);
      const spec = specOf(args);
      if (!spec)
        throw new ToolError('refused', `there is no command named "${name}" (declared: ${names.join(', ')})`);
      if (!roleAllows(ctx.caller.role, spec.role))
        throw new ToolError('refused', `the command ${name} needs the role ${spec.role}`);
      const argv = fillArgv(spec, commandArguments(spec, args.args));
      let result: ProcessResult;
      if (spec.host === 'local') {
        result = await start(run, ctx, {
          argv,
          cwd: spec.cwd,
          timeoutMs: spec.timeout_ms,
          outputMaxBytes: spec.output_max_bytes,
        });
      } else {
        const host = tools.hosts[spec.host];
        // config refuses a command on an undeclared host; this only guards a hand-built settings object
        if (!host) throw new ToolError('failed', `the host ${spec.host} of ${name} is not declared`);
        result = await start(run, ctx, {
          argv: sshArgv(tools.ssh_binary, host, argv, spec.cwd),
          timeoutMs: spec.timeout_ms,
          outputMaxBytes: spec.output_max_bytes,
        });
      }
      if (result.timedOut)
        throw new ToolError('timeout', `the command took longer than ${spec.timeout_ms} ms and was stopped`);
      return formatResult(result, spec.output_max_bytes);
    },
  };
}

async function start(
  run: typeof runProcess,
  ctx: ToolContext,
  req: Omit<Parameters<typeof runProcess>[0], 'signal'>,
): Promise<ProcessResult> {
  try {
    return await run({ ...req, signal: ctx.signal });
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    throw new ToolError('failed', (err as Error).message);
  }
}

/**
 * The final value of every declared parameter as a string, or ToolError('invalid') naming what is wrong.
 * The model's arguments are untrusted: unknown names, wrong types, values outside the declared pattern,
 * enum or bounds, line breaks, and values that could pass for an option ("-…") are refused.
 */
export function commandArguments(spec: CommandSettings, args: unknown): Record<string, string> {
  if (args === undefined || args === null) args = {};
  if (!isPlainObject(args)) throw new ToolError('invalid', 'args must be an object of parameter values');
  const declared = Object.keys(spec.params);
  for (const key of Object.keys(args)) {
    if (!Object.hasOwn(spec.params, key))
      throw new ToolError(
        'invalid',
        `unknown parameter "${key}" (parameters: ${declared.join(', ') || 'none'})`,
      );
  }
  const values: Record<string, string> = {};
  for (const [name, param] of Object.entries(spec.params)) {
    const given = args[name];
    const value = given === undefined || given === null ? param.default : given;
    if (value === undefined) throw new ToolError('invalid', `parameter "${name}" is required`);
    values[name] = paramValue(name, param, value);
  }
  return values;
}

function paramValue(name: string, p: Param, value: unknown): string {
  const bad = (why: string) => new ToolError('invalid', `parameter "${name}" ${why}`);
  switch (p.type) {
    case 'boolean': {
      if (value === true || value === 'true') return 'true';
      if (value === false || value === 'false') return 'false';
      throw bad('must be true or false');
    }
    case 'integer':
    case 'number': {
      const n = toNumber(value);
      if (n === undefined || (p.type === 'integer' && !Number.isSafeInteger(n)))
        throw bad(p.type === 'integer' ? 'must be a whole number' : 'must be a number');
      if (p.minimum !== undefined && n < p.minimum) throw bad(`must be at least ${p.minimum}`);
      if (p.maximum !== undefined && n > p.maximum) throw bad(`must be at most ${p.maximum}`);
      // "-5" reads as an option to many programs: only where the operator declared negative values
      if (n < 0 && !p.allow_dash && !(p.minimum !== undefined && p.minimum < 0))
        throw bad('must not be negative');
      if (p.enum && !p.enum.some((e) => Number(e) === n)) throw bad(`must be one of ${p.enum.join(', ')}`);
      return String(n);
    }
    case 'string': {
      // a number or boolean is taken as its text and then checked like any other string
      if (
        typeof value !== 'string' &&
        !(typeof value === 'number' && Number.isFinite(value)) &&
        typeof value !== 'boolean'
      )
        throw bad('must be a string');
      const s = String(value);
      if (/[\0\r\n]/.test(s)) throw bad('must be a single line (no line breaks or NUL)');
      if ([...s].length > p.max_length) throw bad(`must be at most ${p.max_length} characters long`);
      if (s.startsWith('-') && !p.allow_dash) throw bad('must not start with "-"');
      if (p.enum && !p.enum.some((e) => String(e) === s))
        throw bad(`must be one of ${p.enum.map((e) => JSON.stringify(String(e))).join(', ')}`);
      if (p.pattern !== undefined && !wholeMatch(p.pattern).test(s))
        throw bad(`must match the pattern ${p.pattern}`);
      return s;
    }
  }
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/.test(value)) {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

const patterns = new Map<string, RegExp>();
/** A declared pattern must match the whole value, not some part of it. */
function wholeMatch(pattern: string): RegExp {
  let re = patterns.get(pattern);
  if (!re) {
    re = new RegExp(`^(?:${pattern})$`, 'u');
    patterns.set(pattern, re);
  }
  return re;
}

/** The argv with "{name}" replaced inside each element: a value stays within the element it was placed in. */
export function fillArgv(spec: CommandSettings, values: Readonly<Record<string, string>>): string[] {
  return spec.argv.map((arg) =>
    // one pass with a function: a value containing "{other}" or "$&" is not read again
    arg.replace(PLACEHOLDER, (whole, name: string) => (Object.hasOwn(values, name) ? values[name]! : whole)),
  );
}

/** POSIX shell single-quoting: the shell hands the text over unchanged. */
export function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * The ssh client's argv for running `argv` on a declared host. sshd gives the command to the remote
 * user's shell as one string, so every element is quoted: the remote shell only ever unquotes.
 */
export function sshArgv(
  sshBinary: string,
  host: SshHostSettings,
  argv: readonly string[],
  cwd?: string,
): string[] {
  const remote = argv.map(shellQuote).join(' ');
  return [
    sshBinary,
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'ConnectTimeout=10',
    ...(host.identity_file ? ['-i', host.identity_file] : []),
    ...(host.known_hosts_file ? ['-o', `UserKnownHostsFile=${host.known_hosts_file}`] : []),
    '-p',
    String(host.port),
    '-l',
    host.user,
    '--',
    host.address,
    cwd === undefined ? remote : `cd ${shellQuote(cwd)} && ${remote}`,
  ];
}

/** The result as the model reads it: how it ended, then what it printed. */
export function formatResult(r: ProcessResult, outputMaxBytes: number): string {
  const lines = [r.exitCode !== null ? `exit code ${r.exitCode}` : `killed by ${r.signal ?? 'a signal'}`];
  if (r.stdout) lines.push('--- stdout ---', r.stdout.replace(/\n$/, ''));
  if (r.stderr) lines.push('--- stderr ---', r.stderr.replace(/\n$/, ''));
  if (r.truncated) lines.push(`[output cut at ${outputMaxBytes} bytes]`);
  return lines.join('\n');
}

/** The tool description: every command and its parameters, enough for a small model to fill them. */
function describeCommands(commands: ToolsSettings['commands']): string {
  const lines = [
    'Run one of the commands the operator has set up (nothing else can be run). Set `command` to its name and `args` to its parameters.',
    'Commands:',
  ];
  for (const [name, c] of Object.entries(commands)) {
    const notes = [
      ...(c.host === 'local' ? [] : [`runs on ${c.host}`]),
      ...(c.role === 'user' ? [] : [`only for the role ${c.role}`]),
    ];
    lines.push(`- ${name}: ${c.description}${notes.length ? ` (${notes.join('; ')})` : ''}`);
    for (const [pname, p] of Object.entries(c.params)) {
      const facts = [p.type, p.default === undefined ? 'required' : `default ${JSON.stringify(p.default)}`];
      if (p.enum) facts.push(`one of ${p.enum.map((e) => JSON.stringify(e)).join(', ')}`);
      if (p.pattern !== undefined) facts.push(`must match ${p.pattern}`);
      if (p.minimum !== undefined) facts.push(`min ${p.minimum}`);
      if (p.maximum !== undefined) facts.push(`max ${p.maximum}`);
      lines.push(`    ${pname} (${facts.join(', ')})${p.description ? `: ${p.description}` : ''}`);
    }
  }
  return lines.join('\n');
}

function displayValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[\w./:@%+,=-]+$/.test(s) ? s : JSON.stringify(s);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
