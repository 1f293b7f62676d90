import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createTestDatabase, writeConfigDir } from './db-harness.ts';
import { type Stack, startStack, toolModels } from './stack.ts';

const main = path.resolve(import.meta.dirname, '../src/main.ts');
const migrateCli = path.resolve(import.meta.dirname, '../src/cli/migrate.ts');
const run = promisify(execFile);

function startCoreProcess(env: Record<string, string>): {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, ['--conditions=pincer-source', main], {
    env: { PATH: process.env.PATH, ...env, PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, output: () => out, exited: new Promise((r) => child.on('exit', (code) => r(code))) };
}

describe('core lifecycle', () => {
  it('a worker killed mid-stream: another takes over and the user sees one finished reply', async () => {
    // this process only watches the outbound queue; the workers are separate processes we can kill
    const s: Stack = await startStack({
      workers: false,
      mock: { tokenRate: 40 },
      config: { system: { max_concurrency: 4, job_lock_ms: 2000 } },
    });
    s.env.PINCER_CONFIG_DIR = writeConfigDir({
      system: { redis_prefix: s.prefix, max_concurrency: 4, job_lock_ms: 2000 },
      access: { telegram: { direct: 'open' } },
    });
    let first: ReturnType<typeof startCoreProcess> | undefined;
    let second: ReturnType<typeof startCoreProcess> | undefined;
    try {
      first = startCoreProcess(s.env);
      s.mock.script({
        match: { contains: 'crash test' },
        reply: { content: 'a long and careful answer '.repeat(30) },
      });
      await s.send({ text: 'crash test please', chat: { id: '2000', type: 'direct' } });
      await s.mock.waitFor((r) => r.chunksSent >= 10, 15_000);
      first.child.kill('SIGKILL');
      await first.exited;
      second = startCoreProcess(s.env);
      const r = await s.finished((x) => x.chat === '2000', 30_000);
      assert.equal(r.status, 'complete');
      assert.equal(r.text, 'a long and careful answer '.repeat(30));
      assert.equal(r.finishes, 1, 'one finished reply');
      assert.equal(new Set(r.actions.map((a) => a.reply_id)).size, 1, 'every update went to the same reply');
      assert.equal([...s.replies.values()].filter((x) => x.chat === '2000').length, 1);
      const { rows } = await s.t.db.query(
        `SELECT m.role, m.status FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.chat_id = '2000' ORDER BY m.id`,
      );
      assert.deepEqual(rows, [
        { role: 'user', status: 'answered' },
        { role: 'assistant', status: 'complete' },
      ]);
      assert.ok(
        s.mock.requests.filter((x) => x.aborted || x.finishedAt).length >= 2,
        'the model was asked again after the crash',
      );
      second.child.kill('SIGTERM');
      assert.equal(await second.exited, 0, 'SIGTERM stops cleanly');
    } finally {
      first?.child.kill('SIGKILL');
      second?.child.kill('SIGKILL');
      await s.close();
    }
  });

  it('a worker killed while a command runs: the takeover does not run it a second time', async () => {
    const s: Stack = await startStack({
      workers: false,
      models: toolModels,
      config: { system: { max_concurrency: 4, job_lock_ms: 2000 } },
    });
    const marks = path.join(mkdtempSync(path.join(tmpdir(), 'pincer-marks-')), 'runs');
    s.env.PINCER_CONFIG_DIR = writeConfigDir({
      system: { redis_prefix: s.prefix, max_concurrency: 4, job_lock_ms: 2000 },
      access: { telegram: { direct: 'open' } },
      tools: {
        commands: {
          mark: {
            description: 'Note a run in a file, then take a while',
            argv: ['sh', '-c', 'echo run >> "$1"; sleep 4', 'mark', '{file}'],
            params: { file: { pattern: '/[A-Za-z0-9/_.-]+' } },
            role: 'user',
            confirm: 'none',
          },
        },
      },
    });
    let first: ReturnType<typeof startCoreProcess> | undefined;
    let second: ReturnType<typeof startCoreProcess> | undefined;
    const runs = () => {
      try {
        return readFileSync(marks, 'utf8').split('\n').filter(Boolean).length;
      } catch {
        return 0;
      }
    };
    try {
      first = startCoreProcess(s.env);
      // the re-run after the crash asks for the very same call
      s.mock.script({
        match: { contains: 'mark it' },
        times: 2,
        reply: {
          toolCalls: [{ name: 'run_command', arguments: { command: 'mark', args: { file: marks } } }],
        },
      });
      s.mock.script({ match: { contains: 'mark it' }, reply: { content: 'done after the crash' } });
      await s.send({ text: 'mark it now', chat: { id: '2100', type: 'direct' } });
      const deadline = Date.now() + 15_000;
      while (runs() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(runs(), 1, 'the command started');
      first.child.kill('SIGKILL');
      await first.exited;
      second = startCoreProcess(s.env);
      const r = await s.finished((x) => x.chat === '2100', 30_000);
      assert.equal(r.text, 'done after the crash');
      assert.equal(runs(), 1, 'not run a second time');
      const told = s.mock.requests.filter((x) => x.body?.messages?.at(-1)?.role === 'tool').at(-1);
      assert.match(told!.body.messages.at(-1).content, /status="error"[\s\S]*may already have been made/);
      second.child.kill('SIGTERM');
      await second.exited;
    } finally {
      first?.child.kill('SIGKILL');
      second?.child.kill('SIGKILL');
      await s.close();
    }
  });

  it('refuses to start while migrations are pending, and says how to apply them', async () => {
    const t = await createTestDatabase({ migrate: false });
    try {
      const dir = writeConfigDir({});
      const env = { DATABASE_URL: t.url, LLM_PROXY_API_KEY: 'x'.repeat(20), PINCER_CONFIG_DIR: dir };
      const p = startCoreProcess(env);
      assert.equal(await p.exited, 1);
      assert.match(
        p.output(),
        /3 migration\(s\) pending \(0001_core, 0002_knowledge_memory, 0003_tools_automations\): run `npm run migrate -w services\/core`/,
      );
      const m = await run(process.execPath, ['--conditions=pincer-source', migrateCli], {
        env: { PATH: process.env.PATH, DATABASE_URL: t.url },
      });
      assert.match(m.stdout, /applied: 0001_core, 0002_knowledge_memory, 0003_tools_automations/);
      const again = await run(process.execPath, ['--conditions=pincer-source', migrateCli], {
        env: { PATH: process.env.PATH, DATABASE_URL: t.url },
      });
      assert.match(again.stdout, /up to date/);
    } finally {
      await t.drop();
    }
  });

  it('lists every config problem at once: unknown action, bad regex with its rule number, a typo, a bad rate', async () => {
    const dir = writeConfigDir(
      {
        core: { history_mesages: 5 },
        security: { rate_limit: 'lots' },
        access: { telegram: { direct: 'sometimes' } },
        knowledge: { chunk_tokens: 100, overlap_tokens: 80 },
      },
      {
        routes: [
          { match: { content: '([unclosed' }, action: 'help' },
          { match: { command: 'x' }, action: 'dance' },
          { match: { command: 'y' }, action: 'help', knowledge: true },
          { default: { action: 'process_with_llm' } },
        ],
      },
    );
    const p = startCoreProcess({
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
      LLM_PROXY_API_KEY: 'x'.repeat(20),
      PINCER_CONFIG_DIR: dir,
    });
    assert.equal(await p.exited, 1);
    const out = p.output();
    assert.match(out, /invalid configuration \(7 problems\)/);
    assert.match(out, /knowledge\.overlap_tokens: overlap_tokens must be at most half of chunk_tokens/);
    assert.match(out, /routes\[2\]: rule 3: knowledge: true works with process_with_llm only/);
    assert.match(out, /core: unknown key "history_mesages"/);
    assert.match(out, /security\.rate_limit: write it as N\/s, N\/min or N\/hour/);
    assert.match(out, /access\.telegram\.direct/);
    assert.match(out, /routing\.yaml:\d+: routes\[0\]\.match\.content: rule 1: bad regular expression/);
    assert.match(out, /routes\[1\]\.action: unknown action "dance"/);
    assert.doesNotMatch(out, /at .*\.ts:\d+/, 'no stack trace');
  });
});
