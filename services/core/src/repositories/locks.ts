import type { Db, Queryable } from './db.ts';

export interface ScopeLock {
  /** The locked connection: the drain runs its queries on it (one connection per active chat). */
  readonly client: Queryable;
  /** True once the connection broke: the lock is gone and the work under it must stop. */
  readonly lost: boolean;
  /** Called once if the connection breaks while the lock is held. */
  onLost(fn: () => void): void;
  release(): Promise<void>;
}

/**
 * Takes a chat scope's turn (its conversations answer one message at a time) if nobody holds it: a
 * Postgres advisory lock on a dedicated connection, so a process that dies releases it with its
 * connection (the pool sets server-side TCP keepalives, so a vanished host counts as dead in ~1 min).
 */
export async function tryScopeLock(db: Db, scope: string): Promise<ScopeLock | undefined> {
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
  let lost = false;
  const lostHandlers: (() => void)[] = [];
  const onError = () => {
    // a terminated backend or a Postgres restart: without this listener the error would crash core
    if (lost) return;
    lost = true;
    for (const fn of lostHandlers) fn();
  };
  client.on('error', onError);
  return {
    client,
    get lost() {
      return lost;
    },
    onLost(fn) {
      if (lost) fn();
      else lostHandlers.push(fn);
    },
    async release() {
      if (released) return;
      released = true;
      try {
        if (lost) throw new Error('lock connection lost');
        await client.query({
          name: 'core.lock.release',
          text: 'SELECT pg_advisory_unlock(hashtextextended($1, 0))',
          values: [scope],
        });
        client.off('error', onError);
        client.release();
      } catch (err) {
        client.off('error', onError);
        // the connection is broken: destroy it, which frees the lock on the server
        client.release(err as Error);
      }
    },
  };
}
