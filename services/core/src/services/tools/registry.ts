import { Ajv, type ValidateFunction } from 'ajv';
import type { ToolsSettings } from '../../config.ts';
import type { ToolOffer } from '../../repositories/llm.ts';
import {
  type Confirmation,
  roleAllows,
  type Tool,
  type ToolCaller,
  type ToolContext,
  ToolError,
} from './types.ts';

/** How a call ended, as the model and the audit log hear it. */
export type ToolCallStatus = 'ok' | 'error' | 'refused' | 'denied';

export interface ToolCallResult {
  status: ToolCallStatus;
  /** The result (ok) or why not, in plain words; cut to tools.result_max_chars. */
  content: string;
  durationMs: number;
}

/** A call checked against its tool's schema and the caller's role, ready to be approved and run. */
export type PreparedCall =
  | { ok: true; tool: Tool; args: Record<string, unknown>; confirm: Confirmation; summary: string }
  | { ok: false; result: ToolCallResult };

/**
 * Every tool core can run: built-ins, what config declares, and plugins. Checks a call's arguments
 * against the tool's JSON Schema and the caller's role before anything runs.
 */
export class ToolRegistry {
  private readonly tools = new Map<string, { tool: Tool; validate: ValidateFunction }>();
  private readonly settings: ToolsSettings;

  constructor(tools: readonly Tool[], settings: ToolsSettings) {
    this.settings = settings;
    // defaults fill what the model left out; types are never coerced (a string is not a number)
    const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
    for (const tool of tools) {
      if (this.tools.has(tool.name)) throw new Error(`two tools are named ${tool.name}`);
      this.tools.set(tool.name, { tool, validate: ajv.compile(tool.parameters) });
    }
  }

  get names(): string[] {
    return [...this.tools.keys()];
  }

  get(name: string): Tool | undefined {
    return this.tools.get(name)?.tool;
  }

  /** The tools this caller may use, in the shape of the OpenAI `tools` field. */
  offered(caller: ToolCaller): ToolOffer[] {
    const out: ToolOffer[] = [];
    for (const { tool } of this.tools.values()) {
      const offered = tool.offeredTo ? tool.offeredTo(caller) : roleAllows(caller.role, tool.role);
      if (!offered) continue;
      out.push({
        type: 'function',
        function: { name: tool.name, description: tool.description, parameters: tool.parameters },
      });
    }
    return out;
  }

  /** Parses and checks a call the model made; a refusal is a result the model is told, not an exception. */
  prepare(
    name: string,
    rawArgs: string | Record<string, unknown> | undefined,
    caller: ToolCaller,
  ): PreparedCall {
    const refuse = (content: string): PreparedCall => ({
      ok: false,
      result: { status: 'refused', content, durationMs: 0 },
    });
    const entry = this.tools.get(name);
    if (!entry) return refuse(`There is no tool named "${name}". Available: ${this.names.join(', ')}.`);
    const { tool, validate } = entry;
    if (!roleAllows(caller.role, tool.role))
      return refuse(`The tool ${name} needs the role ${tool.role}; this user has the role ${caller.role}.`);
    let args: unknown = rawArgs ?? {};
    if (typeof rawArgs === 'string') {
      try {
        args = rawArgs.trim() ? JSON.parse(rawArgs) : {};
      } catch {
        return refuse(`The arguments for ${name} are not valid JSON.`);
      }
    }
    if (!args || typeof args !== 'object' || Array.isArray(args))
      return refuse(`The arguments for ${name} must be a JSON object.`);
    if (!validate(args)) {
      const why = (validate.errors ?? [])
        .slice(0, 5)
        .map((e) => `${e.instancePath || 'arguments'} ${e.message ?? 'is invalid'}`)
        .join('; ');
      return refuse(`Invalid arguments for ${name}: ${why}.`);
    }
    const a = args as Record<string, unknown>;
    const why = tool.authorize?.(a, caller);
    if (why) return refuse(why);
    return {
      ok: true,
      tool,
      args: a,
      confirm: tool.confirm(a, caller),
      summary: tool.describe?.(a) ?? `${name} ${JSON.stringify(a)}`,
    };
  }

  /** Runs a prepared (and, where needed, approved) call; failures come back as results. */
  async execute(tool: Tool, args: Record<string, unknown>, ctx: ToolContext): Promise<ToolCallResult> {
    const started = performance.now();
    const done = (status: ToolCallStatus, content: string): ToolCallResult => ({
      status,
      content: cut(content, this.settings.result_max_chars),
      durationMs: Math.round(performance.now() - started),
    });
    try {
      const out = await tool.run(args, ctx);
      return done('ok', typeof out === 'string' ? out : JSON.stringify(out));
    } catch (err) {
      if (err instanceof ToolError)
        return done(err.code === 'refused' || err.code === 'invalid' ? 'refused' : 'error', err.message);
      if (ctx.signal.aborted) throw ctx.signal.reason ?? err;
      ctx.log.warn('a tool failed', { tool: tool.name, error: (err as Error).message });
      return done('error', `The tool ${tool.name} failed: ${(err as Error).message ?? String(err)}`);
    }
  }
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}\n[result cut at ${max} characters]` : text;
}
