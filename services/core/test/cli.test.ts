import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pgEnvironment } from '../src/cli/backup.ts';
import { progressLine } from '../src/cli/kb.ts';
import { createTestDatabase } from './db-harness.ts';
import { ADMIN_TOKEN, embeddingModels, type Stack, startStack } from './stack.ts';

const root = path.resolve(import.meta.dirname, '../../..');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from source as an operator would; never rejects (the exit code is the point). */
function pincer(args: string[], env: Record<string, string | undefined>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=pincer-source', 'services/core/src/cli/pincer.ts', ...args],
      { cwd: root, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 25_000 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: unknown }).code as number) : 0;
        resolve({ code: typeof code === 'number' ? code : -1, stdout, stderr });
      },
    );
  });
}

describe('pincer CLI against a running stack', () => {
  let s: Stack;
  let env: Record<string, string>;
  let telegram: Server;
  const dir = mkdtempSync(path.join(tmpdir(), 'pincer-cli-'));

  before(async () => {
    s = await startStack({
      mock: { embeddingDims: 64 },
      models: (mockUrl) => embeddingModels(mockUrl, 256),
      config: {
        access: { telegram: { direct: 'pairing', groups: 'mention' }, feishu: { direct: 'open' } },
        knowledge: { embedding_model: 'embed', chunk_tokens: 200, overlap_tokens: 40 },
      },
    });
    env = { ...s.env, PINCER_URL: s.core.url, PINCER_ADMIN_TOKEN: ADMIN_TOKEN };
    // a Telegram Bot API stand-in for doctor's getMe
    telegram = createServer((req, res) => {
      const ok = req.url === '/botgood-token/getMe';
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          ok
            ? { ok: true, result: { username: 'pincer_test_bot' } }
            : { ok: false, description: 'Unauthorized' },
        ),
      );
    });
    await new Promise<void>((r) => telegram.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    telegram?.close();
    await s?.close();
  });

  it('--help everywhere exits 0; an unknown command or a bad option exits 2 with the usage', async () => {
    const top = await pincer(['--help'], env);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /pincer keys create/);
    assert.match(top.stdout, /pincer doctor/);
    const sub = await pincer(['kb', 'ingest', '--help'], env);
    assert.equal(sub.code, 0);
    assert.match(sub.stdout, /usage: pincer kb ingest <files\.\.\.>/);

    const unknown = await pincer(['frobnicate'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    assert.match(unknown.stderr, /usage: pincer <command>/);
    const badOption = await pincer(['keys', 'list', '--colour'], env);
    assert.equal(badOption.code, 2);
    assert.match(badOption.stderr, /--colour[\s\S]*usage: pincer keys list/);
    const missing = await pincer(['keys', 'create', 'ci'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--role is required/);
  });

  it('errors: unreachable core names PINCER_URL; a wrong token says to check PINCER_ADMIN_TOKEN', async () => {
    const down = await pincer(['keys', 'list'], { ...env, PINCER_URL: 'http://127.0.0.1:9' });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^pincer: cannot reach core at http:\/\/127\.0\.0\.1:9 .*PINCER_URL/);
    const wrong = await pincer(['keys', 'list', '--token', 'not-the-token-0123456789abcdef'], env);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^pincer: .*check PINCER_ADMIN_TOKEN/);
  });

  it('keys: create prints the key once, list --json shows it, revoke refuses it from then on', async () => {
    const created = await pincer(['keys', 'create', 'cli backup job', '--role', 'auditor'], env);
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim().split('\n').at(-1)!;
    const id = /id ([0-9a-f-]{36})/.exec(created.stdout)![1]!;
    const works = await fetch(`${s.core.url}/api/v1/audit`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(works.status, 200, 'the printed key is a working auditor key');

    const list = await pincer(['keys', 'list', '--json'], env);
    assert.equal(list.code, 0, list.stderr);
    const mine = (JSON.parse(list.stdout) as any[]).find((k) => k.id === id);
    assert.equal(mine.name, 'cli backup job');
    assert.equal(mine.role, 'auditor');
    assert.equal(mine.revoked_at, null);
    assert.ok(!list.stdout.includes(key), 'list never shows the key');

    const revoked = await pincer(['keys', 'revoke', id], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`revoked key ${id}`));
    const refused = await fetch(`${s.core.url}/api/v1/audit`, {
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(refused.status, 401);
    const unknown = await pincer(['keys', 'revoke', '00000000-0000-4000-8000-000000000000'], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^pincer: No API key 00000000-/);
  });

  it('pairing: list shows a pending request, approve by code lets the person in, a second decision fails', async () => {
    const chat = { id: '7100', type: 'direct' as const };
    const sender = { id: '7100', display_name: 'Cli Newcomer' };
    await s.send({ text: 'let me in', chat, sender });
    const first = await s.finished((r) => r.chat === '7100');
    const code = /pairing code: ([A-Z0-9]{8})/.exec(first.text)?.[1];
    assert.ok(code, first.text);

    const list = await pincer(['pairing', 'list', '--json'], env);
    assert.equal(list.code, 0, list.stderr);
    const req = (JSON.parse(list.stdout) as any[]).find((p) => p.code === code);
    assert.equal(req.display_name, 'Cli Newcomer');
    assert.equal(req.status, 'pending');
    const table = await pincer(['pairing', 'list'], env);
    assert.match(table.stdout, new RegExp(`${code}\\s+pending\\s+telegram\\s+7100\\s+Cli Newcomer`));

    const approved = await pincer(['pairing', 'approve', code!.toLowerCase()], env);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /approved Cli Newcomer \(telegram 7100/);
    await s.send({ text: 'thanks, hello', chat, sender });
    const answered = await s.finished((r) => r.chat === '7100' && r.text.includes('thanks, hello'));
    assert.equal(answered.status, 'complete');

    const again = await pincer(['pairing', 'deny', req.id], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^pincer: This pairing request was already approved/);
  });

  it('kb ingest: two files end ready with one line per state change; an unsupported file exits 1 with the reason', async () => {
    const a = path.join(dir, 'handbook.md');
    const b = path.join(dir, 'faq.txt');
    writeFileSync(a, '# Handbook\n\nThe office opens at nine. Parking is behind the building.\n');
    writeFileSync(b, 'Q: Where is the printer?\nA: On the second floor, next to the kitchen.\n');
    const r = await pincer(['kb', 'ingest', a, b], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.includes('handbook.md: queued'), r.stdout);
    assert.match(r.stdout, /^handbook\.md: ready \(1 chunk\)$/m);
    assert.match(r.stdout, /^faq\.txt: ready \(1 chunk\)$/m);
    assert.equal(lines.at(-1), '2 of 2 files ready');
    assert.ok(!r.stdout.includes('\r'), 'no redraws when stdout is not a terminal');

    const list = await pincer(['kb', 'list', '--search', 'handbook', '--json'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.equal((JSON.parse(list.stdout) as any[])[0].status, 'ready');

    const exe = path.join(dir, 'tool.exe');
    writeFileSync(exe, Buffer.from([0x4d, 0x5a, 0x90, 0x00, 1, 2, 3]));
    const bad = await pincer(['kb', 'ingest', exe, a], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^pincer: tool\.exe: .*(type|supported)/im);
    assert.match(bad.stdout, /1 of 2 files ready/);

    // the terminal rendering: a bar, the percent from progress.percent, the state
    assert.equal(
      progressLine('faq.txt', {
        status: 'embedding',
        error: null,
        progress: { chunks_total: 4, chunks_done: 2, percent: 50 },
      }),
      '[##########..........]  50% faq.txt  embedding',
    );
  });

  it('conversations export: JSON lines with each conversation and its messages; csv with a header', async () => {
    const chat = await fetch(`${s.core.url}/api/v1/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'export me please' }),
    });
    assert.equal(chat.status, 200, await chat.clone().text());
    const jsonl = await pincer(['conversations', 'export', '--platform', 'api'], env);
    assert.equal(jsonl.code, 0, jsonl.stderr);
    const rows = jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const mine = rows.find((c) => c.messages.some((m: any) => m.content === 'export me please'));
    assert.ok(mine, jsonl.stdout);
    assert.deepEqual(
      mine.messages.map((m: any) => m.role),
      ['user', 'assistant'],
    );
    assert.match(jsonl.stderr, /exported \d+ conversation/);

    const csv = await pincer(['conversations', 'export', '--format', 'csv', '--platform', 'api'], env);
    assert.equal(csv.code, 0, csv.stderr);
    assert.match(csv.stdout, /^conversation_id,platform,/);
    assert.match(csv.stdout, /,user,.*export me please\r\n/);
    const bad = await pincer(['conversations', 'export', '--format', 'xml'], env);
    assert.equal(bad.code, 2);
  });

  it('doctor: every check passes against the stack (Telegram through its API root), exit 0', async () => {
    const tg = `http://127.0.0.1:${(telegram.address() as { port: number }).port}`;
    const r = await pincer(['doctor'], { ...env, TELEGRAM_BOT_TOKEN: 'good-token', TELEGRAM_API_ROOT: tg });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const name of ['config', 'postgres', 'migrations', 'redis', 'llm-proxy', 'upstream p/'])
      assert.match(r.stdout, new RegExp(`^PASS\\s+${name}`, 'm'), r.stdout);
    assert.match(r.stdout, /^PASS\s+telegram\s+bot @pincer_test_bot/m);
    assert.match(r.stdout, /^SKIP\s+feishu\s+FEISHU_APP_ID is not set/m);
    assert.match(r.stdout, /all checks passed/);
  });

  it('doctor: a wrong DATABASE_URL fails with the fix; a bad bot token fails too; exit 1', async () => {
    const tg = `http://127.0.0.1:${(telegram.address() as { port: number }).port}`;
    const r = await pincer(['doctor', '--json'], {
      ...env,
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
      TELEGRAM_BOT_TOKEN: 'revoked-token',
      TELEGRAM_API_ROOT: tg,
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const checks = JSON.parse(r.stdout) as Array<{ name: string; status: string; fix?: string }>;
    const byName = new Map(checks.map((c) => [c.name, c]));
    assert.equal(byName.get('postgres')!.status, 'fail');
    assert.match(byName.get('postgres')!.fix!, /DATABASE_URL/);
    assert.equal(byName.get('migrations')!.status, 'skip');
    assert.equal(byName.get('redis')!.status, 'pass');
    assert.equal(byName.get('telegram')!.status, 'fail');

    const text = await pincer(['doctor'], { ...env, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    assert.equal(text.code, 1);
    assert.match(
      text.stdout,
      /^FAIL\s+postgres\s+cannot connect: connect ECONNREFUSED 127\.0\.0\.1:1\n\s+fix: check DATABASE_URL/m,
    );
    assert.match(text.stdout, /1 check failed/);
  });

  it('backup, backup list and restore: the scripts with the environment of core; a restore into a used database is refused and changes nothing', async () => {
    const backups = mkdtempSync(path.join(tmpdir(), 'pincer-cli-backups-'));
    await s.t.db.query("INSERT INTO api_keys(name, role, key_hash) VALUES ('backup-probe', 'user', 'x')");
    // pg_dump behind a wrapper that records its command line (what `ps` would show)
    const bin = mkdtempSync(path.join(tmpdir(), 'pincer-cli-bin-'));
    const argvLog = path.join(bin, 'argv.log');
    writeFileSync(
      path.join(bin, 'pg_dump'),
      `#!/bin/sh\necho "$@" >> '${argvLog}'\nexec /usr/bin/pg_dump "$@"\n`,
      { mode: 0o755 },
    );
    const b = await pincer(['backup', '--dir', backups, '--json'], {
      ...env,
      PINCER_CONFIG_DIR: s.configDir,
      PATH: `${bin}:${process.env.PATH}`,
    });
    assert.doesNotMatch(
      readFileSync(argvLog, 'utf8'),
      /postgres:\/\//,
      'no connection URL on the command line',
    );
    assert.equal(b.code, 0, b.stderr);
    const { archive, bytes } = JSON.parse(b.stdout);
    assert.match(path.basename(archive), /^pincer-\d{8}T\d{6}Z\.tar\.gz$/);
    assert.ok(bytes > 1000);
    assert.match(b.stderr, /dumping the database/, "the script's progress reaches the operator");

    const list = await pincer(['backup', 'list', '--dir', backups, '--json'], env);
    assert.equal(list.code, 0);
    assert.deepEqual(
      JSON.parse(list.stdout).map((r: { archive: string }) => r.archive),
      [archive],
    );
    const verify = await pincer(['restore', '--verify', archive], {});
    assert.equal(verify.code, 0, verify.stderr);

    // into a fresh, empty database: everything comes back
    const target = await createTestDatabase({ migrate: false, prefix: 'pincer_restore' });
    try {
      const r = await pincer(['restore', archive], { ...env, DATABASE_URL: target.url });
      assert.equal(r.code, 0, r.stderr);
      const { rows } = await target.db.query("SELECT role FROM api_keys WHERE name = 'backup-probe'");
      assert.deepEqual(rows, [{ role: 'user' }]);
      // again, into what is now a used database: refused without --force, nothing changed
      await target.db.query("DELETE FROM api_keys WHERE name = 'backup-probe'");
      const again = await pincer(['restore', archive], { ...env, DATABASE_URL: target.url });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /database was not changed/);
      assert.equal((await target.db.query("SELECT 1 FROM api_keys WHERE name = 'backup-probe'")).rowCount, 0);
    } finally {
      await target.drop();
    }
    const none = await pincer(['restore'], env);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /which archive/);
    const missing = await pincer(['restore', path.join(backups, 'nope.tar.gz')], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no such archive/);
    const noTools = await pincer(['backup', '--dir', backups], {
      ...env,
      PATH: path.dirname(process.execPath),
    });
    assert.equal(noTools.code, 1);
    assert.match(noTools.stderr, /pg_dump and pg_restore not found on PATH/);
  });

  it('test-model: one chat completion through llm-proxy, with the model and times', async () => {
    const r = await pincer(['test-model', 'small', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.model, 'small');
    assert.ok(out.latency_ms >= 0 && out.time_to_first_token_ms >= 0, r.stdout);
    const unknown = await pincer(['test-model', 'no-such-model'], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^pincer: no-such-model failed: /);
  });
});

describe('pincer backup: the connection', () => {
  it('reaches the scripts as PG* variables, never as a URL on a command line', () => {
    const env = pgEnvironment({
      PATH: '/bin',
      DATABASE_URL: 'postgres://pin%40cer:p%3Ass%2Fw@db.internal:5433/pincer%20db?sslmode=require',
    });
    assert.deepEqual(env, {
      PATH: '/bin',
      PGHOST: 'db.internal',
      PGPORT: '5433',
      PGUSER: 'pin@cer',
      PGPASSWORD: 'p:ss/w',
      PGDATABASE: 'pincer db',
      PGSSLMODE: 'require',
    });
    assert.deepEqual(pgEnvironment({ PGHOST: 'h' }), { PGHOST: 'h' }, 'PG* alone pass through');
    assert.throws(() => pgEnvironment({ DATABASE_URL: 'not a url' }), /DATABASE_URL is not a URL/);
  });
});
