/**
 * core benchmark: inbound messages through the whole engine (Postgres persistence, ordering
 * locks, streaming to the outbound queue) with the mock model at zero delay behind llm-proxy.
 * mock, llm-proxy and core run as separate processes from dist/, as the images run them.
 * Prints a table and writes bench/results/core.{json,md}.
 *
 *   npm run bench:core        BENCH_QUICK=1 for a short run
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inboundJobId, type InboundMessageInput, type OutboundAction, QueueName } from '@pincer/shared';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { cpuMsOf, fmt, pct, REDIS_URL, root, rssMB, startBackend } from './lib.ts';

const quick = process.env.BENCH_QUICK === '1';

async function main() {
  // BENCH_CORE_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles core during the run
  const stack = await startBackend({}, process.env.BENCH_CORE_NODE_ARGS?.split(' ').filter(Boolean) ?? []);
  const { port, prefix, core, proxy, mock, dbUrl, proxyKey } = stack;
  const idleRss = rssMB(core.pid!);

  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const inbound = new Queue(QueueName.Inbound, { connection, prefix });
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let finished = 0;
  const adapter = new Worker(
    QueueName.OutboundTelegram,
    async (job) => {
      const a = job.data as OutboundAction;
      if (a.type !== 'finish') return;
      const t = sentAt.get(a.chat.id + '/' + a.reply_to_message_id);
      if (t !== undefined) latencies.push(performance.now() - t);
      finished++;
    },
    { connection, prefix, concurrency: 64 },
  );
  let seq = 1;
  const message = (chat: number): InboundMessageInput => {
    const id = String(seq++);
    return {
      v: 1,
      platform: 'telegram',
      message_id: id,
      order: seq,
      chat: { id: String(chat), type: 'direct' },
      sender: { id: String(chat), display_name: `user ${chat}` },
      text: `question number ${id}`,
      addressed: { direct: true, mention: false, reply_to_bot: false },
      sent_at: Date.now(),
      received_at: Date.now(),
    };
  };
  const waitFinished = async (n: number, timeoutMs: number) => {
    const end = Date.now() + timeoutMs;
    while (finished < n && Date.now() < end) await sleep(20);
  };

  // warm-up
  const warm = Array.from({ length: 200 }, (_, i) => message(100_000 + (i % 50)));
  for (const m of warm) sentAt.set(m.chat.id + '/' + m.message_id, performance.now());
  await inbound.addBulk(
    warm.map((m) => ({ name: 'message', data: m, opts: { jobId: inboundJobId(m as never) } })),
  );
  await waitFinished(200, 60_000);

  // 1. throughput: a burst across many conversations
  // BENCH_SKIP_BURST=1: only the steady phase (for profiling it alone)
  const n = process.env.BENCH_SKIP_BURST === '1' ? 0 : quick ? 1000 : 3000;
  const chats = 300;
  finished = 0;
  latencies.length = 0;
  const burst = Array.from({ length: n }, (_, i) => message(1 + (i % chats)));
  const t0 = performance.now();
  for (const m of burst) sentAt.set(m.chat.id + '/' + m.message_id, performance.now());
  for (let i = 0; i < burst.length; i += 500) {
    await inbound.addBulk(
      burst
        .slice(i, i + 500)
        .map((m) => ({ name: 'message', data: m, opts: { jobId: inboundJobId(m as never) } })),
    );
  }
  await waitFinished(n, 300_000);
  const burstSeconds = (performance.now() - t0) / 1000;
  const turnsPerSecond = finished / burstSeconds;
  const loadedRss = rssMB(core.pid!);

  // 2. latency at a steady 100 turns/s across many conversations; CPU per turn of every process
  const procs = {
    core: (_c: string, pid: number) => pid === core.pid,
    'llm-proxy': (_c: string, pid: number) => pid === proxy.pid,
    mock: (_c: string, pid: number) => pid === mock.pid,
    postgres: (c: string) => c.startsWith('postgres'),
    redis: (c: string) => c.startsWith('redis-server'),
    'load generator': (_c: string, pid: number) => pid === process.pid,
  };
  const cpu0 = Object.fromEntries(Object.entries(procs).map(([k, m]) => [k, cpuMsOf(m)]));
  const seconds = quick ? 5 : 20;
  finished = 0;
  latencies.length = 0;
  const steadyStart = performance.now();
  let sent = 0;
  for (let tick = 0; tick < seconds * 10; tick++) {
    const batch = Array.from({ length: 10 }, () => message(5000 + (sent++ % 500)));
    for (const m of batch) sentAt.set(m.chat.id + '/' + m.message_id, performance.now());
    await inbound.addBulk(
      batch.map((m) => ({ name: 'message', data: m, opts: { jobId: inboundJobId(m as never) } })),
    );
    const next = steadyStart + (tick + 1) * 100;
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
  }
  await waitFinished(sent, 60_000);
  const steady = [...latencies].sort((a, b) => a - b);
  const cpuPerTurn = Object.fromEntries(
    Object.entries(procs).map(([k, m]) => [k, ((cpuMsOf(m) - cpu0[k]!) * 1000) / sent]),
  );

  // where the time goes, from BullMQ's own timestamps of the steady phase's jobs
  const stageQueue = new Queue(QueueName.OutboundTelegram, { connection, prefix });
  const steadyIds = new Set(
    [...sentAt.keys()].filter((k) => Number(k.split('/')[0]) >= 5000 && Number(k.split('/')[0]) < 5500),
  );
  const inJobs = (await inbound.getJobs(['completed'], 0, -1)).filter((j) =>
    steadyIds.has(`${j.data.chat.id}/${j.data.message_id}`),
  );
  const outJobs = (await stageQueue.getJobs(['completed'], 0, -1)).filter(
    (j) => j.name === 'finish' && steadyIds.has(`${j.data.chat.id}/${j.data.reply_to_message_id}`),
  );
  await stageQueue.close();
  const sorted = (a: number[]) => a.sort((x, y) => x - y);
  const stages = {
    inbound_pickup_ms: sorted(inJobs.map((j) => j.processedOn! - j.timestamp)),
    inbound_processing_ms: sorted(inJobs.map((j) => j.finishedOn! - j.processedOn!)),
    outbound_finish_pickup_ms: sorted(outJobs.map((j) => j.processedOn! - j.timestamp)),
  };

  // the model's own share: llm-proxy straight, same prompt size
  const model: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t = performance.now();
    const r = await fetch(`http://127.0.0.1:${port + 1}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${proxyKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'm',
        stream: true,
        messages: [
          { role: 'system', content: 'You are Pincer, a helpful assistant.' },
          { role: 'user', content: `question number ${i}` },
        ],
      }),
    });
    await r.text();
    model.push(performance.now() - t);
  }
  model.sort((a, b) => a - b);
  const check = new pg.Client({ connectionString: dbUrl });
  await check.connect();
  const { rows } = await check.query(
    `SELECT count(*) FILTER (WHERE role = 'assistant' AND status = 'complete')::int AS replies,
            count(*) FILTER (WHERE role = 'user' AND status = 'queued')::int AS queued FROM messages`,
  );
  await check.end();

  const results = {
    burst: { messages: n, conversations: chats, seconds: burstSeconds, turns_per_second: turnsPerSecond },
    steady_100_per_s: {
      messages: sent,
      e2e_p50_ms: pct(steady, 50),
      e2e_p99_ms: pct(steady, 99),
      model_p50_ms: pct(model, 50),
      model_p99_ms: pct(model, 99),
      added_p50_ms: pct(steady, 50) - pct(model, 50),
      added_p99_ms: pct(steady, 99) - pct(model, 99),
    },
    cpu_us_per_turn_at_100_per_s: cpuPerTurn,
    stages_at_100_per_s: Object.fromEntries(
      Object.entries(stages).map(([k, v]) => [k, { p50: pct(v, 50), p99: pct(v, 99), n: v.length }]),
    ),
    stored: rows[0],
    rss_mb: { idle: idleRss, after_burst: loadedRss, end: rssMB(core.pid!) },
  };
  const table = [
    [
      'turns/s, burst of ' + n + ' messages over ' + chats + ' conversations (full persistence)',
      fmt(turnsPerSecond, 0),
      '≥ 500',
    ],
    [
      'at 100 turns/s: message → finished reply p50 / p99',
      `${fmt(results.steady_100_per_s.e2e_p50_ms)} / ${fmt(results.steady_100_per_s.e2e_p99_ms)} ms`,
      '',
    ],
    [
      'model through llm-proxy alone p50 / p99',
      `${fmt(results.steady_100_per_s.model_p50_ms)} / ${fmt(results.steady_100_per_s.model_p99_ms)} ms`,
      '',
    ],
    [
      'engine added latency p50 / p99 (model subtracted)',
      `${fmt(results.steady_100_per_s.added_p50_ms)} / ${fmt(results.steady_100_per_s.added_p99_ms)} ms`,
      '≤ 10 / ≤ 50 ms',
    ],
    ...Object.entries(stages).map(([k, v]) => [
      `stage at 100 turns/s: ${k.replace(/_ms$/, '').replaceAll('_', ' ')} p50 / p99`,
      `${fmt(pct(v, 50), 0)} / ${fmt(pct(v, 99), 0)} ms`,
      '',
    ]),
    [
      'CPU per turn at 100 turns/s: ' + Object.keys(cpuPerTurn).join(' / '),
      Object.values(cpuPerTurn)
        .map((v) => fmt(v as number, 0))
        .join(' / ') + ' µs',
      '',
    ],
    ['replies stored / still queued', `${rows[0].replies} / ${rows[0].queued}`, '/ 0'],
    [
      'core RSS idle / after burst / end',
      `${fmt(results.rss_mb.idle, 0)} / ${fmt(results.rss_mb.after_burst, 0)} / ${fmt(results.rss_mb.end, 0)} MB`,
      '',
    ],
  ];
  const md = [
    '| measure | result | target |',
    '| --- | --- | --- |',
    ...table.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
  process.stdout.write(
    `\ncore benchmark (2 cores shared by mock, llm-proxy, core, Postgres, Redis and this load generator)\n\n${md}\n`,
  );
  mkdirSync(path.join(root, 'bench/results'), { recursive: true });
  writeFileSync(path.join(root, 'bench/results/core.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(root, 'bench/results/core.md'), `${md}\n`);

  await adapter.close();
  await inbound.close();
  await connection.quit();
  await stack.close();
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
