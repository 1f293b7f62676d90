/**
 * feishu-bot benchmark: simulated users write to the bot over the long connection; every message goes
 * through the real bot (WSClient intake, dedup, inbound queue), core, llm-proxy and the mock model, and
 * back through the bot's presenter into CardKit cards on the Feishu emulator (its rate limits on).
 * Everything runs in this one process (the test harness: emulator, mock, llm-proxy, core, bot).
 * Measures replies/s and the time from a user's message to its card being finished (streaming closed),
 * and counts duplicates (a message answered twice) and losses (never answered). Prints a table and
 * writes bench/results/feishu.json.
 *
 *   npm run bench:feishu        BENCH_QUICK=1 for a short run
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { newUser, startFeishuStack } from '../services/feishu-bot/test/harness.ts';
import { pct } from './lib.ts';

const quick = process.env.BENCH_QUICK === '1';
const USERS = Number(process.env.BENCH_USERS) || (quick ? 40 : 200);
const PER_USER = quick ? 2 : 5;

async function main() {
  const t = await startFeishuStack({
    logLevel: (process.env.BENCH_LOG as 'info') ?? 'warn',
    stack: { config: { system: { max_concurrency: 16 } } },
    feishu: { outbound_concurrency: 256 },
  });
  try {
    const users = Array.from({ length: USERS }, () => newUser());
    const sentAt = new Map<string, number>(); // message_id → when the user sent it
    const chatOf = new Map<string, string>();
    const start = Date.now();
    // each user writes their next message once the previous one is answered, like a person would
    const doneAt = new Map<string, number>();
    await Promise.all(
      users.map(async (open_id, u) => {
        for (let i = 0; i < PER_USER; i++) {
          const s = t.emu.userSend({
            chat: { type: 'p2p' },
            sender: { open_id },
            text: `user ${u} message ${i}`,
          });
          sentAt.set(s.message_id, Date.now());
          chatOf.set(s.message_id, s.chat_id);
          await t.emu.waitFor(
            () =>
              t.emu
                .chat(s.chat_id)
                .botMessages.find((m) => m.parent_id === s.message_id && m.card && !m.card.streaming_mode),
            quick ? 20_000 : 120_000,
            `answer to ${s.message_id}`,
          );
          doneAt.set(s.message_id, Date.now());
        }
      }),
    ).catch(async (e) => {
      process.stderr.write(
        (await (await fetch(`${t.bot.url}/metrics`)).text())
          .split('\n')
          .filter((l) => l.startsWith('pincer_feishu_events') || l.startsWith('pincer_feishu_dup'))
          .join('\n'),
      );
      process.stderr.write(
        `${t.logs
          .filter((l) => !l.includes('lark sdk'))
          .slice(-15)
          .join(
            '',
          )}\n${JSON.stringify([...chatOf].filter(([m]) => !doneAt.has(m)).map(([m, c]) => [m, t.emu.chat(c).botMessages.map((b) => [b.parent_id, b.text, b.card?.streaming_mode, t.emu.calls.filter((x) => x.path.includes(b.card?.card_id ?? 'zz')).map((x) => [x.api, x.status, x.code, x.body])])]))} answered ${doneAt.size}/${chatOf.size} deliveries ${t.emu.deliveries.length} ok ${t.emu.deliveries.filter((d) => d.ok).length}\n${t.stack.logs.slice(-8).join('')}\n`,
      );
      throw e;
    });
    const elapsed = (Date.now() - start) / 1000;
    // let late duplicates (if any) show up before counting
    await new Promise((r) => setTimeout(r, 1000));
    let duplicates = 0;
    let lost = 0;
    for (const [mid, chat] of chatOf) {
      const answers = t.emu.chat(chat).botMessages.filter((m) => m.parent_id === mid).length;
      if (answers === 0) lost++;
      if (answers > 1) duplicates += answers - 1;
    }
    const lat = [...doneAt].map(([mid, at]) => at - sentAt.get(mid)!).sort((a, b) => a - b);
    const limited = t.emu.calls.filter((c) => c.status === 429 || c.code === 230020).length;
    const result = {
      mode: 'ws',
      in_process: true,
      users: USERS,
      messages: chatOf.size,
      replies: doneAt.size,
      seconds: Number(elapsed.toFixed(2)),
      replies_per_s: Number((doneAt.size / elapsed).toFixed(1)),
      p50_ms: pct(lat, 50),
      p99_ms: pct(lat, 99),
      max_ms: lat.at(-1),
      duplicates,
      lost,
      rate_limited_calls: limited,
      api_calls: t.emu.calls.length,
    };
    const rows = Object.entries(result).map(([k, v]) => `| ${k.padEnd(20)} | ${String(v).padStart(10)} |`);
    process.stdout.write(
      `\nfeishu-bot benchmark${quick ? ' (quick)' : ''}\n| metric               |      value |\n|----------------------|------------|\n${rows.join('\n')}\n`,
    );
    const dir = path.resolve(import.meta.dirname, 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'feishu.json'),
      `${JSON.stringify({ at: new Date().toISOString(), quick, ...result }, null, 2)}\n`,
    );
    if (duplicates || lost) process.exitCode = 1;
  } finally {
    await t.close();
  }
}

await main();
