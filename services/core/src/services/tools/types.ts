import type { Logger } from '@pincer/shared';
import type { Role } from '../../config.ts';

/** A JSON Schema object describing a tool's arguments (what the model is shown). */
export type JsonSchema = Record<string, unknown>;

/** Who a tool runs for: a chat user, an API key's caller, or a workflow written by the operator. */
export interface ToolCaller {
  userId: number | null;
  role: Role;
  /** For the audit log: "telegram:123", "api:<key name>", "workflow:<name>". */
  name: string;
  /** The kind of chat the call comes from (personal tools stay out of groups). */
  chatType?: 'direct' | 'group';
}

export interface ToolContext {
  caller: ToolCaller;
  /** telegram, feishu, api, or workflow. */
  platform: string;
  /** The chat the call was made from (where reminders report). */
  chat?: { id: string; type: 'direct' | 'group'; thread_id?: string };
  conversationId?: string;
  /** config tools.timezone */
  timezone: string;
  /** Aborted when the turn is stopped, times out, or the process shuts down. */
  signal: AbortSignal;
  log: Logger;
}

/** Who must say yes before a call runs. */
export type Confirmation = 'none' | 'user' | 'operator';

/** A tool the model may call: a built-in, a command or REST endpoint declared in config, or a plugin. */
export interface Tool {
  name: string;
  /** What the model reads to decide when to call it. */
  description: string;
  /** JSON Schema of the arguments (type object). Arguments are validated against it before `run`. */
  parameters: JsonSchema;
  source: 'builtin' | 'config' | 'plugin';
  /** The least role that may call it (admin passes every check; see roleAllows). */
  role: Role;
  /** Whether this call, with these (validated) arguments, must be approved first, and by whom. */
  confirm(args: Record<string, unknown>, caller: ToolCaller): Confirmation;
  /**
   * Whether this caller may make this call (checked before anyone is asked to approve it): undefined,
   * or why not. For tools whose permission depends on the arguments (which command, which URL).
   */
  authorize?(args: Record<string, unknown>, caller: ToolCaller): string | undefined;
  /** A one-line account of a call for the approval question and the audit log. */
  describe?(args: Record<string, unknown>): string;
  /**
   * Offered to this caller at all? (e.g. run_command only when some command is allowed to the role).
   * Default: when the role allows the tool.
   */
  offeredTo?(caller: ToolCaller): boolean;
  /**
   * Runs the call; returns the result as text (data for the model). Throw ToolError for a failure the
   * model should hear about (refused, failed, timed out); anything else is reported as "failed".
   */
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<string>;
}

export type ToolErrorCode = 'refused' | 'invalid' | 'failed' | 'timeout';

/** A failure a tool reports to the model (and the audit log) in plain words. */
export class ToolError extends Error {
  readonly code: ToolErrorCode;
  constructor(code: ToolErrorCode, message: string) {
    super(message);
    this.name = 'ToolError';
    this.code = code;
  }
}

/** Roles are not a ladder: an auditor reads the audit log but runs nothing an operator may. */
export function roleAllows(have: Role, need: Role): boolean {
  if (have === 'admin' || need === 'user') return true;
  return have === need;
}
