/**
 * `pincer backup`, `pincer backup list` and `pincer restore`: the backup scripts (scripts/backup.sh,
 * scripts/restore.sh) run with core's own DATABASE_URL and config folder, so an operator needs
 * nothing but the one command.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { CliError, type Command, type Context, EXIT, intOption, writeList } from './command.ts';

/** scripts/ at the repository root, or /app/scripts in the core image (both three levels above cli/). */
function scriptsDir(env: NodeJS.ProcessEnv): string {
  return env.PINCER_SCRIPTS_DIR ?? path.resolve(import.meta.dirname, '../../../../scripts');
}

/** Whether a program is on PATH (the scripts need Postgres's client tools of the server's major version). */
function onPath(program: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? '').split(path.delimiter).some((dir) => dir && existsSync(path.join(dir, program)));
}

function requireTools(ctx: Context, tools: string[]): string {
  const dir = scriptsDir(ctx.env);
  const missing = tools.filter((t) => !onPath(t, ctx.env));
  if (missing.length)
    throw new CliError(
      `${missing.join(' and ')} not found on PATH: install Postgres's client tools of the server's major version ` +
        '(Debian: postgresql-client-16; the core image has them)',
    );
  if (!existsSync(path.join(dir, 'backup.sh')))
    throw new CliError(
      `the backup scripts are not in ${dir}: set PINCER_SCRIPTS_DIR to the folder holding backup.sh`,
    );
  return dir;
}

const backupDir = (ctx: Context) =>
  (ctx.values.dir as string | undefined) ?? ctx.env.BACKUP_DIR ?? './backups';

/**
 * DATABASE_URL as libpq's PG* variables: the scripts pass a URL to pg_dump/psql on their command
 * line, where every user of the host could read its password in `ps`; variables stay private.
 */
export function pgEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { DATABASE_URL: url, ...rest } = env;
  if (!url) return rest;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CliError('DATABASE_URL is not a URL (postgres://user:password@host:5432/db)', EXIT.usage);
  }
  const out: NodeJS.ProcessEnv = { ...rest };
  if (u.hostname) out.PGHOST = decodeURIComponent(u.hostname.replace(/^\[|\]$/g, ''));
  if (u.port) out.PGPORT = u.port;
  if (u.username) out.PGUSER = decodeURIComponent(u.username);
  if (u.password) out.PGPASSWORD = decodeURIComponent(u.password);
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (db) out.PGDATABASE = db;
  const params: Record<string, string> = {
    sslmode: 'PGSSLMODE',
    host: 'PGHOST',
    port: 'PGPORT',
    user: 'PGUSER',
    password: 'PGPASSWORD',
    dbname: 'PGDATABASE',
  };
  for (const [k, v] of u.searchParams) if (params[k]) out[params[k]] = v;
  return out;
}

/** Runs a script with the scripts' environment; its progress lines go to our stderr, its stdout is returned. */
function run(ctx: Context, script: string, args: string[], extraEnv: Record<string, string>) {
  return new Promise<{ code: number; stdout: string }>((resolve, reject) => {
    const child = spawn('bash', [script, ...args], {
      env: { ...pgEnvironment(ctx.env), ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Ctrl-C reaches the script too (same process group): wait for it to remove its partial files
    const wait = () => {};
    process.on('SIGINT', wait);
    process.on('SIGTERM', wait);
    child.on('close', () => {
      process.off('SIGINT', wait);
      process.off('SIGTERM', wait);
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => ctx.stderr.write(d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 + 15 : 1), stdout }));
  });
}

const ARCHIVE = /^pincer-(\d{8}T\d{6}Z)\.tar\.gz$/;

export const backupCommands: Command[] = [
  {
    path: ['backup'],
    args: '[--dir DIR] [--keep-days N] [--json]',
    summary: 'Back up the database and the config folder into one dated archive',
    details: `Runs scripts/backup.sh with core's DATABASE_URL and PINCER_CONFIG_DIR: a pg_dump of the
database and a copy of the config folder (never .env), with checksums, written as
DIR/pincer-YYYYmmddTHHMMSSZ.tar.gz. Archives older than --keep-days are pruned after a
successful run. Prints the archive's path; exit 1 if the backup failed (no partial archive is left).

  --dir DIR        where archives go (default: BACKUP_DIR, else ./backups; in compose /backups,
                   which is the backup job's folder)
  --keep-days N    prune archives older than N days (default: BACKUP_KEEP_DAYS, else 7)

Compose: docker compose exec -u root core pincer backup   (the backup folder belongs to the
backup job, which runs as root)`,
    options: { dir: { type: 'string' }, 'keep-days': { type: 'string' }, json: { type: 'boolean' } },
    async run(ctx) {
      if (ctx.positionals.length) return ctx.usage(`unexpected argument "${ctx.positionals[0]}"`);
      const keep = intOption(ctx, 'keep-days', Number(ctx.env.BACKUP_KEEP_DAYS ?? 7) || 7);
      if (!ctx.env.DATABASE_URL && !ctx.env.PGHOST && !ctx.env.PGDATABASE)
        throw new CliError('DATABASE_URL is not set (the database core uses)', EXIT.usage);
      const dir = requireTools(ctx, ['pg_dump', 'pg_restore']);
      const out = await run(ctx, path.join(dir, 'backup.sh'), [], {
        BACKUP_DIR: backupDir(ctx),
        BACKUP_KEEP_DAYS: String(keep),
      });
      const archive = out.stdout.trim().split('\n').at(-1);
      if (out.code !== 0 || !archive)
        throw new CliError('backup failed (see the lines above); no archive was written');
      const bytes = (await stat(archive)).size;
      if (ctx.values.json) ctx.stdout.write(`${JSON.stringify({ archive, bytes })}\n`);
      else ctx.stdout.write(`${archive}\n`);
    },
  },
  {
    path: ['backup', 'list'],
    args: '[--dir DIR] [--json]',
    summary: 'List the backup archives, newest first',
    options: { dir: { type: 'string' }, json: { type: 'boolean' } },
    async run(ctx) {
      if (ctx.positionals.length) return ctx.usage(`unexpected argument "${ctx.positionals[0]}"`);
      const dir = backupDir(ctx);
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        throw new CliError(`cannot read ${dir}: ${(err as Error).message}`);
      }
      const rows = await Promise.all(
        names
          .filter((n) => ARCHIVE.test(n))
          .sort()
          .reverse()
          .map(async (n) => {
            const s = ARCHIVE.exec(n)![1]!;
            const at = `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`;
            return { archive: path.join(dir, n), taken_at: at, bytes: (await stat(path.join(dir, n))).size };
          }),
      );
      writeList(ctx, rows, `no backup archives in ${dir}`, ['TAKEN AT', 'SIZE', 'ARCHIVE'], (r) => [
        r.taken_at,
        String(r.bytes),
        r.archive,
      ]);
    },
  },
  {
    path: ['restore'],
    args: '<archive> [--force] [--config-to DIR] [--verify]',
    summary: 'Verify a backup archive and restore it into the database, in one transaction',
    details: `Runs scripts/restore.sh with core's DATABASE_URL. The archive's checksums are verified
first; the restore either fully succeeds or changes nothing.

  --verify         only verify the archive and print its manifest (touches no database)
  --force          restore into a database that already has tables (objects in the backup are
                   dropped and recreated)
  --config-to DIR  also extract the archived config folder into DIR

Stop core first (docker compose stop core), then:
  docker compose run --rm --no-deps -u root core pincer restore /backups/pincer-….tar.gz`,
    options: { force: { type: 'boolean' }, 'config-to': { type: 'string' }, verify: { type: 'boolean' } },
    async run(ctx) {
      const [archive, ...extra] = ctx.positionals;
      if (!archive) return ctx.usage('which archive? (pincer backup list shows them)');
      if (extra.length) return ctx.usage(`unexpected argument "${extra[0]}"`);
      if (!existsSync(archive)) throw new CliError(`no such archive: ${archive}`);
      if (!ctx.values.verify && !ctx.env.DATABASE_URL && !ctx.env.PGHOST && !ctx.env.PGDATABASE)
        throw new CliError('DATABASE_URL is not set (the database to restore into)', EXIT.usage);
      const dir = requireTools(ctx, ['pg_restore', 'psql']);
      const args = [
        ...(ctx.values.force ? ['--force'] : []),
        ...(ctx.values.verify ? ['--verify'] : []),
        ...(ctx.values['config-to'] ? ['--config-to', ctx.values['config-to'] as string] : []),
        archive,
      ];
      const out = await run(ctx, path.join(dir, 'restore.sh'), args, {});
      ctx.stdout.write(out.stdout);
      if (out.code !== 0)
        throw new CliError('restore failed (see the lines above); the database was not changed');
    },
  },
];
