import { writeAudit } from './audit.ts';
import { type Db, transaction } from './db.ts';
import { approveIdentity, identify } from './people.ts';

/** Builds a WHERE clause and its parameters together, so placeholders never go out of step. */
class Filters {
  readonly params: unknown[] = [];
  readonly conditions: string[] = [];
  /** Adds a parameter and returns its placeholder. */
  p(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }
  add(condition: string): void {
    this.conditions.push(condition);
  }
  get where(): string {
    return this.conditions.length ? `WHERE ${this.conditions.join(' AND ')}` : '';
  }
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** Queries at most this long also match inside words (and in CJK text, which the simple parser does not split). */
const SUBSTRING_SEARCH_MAX = 32;

function likePattern(q: string): string {
  return `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

// ---------------------------------------------------------------- conversations

export interface ConversationSummary {
  id: string;
  platform: string;
  chat_id: string;
  chat_type: 'direct' | 'group';
  user_id: number | null;
  user_display_name: string | null;
  title: string;
  model: string | null;
  active: boolean;
  created_at: Date;
  updated_at: Date;
  message_count: number;
}

export interface ConversationFilters {
  userId?: number;
  platform?: string;
  /** Text that one of the conversation's messages contains. */
  q?: string;
  /** Conversations with activity in [from, to): created before `to`, updated since `from`. */
  from?: Date;
  to?: Date;
  limit: number;
  /** A next_cursor from the previous page. */
  before?: ConversationCursor;
}

export interface ConversationCursor {
  updatedAtUs: number;
  id: string;
}

const CONVERSATION_COLUMNS = `c.id, c.platform, c.chat_id, c.chat_type, c.user_id, u.display_name AS user_display_name,
  c.title, c.model, c.active, c.created_at, c.updated_at,
  (SELECT count(*)::int FROM messages m WHERE m.conversation_id = c.id) AS message_count`;

/** Encodes the position after a row (microsecond timestamp and id), opaque to clients. */
export function encodeConversationCursor(c: ConversationCursor): string {
  return Buffer.from(`${c.updatedAtUs}.${c.id}`).toString('base64url');
}

export function decodeConversationCursor(s: string): ConversationCursor | undefined {
  // a UUID exactly: Postgres refuses anything else as a uuid, and a forged cursor must be a 400, not a 500
  const m = /^(\d{1,17})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(
    Buffer.from(s, 'base64url').toString(),
  );
  return m ? { updatedAtUs: Number(m[1]), id: m[2]! } : undefined;
}

/** Conversations, most recently active first. */
export async function searchConversations(
  db: Db,
  f: ConversationFilters,
): Promise<Page<ConversationSummary>> {
  const w = new Filters();
  if (f.userId !== undefined) w.add(`c.user_id = ${w.p(f.userId)}`);
  if (f.platform !== undefined) w.add(`c.platform = ${w.p(f.platform)}`);
  if (f.from) w.add(`c.updated_at >= ${w.p(f.from)}`);
  if (f.to) w.add(`c.created_at < ${w.p(f.to)}`);
  if (f.q) {
    const q = w.p(f.q);
    const substring =
      f.q.length <= SUBSTRING_SEARCH_MAX ? ` OR m.content ILIKE ${w.p(likePattern(f.q))}` : '';
    w.add(`EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id
      AND (to_tsvector('simple', m.content) @@ plainto_tsquery('simple', ${q})${substring}))`);
  }
  if (f.before) {
    // microseconds as an integer: the cursor compares exactly with Postgres timestamps
    w.add(
      `(c.updated_at, c.id) < (timestamptz 'epoch' + ${w.p(f.before.updatedAtUs)}::bigint * interval '1 microsecond', ${w.p(f.before.id)}::uuid)`,
    );
  }
  const { rows } = await db.query<ConversationSummary & { cursor_us: number }>(
    `SELECT ${CONVERSATION_COLUMNS}, (extract(epoch FROM c.updated_at) * 1000000)::bigint AS cursor_us
     FROM conversations c LEFT JOIN users u ON u.id = c.user_id
     ${w.where}
     ORDER BY c.updated_at DESC, c.id DESC LIMIT ${w.p(f.limit + 1)}`,
    w.params,
  );
  const more = rows.length > f.limit;
  const page = rows.slice(0, f.limit);
  const last = page.at(-1);
  return {
    data: page.map(({ cursor_us: _, ...c }) => c),
    next_cursor: more && last ? encodeConversationCursor({ updatedAtUs: last.cursor_us, id: last.id }) : null,
  };
}

export async function conversationSummary(db: Db, id: string): Promise<ConversationSummary | undefined> {
  const { rows } = await db.query<ConversationSummary>(
    `SELECT ${CONVERSATION_COLUMNS} FROM conversations c LEFT JOIN users u ON u.id = c.user_id WHERE c.id = $1`,
    [id],
  );
  return rows[0];
}

export interface ConversationMessage {
  id: number;
  role: 'user' | 'assistant' | 'system';
  content: string;
  status: string;
  user_id: number | null;
  reply_to: number | null;
  model: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  latency_ms: number | null;
  ttft_ms: number | null;
  created_at: Date;
}

/** A conversation's messages in order, from after the message id `after`. */
export async function conversationMessages(
  db: Db,
  conversationId: string,
  p: { after?: number; limit: number },
): Promise<Page<ConversationMessage>> {
  const { rows } = await db.query<ConversationMessage>(
    `SELECT id, role, content, status, user_id, reply_to, model, prompt_tokens, completion_tokens, latency_ms, ttft_ms, created_at
     FROM messages WHERE conversation_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
    [conversationId, p.after ?? 0, p.limit + 1],
  );
  const more = rows.length > p.limit;
  const page = rows.slice(0, p.limit);
  return { data: page, next_cursor: more ? String(page.at(-1)!.id) : null };
}

// ---------------------------------------------------------------- users

export interface UserWithIdentities {
  id: number;
  display_name: string;
  role: string;
  created_at: Date;
  updated_at: Date;
  identities: {
    platform: string;
    external_id: string;
    display_name: string;
    username: string | null;
    approved: boolean;
    created_at: string;
  }[];
}

const USER_SELECT = `SELECT u.id, u.display_name, u.role, u.created_at, u.updated_at,
  COALESCE((SELECT json_agg(json_build_object('platform', i.platform, 'external_id', i.external_id,
      'display_name', i.display_name, 'username', i.username, 'approved', i.approved, 'created_at', i.created_at)
      ORDER BY i.platform, i.external_id)
    FROM identities i WHERE i.user_id = u.id), '[]'::json) AS identities
  FROM users u`;

/** Users, newest first; `q` matches display names and platform ids. */
export async function listUsers(
  db: Db,
  f: { q?: string; platform?: string; limit: number; before?: number },
): Promise<Page<UserWithIdentities>> {
  const w = new Filters();
  if (f.q) {
    const like = w.p(likePattern(f.q));
    w.add(`(u.display_name ILIKE ${like} OR EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id
      AND (i.display_name ILIKE ${like} OR i.external_id ILIKE ${like} OR i.username ILIKE ${like})))`);
  }
  if (f.platform)
    w.add(`EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND i.platform = ${w.p(f.platform)})`);
  if (f.before !== undefined) w.add(`u.id < ${w.p(f.before)}`);
  const { rows } = await db.query<UserWithIdentities>(
    `${USER_SELECT} ${w.where} ORDER BY u.id DESC LIMIT ${w.p(f.limit + 1)}`,
    w.params,
  );
  const more = rows.length > f.limit;
  const page = rows.slice(0, f.limit);
  return { data: page, next_cursor: more ? String(page.at(-1)!.id) : null };
}

export async function getUser(db: Db, id: number): Promise<UserWithIdentities | undefined> {
  return (await db.query<UserWithIdentities>(`${USER_SELECT} WHERE u.id = $1`, [id])).rows[0];
}

/** Sets what a chat user may do with tools; returns the previous role (undefined: no such user). */
export async function setUserRole(db: Db, id: number, role: string): Promise<string | undefined> {
  const { rows } = await db.query<{ before: string }>(
    `UPDATE users u SET role = $2, updated_at = now() FROM (SELECT id, role AS before FROM users WHERE id = $1 FOR UPDATE) old
     WHERE u.id = old.id RETURNING old.before`,
    [id, role],
  );
  return rows[0]?.before;
}

// ---------------------------------------------------------------- audit log

export interface AuditRow {
  id: number;
  at: Date;
  kind: string;
  actor: string | null;
  user_id: number | null;
  platform: string | null;
  conversation_id: string | null;
  model: string | null;
  duration_ms: number | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  outcome: string;
  detail: Record<string, unknown> | null;
  content: string | null;
}

export const AUDIT_COLUMNS = [
  'id',
  'at',
  'kind',
  'actor',
  'user_id',
  'platform',
  'conversation_id',
  'model',
  'duration_ms',
  'prompt_tokens',
  'completion_tokens',
  'outcome',
  'detail',
  'content',
] as const;

/** Audit entries, newest first; `before` is the id of the last entry of the previous page. */
export async function queryAudit(
  db: Db,
  f: {
    from?: Date;
    to?: Date;
    userId?: number;
    kind?: string;
    outcome?: string;
    limit: number;
    before?: number;
  },
): Promise<Page<AuditRow>> {
  const w = new Filters();
  if (f.from) w.add(`at >= ${w.p(f.from)}`);
  if (f.to) w.add(`at < ${w.p(f.to)}`);
  if (f.userId !== undefined) w.add(`user_id = ${w.p(f.userId)}`);
  if (f.kind !== undefined) w.add(`kind = ${w.p(f.kind)}`);
  if (f.outcome !== undefined) w.add(`outcome = ${w.p(f.outcome)}`);
  if (f.before !== undefined) w.add(`id < ${w.p(f.before)}`);
  const { rows } = await db.query<AuditRow>(
    `SELECT ${AUDIT_COLUMNS.join(', ')} FROM audit_log ${w.where} ORDER BY id DESC LIMIT ${w.p(f.limit + 1)}`,
    w.params,
  );
  const more = rows.length > f.limit;
  const page = rows.slice(0, f.limit);
  return { data: page, next_cursor: more ? String(page.at(-1)!.id) : null };
}

// ---------------------------------------------------------------- pairing

export type PairingStatus = 'pending' | 'approved' | 'denied' | 'expired';

export interface PairingRequest {
  id: string;
  platform: string;
  external_id: string;
  display_name: string;
  code: string;
  status: PairingStatus;
  created_at: Date;
  expires_at: Date;
  decided_at: Date | null;
  decided_by: string | null;
}

// a pending request past its expiry is expired, whether or not the cleanup has marked it yet
const PAIRING_COLUMNS = `id, platform, external_id, display_name, code,
  CASE WHEN status = 'pending' AND expires_at < now() THEN 'expired' ELSE status END AS status,
  created_at, expires_at, decided_at, decided_by`;

export async function listPairingRequests(
  db: Db,
  f: { status?: PairingStatus; limit: number },
): Promise<PairingRequest[]> {
  const w = new Filters();
  if (f.status)
    w.add(
      `(CASE WHEN status = 'pending' AND expires_at < now() THEN 'expired' ELSE status END) = ${w.p(f.status)}`,
    );
  const { rows } = await db.query<PairingRequest>(
    `SELECT ${PAIRING_COLUMNS} FROM pairing_requests ${w.where} ORDER BY created_at DESC, id LIMIT ${w.p(f.limit)}`,
    w.params,
  );
  return rows;
}

export async function getPairingRequest(db: Db, id: string): Promise<PairingRequest | undefined> {
  return (
    await db.query<PairingRequest>(`SELECT ${PAIRING_COLUMNS} FROM pairing_requests WHERE id = $1`, [id])
  ).rows[0];
}

export type PairingDecision =
  | { outcome: 'decided'; request: PairingRequest; userId: number | null }
  | { outcome: 'unknown' }
  | { outcome: 'not_pending'; request: PairingRequest };

/**
 * Approves or denies a pending request and writes the audit entry. Approval marks the sender's
 * identity approved (creating its user if the sender never got that far) before the request is
 * closed, so a failure in between leaves a pending request that can simply be approved again.
 */
export async function decidePairing(
  db: Db,
  d: { id: string; decision: 'approved' | 'denied'; actor: string },
): Promise<PairingDecision> {
  // claim the request first, and approve the identity in the same transaction: a concurrent
  // decision or an expiry can never leave a user approved by a request that was not
  const result = await transaction(db, async (c) => {
    const { rows } = await c.query<PairingRequest>(
      `UPDATE pairing_requests SET status = $2, decided_at = now(), decided_by = $3
       WHERE id = $1 AND status = 'pending' AND expires_at >= now() RETURNING ${PAIRING_COLUMNS}`,
      [d.id, d.decision, d.actor],
    );
    const decided = rows[0];
    if (!decided) return undefined;
    let userId: number | null = null;
    if (d.decision === 'approved') {
      userId = (
        await identify(c, {
          platform: decided.platform,
          externalId: decided.external_id,
          displayName: decided.display_name,
        })
      ).userId;
      await approveIdentity(c, decided.platform, decided.external_id);
    }
    return { decided, userId };
  });
  if (!result) {
    // unknown, decided by someone else, or expired
    const now = await getPairingRequest(db, d.id);
    return now ? { outcome: 'not_pending', request: now } : { outcome: 'unknown' };
  }
  const { decided, userId } = result;
  await writeAudit(db, {
    kind: d.decision === 'approved' ? 'pairing.approve' : 'pairing.deny',
    actor: d.actor,
    userId,
    platform: decided.platform,
    outcome: 'ok',
    detail: { pairing_id: decided.id, external_id: decided.external_id, display_name: decided.display_name },
  });
  return { outcome: 'decided', request: decided, userId };
}
