import type { Db, Queryable } from './db.ts';

export interface Conversation {
  id: string;
  scope: string;
  platform: string;
  chat_id: string;
  chat_type: 'direct' | 'group';
  user_id: number | null;
  model: string | null;
}

const COLUMNS = 'id, scope, platform, chat_id, chat_type, user_id, model';

/** The active conversation of a scope, started if there is none. */
export async function activeConversation(
  db: Queryable,
  s: {
    scope: string;
    platform: string;
    chatId: string;
    chatType: 'direct' | 'group';
    userId: number | null;
    title?: string;
  },
): Promise<Conversation> {
  const found = await db.query<Conversation>({
    name: 'core.conversation.active',
    text: `SELECT ${COLUMNS} FROM conversations WHERE scope = $1 AND active`,
    values: [s.scope],
  });
  if (found.rows[0]) return found.rows[0];
  const ins = await db.query<Conversation>(
    `INSERT INTO conversations(scope, platform, chat_id, chat_type, user_id, title) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (scope) WHERE active DO NOTHING RETURNING ${COLUMNS}`,
    [s.scope, s.platform, s.chatId, s.chatType, s.userId, s.title ?? ''],
  );
  if (ins.rows[0]) return ins.rows[0];
  const again = await db.query<Conversation>(
    `SELECT ${COLUMNS} FROM conversations WHERE scope = $1 AND active`,
    [s.scope],
  );
  return again.rows[0]!;
}

/** Ends the scope's active conversation and starts a fresh one (keeping its chosen model). */
export async function startNewConversation(db: Db, current: Conversation): Promise<Conversation> {
  await db.query('UPDATE conversations SET active = false, updated_at = now() WHERE id = $1 AND active', [
    current.id,
  ]);
  const { rows } = await db.query<Conversation>(
    `INSERT INTO conversations(scope, platform, chat_id, chat_type, user_id, model)
     SELECT scope, platform, chat_id, chat_type, user_id, model FROM conversations WHERE id = $1
     ON CONFLICT (scope) WHERE active DO NOTHING RETURNING ${COLUMNS}`,
    [current.id],
  );
  return (
    rows[0] ??
    (
      await db.query<Conversation>(`SELECT ${COLUMNS} FROM conversations WHERE scope = $1 AND active`, [
        current.scope,
      ])
    ).rows[0]!
  );
}

export async function setConversationModel(db: Db, id: string, model: string | null): Promise<void> {
  await db.query('UPDATE conversations SET model = $2, updated_at = now() WHERE id = $1', [id, model]);
}

export async function getConversation(db: Db, id: string): Promise<Conversation | undefined> {
  return (await db.query<Conversation>(`SELECT ${COLUMNS} FROM conversations WHERE id = $1`, [id])).rows[0];
}

/** The active conversation of a scope, if there is one. */
export async function findActiveConversation(
  db: Queryable,
  scope: string,
): Promise<Conversation | undefined> {
  const { rows } = await db.query<Conversation>({
    name: 'core.conversation.active',
    text: `SELECT ${COLUMNS} FROM conversations WHERE scope = $1 AND active`,
    values: [scope],
  });
  return rows[0];
}
