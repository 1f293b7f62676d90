import {
  describeTime,
  parseWhen,
  relativeTime,
  type Task,
  TaskError,
  type TaskScheduler,
} from '../automations.ts';
import { type Tool, type ToolContext, ToolError } from './types.ts';

const none = () => 'none' as const;

function ownerOf(ctx: ToolContext): number {
  if (!ctx.caller.userId) throw new ToolError('refused', 'tasks belong to a user; this call has none');
  return ctx.caller.userId;
}

/** A TaskError as the model hears it. */
function asToolError(err: unknown): never {
  if (err instanceof TaskError)
    throw new ToolError(err.code === 'invalid' ? 'invalid' : 'refused', err.message);
  throw err;
}

/** What the model is told about a task: enough to confirm it to the user in words. */
function summary(t: Task) {
  return {
    id: t.id,
    kind: t.kind === 'once' ? 'reminder' : 'recurring',
    action: t.action,
    text: t.text,
    ...(t.cron ? { cron: t.cron } : {}),
    timezone: t.timezone,
    next_run: t.next_run_at ? describeTime(t.next_run_at, t.timezone, 'en') : null,
    next_run_iso: t.next_run_at?.toISOString() ?? null,
  };
}

/** schedule_task, list_tasks, cancel_task: the user's reminders and recurring tasks, from a chat. */
export function taskTools(tasks: TaskScheduler): Tool[] {
  const offeredTo = (caller: { userId: number | null }) => caller.userId !== null && tasks.enabled;
  return [
    {
      name: 'schedule_task',
      description:
        'Schedule a reminder (at a time) or a recurring task (cron) for the user in this chat. At the time, ' +
        'action "remind" sends the text to this chat ("⏰ text"); action "prompt" asks the assistant the text ' +
        'and sends the answer (e.g. "summarise today\'s weather in Berlin"). Call current_time first to work ' +
        'out dates such as "tomorrow at 9". Confirm to the user what was scheduled and when.',
      parameters: {
        type: 'object',
        properties: {
          text: {
            type: 'string',
            minLength: 1,
            maxLength: 2000,
            description: 'what to remind the user of, or the question to ask at that time',
          },
          at: {
            type: 'string',
            description:
              'for a one-time reminder: ISO 8601 date and time, e.g. 2025-01-31T09:00 (local to timezone) or 2025-01-31T09:00:00+01:00',
          },
          cron: {
            type: 'string',
            description:
              'for a recurring task: a cron expression with five fields, e.g. "0 9 * * 1-5" (9:00 on weekdays)',
          },
          timezone: {
            type: 'string',
            description:
              'IANA time zone for `at` without an offset and for `cron`, e.g. Europe/Berlin (default: the configured one)',
          },
          action: { type: 'string', enum: ['remind', 'prompt'], default: 'remind' },
        },
        required: ['text'],
        additionalProperties: false,
      },
      source: 'builtin',
      role: 'user',
      confirm: none,
      offeredTo,
      describe: (a) =>
        `schedule_task ${String(a.action ?? 'remind')} "${String(a.text)}" ${a.at ? `at ${String(a.at)}` : `cron "${String(a.cron)}"`}`,
      async run(args, ctx) {
        const userId = ownerOf(ctx);
        if ((ctx.platform !== 'telegram' && ctx.platform !== 'feishu') || !ctx.chat)
          throw new ToolError(
            'refused',
            'reminders are sent to a Telegram or Feishu chat; this conversation has none',
          );
        const timezone = (args.timezone as string | undefined) ?? ctx.timezone;
        const at = args.at as string | undefined;
        const cron = args.cron as string | undefined;
        if ((at === undefined) === (cron === undefined))
          throw new ToolError(
            'invalid',
            'give either `at` (a one-time reminder) or `cron` (a recurring task), not both',
          );
        let task: Task;
        try {
          task = await tasks.create({
            userId,
            creator: { name: ctx.caller.name, role: ctx.caller.role },
            chat: { platform: ctx.platform, ...ctx.chat },
            action: (args.action as 'remind' | 'prompt' | undefined) ?? 'remind',
            text: String(args.text),
            ...(at !== undefined ? { at: parseWhen(at, timezone) } : { cron }),
            timezone,
          });
        } catch (err) {
          asToolError(err);
        }
        const first = task.next_run_at!;
        const when = `${describeTime(first, task.timezone, 'en')}, ${relativeTime(first)}`;
        return JSON.stringify({
          ...summary(task),
          confirmation:
            task.kind === 'once'
              ? `Reminder ${task.id} is set for ${when}.`
              : `Recurring task ${task.id} (cron "${task.cron}", ${task.timezone}) will first run on ${when}.`,
        });
      },
    },
    {
      name: 'list_tasks',
      description: "The user's active reminders and recurring tasks, soonest first, with their ids.",
      parameters: { type: 'object', properties: {}, additionalProperties: false },
      source: 'builtin',
      role: 'user',
      confirm: none,
      offeredTo,
      async run(_args, ctx) {
        // in a group only the tasks reporting there, as /tasks does: private reminders stay private
        const list = await tasks.activeOf(
          ownerOf(ctx),
          ctx.chat?.type === 'group' ? { platform: ctx.platform, id: ctx.chat.id } : undefined,
        );
        return JSON.stringify({ tasks: list.map(summary) });
      },
    },
    {
      name: 'cancel_task',
      description:
        "Cancel one of the user's reminders or recurring tasks by its id (from list_tasks or schedule_task).",
      parameters: {
        type: 'object',
        properties: { id: { type: 'string', minLength: 4, maxLength: 64, description: 'the task id' } },
        required: ['id'],
        additionalProperties: false,
      },
      source: 'builtin',
      role: 'user',
      confirm: none,
      offeredTo,
      describe: (a) => `cancel_task ${String(a.id)}`,
      async run(args, ctx) {
        const userId = ownerOf(ctx);
        const ref = String(args.id).trim().toLowerCase();
        const mine = await tasks.activeOf(userId);
        const matches = mine.filter((t) => t.id === ref || t.id.startsWith(ref));
        if (matches.length !== 1)
          throw new ToolError(
            'invalid',
            matches.length
              ? `"${ref}" matches several tasks; give the whole id`
              : `the user has no active task ${ref}`,
          );
        try {
          const task = await tasks.cancel(matches[0]!.id, { actor: ctx.caller.name, ownerId: userId });
          return JSON.stringify({ cancelled: summary(task) });
        } catch (err) {
          asToolError(err);
        }
      },
    },
  ];
}
