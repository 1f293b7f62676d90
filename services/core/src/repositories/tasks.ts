import { type Db, type Queryable, transaction } from './db.ts';

export type TaskKind = 'once' | 'cron';
export type TaskAction = 'remind' | 'prompt' | 'workflow';
export type TaskStatus = 'active' | 'done' | 'cancelled' | 'failed';

/** A reminder or recurring task as stored (and as the API shows it). */
export interface Task {
  id: string;
  /** workflows.yaml schedules: the workflow's name. */
  name: string | null;
  user_id: number | null;
  user_name: string | null;
  platform: string | null;
  chat_id: string | null;
  chat_type: 'direct' | 'group' | null;
  thread_id: string | null;
  kind: TaskKind;
  run_at: Date | null;
  cron: string | null;
  timezone: string;
  action: TaskAction;
  text: string;
  workflow: string | null;
  status: TaskStatus;
  created_by: string;
  runs: number;
  last_run_at: Date | null;
  next_run_at: Date | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface NewTask {
  name?: string | null;
  userId: number | null;
  chat?: { platform: string; id: string; type: 'direct' | 'group'; thread_id?: string } | null;
  kind: TaskKind;
  runAt?: Date | null;
  cron?: string | null;
  timezone: string;
  action: TaskAction;
  text: string;
  workflow?: string | null;
  createdBy: string;
  nextRunAt: Date | null;
}

/** One firing of a task. */
export interface TaskRun {
  slot: string;
  status: 'running' | 'ok' | 'failed';
  attempts: number;
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

const COLUMNS = `t.id, t.name, t.user_id, u.display_name AS user_name, t.platform, t.chat_id, t.chat_type, t.thread_id,
  t.kind, t.run_at, t.cron, t.timezone, t.action, t.text, t.workflow, t.status, t.created_by, t.runs,
  t.last_run_at, t.next_run_at, t.last_error, t.created_at, t.updated_at`;
const FROM = `FROM tasks t LEFT JOIN users u ON u.id = t.user_id`;

/** Serializes task creation per user, so the limit on active tasks holds under concurrent requests. */
export async function lockUserTasks(c: Queryable, userId: number): Promise<void> {
  await c.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`pincer.tasks.user.${userId}`]);
}

export async function countActiveTasks(c: Queryable, userId: number): Promise<number> {
  const { rows } = await c.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM tasks WHERE user_id = $1 AND status = 'active'`,
    [userId],
  );
  return rows[0]!.n;
}

export async function insertTask(c: Queryable, t: NewTask): Promise<Task> {
  const { rows } = await c.query<{ id: string }>(
    `INSERT INTO tasks(name, user_id, platform, chat_id, chat_type, thread_id, kind, run_at, cron, timezone,
       action, text, workflow, created_by, next_run_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
     RETURNING id`,
    [
      t.name ?? null,
      t.userId,
      t.chat?.platform ?? null,
      t.chat?.id ?? null,
      t.chat?.type ?? null,
      t.chat?.thread_id ?? null,
      t.kind,
      t.runAt ?? null,
      t.cron ?? null,
      t.timezone,
      t.action,
      t.text,
      t.workflow ?? null,
      t.createdBy,
      t.nextRunAt,
    ],
  );
  return (await getTask(c, rows[0]!.id))!;
}

/** Removes a task that never got scheduled (its creation failed half-way). */
export async function deleteTask(db: Queryable, id: string): Promise<void> {
  await db.query(`DELETE FROM tasks WHERE id = $1`, [id]);
}

export async function getTask(db: Queryable, id: string): Promise<Task | undefined> {
  const { rows } = await db.query<Task>(`SELECT ${COLUMNS} ${FROM} WHERE t.id = $1`, [id]);
  return rows[0];
}

/** A user's active tasks in the order /tasks numbers them: soonest first. */
export async function activeTasksOf(
  db: Queryable,
  userId: number,
  chat?: { platform: string; id: string },
): Promise<Task[]> {
  const { rows } = await db.query<Task>(
    `SELECT ${COLUMNS} ${FROM}
     WHERE t.user_id = $1 AND t.status = 'active'
       AND ($2::text IS NULL OR (t.platform = $2 AND t.chat_id = $3))
     ORDER BY t.next_run_at ASC NULLS LAST, t.created_at ASC, t.id ASC`,
    [userId, chat?.platform ?? null, chat?.id ?? null],
  );
  return rows;
}

/** Every active task (reconciling the queue with Postgres at start). */
export async function allActiveTasks(db: Queryable): Promise<Task[]> {
  const { rows } = await db.query<Task>(
    `SELECT ${COLUMNS} ${FROM} WHERE t.status = 'active' ORDER BY t.created_at`,
  );
  return rows;
}

export interface TaskFilters {
  userId?: number;
  status?: TaskStatus;
  limit: number;
  /** A next_cursor of the previous page. */
  before?: string;
}

function encodeCursor(createdAtUs: number, id: string): string {
  return Buffer.from(`${createdAtUs}.${id}`).toString('base64url');
}

/** The position a cursor names, or undefined when it is not one of ours. */
export function decodeCursor(s: string): { us: number; id: string } | undefined {
  const m = /^(\d{1,17})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(
    Buffer.from(s, 'base64url').toString(),
  );
  return m ? { us: Number(m[1]), id: m[2]! } : undefined;
}

/** A page of rows ordered by (created_at, id) descending, with the cursor of the next page. */
export function pageOf<T extends { id: string }>(
  rows: (T & { cursor_us: number })[],
  limit: number,
): Page<T> {
  const more = rows.length > limit;
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    data: page.map(({ cursor_us: _, ...row }) => row as unknown as T),
    next_cursor: more && last ? encodeCursor(last.cursor_us, last.id) : null,
  };
}

/** Tasks, newest first. */
export async function listTasks(db: Queryable, f: TaskFilters): Promise<Page<Task>> {
  const params: unknown[] = [];
  const where: string[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (f.userId !== undefined) where.push(`t.user_id = ${p(f.userId)}`);
  if (f.status !== undefined) where.push(`t.status = ${p(f.status)}`);
  const cursor = f.before === undefined ? undefined : decodeCursor(f.before);
  if (cursor)
    where.push(
      `(t.created_at, t.id) < (timestamptz 'epoch' + ${p(cursor.us)}::bigint * interval '1 microsecond', ${p(cursor.id)}::uuid)`,
    );
  const { rows } = await db.query<Task & { cursor_us: number }>(
    `SELECT ${COLUMNS}, (extract(epoch FROM t.created_at) * 1000000)::bigint AS cursor_us ${FROM}
     ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY t.created_at DESC, t.id DESC LIMIT ${p(f.limit + 1)}`,
    params,
  );
  return pageOf(rows, f.limit);
}

/** The latest firings of a task. */
export async function taskRuns(db: Queryable, taskId: string, limit: number): Promise<TaskRun[]> {
  const { rows } = await db.query<TaskRun>(
    `SELECT slot, status, attempts, error, started_at, finished_at FROM task_runs
     WHERE task_id = $1 ORDER BY started_at DESC LIMIT $2`,
    [taskId, limit],
  );
  return rows;
}

/** Cancels an active task (only `userId`'s when given); undefined when there is no such active task. */
export async function cancelTask(
  db: Queryable,
  id: string,
  userId: number | undefined,
): Promise<Task | undefined> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE tasks SET status = 'cancelled', next_run_at = NULL, updated_at = now()
     WHERE id = $1 AND status = 'active' AND ($2::bigint IS NULL OR user_id = $2)
     RETURNING id`,
    [id, userId ?? null],
  );
  return rows[0] ? getTask(db, id) : undefined;
}

export async function setNextRun(db: Queryable, id: string, next: Date | null): Promise<void> {
  await db.query(
    `UPDATE tasks SET next_run_at = $2 WHERE id = $1 AND next_run_at IS DISTINCT FROM $2 AND status = 'active'`,
    [id, next],
  );
}

/**
 * Makes the workflows.yaml schedules the active config tasks: one per scheduled workflow, with its
 * cron and time zone; tasks of workflows no longer scheduled are cancelled. Serialized across
 * processes that start together. Returns what changed.
 */
export async function syncConfigTasks(
  db: Db,
  wanted: { name: string; cron: string; timezone: string; nextRunAt: Date | null }[],
): Promise<{ created: string[]; updated: string[]; cancelled: string[] }> {
  return transaction(db, async (c) => {
    await c.query(`SELECT pg_advisory_xact_lock(hashtextextended('pincer.tasks.config', 0))`);
    const { rows } = await c.query<{ id: string; name: string; cron: string; timezone: string }>(
      `SELECT id, name, cron, timezone FROM tasks WHERE created_by = 'config' AND status = 'active'`,
    );
    const existing = new Map(rows.map((r) => [r.name, r]));
    const out = { created: [] as string[], updated: [] as string[], cancelled: [] as string[] };
    for (const w of wanted) {
      const e = existing.get(w.name);
      existing.delete(w.name);
      if (!e) {
        await insertTask(c, {
          name: w.name,
          userId: null,
          kind: 'cron',
          cron: w.cron,
          timezone: w.timezone,
          action: 'workflow',
          workflow: w.name,
          text: '',
          createdBy: 'config',
          nextRunAt: w.nextRunAt,
        });
        out.created.push(w.name);
      } else if (e.cron !== w.cron || e.timezone !== w.timezone) {
        await c.query(
          `UPDATE tasks SET cron = $2, timezone = $3, next_run_at = $4, updated_at = now() WHERE id = $1`,
          [e.id, w.cron, w.timezone, w.nextRunAt],
        );
        out.updated.push(w.name);
      }
    }
    for (const gone of existing.values()) {
      await c.query(
        `UPDATE tasks SET status = 'cancelled', next_run_at = NULL, updated_at = now() WHERE id = $1`,
        [gone.id],
      );
      out.cancelled.push(gone.name);
    }
    return out;
  });
}

export type Claim =
  | { outcome: 'claimed'; task: Task; attempts: number }
  /** the task is gone, cancelled or finished: nothing to do */
  | { outcome: 'inactive'; task: Task | undefined }
  /** this firing already ran */
  | { outcome: 'done' }
  /** another process runs it right now (its lease runs until `until`) */
  | { outcome: 'busy'; until: Date };

/**
 * Claims one firing (task, slot) for this process: the first delivery runs it, a second delivery of
 * a finished firing does nothing, and a firing whose process died (its lease lapsed) or that failed
 * is claimed again. The task row is share-locked meanwhile, so a cancel that committed first wins.
 */
export async function claimFiring(db: Db, taskId: string, slot: string, leaseMs: number): Promise<Claim> {
  return transaction(db, async (c) => {
    const { rows: locked } = await c.query<{ status: TaskStatus }>(
      `SELECT status FROM tasks WHERE id = $1 FOR SHARE`,
      [taskId],
    );
    if (!locked[0] || locked[0].status !== 'active')
      return { outcome: 'inactive', task: locked[0] ? await getTask(c, taskId) : undefined };
    const { rows } = await c.query<{ attempts: number }>(
      `INSERT INTO task_runs(task_id, slot, status, lease_until)
       VALUES ($1, $2, 'running', now() + $3 * interval '1 millisecond')
       ON CONFLICT (task_id, slot) DO UPDATE
         SET status = 'running', attempts = task_runs.attempts + 1, error = NULL, started_at = now(),
             finished_at = NULL, lease_until = EXCLUDED.lease_until
         WHERE task_runs.status = 'failed' OR (task_runs.status = 'running' AND task_runs.lease_until < now())
       RETURNING attempts`,
      [taskId, slot, leaseMs],
    );
    if (rows[0]) return { outcome: 'claimed', task: (await getTask(c, taskId))!, attempts: rows[0].attempts };
    const { rows: run } = await c.query<{ status: string; lease_until: Date | null }>(
      `SELECT status, lease_until FROM task_runs WHERE task_id = $1 AND slot = $2`,
      [taskId, slot],
    );
    if (run[0]?.status === 'ok') return { outcome: 'done' };
    return { outcome: 'busy', until: run[0]?.lease_until ?? new Date(Date.now() + leaseMs) };
  });
}

/** Extends a running firing's lease (it is still being worked on). */
export async function renewFiring(
  db: Queryable,
  taskId: string,
  slot: string,
  leaseMs: number,
): Promise<void> {
  await db.query(
    `UPDATE task_runs SET lease_until = now() + $3 * interval '1 millisecond'
     WHERE task_id = $1 AND slot = $2 AND status = 'running'`,
    [taskId, slot, leaseMs],
  );
}

/**
 * Records how a firing ended. `final`: no further attempt will be made (success, or the last try
 * failed): the task counts the run, and a one-shot task is finished (done or failed).
 */
export async function finishFiring(
  db: Db,
  f: { taskId: string; slot: string; error: string | null; final: boolean; nextRunAt: Date | null },
): Promise<void> {
  await transaction(db, async (c) => {
    await c.query(
      `UPDATE task_runs SET status = $3, error = $4, finished_at = now(), lease_until = NULL
       WHERE task_id = $1 AND slot = $2`,
      [f.taskId, f.slot, f.error === null ? 'ok' : 'failed', f.error],
    );
    if (!f.final) {
      await c.query(`UPDATE tasks SET last_error = $2, updated_at = now() WHERE id = $1`, [
        f.taskId,
        f.error,
      ]);
      return;
    }
    await c.query(
      `UPDATE tasks SET runs = runs + 1, last_run_at = now(), last_error = $2, updated_at = now(),
         next_run_at = CASE WHEN status = 'active' THEN $3::timestamptz ELSE NULL END,
         status = CASE WHEN kind = 'once' AND status = 'active' THEN $4 ELSE status END
       WHERE id = $1`,
      [f.taskId, f.error, f.nextRunAt, f.error === null ? 'done' : 'failed'],
    );
  });
}
