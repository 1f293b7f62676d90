/**
 * Fault suite, infrastructure: Redis and Postgres restarted while replies stream (and messages sent while
 * each is down), and a slow model behind a burst of messages. Every accepted message still gets exactly
 * one finished reply, the services reconnect by themselves (nobody restarts them), and a backlog drains
 * with bounded memory. Every service runs as its own process (tests/fault-kit.ts).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { QueueName } from '@pincer/shared';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import {
  type Expectation,
  type FaultStack,
  feishuOutcome,
  feishuUser,
  pad,
  report,
  type ServiceName,
  startFaultStack,
  telegramOutcome,
  tgUser,
  until,
} from './fault-kit.ts';

type FeishuExpectation = Expectation & { chat: string };

/** What a burst of users sent, per platform: what each must see. */
interface Sent {
  telegram: Expectation[];
  feishu: FeishuExpectation[];
}

function sendOne(s: FaultStack, sent: Sent, platform: 'telegram' | 'feishu', text: string): void {
  if (platform === 'telegram') {
    const uid = tgUser();
    s.tg.userSend({ chat: { id: uid, type: 'private' }, from: { id: uid, first_name: 'U' }, text });
    sent.telegram.push({ key: uid, reply: `Mock reply: ${text}` });
  } else {
    const m = s.fs.userSend({ chat: { type: 'p2p' }, sender: { open_id: feishuUser() }, text });
    sent.feishu.push({ key: m.message_id, chat: m.chat_id, reply: `Mock reply: ${text}` });
  }
}

/** `n` new users, alternately on Telegram and Feishu, one message each, spread over `overMs`. */
async function sendSpread(s: FaultStack, sent: Sent, n: number, overMs: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    sendOne(s, sent, i % 2 === 0 ? 'telegram' : 'feishu', `${tag} ${i} ${pad(i, 3)}`);
    await sleep(overMs / n);
  }
}

/** Both platforms' outcomes: every message with exactly one finished reply. */
async function outcome(s: FaultStack, sent: Sent, timeoutMs: number) {
  const [tg, fs] = await Promise.all([
    telegramOutcome(s.tg, sent.telegram, timeoutMs),
    feishuOutcome(s.fs, sent.feishu, timeoutMs),
  ]);
  return {
    missing: [...tg.missing, ...fs.missing],
    extra: [...tg.extra, ...fs.extra],
    ms: Math.max(tg.ms, fs.ms),
  };
}

/** Which process each service is, and how often this suite has started it. */
function identities(s: FaultStack): Record<ServiceName, { pid?: number; starts: number }> {
  return Object.fromEntries(
    Object.entries(s.procs).map(([name, p]) => [name, { pid: p.pid, starts: p.starts }]),
  ) as Record<ServiceName, { pid?: number; starts: number }>;
}

/** The same processes still run (none died and none was restarted), and each says it is healthy. */
async function assertSameHealthyProcesses(s: FaultStack, was: ReturnType<typeof identities>): Promise<void> {
  assert.deepEqual(identities(s), was, `a service process died or was restarted\n${s.tails()}`);
  for (const [name, p] of Object.entries(s.procs)) {
    // a dependency that just came back may take a moment to be seen as up again
    const ok = await until(
      async () => ((await p.healthy()) ? true : undefined),
      `${name} healthy`,
      120_000,
    ).catch(() => false);
    assert.ok(ok, `${name} /healthz is not ok after the restart\n${p.tail()}`);
  }
}

describe('faults: Redis and Postgres restarts, a slow consumer', { timeout: 1_500_000 }, () => {
  let s: FaultStack;
  let redis: Redis;
  let inbound: Queue;

  /** Whether the stack's Redis answers again (the test's own connection reconnects after a restart). */
  const redisUp = () =>
    until(
      async () => ((await Promise.race([redis.ping(), sleep(2000)])) === 'PONG' ? true : undefined),
      'redis to answer',
      120_000,
    );

  before(async () => {
    s = await startFaultStack({
      // a reply of about 40 tokens at 20 tokens/s: every reply streams for about 2 s
      mocks: [{ tokenRate: 20 }],
      // core answers 16 conversations at once: a burst waits in the inbound queue
      config: { system: { max_concurrency: 16 } },
      telegram: { flood: false },
      feishu: { limits: false },
    });
    redis = new Redis(s.redisUrl, { maxRetriesPerRequest: null });
    redis.on('error', () => {});
    inbound = new Queue(QueueName.Inbound, { connection: redis, prefix: 'pincer' });
    inbound.on('error', () => {}); // Redis is down on purpose in a case
  });
  after(async () => {
    await inbound?.close().catch(() => {});
    redis?.disconnect();
    await s?.close();
  });

  it('Redis restarted under load, and down while messages arrive: one finished reply each, no service restarted', async () => {
    const was = identities(s);
    const sent: Sent = { telegram: [], feishu: [] };
    // 120 users over 6 s; once replies stream, Redis is restarted (SIGTERM, as `docker compose restart` does)
    const load = sendSpread(s, sent, 120, 6000, 'redis-load');
    await until(() => (s.mocks[0]!.active >= 8 ? true : undefined), 'replies streaming', 120_000);
    const streaming = s.mocks[0]!.active;
    await s.redis.restart('SIGTERM');
    await redisUp();
    await load;
    // then down for a while: what users send meanwhile waits at the platforms or in the adapters
    await until(() => (s.mocks[0]!.active >= 8 ? true : undefined), 'replies streaming again', 120_000);
    await s.redis.kill('SIGTERM');
    await sendSpread(s, sent, 30, 3000, 'redis-down');
    await sleep(3000);
    await s.redis.start();
    await redisUp();
    await sendSpread(s, sent, 20, 2000, 'redis-back');

    const out = await outcome(s, sent, 600_000);
    assert.equal(out.missing.length + out.extra.length, 0, report(out, s));
    await assertSameHealthyProcesses(s, was);
    console.log(
      `# redis: restarted with ${streaming} replies streaming, then down 6 s while 30 more arrived; ` +
        `all ${sent.telegram.length + sent.feishu.length} answered once, the last ${out.ms} ms after sending stopped`,
    );
  });

  it('Postgres restarted under load, and down while messages arrive: one finished reply each, no service restarted', async () => {
    const was = identities(s);
    const sent: Sent = { telegram: [], feishu: [] };
    const load = sendSpread(s, sent, 120, 6000, 'pg-load');
    await until(() => (s.mocks[0]!.active >= 8 ? true : undefined), 'replies streaming', 120_000);
    const streaming = s.mocks[0]!.active;
    await s.pg.restartInBackground();
    await load;
    await until(() => (s.mocks[0]!.active >= 8 ? true : undefined), 'replies streaming again', 120_000);
    await s.pg.stopInBackground('fast');
    await sendSpread(s, sent, 30, 3000, 'pg-down');
    await sleep(3000);
    await s.pg.startInBackground();
    await sendSpread(s, sent, 20, 2000, 'pg-back');

    const out = await outcome(s, sent, 600_000);
    assert.equal(out.missing.length + out.extra.length, 0, report(out, s));
    await assertSameHealthyProcesses(s, was);
    console.log(
      `# postgres: restarted with ${streaming} replies streaming, then down about 6 s while 30 more arrived; ` +
        `all ${sent.telegram.length + sent.feishu.length} answered once, the last ${out.ms} ms after sending stopped`,
    );
  });

  it('a slow model behind a burst of 300 messages: the inbound queue grows and drains, memory stays bounded', async () => {
    const RSS_BOUND_MB = 300;
    // the model slows to 5 tokens/s for this burst (a short reply takes about a second) and core answers
    // 16 at a time: most of the burst waits in the queue
    s.mocks[0]!.script({ match: { contains: 'slow-burst' }, reply: { tokenRate: 5 } });
    const sent: Sent = { telegram: [], feishu: [] };
    const t0 = Date.now();
    for (let i = 0; i < 300; i++) sendOne(s, sent, i % 2 === 0 ? 'telegram' : 'feishu', `slow-burst ${i}`);

    let peakWaiting = 0;
    const peakRss: Record<string, number> = {};
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const c = await inbound.getJobCounts('waiting', 'prioritized', 'delayed').catch(() => undefined);
        if (c)
          peakWaiting = Math.max(peakWaiting, (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0));
        for (const [name, mb] of Object.entries(s.rss())) peakRss[name] = Math.max(peakRss[name] ?? 0, mb);
        await sleep(250);
      }
    })();

    const out = await outcome(s, sent, 900_000);
    const drainMs = Date.now() - t0;
    // the queue is empty once every reply is out: nothing waits, runs or was given up
    const left = await until(
      async () => {
        const c = await inbound.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
        return Object.values(c).every((n) => n === 0) ? c : undefined;
      },
      'the inbound queue to drain',
      120_000,
    ).catch(() => inbound.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'failed'));
    sampling = false;
    await sampler;

    console.log(
      `# slow consumer: 300 messages; inbound queue peaked at ${peakWaiting} waiting; all answered in ${drainMs} ms; ` +
        `peak RSS MB ${Object.entries(peakRss)
          .map(([k, v]) => `${k} ${v.toFixed(0)}`)
          .join(', ')}`,
    );
    assert.equal(out.missing.length + out.extra.length, 0, report(out, s));
    assert.ok(peakWaiting >= 150, `the inbound queue never grew: peak ${peakWaiting} waiting`);
    assert.deepEqual(
      left,
      { waiting: 0, prioritized: 0, delayed: 0, active: 0 },
      `the inbound queue did not drain: ${JSON.stringify(left)}`,
    );
    for (const [name, mb] of Object.entries(peakRss))
      assert.ok(
        mb > 0 && mb < RSS_BOUND_MB,
        `${name} peaked at ${mb.toFixed(0)} MB RSS (bound ${RSS_BOUND_MB} MB)`,
      );
  });
});
