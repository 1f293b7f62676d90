// scripts/backup.sh, restore.sh and backup-cron.sh against a real Postgres: a backup of a populated
// core database restores into a fresh one with every row equal; the failure paths are loud and safe.
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../services/core/test/db-harness.ts';

const root = path.resolve(import.meta.dirname, '..');
const BACKUP = path.join(root, 'scripts/backup.sh');
const RESTORE = path.join(root, 'scripts/restore.sh');
const CRON = path.join(root, 'scripts/backup-cron.sh');
const ARCHIVE_RE = /^pincer-\d{8}T\d{6}Z\.tar\.gz$/;
const UNREACHABLE = 'postgres://postgres@127.0.0.1:1/pincer';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a script to completion (killed after 60 s), never throwing: the exit code is the result. */
function run(file: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [file, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000, cwd: root },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Polls until `check` returns a value (not undefined) or the deadline passes. */
async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves with the promise, or rejects when it has not settled within `ms`. */
async function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const archives = (dir: string) =>
  readdirSync(dir)
    .filter((f) => ARCHIVE_RE.test(f))
    .sort();
const leftovers = (dir: string) =>
  readdirSync(dir).filter((f) => f.includes('.partial') || f.startsWith('.work-'));

function metrics(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(path.join(dir, 'metrics'), 'utf8').split('\n')) {
    const m = /^([a-z_]+) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Every table's row count and a hash of all its rows (sorted), keyed by table name. */
async function snapshot(t: TestDatabase): Promise<Map<string, string>> {
  const { rows: tables } = await t.db.query<{ name: string }>(
    `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS name FROM information_schema.tables
     WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  );
  const out = new Map<string, string>();
  for (const { name } of tables) {
    const { rows } = await t.db.query<{ n: string; h: string | null }>(
      `SELECT count(*)::text AS n, md5(string_agg(t::text, ',' ORDER BY t::text)) AS h FROM ${name} t`,
    );
    out.set(name, `${rows[0]!.n}:${rows[0]!.h ?? ''}`);
  }
  // sequences too: new rows after a restore must not collide with restored ids
  const { rows: seqs } = await t.db.query<{ name: string; v: string }>(
    `SELECT schemaname || '.' || sequencename AS name, coalesce(last_value, 0)::text AS v FROM pg_sequences ORDER BY 1`,
  );
  for (const s of seqs) out.set(`seq ${s.name}`, s.v);
  return out;
}

/** Realistic content: users with identities, chats in several scripts, replies, keys, pairing, audit. */
async function populate(t: TestDatabase): Promise<void> {
  const texts = [
    '你好，请帮我总结一下今天的会议纪要。',
    'こんにちは！明日の天気はどうですか？',
    '안녕하세요, 번역 부탁드립니다.',
    'Emoji party 🦀🚀🎉👩‍👩‍👧‍👦 and flags 🇨🇳🇯🇵',
    'مرحبا، كيف حالك؟ (right-to-left)',
    'Quotes \' " \\ backslash, tab\tand\nnewline, combining é vs é',
    'Ünïcödé — “smart quotes” … and math ∑∫√',
  ];
  await t.db.query(`INSERT INTO users (display_name) VALUES ('张伟'), ('Алиса'), ('Bob 🐙'), ('')`);
  await t.db
    .query(`INSERT INTO identities (platform, external_id, user_id, display_name, username, approved) VALUES
    ('telegram', '1001', 1, '张伟', 'zhangwei', true), ('feishu', 'ou_7d8a6e6df7621556ce0d21922b676706ccs', 1, '张伟', NULL, true),
    ('telegram', '1002', 2, 'Алиса', 'alice', false), ('feishu', 'ou_bob', 3, 'Bob 🐙', NULL, true)`);
  await t.db
    .query(`INSERT INTO conversations (id, scope, platform, chat_id, chat_type, user_id, title, model, active) VALUES
    ('11111111-1111-4111-8111-111111111111', 'telegram:1001', 'telegram', '1001', 'direct', 1, '会议纪要', 'qwen2.5', true),
    ('22222222-2222-4222-8222-222222222222', 'feishu:oc_group', 'feishu', 'oc_group', 'group', NULL, '团队群 🎉', NULL, true),
    ('33333333-3333-4333-8333-333333333333', 'telegram:1002', 'telegram', '1002', 'direct', 2, 'old', 'kimi-k2.5', false)`);
  // a few hundred messages: user turns with platform ids and meta, assistant replies with usage
  await t.db.query(
    `INSERT INTO messages (conversation_id, role, content, user_id, platform, chat_id, platform_message_id, order_key,
                           status, attempts, action, meta, created_at)
     SELECT c.id, 'user', ($1::text[])[1 + i % array_length($1::text[], 1)] || ' #' || i, c.user_id, c.platform, c.chat_id,
            (1000 + i)::text, i, CASE WHEN i % 50 = 0 THEN 'queued' ELSE 'answered' END, 1, 'process_with_llm',
            jsonb_build_object('thread', 't' || i, 'mentions', jsonb_build_array('@bot', '机器人'), 'n', i),
            timestamptz '2025-01-01 00:00:00+00' + i * interval '1 minute'
     FROM generate_series(1, 300) i
     CROSS JOIN LATERAL (SELECT * FROM conversations ORDER BY id OFFSET i % 3 LIMIT 1) c`,
    [texts],
  );
  await t.db.query(
    `INSERT INTO messages (conversation_id, role, content, reply_to, model, prompt_tokens, completion_tokens,
                           latency_ms, ttft_ms, status, sent_at, created_at)
     SELECT m.conversation_id, 'assistant', '回答：' || m.content || ' ✅', m.id, 'qwen2.5', 100 + m.id, 20 + m.id % 7,
            800 + m.id, 120, CASE WHEN m.id % 13 = 0 THEN 'failed' ELSE 'complete' END, m.created_at + interval '2 seconds',
            m.created_at + interval '1 second'
     FROM messages m WHERE m.status = 'answered'`,
  );
  await t.db.query(`INSERT INTO api_keys (name, key_hash, role, last_used_at, revoked_at) VALUES
    ('ops 运维', 'sha256:' || md5('a'), 'admin', now(), NULL), ('old', 'sha256:' || md5('b'), 'user', NULL, now())`);
  await t.db
    .query(`INSERT INTO pairing_requests (platform, external_id, display_name, code, status, expires_at, decided_at, decided_by)
    VALUES ('telegram', '1002', 'Алиса', 'K7Q2XZ', 'pending', now() + interval '1 hour', NULL, NULL),
           ('feishu', 'ou_bob', 'Bob 🐙', 'AB12CD', 'approved', now(), now(), 'admin:ops')`);
  await t.db.query(
    `INSERT INTO audit_log (at, kind, actor, user_id, platform, conversation_id, model, duration_ms, prompt_tokens,
                            completion_tokens, outcome, detail, content)
     SELECT timestamptz '2025-01-01 00:00:00+00' + i * interval '1 minute', 'llm_request', 'core', 1 + i % 3, 'telegram',
            '11111111-1111-4111-8111-111111111111', 'qwen2.5', 900 + i, 100, 20, CASE WHEN i % 9 = 0 THEN 'error' ELSE 'ok' END,
            jsonb_build_object('node', 'ollama-0', 'retries', i % 2, 'note', '重试 🔁'), NULL
     FROM generate_series(1, 200) i`,
  );
  await t.db.query(`INSERT INTO audit_log (kind, actor, outcome, detail, content)
    VALUES ('admin_action', 'admin:ops', 'ok', '{"action":"approve_pairing","code":"AB12CD"}', '批准配对 👍')`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const hasBusyboxHttpd = (() => {
  const r = spawnSync(
    'sh',
    ['-c', 'busybox --list 2>/dev/null | grep -qx httpd || command -v busybox-extras'],
    {
      stdio: 'ignore',
    },
  );
  return r.status === 0;
})();

describe('backup and restore (scripts/backup.sh, scripts/restore.sh)', () => {
  const dbs: TestDatabase[] = [];
  const dirs: string[] = [];
  const tmp = (prefix: string) => {
    const d = mkdtempSync(path.join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  const fresh = async (migrate: boolean) => {
    const t = await createTestDatabase({ migrate });
    dbs.push(t);
    return t;
  };
  let source: TestDatabase;
  let target: TestDatabase;
  let configDir: string;
  let backupDir: string;
  let archive: string;
  let sourceSnapshot: Map<string, string>;
  let env: Record<string, string>;

  before(async () => {
    source = await fresh(true);
    await populate(source);
    sourceSnapshot = await snapshot(source);
    configDir = tmp('pincer-backup-config-');
    writeFileSync(path.join(configDir, 'config.yaml'), 'policies:\n  direct: pairing # 配对\n');
    writeFileSync(path.join(configDir, 'models.yml'), readFileSync(path.join(root, 'config/models.yml')));
    writeFileSync(path.join(configDir, 'routing.yaml'), readFileSync(path.join(root, 'config/routing.yaml')));
    writeFileSync(path.join(configDir, '.env.example'), 'LLM_PROXY_API_KEY=\n');
    writeFileSync(path.join(configDir, '.env'), 'LLM_PROXY_API_KEY=super-secret-value\n');
    writeFileSync(path.join(configDir, '.env.production'), 'POSTGRES_PASSWORD=another-secret\n');
    mkdirSync(path.join(configDir, 'prompts'));
    writeFileSync(path.join(configDir, 'prompts', 'system.md'), '你是一个乐于助人的助手。\n');
    backupDir = tmp('pincer-backups-');
    env = { DATABASE_URL: source.url, BACKUP_DIR: backupDir, PINCER_CONFIG_DIR: configDir };
  });

  after(async () => {
    for (const t of dbs) await t.drop().catch(() => {});
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('the source database holds what a running stack holds', () => {
    const counts = Object.fromEntries([...sourceSnapshot].map(([k, v]) => [k, Number(v.split(':')[0])]));
    assert.equal(counts['public.users'], 4);
    assert.ok(counts['public.messages']! > 500);
    assert.ok(counts['public.audit_log']! > 200);
    assert.ok(counts['public.schema_migrations']! >= 1, 'migrations were applied');
  });

  it('backup.sh writes one dated archive with the dump, the config (no secrets) and a manifest', async () => {
    const started = Math.floor(Date.now() / 1000);
    const r = await run(BACKUP, [], env);
    assert.equal(r.code, 0, r.stderr);
    const names = archives(backupDir);
    assert.equal(names.length, 1, readdirSync(backupDir).join(','));
    archive = path.join(backupDir, names[0]!);
    assert.equal(r.stdout.trim(), archive, 'prints the archive path');
    assert.deepEqual(leftovers(backupDir), []);
    assert.equal(statSync(archive).mode & 0o077, 0, 'the archive is readable by its owner only');

    const x = tmp('pincer-backup-x-');
    const tar = spawnSync('tar', ['-xzf', archive, '-C', x], { encoding: 'utf8' });
    assert.equal(tar.status, 0, tar.stderr);
    const top = path.join(x, names[0]!.replace(/\.tar\.gz$/, ''));
    const files = spawnSync('find', ['.', '-type', 'f'], { cwd: top, encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map((f) => f.slice(2))
      .sort();
    assert.deepEqual(files, [
      'config.sha256',
      'config/.env.example',
      'config/config.yaml',
      'config/models.yml',
      'config/prompts/system.md',
      'config/routing.yaml',
      'manifest',
      'pincer.dump',
    ]);
    assert.equal(
      readFileSync(path.join(top, 'config/prompts/system.md'), 'utf8'),
      readFileSync(path.join(configDir, 'prompts/system.md'), 'utf8'),
    );
    const all = spawnSync('grep', ['-r', '-l', 'secret', top], { encoding: 'utf8' }).stdout;
    assert.equal(all, '', 'no secret from .env files is in the archive');

    const manifest = Object.fromEntries(
      readFileSync(path.join(top, 'manifest'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const dump = readFileSync(path.join(top, 'pincer.dump'));
    assert.equal(manifest.dump_sha256, createHash('sha256').update(dump).digest('hex'));
    assert.equal(Number(manifest.dump_size_bytes), dump.length);
    assert.equal(manifest.database, new URL(source.url).pathname.slice(1));
    assert.match(manifest.pg_dump_version!, /^pg_dump \(PostgreSQL\) \d+/);
    assert.match(manifest.server_version!, /^\d+/);
    assert.equal(manifest.config_files, '5');
    assert.ok(Number(manifest.config_size_bytes) > 0);
    assert.equal(dump.subarray(0, 5).toString(), 'PGDMP', 'custom-format dump');

    const lastSuccess = Number(readFileSync(path.join(backupDir, 'last_success'), 'utf8').trim());
    const now = Math.floor(Date.now() / 1000);
    assert.ok(lastSuccess >= started && lastSuccess <= now, `last_success ${lastSuccess}`);
    const text = readFileSync(path.join(backupDir, 'metrics'), 'utf8');
    for (const name of [
      'pincer_backup_last_success_timestamp_seconds',
      'pincer_backup_last_duration_seconds',
      'pincer_backup_last_size_bytes',
    ]) {
      assert.match(text, new RegExp(`^# HELP ${name} .+$`, 'm'));
      assert.match(text, new RegExp(`^# TYPE ${name} gauge$`, 'm'));
    }
    const m = metrics(backupDir);
    assert.equal(m.get('pincer_backup_last_success_timestamp_seconds'), lastSuccess);
    assert.equal(m.get('pincer_backup_last_size_bytes'), statSync(archive).size);
    assert.ok(m.get('pincer_backup_last_duration_seconds')! >= 0);
    assert.equal(m.has('pincer_backup_last_failure_timestamp_seconds'), false);
  });

  it('restore.sh into a fresh database: every table and sequence is equal', async () => {
    target = await fresh(false);
    const r = await run(RESTORE, [archive], { DATABASE_URL: target.url });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /sha256 ok/);
    const restored = await snapshot(target);
    assert.deepEqual([...restored.keys()], [...sourceSnapshot.keys()]);
    for (const [table, digest] of sourceSnapshot) assert.equal(restored.get(table), digest, table);
    // the restored database keeps working: new rows get fresh ids
    const { rows } = await target.db.query<{ id: number }>(
      `INSERT INTO users (display_name) VALUES ('after restore') RETURNING id`,
    );
    assert.equal(rows[0]!.id, 5);
    await target.db.query(`DELETE FROM users WHERE id = 5`);
  });

  it('restore.sh refuses a database that already has tables, and changes nothing', async () => {
    await target.db.query(`INSERT INTO users (display_name) VALUES ('only in target 🧪')`);
    const before = await snapshot(target);
    const r = await run(RESTORE, [archive], { DATABASE_URL: target.url });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /refusing to restore: database \S+ is not empty/);
    assert.match(r.stderr, /--force/);
    assert.deepEqual(await snapshot(target), before);
  });

  it('restore.sh --force replaces the backed-up objects; --config-to extracts the config', async () => {
    const cfg = path.join(tmp('pincer-restore-cfg-'), 'config');
    const r = await run(RESTORE, ['--force', '--config-to', cfg, archive], { DATABASE_URL: target.url });
    assert.equal(r.code, 0, r.stderr);
    const restored = await snapshot(target);
    for (const [table, digest] of sourceSnapshot) assert.equal(restored.get(table), digest, table);
    for (const f of ['config.yaml', 'models.yml', 'routing.yaml', 'prompts/system.md', '.env.example'])
      assert.equal(readFileSync(path.join(cfg, f), 'utf8'), readFileSync(path.join(configDir, f), 'utf8'), f);
    assert.equal(existsSync(path.join(cfg, '.env')), false);
    // a non-empty --config-to is refused without --force, before the database is touched
    const again = await run(RESTORE, ['--config-to', cfg, archive], { DATABASE_URL: target.url });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /is not empty/);
  });

  it('restore.sh rejects a damaged archive (checksum) and bad usage, touching nothing', async () => {
    const x = tmp('pincer-damaged-');
    spawnSync('tar', ['-xzf', archive, '-C', x]);
    const top = readdirSync(x)[0]!;
    const dumpPath = path.join(x, top, 'pincer.dump');
    const dump = readFileSync(dumpPath);
    dump[dump.length - 10] = dump[dump.length - 10]! ^ 0xff;
    writeFileSync(dumpPath, dump);
    const damaged = path.join(x, 'damaged.tar.gz');
    assert.equal(spawnSync('tar', ['-czf', damaged, '-C', x, top]).status, 0);
    const before = await snapshot(target);
    const r = await run(RESTORE, ['--force', damaged], { DATABASE_URL: target.url });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /checksum mismatch/);
    assert.deepEqual(await snapshot(target), before);

    const truncated = path.join(x, 'truncated.tar.gz');
    writeFileSync(truncated, readFileSync(archive).subarray(0, 200));
    const t = await run(RESTORE, [truncated], { DATABASE_URL: target.url });
    assert.notEqual(t.code, 0);
    assert.match(t.stderr, /not a readable \.tar\.gz/);

    const none = await run(RESTORE, [], {});
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /^usage: /m);
    const bad = await run(RESTORE, ['--bogus', archive], {});
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown option --bogus/);
    const missing = await run(RESTORE, [path.join(x, 'nope.tar.gz')], {});
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /does not exist/);
  });

  it('a backup with an unreachable database fails loudly, leaves no archive, records the failure', async () => {
    const prev = metrics(backupDir);
    const prevLast = readFileSync(path.join(backupDir, 'last_success'), 'utf8');
    const before = archives(backupDir);
    const started = Math.floor(Date.now() / 1000);
    const r = await run(BACKUP, [], { ...env, DATABASE_URL: UNREACHABLE, PGCONNECT_TIMEOUT: '3' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /pg_dump failed/);
    assert.match(r.stderr, /FAILED/);
    assert.deepEqual(archives(backupDir), before);
    assert.deepEqual(leftovers(backupDir), []);
    const m = metrics(backupDir);
    const failedAt = m.get('pincer_backup_last_failure_timestamp_seconds');
    assert.ok(failedAt !== undefined && failedAt >= started, `failure recorded: ${failedAt}`);
    for (const k of ['pincer_backup_last_success_timestamp_seconds', 'pincer_backup_last_size_bytes'])
      assert.equal(m.get(k), prev.get(k), `${k} kept`);
    assert.equal(readFileSync(path.join(backupDir, 'last_success'), 'utf8'), prevLast);
    assert.match(
      readFileSync(path.join(backupDir, 'metrics'), 'utf8'),
      /^# TYPE pincer_backup_last_failure_timestamp_seconds gauge$/m,
    );

    // other failures: an unreadable config folder, a bad setting
    const noConfig = await run(BACKUP, [], { ...env, PINCER_CONFIG_DIR: path.join(backupDir, 'missing') });
    assert.notEqual(noConfig.code, 0);
    assert.match(noConfig.stderr, /config folder .* does not exist/);
    const badKeep = await run(BACKUP, [], { ...env, BACKUP_KEEP_DAYS: 'week' });
    assert.notEqual(badKeep.code, 0);
    assert.match(badKeep.stderr, /BACKUP_KEEP_DAYS/);
    assert.deepEqual(archives(backupDir), before);
    assert.deepEqual(leftovers(backupDir), []);

    // the next success keeps the (latest) failure time (alerts can compare the two)
    const lastFailure = metrics(backupDir).get('pincer_backup_last_failure_timestamp_seconds');
    assert.ok(lastFailure !== undefined && lastFailure >= failedAt);
    const ok = await run(BACKUP, [], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(metrics(backupDir).get('pincer_backup_last_failure_timestamp_seconds'), lastFailure);
  });

  it('retention prunes archives older than BACKUP_KEEP_DAYS after a success, never after a failure', async () => {
    const dir = tmp('pincer-retention-');
    const day = 86_400_000;
    const old = (name: string, daysAgo: number) => {
      const f = path.join(dir, name);
      writeFileSync(f, 'old archive');
      const t = new Date(Date.now() - daysAgo * day);
      utimesSync(f, t, t);
      return name;
    };
    const ancient = old('pincer-20240101T033000Z.tar.gz', 30);
    const expired = old('pincer-20240110T033000Z.tar.gz', 3.2);
    const recent = old('pincer-20240111T033000Z.tar.gz', 2);
    const other = old('notes.txt', 30);
    const renv = { ...env, BACKUP_DIR: dir, BACKUP_KEEP_DAYS: '3' };

    const failed = await run(BACKUP, [], { ...renv, DATABASE_URL: UNREACHABLE, PGCONNECT_TIMEOUT: '3' });
    assert.notEqual(failed.code, 0);
    assert.deepEqual(archives(dir), [ancient, expired, recent], 'nothing pruned after a failure');

    const r = await run(BACKUP, [], renv);
    assert.equal(r.code, 0, r.stderr);
    const left = archives(dir);
    assert.equal(left.length, 2, left.join(','));
    assert.equal(left[0], recent);
    assert.equal(path.join(dir, left[1]!), r.stdout.trim(), 'the new archive is kept');
    assert.ok(existsSync(path.join(dir, other)), 'files that are not archives are left alone');
    assert.match(r.stderr, /pruned .*pincer-20240101T033000Z/);
  });
});

describe(
  'backup-cron.sh (the compose backup service)',
  { skip: !hasBusyboxHttpd && 'no busybox httpd here' },
  () => {
    const dirs: string[] = [];
    const children: ChildProcess[] = [];
    let source: TestDatabase;

    before(async () => {
      source = await createTestDatabase();
      await source.db.query(`INSERT INTO users (display_name) VALUES ('cron 🕒')`);
    });
    after(async () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await source.drop().catch(() => {});
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    async function start(dir: string, port: number) {
      const child = spawn('sh', [CRON], {
        env: {
          ...process.env,
          DATABASE_URL: source.url,
          BACKUP_DIR: dir,
          PINCER_CONFIG_DIR: path.join(root, 'config'),
          BACKUP_METRICS_PORT: String(port),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let log = '';
      child.stdout.on('data', (d: Buffer) => (log += d.toString()));
      child.stderr.on('data', (d: Buffer) => (log += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      return { child, log: () => log, exited };
    }

    const fetchText = async (url: string) => {
      try {
        const res = await fetch(url);
        return { status: res.status, text: await res.text() };
      } catch {
        return undefined;
      }
    };

    it('backs up at start, serves the metrics (not the archives) on its port, stops on SIGTERM', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'pincer-cron-'));
      dirs.push(dir);
      const port = await freePort();
      const cron = await start(dir, port);
      const body = await waitFor('a successful backup in /metrics', async () => {
        const r = await fetchText(`http://127.0.0.1:${port}/metrics`);
        return r?.status === 200 && /^pincer_backup_last_success_timestamp_seconds \d+$/m.test(r.text)
          ? r.text
          : undefined;
      });
      assert.match(body, /^pincer_backup_next_run_timestamp_seconds \d+$/m);
      assert.match(body, /^pincer_backup_last_size_bytes \d+$/m);
      const names = archives(dir);
      assert.equal(names.length, 1);
      const leaked = await fetchText(`http://127.0.0.1:${port}/${names[0]}`);
      assert.notEqual(leaked?.status, 200, 'archives are never served');
      cron.child.kill('SIGTERM');
      const code = await within('backup-cron to exit', cron.exited, 10_000);
      assert.equal(code, 0, cron.log());
      await waitFor(
        'the port to close',
        async () => ((await fetchText(`http://127.0.0.1:${port}/metrics`)) ? undefined : true),
        10_000,
      );

      // restarted with a fresh archive on disk: no second backup at start
      const again = await start(dir, port);
      await waitFor('the skip message', () =>
        /archive from the last 24 h exists/.test(again.log()) ? true : undefined,
      );
      await waitFor('metrics served again', async () =>
        (await fetchText(`http://127.0.0.1:${port}/metrics`))?.status === 200 ? true : undefined,
      );
      assert.equal(archives(dir).length, 1);
      again.child.kill('SIGTERM');
      assert.equal(await within('backup-cron to exit', again.exited, 10_000), 0, again.log());
    });

    it('refuses a bad BACKUP_AT with a clear message', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'pincer-cron-'));
      dirs.push(dir);
      const r = spawnSync('sh', [CRON], {
        env: { ...process.env, BACKUP_DIR: dir, BACKUP_AT: '25:99' },
        encoding: 'utf8',
        timeout: 10_000,
      });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /BACKUP_AT must be HH:MM in UTC/);
    });
  },
);
