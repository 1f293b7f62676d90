/**
 * Telegram benchmark: simulated users talk to the bot through the whole stack — the Telegram
 * emulator (in this process, with Telegram's flood limits) → telegram-adapter (long polling) → core
 * (Postgres) → llm-proxy → the mock model at zero delay, and back. mock, llm-proxy, core and the
 * adapter run as separate processes from dist/, as the images run them. Each user sends a message,
 * waits until the whole answer is shown, then sends the next.
 * Prints a table and writes bench/results/telegram.{json,md}.
 *
 *   npm run bench:telegram        BENCH_QUICK=1 for a short run; BENCH_NO_FLOOD=1 lifts Telegram's limits
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTelegramEmulator } from '@pincer/telegram-emulator';
import { Redis } from 'ioredis';
import pg from 'pg';
import { stringify } from 'yaml';

const root = path.resolve(import.meta.dirname, '..');
const quick = process.env.BENCH_QUICK === '1';
const noFlood = process.env.BENCH_NO_FLOOD === '1';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN_DB = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const KEY = 'bench-tg-proxy-key-0123456789';
const USERS = quick ? 50 : 200;
const MESSAGES = 5;

function start(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--max-semi-space-size=8', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function waitHttp(url: string, proc: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}`);
    if ((await fetch(url).catch(() => undefined))?.ok) return;
    await sleep(50);
  }
  throw new Error(`${what} did not come up`);
}

const pct = (a: number[], p: number) => a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))]!;
const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');

async function main() {
  const port = 21000 + Math.floor(Math.random() * 20000);
  const emu = await startTelegramEmulator({ privacyMode: false, ...(noFlood ? { flood: false } : {}) });
  const mock = start(
    ['packages/mock-inference/dist/main.js', '--port', String(port), '--flavor', 'vllm'],
    {},
  );
  await waitHttp(`http://127.0.0.1:${port}/health`, mock, 'mock');

  const proxyDir = mkdtempSync(path.join(tmpdir(), 'pincer-bench-proxy-'));
  writeFileSync(
    path.join(proxyDir, 'models.yml'),
    stringify({
      providers: {
        p: {
          type: 'openai',
          nodes: [{ url: `http://127.0.0.1:${port}/v1`, max_concurrency: 256 }],
          queue: { size: 4096 },
        },
      },
      models: { m: { provider: 'p', model_id: 'bench', context_window: 8192, max_tokens: 256 } },
      routing: { default_model: 'm' },
    }),
  );
  const proxy = start(['services/llm-proxy/dist/main.js'], {
    PORT: String(port + 1),
    PINCER_CONFIG_DIR: proxyDir,
    LLM_PROXY_API_KEY: KEY,
    LOG_LEVEL: 'warn',
  });
  await waitHttp(`http://127.0.0.1:${port + 1}/readyz`, proxy, 'llm-proxy');

  const dbName = `pincer_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_DB });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const u = new URL(ADMIN_DB);
  u.pathname = `/${dbName}`;
  const dbUrl = u.toString();
  const prefix = `pincer-bench-${randomBytes(4).toString('hex')}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'pincer-bench-tg-'));
  writeFileSync(
    path.join(dir, 'config.yaml'),
    stringify({
      system: { redis_prefix: prefix, max_concurrency: 16 },
      access: { telegram: { direct: 'open' } },
      security: { rate_limit: '100000/min' },
      ...(noFlood
        ? { telegram: { limits: { per_chat_per_sec: 100, per_group_per_min: 6000, global_per_sec: 10_000 } } }
        : {}),
    }),
  );
  writeFileSync(path.join(dir, 'routing.yaml'), readFileSync(path.join(root, 'config/routing.yaml')));
  const mig = spawn(process.execPath, ['services/core/dist/cli/migrate.js'], {
    cwd: root,
    env: { PATH: process.env.PATH, DATABASE_URL: dbUrl },
    stdio: 'ignore',
  });
  await new Promise((r) => mig.on('exit', r));
  const core = start(['services/core/dist/main.js'], {
    DATABASE_URL: dbUrl,
    REDIS_URL,
    PINCER_CONFIG_DIR: dir,
    LLM_PROXY_URL: `http://127.0.0.1:${port + 1}/v1`,
    LLM_PROXY_API_KEY: KEY,
    LOG_LEVEL: 'warn',
    PORT: String(port + 2),
  });
  await waitHttp(`http://127.0.0.1:${port + 2}/healthz`, core, 'core');
  const adapter = start(['services/telegram-adapter/dist/main.js'], {
    REDIS_URL,
    PINCER_CONFIG_DIR: dir,
    TELEGRAM_BOT_TOKEN: emu.token,
    TELEGRAM_API_ROOT: emu.url,
    LOG_LEVEL: 'warn',
    PORT: String(port + 3),
  });
  for (let i = 0; ; i++) {
    const h = await fetch(`http://127.0.0.1:${port + 3}/healthz`)
      .then((r) => r.json() as Promise<{ status: string }>)
      .catch(() => undefined);
    if (h?.status === 'ok') break;
    if (i > 300 || adapter.exitCode !== null) throw new Error('telegram-adapter did not come up');
    await sleep(50);
  }

  // each user: message, wait until the whole answer is shown, next message
  const latencies: number[] = [];
  const pending = new Map<number, { expect: string; at: number; done: () => void }>();
  let scanned = 0;
  const scanner = setInterval(() => {
    const calls = emu.calls;
    for (; scanned < calls.length; scanned++) {
      const c = calls[scanned]!;
      if (!c.ok || (c.method !== 'sendMessage' && c.method !== 'editMessageText')) continue;
      const p = pending.get(Number(c.params.chat_id));
      if (p && String(c.params.text).includes(p.expect)) {
        pending.delete(Number(c.params.chat_id));
        latencies.push(c.at - p.at);
        p.done();
      }
    }
  }, 5);
  const t0 = performance.now();
  const base = 7_000_000 + Math.floor(Math.random() * 1_000_000);
  await Promise.all(
    Array.from({ length: USERS }, async (_, i) => {
      const uid = base + i;
      for (let k = 0; k < MESSAGES; k++) {
        const text = `question ${k} from user ${uid}`;
        await new Promise<void>((done) => {
          pending.set(uid, { expect: `Mock reply: ${text}`, at: Date.now(), done });
          emu.userSend({ chat: { id: uid, type: 'private' }, from: { id: uid, first_name: `U${i}` }, text });
        });
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(scanner);
  // let any late duplicate show up before counting
  await sleep(2000);
  let duplicates = 0;
  let losses = 0;
  for (let i = 0; i < USERS; i++) {
    const shown = emu.chat(base + i).botMessages.filter((m) => !m.deleted);
    for (let k = 0; k < MESSAGES; k++) {
      const n = shown.filter((m) => m.text.includes(`question ${k} from user ${base + i}`)).length;
      if (n === 0) losses++;
      if (n > 1) duplicates += n - 1;
    }
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const floods = emu.calls.filter((c) => c.error_code === 429).length;
  const results = {
    users: USERS,
    messages_per_user: MESSAGES,
    telegram_flood_limits: !noFlood,
    replies: latencies.length,
    seconds,
    replies_per_s: latencies.length / seconds,
    p50_ms: pct(sorted, 50),
    p99_ms: pct(sorted, 99),
    duplicates,
    losses,
    telegram_429s: floods,
  };
  const md = [
    `| telegram bench (${USERS} users × ${MESSAGES} messages, flood limits ${noFlood ? 'off' : 'on'}) | |`,
    '| --- | --- |',
    `| replies | ${results.replies} in ${fmt(seconds)} s |`,
    `| replies/s | ${fmt(results.replies_per_s)} |`,
    `| message → whole answer shown p50 / p99 | ${fmt(results.p50_ms, 0)} / ${fmt(results.p99_ms, 0)} ms |`,
    `| duplicates / losses | ${duplicates} / ${losses} |`,
    `| 429 answers from Telegram | ${floods} |`,
  ].join('\n');
  process.stdout.write(`${md}\n`);
  mkdirSync(path.join(root, 'bench/results'), { recursive: true });
  const name = noFlood ? 'telegram-no-flood' : 'telegram';
  writeFileSync(path.join(root, `bench/results/${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(root, `bench/results/${name}.md`), `${md}\n`);

  for (const p of [adapter, core, proxy, mock]) p.kill('SIGTERM');
  await sleep(500);
  await emu.close();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
  const r = new Redis(REDIS_URL);
  const keys = await r.keys(`${prefix}:*`);
  if (keys.length) await r.del(...keys);
  await r.quit();
}

await main();
