import { Ajv } from 'ajv';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROLES, type Role } from '../../config.ts';
import type { Confirmation, Tool, ToolContext } from './types.ts';

const NAME = /^[a-z][a-z0-9_]{0,63}$/;
const MODULE_FILE = /\.(?:ts|mts|js|mjs)$/;
const CONFIRMATIONS: readonly Confirmation[] = ['none', 'user', 'operator'];
const FIELDS = ['name', 'description', 'parameters', 'role', 'confirm', 'run', 'describe'];

export interface PluginProblem {
  /** The plugin file, as "<folder name>/<file>". */
  file: string;
  message: string;
}

/** Every problem of every plugin file, so one start shows all there is to fix. */
export class PluginError extends Error {
  readonly problems: PluginProblem[];
  constructor(dir: string, problems: PluginProblem[]) {
    const byFile = new Map<string, string[]>();
    for (const p of problems) byFile.set(p.file, [...(byFile.get(p.file) ?? []), p.message]);
    super(
      [
        `the tool plugins in ${dir} cannot be used; fix or remove these files:`,
        ...[...byFile].map(([file, messages]) => `${file}: ${messages.join('; ')}`),
      ].join('\n'),
    );
    this.name = 'PluginError';
    this.problems = problems;
  }
}

/** What a plugin module exports as default (checked field by field: it comes from outside the project). */
interface PluginModule {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
  role?: Role;
  confirm?: Confirmation | ((args: Record<string, unknown>) => Confirmation);
  run(args: Record<string, unknown>, ctx: ToolContext): unknown;
  describe?(args: Record<string, unknown>): string;
}

/**
 * The tools in the plugins folder: every *.ts, *.mts, *.js and *.mjs file directly in it (not *.d.ts, not
 * names starting with "." or "_"), one tool per file. A missing folder has none. Any problem in any file
 * (including a name already used by a built-in or configured tool, listed in `taken`) fails the whole
 * load with one PluginError: core never runs with some of its plugins silently missing.
 */
export async function loadPlugins(dir: string, taken: ReadonlySet<string> = new Set()): Promise<Tool[]> {
  const label = (file: string) => `${path.basename(dir)}/${file}`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new PluginError(dir, [
      { file: path.basename(dir), message: `cannot be read: ${(err as Error).message}` },
    ]);
  }
  const files: string[] = [];
  for (const name of names.sort()) {
    if (!MODULE_FILE.test(name) || /\.d\.m?ts$/.test(name) || name.startsWith('.') || name.startsWith('_'))
      continue;
    const info = await stat(path.join(dir, name)).catch(() => undefined);
    if (info?.isFile()) files.push(name);
  }

  const problems: PluginProblem[] = [];
  const tools: Tool[] = [];
  const owners = new Map<string, string>();
  // only to check that each schema compiles; the registry compiles them again for use
  const ajv = new Ajv({ strict: false, allErrors: true, addUsedSchema: false });
  for (const file of files) {
    const fileProblems: string[] = [];
    let mod: { default?: unknown };
    try {
      mod = await import(pathToFileURL(path.join(dir, file)).href);
    } catch (err) {
      problems.push({ file: label(file), message: `cannot be loaded: ${oneLine(err)}${lineOf(err, file)}` });
      continue;
    }
    const def = mod.default;
    if (typeof def !== 'object' || def === null || Array.isArray(def)) {
      problems.push({
        file: label(file),
        message: 'needs a default export: an object with name, description, parameters and run',
      });
      continue;
    }
    const p = def as Record<string, unknown>;
    for (const key of Object.keys(p))
      if (!FIELDS.includes(key)) fileProblems.push(`unknown field "${key}" (fields: ${FIELDS.join(', ')})`);
    if (typeof p.name !== 'string' || !NAME.test(p.name)) {
      fileProblems.push('name must be lower case letters, digits and _, starting with a letter (at most 64)');
    } else if (taken.has(p.name)) {
      fileProblems.push(`the name ${p.name} is already a built-in or configured tool`);
    } else if (owners.has(p.name)) {
      fileProblems.push(`the name ${p.name} is already used by ${owners.get(p.name)}`);
    } else {
      owners.set(p.name, label(file));
    }
    if (typeof p.description !== 'string' || !p.description.trim())
      fileProblems.push('description must say what the tool does (the model reads it)');
    if (typeof p.parameters !== 'object' || p.parameters === null || Array.isArray(p.parameters)) {
      fileProblems.push(
        'parameters must be a JSON Schema object such as { type: "object", properties: {…} }',
      );
    } else if ((p.parameters as Record<string, unknown>).type !== 'object') {
      fileProblems.push('parameters must have type "object"');
    } else {
      try {
        ajv.compile(p.parameters);
      } catch (err) {
        fileProblems.push(`parameters is not a valid JSON Schema: ${oneLine(err)}`);
      }
    }
    if (p.role !== undefined && !(ROLES as readonly unknown[]).includes(p.role))
      fileProblems.push(`role must be one of ${ROLES.join(', ')}`);
    if (
      p.confirm !== undefined &&
      typeof p.confirm !== 'function' &&
      !(CONFIRMATIONS as readonly unknown[]).includes(p.confirm)
    )
      fileProblems.push(`confirm must be one of ${CONFIRMATIONS.join(', ')} or a function returning one`);
    if (typeof p.run !== 'function') fileProblems.push('run must be a function (args, ctx) => result');
    if (p.describe !== undefined && typeof p.describe !== 'function')
      fileProblems.push('describe must be a function (args) => string');

    if (fileProblems.length) {
      for (const message of fileProblems) problems.push({ file: label(file), message });
      continue;
    }
    tools.push(toTool(p as unknown as PluginModule));
  }
  if (problems.length) throw new PluginError(dir, problems);
  return tools;
}

function toTool(p: PluginModule): Tool {
  const { name, confirm } = p;
  return {
    name,
    description: p.description,
    parameters: p.parameters,
    source: 'plugin',
    role: p.role ?? 'user',
    confirm(args) {
      if (typeof confirm !== 'function') return confirm ?? 'none';
      // a confirm that throws or answers nonsense must not let a call through unasked
      try {
        const answer = confirm(args);
        return CONFIRMATIONS.includes(answer) ? answer : 'operator';
      } catch {
        return 'operator';
      }
    },
    describe(args) {
      try {
        if (p.describe) return String(p.describe(args));
      } catch {
        // fall through to the plain account
      }
      return `${name} ${JSON.stringify(args)}`;
    },
    async run(args, ctx) {
      const out = await p.run(args, ctx);
      if (typeof out === 'string') return out;
      if (out === undefined) return '(no result)';
      try {
        return JSON.stringify(out) ?? String(out);
      } catch (err) {
        throw new Error(`the plugin returned a value that is not JSON: ${(err as Error).message}`, {
          cause: err,
        });
      }
    },
  };
}

function oneLine(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/** Where a syntax error is: Node puts "<file>:<line>" first in its stack, not in the message. */
function lineOf(err: unknown, file: string): string {
  if (!(err instanceof SyntaxError)) return '';
  const first = err.stack?.split('\n', 1)[0] ?? '';
  const line = first.includes(file) ? /:(\d+)$/.exec(first)?.[1] : undefined;
  return line ? ` (line ${line})` : '';
}
