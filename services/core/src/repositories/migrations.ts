import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';

const DIR = path.resolve(import.meta.dirname, '../../migrations');
// one number for "the migration lock" across every core process and the migrate job
const LOCK = 4_711_001;

export interface Migration {
  version: string;
  name: string;
  sql: string;
  checksum: string;
}

/** The migration files, in order (NNNN_name.sql). */
export function migrationFiles(dir = DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const sql = readFileSync(path.join(dir, f), 'utf8');
      return {
        version: f.slice(0, 4),
        name: f.slice(5, -4),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    });
}

async function ensureTable(pool: Pool): Promise<void> {
  await pool.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
}

/** Versions not yet applied, and applied files that were edited afterwards (a mistake to report). */
export async function migrationStatus(
  pool: Pool,
  files = migrationFiles(),
): Promise<{ pending: Migration[]; changed: string[] }> {
  await ensureTable(pool);
  const { rows } = await pool.query<{ version: string; checksum: string }>(
    'SELECT version, checksum FROM schema_migrations',
  );
  const applied = new Map(rows.map((r) => [r.version, r.checksum]));
  return {
    pending: files.filter((m) => !applied.has(m.version)),
    changed: files
      .filter((m) => applied.has(m.version) && applied.get(m.version) !== m.checksum)
      .map((m) => `${m.version}_${m.name}`),
  };
}

/** Applies pending migrations, each in its own transaction, under an advisory lock (safe to run twice at once). */
export async function migrate(pool: Pool, files = migrationFiles()): Promise<string[]> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK]);
    await ensureTable(pool);
    const { pending } = await migrationStatus(pool, files);
    const done: string[] = [];
    for (const m of pending) {
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations(version, name, checksum) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          m.checksum,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${m.version}_${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      done.push(`${m.version}_${m.name}`);
    }
    return done;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK]).catch(() => {});
    client.release();
  }
}
