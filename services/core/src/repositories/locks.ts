import type { Db } from './db.ts';

export interface ConversationLock {
  release(): Promise<void>;
}

/**
 * Takes a chat scope's turn (its conversations answer one message at a time) if nobody holds it: a Postgres advisory lock on a dedicated
 * connection, so a process that dies releases it with its connection.
 */
export async function tryScopeLock(db: Db, scope: string): Promise<ConversationLock | undefined> {
  const client = await db.connect();
  let ok = false;
  try {
    const { rows } = await client.query<{ ok: boolean }>({
      name: 'core.lock.try',
      text: 'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
      values: [scope],
    });
    ok = rows[0]!.ok;
  } finally {
    if (!ok) client.release();
  }
  if (!ok) return undefined;
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      try {
        await client.query({
          name: 'core.lock.release',
          text: 'SELECT pg_advisory_unlock(hashtextextended($1, 0))',
          values: [scope],
        });
        client.release();
      } catch (err) {
        // the connection is broken: destroy it, which frees the lock on the server
        client.release(err as Error);
      }
    },
  };
}
