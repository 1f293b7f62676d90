import type { Conversation } from './conversations.ts';
import type { Queryable } from './db.ts';

export interface StoredMessage {
  id: number;
  conversation_id: string;
  role: 'user' | 'assistant' | 'system';
  content: string;
  status: string;
  platform_message_id: string | null;
}

/** Stores an inbound user message; a redelivered platform message returns the existing row. */
export async function storeUserMessage(
  db: Queryable,
  m: {
    conversationId: string;
    userId: number | null;
    platform: string | null;
    chatId?: string | null;
    platformMessageId: string | null;
    orderKey: number;
    content: string;
    sentAt: Date | null;
    status: 'queued' | 'handled' | 'skipped' | 'answered';
    action?: string | null;
    meta?: MessageMeta | null;
  },
): Promise<{
  id: number;
  status: string;
  conversationId: string;
  created: boolean;
  /** A redelivered message's stored answer, if it has one. */
  reply?: { content: string; status: string };
}> {
  const ins = await db.query<{ id: number; status: string; conversation_id: string }>({
    name: 'core.message.store',
    text: `INSERT INTO messages(conversation_id, role, content, user_id, platform, chat_id, platform_message_id, order_key, status, sent_at, action, meta)
     VALUES ($1, 'user', $2, $3, $4, $11, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (platform, chat_id, platform_message_id) WHERE platform_message_id IS NOT NULL DO NOTHING
     RETURNING id, status, conversation_id`,
    values: [
      m.conversationId,
      withoutNul(m.content),
      m.userId,
      m.platform,
      m.platformMessageId,
      m.orderKey,
      m.status,
      m.sentAt,
      m.action ?? null,
      m.meta ? JSON.stringify(m.meta) : null,
      m.chatId ?? null,
    ],
  });
  if (ins.rows[0])
    return {
      id: ins.rows[0].id,
      status: ins.rows[0].status,
      conversationId: ins.rows[0].conversation_id,
      created: true,
    };
  const { rows } = await db.query<{
    id: number;
    status: string;
    conversation_id: string;
    reply_content: string | null;
    reply_status: string | null;
  }>(
    `SELECT m.id, m.status, m.conversation_id, a.content AS reply_content, a.status AS reply_status
     FROM messages m LEFT JOIN messages a ON a.reply_to = m.id
     WHERE m.platform = $1 AND m.chat_id = $2 AND m.platform_message_id = $3`,
    [m.platform, m.chatId ?? null, m.platformMessageId],
  );
  return {
    id: rows[0]!.id,
    status: rows[0]!.status,
    conversationId: rows[0]!.conversation_id,
    reply:
      rows[0]!.reply_content !== null
        ? { content: rows[0]!.reply_content, status: rows[0]!.reply_status! }
        : undefined,
    created: false,
  };
}

export async function messageStatus(db: Queryable, id: number): Promise<string | undefined> {
  return (
    await db.query<{ status: string }>({
      name: 'core.message.status',
      text: 'SELECT status FROM messages WHERE id = $1',
      values: [id],
    })
  ).rows[0]?.status;
}

/** What answering a message needs beyond its text. */
export interface MessageMeta {
  /** 1-based routing rule chosen on arrival. */
  route: number;
  chat_type: 'direct' | 'group';
  thread_id?: string;
  request_id?: string;
  /** Receipt time (ms) and platform time (ms), for latency figures. */
  received_at?: number;
  sent_at?: number;
  language?: string;
}

export interface QueuedMessage {
  id: number;
  content: string;
  user_id: number | null;
  platform_message_id: string | null;
  sent_at: Date | null;
  action: string | null;
  meta: MessageMeta | null;
  /** Times answering this message was started, this one included. */
  attempts?: number;
}

/** Postgres text cannot hold NUL characters; a model (or a user) can produce them. */
export function withoutNul(s: string): string {
  return s.includes('\u0000') ? s.replaceAll('\u0000', '') : s;
}

/**
 * The oldest message still waiting for an answer in a chat scope, across its conversations (a `/new`
 * switches conversations, yet earlier questions are still answered first), with its conversation
 * and whether an answer is already stored (a re-run after a crash).
 */
export async function oldestQueued(
  db: Queryable,
  scope: string,
): Promise<{ message: QueuedMessage; conversation: Conversation; hasReply: boolean } | undefined> {
  const { rows } = await db.query<
    QueuedMessage & {
      conversation_id: string;
      c_scope: string;
      c_platform: string;
      c_chat_id: string;
      c_chat_type: 'direct' | 'group';
      c_user_id: number | null;
      c_model: string | null;
      has_reply: boolean;
    }
  >({
    name: 'core.message.next',
    // counts the attempt as it picks the message: one that keeps failing is given up, not retried forever
    text: `WITH next AS (
       SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
       WHERE c.scope = $1 AND m.status = 'queued' ORDER BY m.order_key, m.id LIMIT 1
     ), m AS (
       UPDATE messages SET attempts = messages.attempts + 1 FROM next WHERE messages.id = next.id RETURNING messages.*
     )
     SELECT m.id, m.conversation_id, m.content, m.user_id, m.platform_message_id, m.sent_at, m.action, m.meta, m.attempts,
            c.scope AS c_scope, c.platform AS c_platform, c.chat_id AS c_chat_id, c.chat_type AS c_chat_type, c.user_id AS c_user_id, c.model AS c_model,
            EXISTS (SELECT 1 FROM messages a WHERE a.reply_to = m.id) AS has_reply
     FROM m JOIN conversations c ON c.id = m.conversation_id`,
    values: [scope],
  });
  const r = rows[0];
  if (!r) return undefined;
  return {
    message: {
      id: r.id,
      content: r.content,
      user_id: r.user_id,
      platform_message_id: r.platform_message_id,
      sent_at: r.sent_at,
      action: r.action,
      meta: r.meta,
      attempts: r.attempts,
    },
    conversation: {
      id: r.conversation_id,
      scope: r.c_scope,
      platform: r.c_platform,
      chat_id: r.c_chat_id,
      chat_type: r.c_chat_type,
      user_id: r.c_user_id,
      model: r.c_model,
    },
    hasReply: r.has_reply,
  };
}

/**
 * Earlier exchanges of the conversation before a question, newest first, for the prompt: each
 * answered question with its answer, in the order the questions were asked (commands and failed
 * answers left out). At most `limit` messages.
 */
export async function recentHistory(
  db: Queryable,
  conversationId: string,
  beforeId: number,
  limit: number,
): Promise<{ role: 'user' | 'assistant'; content: string }[]> {
  const { rows } = await db.query<{ q: string; a: string | null }>({
    name: 'core.message.history',
    text: `SELECT q.content AS q, CASE WHEN a.status IN ('complete', 'stopped') THEN a.content END AS a
     FROM messages q
     JOIN messages cur ON cur.id = $2
     LEFT JOIN messages a ON a.reply_to = q.id
     WHERE q.conversation_id = $1 AND q.role = 'user' AND q.status = 'answered' AND q.content <> ''
       AND (q.order_key, q.id) < (cur.order_key, cur.id)
     ORDER BY q.order_key DESC, q.id DESC LIMIT $3`,
    values: [conversationId, beforeId, limit],
  });
  const out: { role: 'user' | 'assistant'; content: string }[] = [];
  for (const r of rows) {
    if (r.a) out.push({ role: 'assistant', content: r.a });
    out.push({ role: 'user', content: r.q });
  }
  return out.slice(0, limit);
}

/**
 * Stores the answer, marks its question answered and writes its audit entry, in one statement
 * and once: a re-run after a crash changes nothing and writes no second audit entry.
 */
export async function storeReply(
  db: Queryable,
  r: {
    conversationId: string;
    replyTo: number;
    content: string;
    status: 'complete' | 'stopped' | 'failed';
    model: string | null;
    promptTokens: number | null;
    completionTokens: number | null;
    latencyMs: number;
    ttftMs: number | null;
  },
  audit: { userId: number | null; platform: string; outcome: string; content: string | null },
): Promise<boolean> {
  const { rows } = await db.query<{ inserted: number }>({
    name: 'core.reply.store',
    text: `WITH ins AS (
       INSERT INTO messages(conversation_id, role, content, status, reply_to, model, prompt_tokens, completion_tokens, latency_ms, ttft_ms)
       VALUES ($1, 'assistant', $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (reply_to) WHERE reply_to IS NOT NULL DO NOTHING RETURNING id
     ), answered AS (
       UPDATE messages SET status = 'answered' WHERE id = $4 AND status = 'queued' RETURNING id
     ), audited AS (
       INSERT INTO audit_log(kind, user_id, platform, conversation_id, model, duration_ms, prompt_tokens, completion_tokens, outcome, content)
       SELECT 'model.invoke', $10, $11, $1, $5, $8, $6, $7, $12, $13 WHERE EXISTS (SELECT 1 FROM ins) RETURNING id
     )
     SELECT (SELECT count(*) FROM ins)::int + 0 * (SELECT count(*) FROM answered) + 0 * (SELECT count(*) FROM audited) AS inserted`,
    values: [
      r.conversationId,
      withoutNul(r.content),
      r.status,
      r.replyTo,
      r.model,
      r.promptTokens,
      r.completionTokens,
      r.latencyMs,
      r.ttftMs,
      audit.userId,
      audit.platform,
      audit.outcome,
      audit.content,
    ],
  });
  return rows[0]!.inserted > 0;
}

/** Replaces what the chat log shows of a message (a `/remember` fact lives in memory instead). */
export async function replaceMessageContent(db: Queryable, id: number, content: string): Promise<void> {
  await db.query('UPDATE messages SET content = $2 WHERE id = $1', [id, withoutNul(content)]);
}

export async function setMessageStatus(
  db: Queryable,
  id: number,
  status: 'handled' | 'skipped' | 'answered' | 'failed',
): Promise<void> {
  await db.query(`UPDATE messages SET status = $2 WHERE id = $1 AND status = 'queued'`, [id, status]);
}

/** A finished reply already stored for this question (the job is a re-run). */
export async function existingReply(
  db: Queryable,
  replyTo: number,
): Promise<{ content: string; status: string } | undefined> {
  return (
    await db.query<{ content: string; status: string }>(
      'SELECT content, status FROM messages WHERE reply_to = $1',
      [replyTo],
    )
  ).rows[0];
}

/** An earlier answer a REST client sent as history, linked to the question it followed. */
export async function storeHistoryReply(
  db: Queryable,
  conversationId: string,
  replyTo: number,
  content: string,
): Promise<void> {
  await db.query(
    `INSERT INTO messages(conversation_id, role, content, status, reply_to) VALUES ($1, 'assistant', $2, 'complete', $3)`,
    [conversationId, content, replyTo],
  );
}
