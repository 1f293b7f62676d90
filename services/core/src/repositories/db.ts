import pg from 'pg';

export type Db = pg.Pool;
export type DbClient = pg.PoolClient;
/** A pool or a client inside a transaction: repository functions take either. */
export type Queryable = Pick<pg.Pool, 'query'>;

// bigint columns (ids, counts) as numbers: ours stay far below 2^53
pg.types.setTypeParser(20, (v) => Number(v));

export function createPool(url: string, max: number, opts: { durable?: boolean } = {}): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
    application_name: 'pincer-core',
    keepAlive: true,
    // the server drops a vanished client (and its advisory locks) within about a minute, not hours
    options: `-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3${opts.durable === false ? ' -c synchronous_commit=off' : ''}`,
  });
  // an idle client losing its connection (Postgres restart) must not crash the process
  pool.on('error', () => {});
  return pool;
}

/** Runs `fn` in a transaction on one client. */
export async function transaction<T>(db: Db, fn: (c: DbClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
