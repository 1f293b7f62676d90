import { AppError } from '@pincer/shared';
import { z } from 'zod';
import { parseWhen, type Task, TaskError } from '../../services/automations.ts';
import { RUN_WAIT_MS, WorkflowError, type WorkflowRun } from '../../services/workflows.ts';
import { RESPONDED, type Route, route } from '../route.ts';
import { limitParam, StoredText, Timestamp, UserIdParam, UuidPath } from '../schemas.ts';
import type { Caller, HttpDeps } from '../types.ts';
import { roleAllows } from '../../services/tools/types.ts';

const ANYONE = ['operator', 'auditor', 'user'] as const;
const TASK_STATUSES = ['active', 'done', 'cancelled', 'failed'] as const;
const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;

/** Admins and operators see and cancel every task; anyone else only their own. */
const seesAll = (c: Caller) => c.role === 'admin' || c.role === 'operator';

const Chat = z.object({
  platform: z.enum(['telegram', 'feishu']),
  id: z.coerce.string().min(1).max(128).describe('The platform chat id.'),
  type: z.enum(['direct', 'group']).default('direct'),
  thread_id: z.coerce.string().max(128).optional(),
});

const TaskBody = z.object({
  id: z.uuid(),
  name: z.string().nullable().describe('workflows.yaml schedules: the workflow they run.'),
  user_id: z.number().int().nullable(),
  user_name: z.string().nullable(),
  platform: z.string().nullable(),
  chat_id: z.string().nullable(),
  chat_type: z.enum(['direct', 'group']).nullable(),
  thread_id: z.string().nullable(),
  kind: z.enum(['once', 'cron']).describe('once: a reminder; cron: a recurring task.'),
  run_at: Timestamp.nullable(),
  cron: z.string().nullable(),
  timezone: z.string(),
  action: z.enum(['remind', 'prompt', 'workflow']),
  text: z.string(),
  workflow: z.string().nullable(),
  status: z.enum(TASK_STATUSES),
  created_by: z.string().describe('The API key, chat user or "config" that made it.'),
  runs: z.number().int(),
  last_run_at: Timestamp.nullable(),
  next_run_at: Timestamp.nullable(),
  last_error: z.string().nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const TaskRunBody = z.object({
  slot: z.string().describe('When the firing was due (ms since the epoch).'),
  status: z.enum(['running', 'ok', 'failed']),
  attempts: z.number().int(),
  error: z.string().nullable(),
  started_at: Timestamp,
  finished_at: Timestamp.nullable(),
});

const NewTask = z.object({
  text: StoredText.pipe(z.string().max(2000))
    .default('')
    .describe('What to remind of, or what to ask the model.'),
  at: z
    .string()
    .max(64)
    .optional()
    .describe('A reminder: ISO 8601 date-time, with an offset or local to `timezone`.'),
  cron: z
    .string()
    .max(200)
    .optional()
    .describe('A recurring task: cron expression (5 fields, or 6 with seconds).'),
  timezone: z.string().max(64).optional().describe('IANA time zone (default: config tools.timezone).'),
  action: z.enum(['remind', 'prompt', 'workflow']).default('remind'),
  workflow: z
    .string()
    .max(100)
    .optional()
    .describe('action workflow: the workflow to run (admin, operator).'),
  user_id: UserIdParam.optional().describe('The owner (admin, operator; default: the caller).'),
  chat: Chat.optional().describe('Where it reports (admin, operator: any chat; others: a chat of theirs).'),
});

const StepBody = z.object({
  id: z.string(),
  kind: z.enum(['tool', 'prompt', 'message']),
  status: z.enum(['ok', 'failed', 'skipped']),
  output: z.string().describe('What the step produced (cut at about 4000 characters).'),
  error: z.string().nullable(),
  duration_ms: z.number().int(),
});

const RunBody = z.object({
  id: z.uuid(),
  workflow: z.string(),
  trigger: z.enum(['api', 'schedule', 'route']),
  started_by: z.string(),
  input: z.record(z.string(), z.unknown()),
  chat: Chat.nullable(),
  status: z.enum(RUN_STATUSES),
  steps: z.array(StepBody).describe('The steps finished so far, in order.'),
  error: z.string().nullable(),
  created_at: Timestamp,
  started_at: Timestamp.nullable(),
  finished_at: Timestamp.nullable(),
});

const WorkflowBody = z.object({
  name: z.string(),
  description: z.string(),
  role: z.string().describe('The role its tool steps run with.'),
  schedule: z.object({ cron: z.string(), timezone: z.string() }).nullable(),
  next_run_at: Timestamp.nullable().describe('The next scheduled run, when it has a schedule.'),
  steps: z.array(
    z.object({
      id: z.string(),
      kind: z.enum(['tool', 'prompt', 'message']),
      tool: z.string().optional(),
      args: z.record(z.string(), z.unknown()).optional(),
      prompt: z.string().optional(),
      model: z.string().optional(),
      message: z.string().optional(),
      to: z.record(z.string(), z.unknown()).optional(),
      on_error: z.enum(['stop', 'continue']),
    }),
  ),
});

const NamePath = z.object({ name: z.string().min(1).max(100) });

function taskError(err: unknown): never {
  if (err instanceof TaskError) {
    const status = {
      invalid: 400,
      forbidden: 403,
      not_found: 404,
      not_active: 409,
      too_many: 409,
      off: 409,
      from_config: 409,
    }[err.code];
    const code = {
      invalid: 'invalid_request',
      forbidden: 'forbidden',
      not_found: 'not_found',
      not_active: 'task_not_active',
      too_many: 'too_many_tasks',
      off: 'automations_off',
      from_config: 'task_from_config',
    }[err.code];
    throw new AppError(status, code, err.message);
  }
  throw err;
}

/** The task if the caller may see it (others' look unknown). */
async function visibleTask(deps: HttpDeps, caller: Caller, id: string): Promise<Task> {
  const task = await deps.tasks.get(id);
  if (!task || (!seesAll(caller) && task.user_id !== caller.userId))
    throw new AppError(404, 'not_found', `No task ${id}.`);
  return task;
}

/** A chat a caller who is not admin or operator may have reports sent to: one they talk to the bot in. */
async function ownsChat(
  deps: HttpDeps,
  userId: number,
  chat: { platform: string; id: string },
): Promise<boolean> {
  const { rows } = await deps.db.query(
    `SELECT 1 FROM conversations WHERE user_id = $1 AND platform = $2 AND chat_id = $3 LIMIT 1`,
    [userId, chat.platform, chat.id],
  );
  return rows.length > 0;
}

function workflowView(deps: HttpDeps, name: string, nextRun: Map<string, Date | null>) {
  const w = deps.workflows.workflows[name]!;
  return {
    name,
    description: w.description,
    role: w.role,
    schedule: w.schedule
      ? { cron: w.schedule.cron, timezone: w.schedule.timezone ?? deps.config.tools.timezone }
      : null,
    next_run_at: nextRun.get(name) ?? null,
    steps: w.steps.map((s, i) => ({
      id: s.id ?? `step${i + 1}`,
      kind:
        s.tool !== undefined
          ? ('tool' as const)
          : s.prompt !== undefined
            ? ('prompt' as const)
            : ('message' as const),
      ...(s.tool !== undefined ? { tool: s.tool, args: s.args } : {}),
      ...(s.prompt !== undefined ? { prompt: s.prompt, ...(s.model ? { model: s.model } : {}) } : {}),
      ...(s.message !== undefined ? { message: s.message, ...(s.to ? { to: s.to } : {}) } : {}),
      on_error: s.on_error,
    })),
  };
}

export const automationRoutes: Route[] = [
  route({
    method: 'get',
    path: '/api/v1/tasks',
    operationId: 'listTasks',
    tag: 'automations',
    summary: 'Reminders and recurring tasks',
    description:
      'Newest first. Admins and operators see every task (filter with user_id); other keys see their own.',
    roles: ANYONE,
    query: z.object({
      user_id: UserIdParam.optional().describe("Only this user's tasks (admin, operator)."),
      status: z.enum(TASK_STATUSES).optional(),
      limit: limitParam(500, 100),
      before: z.string().max(200).optional().describe('next_cursor of the previous page.'),
    }),
    response: {
      description: 'A page of tasks.',
      schema: z.object({ data: z.array(TaskBody), next_cursor: z.string().nullable() }),
    },
    async handler({ query, caller, deps }) {
      if (!seesAll(caller) && query.user_id !== undefined && query.user_id !== caller.userId)
        throw new AppError(403, 'forbidden', 'This key may list only its own tasks.');
      return deps.tasks.list({
        userId: seesAll(caller) ? query.user_id : caller.userId,
        status: query.status,
        limit: query.limit,
        before: query.before,
      });
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/tasks/:id',
    operationId: 'getTask',
    tag: 'automations',
    summary: 'A task with its latest firings',
    roles: ANYONE,
    params: UuidPath,
    response: {
      description: 'The task and its last 20 firings, newest first.',
      schema: TaskBody.extend({ recent_runs: z.array(TaskRunBody) }),
    },
    async handler({ params, caller, deps }) {
      const task = await visibleTask(deps, caller, params.id);
      return { ...task, recent_runs: await deps.tasks.runs(task.id) };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/tasks',
    operationId: 'createTask',
    tag: 'automations',
    summary: 'Create a reminder (at) or a recurring task (cron)',
    description:
      'A reminder or prompt reports to `chat`. Admins and operators may create tasks for any user (`user_id`), report to any chat and run workflows; other keys create their own, reporting to a chat they talk to the bot in. Recurring tasks may not run more often than automations.min_interval_s unless an admin creates them.',
    roles: ANYONE,
    body: NewTask,
    response: { status: 201, description: 'The task, scheduled.', schema: TaskBody },
    errors: { 409: 'Scheduled tasks are turned off, or the user has as many active tasks as allowed.' },
    async handler({ body, caller, deps }) {
      const privileged = seesAll(caller);
      if (!privileged && body.user_id !== undefined && body.user_id !== caller.userId)
        throw new AppError(403, 'forbidden', 'Only admins and operators create tasks for other users.');
      if (!privileged && body.action === 'workflow')
        throw new AppError(403, 'forbidden', 'Only admins and operators schedule workflows.');
      if (!privileged && body.chat && !(await ownsChat(deps, caller.userId, body.chat)))
        throw new AppError(
          403,
          'forbidden',
          'Tasks of this key may report only to a chat it talks to the bot in.',
        );
      const userId = body.user_id ?? caller.userId;
      if (body.user_id !== undefined) {
        const { rows } = await deps.db.query(`SELECT 1 FROM users WHERE id = $1`, [body.user_id]);
        if (!rows.length) throw new AppError(404, 'not_found', `No user ${body.user_id}.`);
      }
      const timezone = body.timezone ?? deps.config.tools.timezone;
      try {
        return await deps.tasks.create({
          userId,
          creator: { name: caller.name, role: caller.role },
          chat: body.chat,
          action: body.action,
          text: body.text,
          workflow: body.workflow,
          ...(body.at !== undefined ? { at: parseWhen(body.at, timezone) } : {}),
          ...(body.cron !== undefined ? { cron: body.cron } : {}),
          timezone,
        });
      } catch (err) {
        taskError(err);
      }
    },
  }),
  route({
    method: 'delete',
    path: '/api/v1/tasks/:id',
    operationId: 'cancelTask',
    tag: 'automations',
    summary: 'Cancel a task (its own for most keys; any for admins and operators)',
    roles: ANYONE,
    params: UuidPath,
    response: { description: 'The cancelled task.', schema: TaskBody },
    errors: {
      409: 'The task is no longer active (done, failed or already cancelled), or it is a workflows.yaml schedule.',
    },
    async handler({ params, caller, deps }) {
      await visibleTask(deps, caller, params.id);
      try {
        return await deps.tasks.cancel(params.id, {
          actor: caller.name,
          ownerId: seesAll(caller) ? undefined : caller.userId,
        });
      } catch (err) {
        taskError(err);
      }
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/workflows',
    operationId: 'listWorkflows',
    tag: 'automations',
    summary: 'The workflows of workflows.yaml, with their steps and schedules',
    roles: ['operator'],
    response: { description: 'Workflows by name.', schema: z.object({ data: z.array(WorkflowBody) }) },
    async handler({ deps }) {
      const { rows } = await deps.db.query<{ name: string; next_run_at: Date | null }>(
        `SELECT name, next_run_at FROM tasks WHERE created_by = 'config' AND status = 'active'`,
      );
      const next = new Map(rows.map((r) => [r.name, r.next_run_at]));
      return {
        data: Object.keys(deps.workflows.workflows)
          .sort()
          .map((name) => workflowView(deps, name, next)),
      };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/workflows/:name/run',
    operationId: 'runWorkflow',
    tag: 'automations',
    summary: 'Start a run of a workflow',
    description: `Answers 202 with the queued run; with \`wait: true\`, 200 with the finished run when it ends within ${RUN_WAIT_MS / 1000} s (else 202 with the run as it is).`,
    roles: ['operator'],
    params: NamePath,
    // strict: every field is optional, so a misspelt one must not pass for an empty body
    body: z.strictObject({
      input: z
        .record(z.string(), z.unknown())
        .default({})
        .describe('Values for {{input.<key>}} in the steps.'),
      wait: z.boolean().default(false),
    }),
    response: {
      status: 202,
      description: 'The run (200 when `wait` is true and it finished in time).',
      schema: RunBody,
    },
    async handler({ params, body, caller, deps, res }) {
      // its tool steps run with the workflow's role, without approval: starting it needs that role
      const w = deps.config.workflows[params.name];
      if (w && !roleAllows(caller.role, w.role))
        throw new AppError(
          403,
          'forbidden',
          `The workflow ${params.name} runs with the role ${w.role}; starting it needs that role.`,
        );
      let run: WorkflowRun;
      try {
        run = await deps.workflows.start(params.name, {
          trigger: 'api',
          input: body.input,
          startedBy: caller.name,
        });
      } catch (err) {
        if (err instanceof WorkflowError && err.code === 'not_found')
          throw new AppError(404, 'not_found', err.message);
        throw err;
      }
      if (!body.wait) return run;
      const gone = new AbortController();
      // the client went away: stop waiting (the run goes on)
      res.on('close', () => gone.abort());
      const now = await deps.workflows.waitFor(run.id, RUN_WAIT_MS, gone.signal);
      if (now.status !== 'succeeded' && now.status !== 'failed') return now;
      res.status(200).json(now);
      return RESPONDED;
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/workflows/runs',
    operationId: 'listWorkflowRuns',
    tag: 'automations',
    summary: 'Workflow runs, newest first',
    roles: ['operator'],
    query: z.object({
      workflow: z.string().max(100).optional(),
      status: z.enum(RUN_STATUSES).optional(),
      limit: limitParam(200, 50),
      before: z.string().max(200).optional().describe('next_cursor of the previous page.'),
    }),
    response: {
      description: 'A page of runs.',
      schema: z.object({ data: z.array(RunBody), next_cursor: z.string().nullable() }),
    },
    async handler({ query, deps }) {
      return deps.workflows.list(query);
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/workflows/runs/:id',
    operationId: 'getWorkflowRun',
    tag: 'automations',
    summary: 'One workflow run with its steps’ outcomes',
    roles: ['operator'],
    params: UuidPath,
    response: { description: 'The run.', schema: RunBody },
    async handler({ params, deps }) {
      const run = await deps.workflows.get(params.id);
      if (!run) throw new AppError(404, 'not_found', `No workflow run ${params.id}.`);
      return run;
    },
  }),
];
