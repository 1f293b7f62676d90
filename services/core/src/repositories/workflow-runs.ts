import type { Queryable } from './db.ts';
import { decodeCursor, type Page, pageOf } from './tasks.ts';

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed';
export type RunTrigger = 'api' | 'schedule' | 'route';

/** How one step of a run ended. */
export interface StepRecord {
  id: string;
  kind: 'tool' | 'prompt' | 'message';
  status: 'ok' | 'failed' | 'skipped';
  /** What it produced (cut), for later steps and for people reading the run. */
  output: string;
  error: string | null;
  duration_ms: number;
}

/** Where a run reports by default: the chat that started it. */
export interface RunChat {
  platform: 'telegram' | 'feishu';
  id: string;
  type: 'direct' | 'group';
  thread_id?: string;
}

export interface WorkflowRun {
  id: string;
  workflow: string;
  trigger: RunTrigger;
  started_by: string;
  input: Record<string, unknown>;
  chat: RunChat | null;
  status: RunStatus;
  steps: StepRecord[];
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const COLUMNS = `id, workflow, trigger, started_by, input, chat, status, steps, error, created_at, started_at, finished_at`;

/**
 * Records a run to be started; with a `dedupKey` already used, the run made then is returned instead
 * (`created` false).
 */
export async function createRun(
  db: Queryable,
  r: {
    workflow: string;
    trigger: RunTrigger;
    startedBy: string;
    input: Record<string, unknown>;
    chat?: RunChat | null;
    dedupKey?: string;
  },
): Promise<{ run: WorkflowRun; created: boolean }> {
  const { rows } = await db.query<WorkflowRun>(
    `INSERT INTO workflow_runs(workflow, trigger, started_by, input, chat, dedup_key)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (dedup_key) DO NOTHING
     RETURNING ${COLUMNS}`,
    [
      r.workflow,
      r.trigger,
      r.startedBy,
      JSON.stringify(r.input),
      r.chat ? JSON.stringify(r.chat) : null,
      r.dedupKey ?? null,
    ],
  );
  if (rows[0]) return { run: rows[0], created: true };
  const { rows: existing } = await db.query<WorkflowRun>(
    `SELECT ${COLUMNS} FROM workflow_runs WHERE dedup_key = $1`,
    [r.dedupKey],
  );
  return { run: existing[0]!, created: false };
}

export async function getRun(db: Queryable, id: string): Promise<WorkflowRun | undefined> {
  const { rows } = await db.query<WorkflowRun>(`SELECT ${COLUMNS} FROM workflow_runs WHERE id = $1`, [id]);
  return rows[0];
}

/** Runs, newest first. */
export async function listRuns(
  db: Queryable,
  f: { workflow?: string; status?: RunStatus; limit: number; before?: string },
): Promise<Page<WorkflowRun>> {
  const params: unknown[] = [];
  const where: string[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (f.workflow !== undefined) where.push(`workflow = ${p(f.workflow)}`);
  if (f.status !== undefined) where.push(`status = ${p(f.status)}`);
  const cursor = f.before === undefined ? undefined : decodeCursor(f.before);
  if (cursor)
    where.push(
      `(created_at, id) < (timestamptz 'epoch' + ${p(cursor.us)}::bigint * interval '1 microsecond', ${p(cursor.id)}::uuid)`,
    );
  const { rows } = await db.query<WorkflowRun & { cursor_us: number }>(
    `SELECT ${COLUMNS}, (extract(epoch FROM created_at) * 1000000)::bigint AS cursor_us FROM workflow_runs
     ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY created_at DESC, id DESC LIMIT ${p(f.limit + 1)}`,
    params,
  );
  return pageOf(rows, f.limit);
}

/** Runs not finished: queued, or running (perhaps in a process that died). */
export async function unfinishedRuns(db: Queryable): Promise<{ id: string }[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM workflow_runs WHERE status IN ('queued', 'running') ORDER BY created_at`,
  );
  return rows;
}

export type RunClaim =
  | { outcome: 'claimed'; run: WorkflowRun }
  | { outcome: 'finished' | 'unknown' }
  | { outcome: 'busy'; until: Date };

/** Takes a run for this process: a queued one, or a running one whose process's lease lapsed. */
export async function claimRun(db: Queryable, id: string, leaseMs: number): Promise<RunClaim> {
  const { rows } = await db.query<WorkflowRun>(
    `UPDATE workflow_runs SET status = 'running', started_at = coalesce(started_at, now()),
       lease_until = now() + $2 * interval '1 millisecond'
     WHERE id = $1 AND (status = 'queued' OR (status = 'running' AND lease_until < now()))
     RETURNING ${COLUMNS}`,
    [id, leaseMs],
  );
  if (rows[0]) return { outcome: 'claimed', run: rows[0] };
  const { rows: now } = await db.query<{ status: RunStatus; lease_until: Date | null }>(
    `SELECT status, lease_until FROM workflow_runs WHERE id = $1`,
    [id],
  );
  if (!now[0]) return { outcome: 'unknown' };
  if (now[0].status === 'succeeded' || now[0].status === 'failed') return { outcome: 'finished' };
  return { outcome: 'busy', until: now[0].lease_until ?? new Date(Date.now() + leaseMs) };
}

export async function renewRun(db: Queryable, id: string, leaseMs: number): Promise<void> {
  await db.query(
    `UPDATE workflow_runs SET lease_until = now() + $2 * interval '1 millisecond' WHERE id = $1 AND status = 'running'`,
    [id, leaseMs],
  );
}

/** Appends finished steps to a run (in order). */
export async function recordSteps(db: Queryable, id: string, steps: StepRecord[]): Promise<void> {
  await db.query(`UPDATE workflow_runs SET steps = steps || $2::jsonb WHERE id = $1`, [
    id,
    JSON.stringify(steps),
  ]);
}

export async function finishRun(
  db: Queryable,
  id: string,
  status: 'succeeded' | 'failed',
  error: string | null,
): Promise<WorkflowRun | undefined> {
  const { rows } = await db.query<WorkflowRun>(
    `UPDATE workflow_runs SET status = $2, error = $3, finished_at = now(), lease_until = NULL
     WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, status, error],
  );
  return rows[0];
}
