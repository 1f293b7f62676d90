import { ftsDocument, ftsQuery } from '@pincer/knowledge';
import type { Queryable } from './db.ts';

export interface Memory {
  id: number;
  content: string;
  source: 'user' | 'extracted';
  created_at: Date;
  updated_at: Date;
}

/** The same fact said twice (case, spacing, punctuation) normalises to the same key. */
export function normalizeFact(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\p{P}\p{S}]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

const MEMORY_COLUMNS = 'id, content, source, created_at, updated_at';

export async function listMemories(db: Queryable, userId: number): Promise<Memory[]> {
  const { rows } = await db.query<Memory>({
    name: 'core.memory.list',
    text: `SELECT ${MEMORY_COLUMNS} FROM memories WHERE user_id = $1 ORDER BY id`,
    values: [userId],
  });
  return rows;
}

export async function countMemories(db: Queryable, userId: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM memories WHERE user_id = $1',
    [userId],
  );
  return rows[0]!.n;
}

/**
 * Stores a fact about a user; the same fact again only refreshes it (the first wording stays). Returns the memory and whether
 * it is new. Beyond `max` memories the oldest extracted ones (then the oldest of any kind) make room.
 */
export async function upsertMemory(
  db: Queryable,
  m: {
    userId: number;
    content: string;
    source: 'user' | 'extracted';
    messageId?: number | null;
    max: number;
  },
): Promise<{ memory: Memory; created: boolean }> {
  const { rows } = await db.query<Memory & { created: boolean }>(
    `WITH ins AS (
       INSERT INTO memories (user_id, content, normalized, source, fts, source_message_id)
       VALUES ($1, $2, $3, $4, to_tsvector('simple', $5), $6)
       ON CONFLICT (user_id, normalized) DO UPDATE SET updated_at = now(),
         source = CASE WHEN memories.source = 'user' THEN 'user' ELSE EXCLUDED.source END
       RETURNING ${MEMORY_COLUMNS}, (xmax = 0) AS created
     ), over AS (
       DELETE FROM memories WHERE id IN (
         SELECT id FROM memories WHERE user_id = $1 AND id <> (SELECT id FROM ins)
         ORDER BY (source = 'user') DESC, updated_at DESC, id DESC
         OFFSET GREATEST(0, $7 - 1)
       )
     )
     SELECT * FROM ins`,
    [
      m.userId,
      m.content,
      normalizeFact(m.content),
      m.source,
      ftsDocument(m.content),
      m.messageId ?? null,
      m.max,
    ],
  );
  const { created, ...memory } = rows[0]!;
  return { memory, created };
}

/** Replaces a memory's wording (a fact that changed); false if it is not this user's. */
export async function replaceMemory(
  db: Queryable,
  userId: number,
  id: number,
  content: string,
): Promise<boolean> {
  try {
    const { rowCount } = await db.query(
      `UPDATE memories SET content = $3, normalized = $4, fts = to_tsvector('simple', $5), updated_at = now()
       WHERE id = $2 AND user_id = $1`,
      [userId, id, content, normalizeFact(content), ftsDocument(content)],
    );
    return rowCount === 1;
  } catch (err) {
    // the new wording is already stored as another memory: the old one is redundant
    if ((err as { code?: string }).code === '23505')
      return deleteMemories(db, userId, [id]).then((n) => n.length > 0);
    throw err;
  }
}

/** Deletes the user's memories with these ids (others' ids are ignored); returns what was deleted. */
export async function deleteMemories(db: Queryable, userId: number, ids: number[]): Promise<Memory[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<Memory>(
    `DELETE FROM memories WHERE user_id = $1 AND id = ANY($2::bigint[]) RETURNING ${MEMORY_COLUMNS}`,
    [userId, ids],
  );
  return rows.sort((a, b) => a.id - b.id);
}

export async function deleteAllMemories(db: Queryable, userId: number): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM memories WHERE user_id = $1', [userId]);
  return rowCount ?? 0;
}

/** The user's memories with their relevance to a message (full-text rank, 0 when unrelated). */
export async function memoriesRanked(
  db: Queryable,
  userId: number,
  text: string,
): Promise<Array<Memory & { rank: number }>> {
  const q = ftsQuery(text);
  const { rows } = await db.query<Memory & { rank: number }>({
    name: 'core.memory.ranked',
    text: `SELECT ${MEMORY_COLUMNS},
       CASE WHEN $2 = '' THEN 0 ELSE ts_rank(fts, to_tsquery('simple', $2)) END AS rank
     FROM memories WHERE user_id = $1 ORDER BY id`,
    values: [userId, q],
  });
  return rows;
}

/**
 * What the user wrote in their answered exchanges not yet read by the extraction job, the oldest
 * `limit`, from chats where memory applies; `upto` is the newest message id considered (the next
 * watermark). The answers are left out: they quote documents and other sources, not the user.
 */
export async function pendingExchanges(
  db: Queryable,
  userId: number,
  opts: { inGroups: boolean; limit: number },
): Promise<{ questions: string[]; upto: number }> {
  const { rows } = await db.query<{ id: number; content: string }>(
    `SELECT q.id, q.content
     FROM users u
     JOIN messages q ON q.user_id = u.id AND q.role = 'user' AND q.id > u.memory_extracted_upto
       AND q.status = 'answered'
     JOIN conversations c ON c.id = q.conversation_id AND ($2 OR c.chat_type = 'direct')
     JOIN messages a ON a.reply_to = q.id AND a.status = 'complete'
     WHERE u.id = $1
     ORDER BY q.id LIMIT $3`,
    [userId, opts.inGroups, opts.limit],
  );
  return { questions: rows.map((r) => r.content), upto: rows.at(-1)?.id ?? 0 };
}

/** Marks everything the user has said so far as read by the extraction (after a forget). */
export async function skipPendingExchanges(db: Queryable, userId: number): Promise<void> {
  await db.query(
    `UPDATE users SET memory_extracted_upto = GREATEST(memory_extracted_upto,
       COALESCE((SELECT max(id) FROM messages WHERE user_id = $1 AND role = 'user'), 0))
     WHERE id = $1`,
    [userId],
  );
}

export async function advanceWatermark(db: Queryable, userId: number, upto: number): Promise<void> {
  await db.query(
    'UPDATE users SET memory_extracted_upto = GREATEST(memory_extracted_upto, $2) WHERE id = $1',
    [userId, upto],
  );
}
