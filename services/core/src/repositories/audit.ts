import type { Db } from './db.ts';

export interface AuditEntry {
  kind: string;
  actor?: string | null;
  userId?: number | null;
  platform?: string | null;
  conversationId?: string | null;
  model?: string | null;
  durationMs?: number | null;
  promptTokens?: number | null;
  completionTokens?: number | null;
  outcome: string;
  detail?: Record<string, unknown> | null;
  content?: string | null;
}

export async function writeAudit(db: Db, e: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO audit_log(kind, actor, user_id, platform, conversation_id, model, duration_ms, prompt_tokens, completion_tokens, outcome, detail, content)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      e.kind,
      e.actor ?? null,
      e.userId ?? null,
      e.platform ?? null,
      e.conversationId ?? null,
      e.model ?? null,
      e.durationMs ?? null,
      e.promptTokens ?? null,
      e.completionTokens ?? null,
      e.outcome,
      e.detail ? JSON.stringify(e.detail) : null,
      e.content ?? null,
    ],
  );
}

/** Deletes audit entries older than the retention; returns how many. */
export async function pruneAudit(db: Db, retentionDays: number): Promise<number> {
  const r = await db.query(`DELETE FROM audit_log WHERE at < now() - make_interval(days => $1)`, [
    retentionDays,
  ]);
  return r.rowCount ?? 0;
}
