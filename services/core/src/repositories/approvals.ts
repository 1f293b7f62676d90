import type { Queryable } from './db.ts';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired';

export interface Approval {
  id: string;
  tool: string;
  arguments: Record<string, unknown>;
  summary: string;
  requested_of: 'user' | 'operator';
  user_id: number | null;
  user_name: string | null;
  conversation_id: string | null;
  platform: string | null;
  chat_id: string | null;
  status: ApprovalStatus;
  created_at: Date;
  expires_at: Date;
  decided_at: Date | null;
  decided_by: string | null;
}

const COLUMNS = `a.id, a.tool, a.arguments, a.summary, a.requested_of, a.user_id, u.display_name AS user_name,
  a.conversation_id, a.platform, a.chat_id,
  CASE WHEN a.status = 'pending' AND a.expires_at < now() THEN 'expired' ELSE a.status END AS status,
  a.created_at, a.expires_at, a.decided_at, a.decided_by`;

export async function createApproval(
  db: Queryable,
  p: {
    tool: string;
    arguments: Record<string, unknown>;
    summary: string;
    requestedOf: 'user' | 'operator';
    userId: number | null;
    conversationId: string | null;
    scope: string | null;
    platform: string | null;
    chatId: string | null;
    timeoutS: number;
  },
): Promise<{ id: string; expires_at: Date }> {
  const { rows } = await db.query<{ id: string; expires_at: Date }>(
    `INSERT INTO approvals(tool, arguments, summary, requested_of, user_id, conversation_id, scope, platform, chat_id, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10))
     RETURNING id, expires_at`,
    [
      p.tool,
      JSON.stringify(p.arguments),
      p.summary,
      p.requestedOf,
      p.userId,
      p.conversationId,
      p.scope,
      p.platform,
      p.chatId,
      p.timeoutS,
    ],
  );
  return rows[0]!;
}

export async function getApproval(db: Queryable, id: string): Promise<Approval | undefined> {
  const { rows } = await db.query<Approval>(
    `SELECT ${COLUMNS} FROM approvals a LEFT JOIN users u ON u.id = a.user_id WHERE a.id = $1`,
    [id],
  );
  return rows[0];
}

export async function listApprovals(
  db: Queryable,
  p: { status?: ApprovalStatus; userId?: number; limit: number },
): Promise<Approval[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  if (p.status === 'pending') where.push(`a.status = 'pending' AND a.expires_at >= now()`);
  else if (p.status === 'expired')
    where.push(`(a.status = 'expired' OR (a.status = 'pending' AND a.expires_at < now()))`);
  else if (p.status) where.push(`a.status = $${values.push(p.status)}`);
  if (p.userId !== undefined) where.push(`a.user_id = $${values.push(p.userId)}`);
  const { rows } = await db.query<Approval>(
    `SELECT ${COLUMNS} FROM approvals a LEFT JOIN users u ON u.id = a.user_id
     ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY a.created_at DESC LIMIT $${values.push(p.limit)}`,
    values,
  );
  return rows;
}

/**
 * Decides a pending approval (once: the first decision wins, and none after its deadline).
 * Returns the approval as it now stands, or undefined when there is none with that id.
 */
export async function decideApproval(
  db: Queryable,
  p: { id: string; decision: 'approved' | 'denied' | 'expired'; by: string | null },
): Promise<{ decided: boolean; approval: Approval | undefined }> {
  const r = await db.query(
    `UPDATE approvals SET status = $2, decided_at = now(), decided_by = $3
     WHERE id = $1 AND status = 'pending' AND ($2 = 'expired' OR expires_at >= now())`,
    [p.id, p.decision, p.by],
  );
  return { decided: (r.rowCount ?? 0) > 0, approval: await getApproval(db, p.id) };
}

/** The pending question of a chat scope that its user may answer with yes or no. */
export async function pendingUserApproval(
  db: Queryable,
  scope: string,
): Promise<{ id: string; user_id: number | null; created_at: Date } | undefined> {
  const { rows } = await db.query<{ id: string; user_id: number | null; created_at: Date }>(
    `SELECT id, user_id, created_at FROM approvals
     WHERE scope = $1 AND status = 'pending' AND requested_of = 'user' AND expires_at >= now()
     ORDER BY created_at DESC LIMIT 1`,
    [scope],
  );
  return rows[0];
}

/** What a tool call did, kept so that a re-run of the turn after a crash does not run it again. */
export interface StoredToolCall {
  /** running: started and not known to have finished (the process may have died meanwhile). */
  status: 'running' | 'ok' | 'error' | 'refused' | 'denied';
  result: string;
  duration_ms: number;
}

export async function storedToolCall(db: Queryable, key: string): Promise<StoredToolCall | undefined> {
  const { rows } = await db.query<StoredToolCall>(
    'SELECT status, result, duration_ms FROM tool_calls WHERE call_key = $1',
    [key],
  );
  return rows[0];
}

export async function storeToolCall(
  db: Queryable,
  p: {
    key: string;
    messageId: number | null;
    conversationId: string | null;
    userId: number | null;
    tool: string;
    arguments: unknown;
    status: StoredToolCall['status'];
    result: string;
    durationMs: number;
    approvedBy: string | null;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO tool_calls(call_key, message_id, conversation_id, user_id, tool, arguments, status, result, duration_ms, approved_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (call_key) DO UPDATE SET status = EXCLUDED.status, result = EXCLUDED.result,
       duration_ms = EXCLUDED.duration_ms, approved_by = EXCLUDED.approved_by
     WHERE tool_calls.status = 'running'`,
    [
      p.key,
      p.messageId,
      p.conversationId,
      p.userId,
      p.tool,
      JSON.stringify(p.arguments ?? {}),
      p.status,
      p.result,
      p.durationMs,
      p.approvedBy,
    ],
  );
}

/** Whether a platform message is stored already (a redelivery). */
export async function messageStored(
  db: Queryable,
  platform: string,
  chatId: string,
  platformMessageId: string,
): Promise<boolean> {
  const { rowCount } = await db.query(
    'SELECT 1 FROM messages WHERE platform = $1 AND chat_id = $2 AND platform_message_id = $3',
    [platform, chatId, platformMessageId],
  );
  return (rowCount ?? 0) > 0;
}

/** A chat user's role for tools (API keys carry their own). */
export async function userRole(db: Queryable, userId: number): Promise<string | undefined> {
  const { rows } = await db.query<{ role: string }>('SELECT role FROM users WHERE id = $1', [userId]);
  return rows[0]?.role;
}

/**
 * Deletes tool-call records, decided approvals, finished task firings and workflow runs older than
 * the audit retention (the audit log keeps its own copy of what happened, under the same retention).
 */
export async function pruneToolRecords(db: Queryable, retentionDays: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `WITH cutoff AS (SELECT now() - make_interval(days => $1) AS at),
     a AS (DELETE FROM tool_calls WHERE created_at < (SELECT at FROM cutoff) RETURNING 1),
     b AS (DELETE FROM approvals WHERE created_at < (SELECT at FROM cutoff) AND expires_at < now() RETURNING 1),
     c AS (DELETE FROM task_runs WHERE started_at < (SELECT at FROM cutoff) AND status <> 'running' RETURNING 1),
     d AS (DELETE FROM workflow_runs WHERE created_at < (SELECT at FROM cutoff) AND status IN ('succeeded', 'failed') RETURNING 1)
     SELECT ((SELECT count(*) FROM a) + (SELECT count(*) FROM b) + (SELECT count(*) FROM c) + (SELECT count(*) FROM d))::int AS n`,
    [retentionDays],
  );
  return rows[0]?.n ?? 0;
}
