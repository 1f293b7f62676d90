import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { createPool, type Db } from '../src/repositories/db.ts';
import { migrate } from '../src/repositories/migrations.ts';

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  db: Db;
  drop(): Promise<void>;
}

/** A fresh, migrated database of its own (dropped at the end): tests never share tables. */
export async function createTestDatabase(
  opts: {
    migrate?: boolean;
    /** Connections in the pool (default 20; benchmarks sharing the server with tests use fewer). */
    poolMax?: number;
    /** Name prefix (default pincer_test). */
    prefix?: string;
    /** Leave the database in place at drop (for investigating a benchmark run). */
    keep?: boolean;
  } = {},
): Promise<TestDatabase> {
  const name = `${opts.prefix ?? 'pincer_test'}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const db = createPool(url, opts.poolMax ?? 20);
  if (opts.migrate !== false) await migrate(db);
  return {
    url,
    db,
    async drop() {
      await db.end();
      if (opts.keep) return console.log(`kept database ${name}`);
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A config dir with config.yaml and routing.yaml (the shipped routing rules unless given). */
export function writeConfigDir(config: Record<string, unknown>, routing?: unknown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pincer-core-'));
  writeFileSync(path.join(dir, 'config.yaml'), stringify(config));
  const routingText =
    routing === undefined
      ? readFileSync(path.resolve(import.meta.dirname, '../../../config/routing.yaml'), 'utf8')
      : typeof routing === 'string'
        ? routing
        : stringify(routing);
  writeFileSync(path.join(dir, 'routing.yaml'), routingText);
  return dir;
}
