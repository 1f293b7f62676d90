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
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTelegramEmulator } from '@pincer/telegram-emulator';
import { fmt, pct, REDIS_URL, root, start, startBackend } from './lib.ts';

const quick = process.env.BENCH_QUICK === '1';
const noFlood = process.env.BENCH_NO_FLOOD === '1';
const USERS = quick ? 50 : 200;
const MESSAGES = 5;

async function main() {
  const emu = await startTelegramEmulator({ privacyMode: false, ...(noFlood ? { flood: false } : {}) });
  const stack = await startBackend(
    noFlood
      ? { telegram: { limits: { per_chat_per_sec: 100, per_group_per_min: 6000, global_per_sec: 10_000 } } }
      : {},
  );
  const { port, configDir: dir } = stack;
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

  adapter.kill('SIGTERM');
  await stack.close();
  await emu.close();
}

await main();
