import type { Logger, OutboundAction } from '@pincer/shared';
import { CronExpressionParser } from 'cron-parser';
import { DateTime } from 'luxon';
import { type CoreConfig, cronProblem, type Role } from '../config.ts';
import { writeAudit } from '../repositories/audit.ts';
import { type Db, transaction } from '../repositories/db.ts';
import type { LlmClient } from '../repositories/llm.ts';
import { type Job, nextActionSeq, type OutboundPublisher, type Queue } from '../repositories/queues.ts';
import {
  activeTasksOf,
  allActiveTasks,
  cancelTask,
  claimFiring,
  countActiveTasks,
  deleteTask,
  finishFiring,
  getTask,
  insertTask,
  listTasks,
  lockUserTasks,
  type Page,
  renewFiring,
  setNextRun,
  syncConfigTasks,
  type Task,
  type TaskAction,
  type TaskFilters,
  taskRuns,
  type TaskRun,
} from '../repositories/tasks.ts';
import type { RunChat, WorkflowRun } from '../repositories/workflow-runs.ts';
import type { CoreMetrics } from './metrics.ts';
import { type Lang, say } from './texts.ts';
import type { WorkflowRunner } from './workflows.ts';
import { roleAllows } from './tools/types.ts';

export type { Task, TaskRun };

/** The job that fires a task (delayed for a reminder, from a job scheduler for a cron task). */
export const TASK_JOB = 'task';
export interface TaskJobData {
  taskId: string;
  /** One-shot tasks: the time it is due (ms); cron firings take it from the scheduler's iteration. */
  slot?: string;
}

/** A firing's claim on its task run; renewed while it runs, so a dead process's firing runs again. */
const LEASE_MS = 30_000;
const RENEW_MS = 10_000;
/** Furthest a reminder may be set (a year written wrong is a mistake, not a plan). */
const MAX_AHEAD_MS = 10 * 366 * 24 * 3600_000;
const MAX_TEXT = 2000;

export type TaskErrorCode =
  | 'invalid'
  | 'forbidden'
  | 'not_found'
  | 'not_active'
  | 'too_many'
  | 'off'
  /** a workflows.yaml schedule: changed in the file, not through the API */
  | 'from_config';

/** Why a task cannot be created or cancelled, in words for the person (or model) who asked. */
export class TaskError extends Error {
  readonly code: TaskErrorCode;
  constructor(code: TaskErrorCode, message: string) {
    super(message);
    this.name = 'TaskError';
    this.code = code;
  }
}

/** A chat a task reports to. */
export interface TaskChat {
  platform: 'telegram' | 'feishu';
  id: string;
  type: 'direct' | 'group';
  thread_id?: string;
}

export interface NewTaskRequest {
  /** The owner (null: nobody's, e.g. an operator's workflow schedule made through the API). */
  userId: number | null;
  /** Who asks: recorded in created_by and the audit log; an admin's recurring tasks may run as often as they like. */
  creator: { name: string; role: Role };
  chat?: TaskChat;
  action: TaskAction;
  text: string;
  workflow?: string;
  /** A reminder's time, or a recurring task's cron expression (five fields, or six with seconds). */
  at?: Date;
  cron?: string;
  /** IANA zone of the cron expression (and of the times shown to the user). */
  timezone: string;
}

/** What runs a `workflow` task's firing. */
export type WorkflowStarter = Pick<WorkflowRunner, 'start'>;

export type Firing =
  | { outcome: 'ran' | 'skipped' | 'already-ran' }
  /** another process is running this firing: look again after `retryAt` */
  | { outcome: 'busy'; retryAt: number };

interface TaskSchedulerDeps {
  db: Db;
  config: CoreConfig;
  log: Logger;
  llm: LlmClient;
  outbound: OutboundPublisher;
  /** The `automations` queue. */
  queue: Queue;
  metrics?: CoreMetrics;
}

/** The BullMQ job id of a one-shot task (BullMQ refuses ':' in custom ids). */
const onceJobId = (taskId: string) => `task-${taskId}`;

/** The stable reply id of a firing: a firing delivered twice shows one message. */
export const firingReplyId = (taskId: string, slot: string) => `task/${taskId}/${slot}`;

/**
 * Reminders and recurring tasks: Postgres is the record, BullMQ fires them (a delayed job per reminder,
 * a job scheduler per cron task), and each firing is claimed in task_runs so it runs once however
 * many times and in however many processes it is delivered.
 */
export class TaskScheduler {
  private readonly d: TaskSchedulerDeps;

  constructor(deps: TaskSchedulerDeps) {
    this.d = deps;
  }

  get enabled(): boolean {
    return this.d.config.automations.enabled;
  }

  /** Creates a reminder (`at`) or a recurring task (`cron`), checks it, records it and schedules it. */
  async create(r: NewTaskRequest): Promise<Task> {
    const cfg = this.d.config.automations;
    if (!cfg.enabled)
      throw new TaskError('off', 'Scheduled tasks are turned off (config automations.enabled).');
    const text = r.text.trim();
    if (text.length > MAX_TEXT)
      throw new TaskError('invalid', `The text is longer than ${MAX_TEXT} characters.`);
    if (!validZone(r.timezone))
      throw new TaskError(
        'invalid',
        `Unknown time zone "${r.timezone}" (use an IANA name such as Europe/Berlin).`,
      );
    if (r.action === 'workflow') {
      const w = r.workflow ? this.d.config.workflows[r.workflow] : undefined;
      if (!w)
        throw new TaskError(
          'invalid',
          `There is no workflow "${r.workflow ?? ''}" (known: ${Object.keys(this.d.config.workflows).join(', ') || 'none'}).`,
        );
      // its tool steps run with the workflow's role: only someone who has that role may schedule it
      if (!roleAllows(r.creator.role, w.role))
        throw new TaskError(
          'forbidden',
          `The workflow ${r.workflow} runs with the role ${w.role}; scheduling it needs that role.`,
        );
    } else {
      if (!text) throw new TaskError('invalid', 'Say what the task is about (text).');
      if (!r.chat) throw new TaskError('invalid', 'A reminder needs a chat to report to.');
    }
    if ((r.at === undefined) === (r.cron === undefined))
      throw new TaskError(
        'invalid',
        'Give either a time (at) for a reminder or a cron expression for a recurring task.',
      );
    let nextRunAt: Date;
    if (r.at) {
      if (Number.isNaN(r.at.getTime())) throw new TaskError('invalid', 'The time is not a valid date.');
      if (r.at.getTime() <= Date.now())
        throw new TaskError(
          'invalid',
          `${describeTime(r.at, r.timezone, 'en')} is in the past; give a time in the future.`,
        );
      if (r.at.getTime() - Date.now() > MAX_AHEAD_MS)
        throw new TaskError('invalid', 'The time is more than ten years ahead; check the year.');
      nextRunAt = r.at;
    } else {
      const cron = r.cron!.trim();
      const problem = cronProblem(cron, r.timezone);
      if (problem) throw new TaskError('invalid', problem);
      if (r.creator.role !== 'admin') {
        const shortest = shortestInterval(cron, r.timezone);
        if (shortest < cfg.min_interval_s * 1000)
          throw new TaskError(
            'invalid',
            `"${cron}" would run every ${words(shortest)}; recurring tasks may run at most every ${words(cfg.min_interval_s * 1000)}.`,
          );
      }
      nextRunAt = nextOccurrence(cron, r.timezone);
    }

    const task = await transaction(this.d.db, async (c) => {
      if (r.userId !== null) {
        await lockUserTasks(c, r.userId);
        if ((await countActiveTasks(c, r.userId)) >= cfg.max_tasks_per_user)
          throw new TaskError(
            'too_many',
            `You already have ${cfg.max_tasks_per_user} active tasks, the most allowed; cancel one first.`,
          );
      }
      return insertTask(c, {
        userId: r.userId,
        chat: r.chat,
        kind: r.at ? 'once' : 'cron',
        runAt: r.at ?? null,
        cron: r.cron?.trim() ?? null,
        timezone: r.timezone,
        action: r.action,
        text,
        workflow: r.action === 'workflow' ? r.workflow! : null,
        createdBy: r.creator.name,
        nextRunAt,
      });
    });
    try {
      await this.schedule(task);
    } catch (err) {
      // a task that cannot fire must not look scheduled
      await deleteTask(this.d.db, task.id).catch(() => {});
      throw err;
    }
    await writeAudit(this.d.db, {
      kind: 'task.create',
      actor: r.creator.name,
      userId: r.userId,
      platform: r.chat?.platform ?? null,
      outcome: 'ok',
      detail: {
        task_id: task.id,
        kind: task.kind,
        action: task.action,
        run_at: task.run_at?.toISOString() ?? null,
        cron: task.cron,
        timezone: task.timezone,
        workflow: task.workflow,
      },
    });
    this.d.log.info('task created', {
      taskId: task.id,
      kind: task.kind,
      action: task.action,
      userId: r.userId,
    });
    return task;
  }

  get(id: string): Promise<Task | undefined> {
    return getTask(this.d.db, id);
  }

  list(f: TaskFilters): Promise<Page<Task>> {
    return listTasks(this.d.db, f);
  }

  runs(taskId: string, limit = 20): Promise<TaskRun[]> {
    return taskRuns(this.d.db, taskId, limit);
  }

  /** A user's active tasks, soonest first (in a group chat: only those that report to it). */
  activeOf(userId: number, chat?: { platform: string; id: string }): Promise<Task[]> {
    return activeTasksOf(this.d.db, userId, chat);
  }

  /**
   * Cancels a task: the owner's own (`ownerId`), or any (`ownerId` undefined: admins and operators).
   * Throws not_found (no such task of theirs) or not_active (already done or cancelled).
   */
  async cancel(id: string, by: { actor: string; ownerId?: number }): Promise<Task> {
    const existing = await getTask(this.d.db, id);
    if (!existing || (by.ownerId !== undefined && existing.user_id !== by.ownerId))
      throw new TaskError('not_found', `No task ${id}.`);
    // it would come back at the next start: the file is the record of these
    if (existing.created_by === 'config' && existing.status === 'active')
      throw new TaskError(
        'from_config',
        `This is the schedule of the workflow "${existing.name}": remove or change its schedule in workflows.yaml and restart core.`,
      );
    const task = await cancelTask(this.d.db, id, by.ownerId);
    if (!task) throw new TaskError('not_active', `The task is already ${existing.status}.`);
    await this.unschedule(task).catch((err: Error) =>
      // the firing checks the task's status, so a leftover job does nothing
      this.d.log.warn('could not remove a cancelled task from the queue', { taskId: id, error: err.message }),
    );
    await writeAudit(this.d.db, {
      kind: 'task.cancel',
      actor: by.actor,
      userId: task.user_id,
      platform: task.platform,
      outcome: 'ok',
      detail: { task_id: id, kind: task.kind, action: task.action },
    });
    this.d.log.info('task cancelled', { taskId: id, actor: by.actor });
    return task;
  }

  /**
   * `/tasks` in a chat: no arguments lists the user's active tasks, numbered, with their next run in
   * each task's time zone; `cancel <number or id>` cancels one. In a group chat only the tasks that
   * report to that group are listed (a user's private reminders stay private).
   */
  async chatCommand(p: {
    userId: number;
    args: string;
    lang: Lang;
    chat?: { platform: string; id: string; type: 'direct' | 'group' };
  }): Promise<string> {
    if (!this.enabled) return say('tasks_off', p.lang);
    const args = p.args.trim();
    const scope = p.chat?.type === 'group' ? p.chat : undefined;
    const tasks = await this.activeOf(p.userId, scope);
    if (!args) {
      if (!tasks.length) return say('tasks_none', p.lang);
      const list = tasks.map((t, i) => `${i + 1}. ${this.line(t, p.lang)}`).join('\n');
      return say('tasks_list', p.lang, { list });
    }
    const m = /^(?:cancel|delete|del|rm|remove|取消|删除)(?:\s+(.+))?$/iu.exec(args);
    if (!m) return say('tasks_usage', p.lang);
    const ref = m[1]?.trim();
    if (!ref) return say('tasks_usage', p.lang);
    const task = pick(tasks, ref);
    if (!task) return say('tasks_unknown', p.lang, { what: ref });
    try {
      await this.cancel(task.id, { actor: `user:${p.userId}`, ownerId: p.userId });
    } catch (err) {
      if (err instanceof TaskError) return say('tasks_unknown', p.lang, { what: ref });
      throw err;
    }
    return say('tasks_cancelled', p.lang, { what: this.line(task, p.lang) });
  }

  /** One task in a line: what it does and when it runs next. */
  line(t: Task, lang: Lang): string {
    const what =
      t.action === 'workflow'
        ? `⚙ ${t.workflow}`
        : t.action === 'prompt'
          ? `💬 ${oneLine(t.text)}`
          : `⏰ ${oneLine(t.text)}`;
    const when = t.next_run_at ? describeTime(t.next_run_at, t.timezone, lang) : '—';
    const schedule =
      t.kind === 'once'
        ? say('tasks_once', lang, { when })
        : say('tasks_cron', lang, { cron: t.cron!, when });
    return `${what} — ${schedule} [${t.id.slice(0, 8)}]`;
  }

  /** Puts a task on the queue: a delayed job for a reminder, a job scheduler for a cron task. */
  private async schedule(t: Task): Promise<void> {
    if (t.kind === 'once') {
      await this.d.queue.add(
        TASK_JOB,
        { taskId: t.id, slot: String(t.run_at!.getTime()) } satisfies TaskJobData,
        { jobId: onceJobId(t.id), delay: Math.max(0, t.run_at!.getTime() - Date.now()) },
      );
      return;
    }
    await this.d.queue.upsertJobScheduler(
      t.id,
      { pattern: t.cron!, tz: t.timezone },
      { name: TASK_JOB, data: { taskId: t.id } satisfies TaskJobData },
    );
  }

  private async unschedule(t: Task): Promise<void> {
    if (t.kind === 'cron') await this.d.queue.removeJobScheduler(t.id);
    else await this.d.queue.remove(onceJobId(t.id));
  }

  /**
   * Makes the queue match Postgres, at start: workflows.yaml schedules become config tasks; every
   * active reminder has its delayed job (one whose time passed while everything was down fires now,
   * once); every active cron task has its job scheduler, and no other scheduler is left.
   */
  async reconcile(): Promise<{ scheduled: number; removed: number }> {
    const { db, queue, config, log } = this.d;
    const wanted = Object.entries(config.workflows).flatMap(([name, w]) => {
      if (!w.schedule) return [];
      const timezone = w.schedule.timezone ?? config.tools.timezone;
      return [
        { name, cron: w.schedule.cron, timezone, nextRunAt: nextOccurrence(w.schedule.cron, timezone) },
      ];
    });
    const sync = await syncConfigTasks(db, wanted);
    if (sync.created.length || sync.updated.length || sync.cancelled.length)
      log.info('workflow schedules applied', sync);

    const active = config.automations.enabled ? await allActiveTasks(db) : [];
    let scheduled = 0;
    let removed = 0;
    const cronIds = new Set<string>();
    const onceIds = new Set<string>();
    for (const t of active) {
      try {
        if (t.kind === 'once') {
          onceIds.add(t.id);
          if (await this.ensureOnceJob(t)) scheduled++;
        } else {
          cronIds.add(t.id);
          const next = nextOccurrence(t.cron!, t.timezone);
          await setNextRun(db, t.id, next);
          const s = await queue.getJobScheduler(t.id);
          const current =
            s && s.pattern === t.cron && (s.tz ?? undefined) === t.timezone && s.next
              ? await queue.getJob(`repeat:${t.id}:${s.next}`)
              : undefined;
          if (!current) {
            await this.schedule(t);
            scheduled++;
          }
        }
      } catch (err) {
        log.error('could not schedule a task', { taskId: t.id, error: (err as Error).message });
      }
    }
    // schedulers and reminders of tasks no longer active (cancelled while Redis was away, or turned off)
    // a task another process created after the read above is active now: read again before removing
    const stillActive = async (id: string) =>
      config.automations.enabled && (await this.get(id).catch(() => undefined))?.status === 'active';
    for (const s of await queue.getJobSchedulers(0, -1)) {
      if (cronIds.has(s.key) || (await stillActive(s.key))) continue;
      await queue.removeJobScheduler(s.key);
      removed++;
    }
    for (const job of await queue.getJobs(['delayed', 'waiting', 'prioritized'])) {
      const data = job?.data as Partial<TaskJobData> | undefined;
      if (!job || job.name !== TASK_JOB || job.repeatJobKey || !data?.taskId || onceIds.has(data.taskId))
        continue;
      if (await stillActive(data.taskId)) continue;
      await job.remove().catch(() => {});
      removed++;
    }
    if (scheduled || removed)
      log.info('task queue reconciled', { scheduled, removed, active: active.length });
    return { scheduled, removed };
  }

  /** The reminder's delayed job exists (added again when Redis lost it or it ended without firing). */
  private async ensureOnceJob(t: Task): Promise<boolean> {
    const job = await this.d.queue.getJob(onceJobId(t.id));
    if (job) {
      const state = await job.getState();
      if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return false;
      await job.remove();
    }
    await this.schedule(t);
    return true;
  }

  /**
   * Fires a task once for `slot`: claims the firing, does the task's action, records the outcome.
   * A failure is recorded and thrown (the queue tries again: delivery is idempotent through the
   * reply id); `finalAttempt` says no further try will follow.
   */
  async fire(
    taskId: string,
    slot: string,
    o: { finalAttempt: boolean; workflows: WorkflowStarter; requestId: string },
  ): Promise<Firing> {
    const { db, log } = this.d;
    const count = (action: string, outcome: string) => this.d.metrics?.taskFirings.inc({ action, outcome });
    if (!this.enabled) {
      log.info('task not fired: scheduled tasks are turned off', { taskId, slot });
      count('unknown', 'skipped');
      return { outcome: 'skipped' };
    }
    const claim = await claimFiring(db, taskId, slot, LEASE_MS);
    if (claim.outcome === 'inactive') {
      // a scheduler that outlived its task (cancelled while Redis was unreachable)
      if (claim.task?.kind === 'cron' || !claim.task)
        await this.d.queue.removeJobScheduler(taskId).catch(() => {});
      count(claim.task?.action ?? 'unknown', 'skipped');
      return { outcome: 'skipped' };
    }
    if (claim.outcome === 'done') {
      count('unknown', 'duplicate');
      return { outcome: 'already-ran' };
    }
    if (claim.outcome === 'busy') return { outcome: 'busy', retryAt: claim.until.getTime() + 500 };

    const { task } = claim;
    const renew = setInterval(() => {
      renewFiring(db, taskId, slot, LEASE_MS).catch((err: Error) =>
        log.warn('could not renew a task firing', { taskId, error: err.message }),
      );
    }, RENEW_MS);
    const started = performance.now();
    try {
      await this.act(task, slot, o.workflows, o.requestId);
      await finishFiring(db, {
        taskId,
        slot,
        error: null,
        final: true,
        nextRunAt: this.nextAfterFiring(task),
      });
      count(task.action, 'ok');
      log.info('task fired', {
        taskId,
        slot,
        action: task.action,
        attempt: claim.attempts,
        ms: Math.round(performance.now() - started),
      });
      return { outcome: 'ran' };
    } catch (err) {
      const error = (err as Error).message || String(err);
      await finishFiring(db, {
        taskId,
        slot,
        error,
        final: o.finalAttempt,
        nextRunAt: this.nextAfterFiring(task),
      }).catch((e: Error) =>
        log.error('could not record a failed task firing', { taskId, error: e.message }),
      );
      count(task.action, 'failed');
      log.warn('task firing failed', { taskId, slot, attempt: claim.attempts, final: o.finalAttempt, error });
      throw err;
    } finally {
      clearInterval(renew);
    }
  }

  private nextAfterFiring(t: Task): Date | null {
    return t.kind === 'cron' ? nextOccurrence(t.cron!, t.timezone) : null;
  }

  private async act(t: Task, slot: string, workflows: WorkflowStarter, requestId: string): Promise<void> {
    if (t.action === 'workflow') {
      const run: WorkflowRun = await workflows.start(t.workflow!, {
        trigger: 'schedule',
        input: { task_id: t.id, slot: new Date(Number(slot)).toISOString() },
        chat: chatOf(t),
        startedBy: t.created_by === 'config' ? `schedule:${t.workflow}` : `task:${t.id}`,
        // a firing delivered again starts no second run
        key: `task/${t.id}/${slot}`,
      });
      this.d.log.info('scheduled workflow started', { taskId: t.id, runId: run.id, workflow: t.workflow });
      return;
    }
    const chat = chatOf(t);
    if (!chat) throw new Error('the task has no chat to report to');
    let text: string;
    if (t.action === 'remind') text = `⏰ ${t.text}`;
    else {
      let answer = '';
      const { config, llm } = this.d;
      await llm.streamChat(
        {
          model: config.core.default_model,
          messages: [
            { role: 'system', content: config.core.system_prompt },
            { role: 'user', content: t.text },
          ],
          requestId,
        },
        { onText: (d) => void (answer += d) },
        AbortSignal.timeout(config.core.reply_timeout_ms),
      );
      text = answer.trim();
      if (!text) throw new Error('the model answered with nothing');
    }
    await this.d.outbound.publish(chat.platform, {
      v: 1,
      type: 'finish',
      chat: { id: chat.id, type: chat.type, ...(chat.thread_id ? { thread_id: chat.thread_id } : {}) },
      reply_id: firingReplyId(t.id, slot),
      seq: nextActionSeq(),
      text,
      status: 'complete',
      request_id: requestId,
    } satisfies OutboundAction);
  }
}

/** The job's firing: its task and slot (the time it was due, ms since the epoch). */
export function firingOf(job: Job): { taskId: string; slot: string } {
  const data = job.data as TaskJobData;
  const slot = data.slot ?? String(job.opts.prevMillis ?? job.timestamp + (job.opts.delay ?? 0));
  return { taskId: data.taskId, slot };
}

function chatOf(t: Task): RunChat | undefined {
  if ((t.platform !== 'telegram' && t.platform !== 'feishu') || !t.chat_id) return undefined;
  return {
    platform: t.platform,
    id: t.chat_id,
    type: t.chat_type ?? 'direct',
    ...(t.thread_id ? { thread_id: t.thread_id } : {}),
  };
}

/** The task a user means by a list number, an id, or the start of an id (at least 4 characters). */
function pick(tasks: Task[], ref: string): Task | undefined {
  if (/^\d+$/.test(ref)) return tasks[Number(ref) - 1];
  const r = ref.toLowerCase().replace(/^\[|\]$/g, '');
  const exact = tasks.find((t) => t.id === r);
  if (exact) return exact;
  if (r.length < 4) return undefined;
  const matches = tasks.filter((t) => t.id.startsWith(r));
  return matches.length === 1 ? matches[0] : undefined;
}

const oneLine = (s: string) => {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > 80 ? `${flat.slice(0, 79)}…` : flat;
};

function validZone(tz: string): boolean {
  return DateTime.local().setZone(tz).isValid;
}

/** The next time a cron expression is due after now. */
export function nextOccurrence(cron: string, timezone: string, after = new Date()): Date {
  return CronExpressionParser.parse(cron, { tz: timezone, currentDate: after, strict: false })
    .next()
    .toDate();
}

/**
 * The shortest gap between consecutive runs of a cron expression (ms), over its next occurrences:
 * "0,1 9 * * *" is every minute at nine, though its runs are a day apart most of the time.
 */
export function shortestInterval(cron: string, timezone: string, samples = 100): number {
  const it = CronExpressionParser.parse(cron, { tz: timezone, strict: false });
  let prev = it.next().getTime();
  let shortest = Infinity;
  for (let i = 0; i < samples; i++) {
    const next = it.next().getTime();
    shortest = Math.min(shortest, next - prev);
    prev = next;
  }
  return shortest;
}

/**
 * A date-time as a person writes it: ISO 8601 with an offset ("2025-01-31T09:00:00+01:00", "…Z"), or
 * local to `timezone` ("2025-01-31T09:00", "2025-01-31 09:00"). Throws TaskError('invalid').
 */
export function parseWhen(at: string, timezone: string): Date {
  if (!validZone(timezone))
    throw new TaskError(
      'invalid',
      `Unknown time zone "${timezone}" (use an IANA name such as Europe/Berlin).`,
    );
  const s = at.trim().replace(/^(\d{4}-\d{2}-\d{2})\s+(?=\d)/, '$1T');
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(s))
    throw new TaskError(
      'invalid',
      `"${at}" is not a date and time; write it as ISO 8601, e.g. 2025-01-31T09:00 (in ${timezone}) or 2025-01-31T09:00:00+01:00.`,
    );
  const dt = DateTime.fromISO(s, { zone: timezone });
  if (!dt.isValid)
    throw new TaskError(
      'invalid',
      `"${at}" is not a valid date and time (${dt.invalidExplanation ?? dt.invalidReason}).`,
    );
  return dt.toJSDate();
}

/** A time for people: "Friday, 31 January 2025 at 09:00 (Europe/Berlin)". */
export function describeTime(d: Date, timezone: string, lang: Lang): string {
  const dt = DateTime.fromJSDate(d)
    .setZone(timezone)
    .setLocale(lang === 'zh' ? 'zh-CN' : 'en-GB');
  const text = dt.toLocaleString({
    weekday: 'long',
    year: 'numeric',
    month: 'long',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    ...(dt.second ? { second: '2-digit' } : {}),
  });
  return `${text} (${timezone})`;
}

/** "in 3 hours", for the model's confirmation. */
export function relativeTime(d: Date): string {
  return DateTime.fromJSDate(d).toRelative({ locale: 'en' }) ?? '';
}

function words(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} second${s === 1 ? '' : 's'}`;
  if (s < 3600 && s % 60 === 0) return `${s / 60} minute${s === 60 ? '' : 's'}`;
  if (s < 86_400 && s % 3600 === 0) return `${s / 3600} hour${s === 3600 ? '' : 's'}`;
  if (s % 86_400 === 0) return `${s / 86_400} day${s === 86_400 ? '' : 's'}`;
  return `${Math.round(s / 60)} minutes`;
}
