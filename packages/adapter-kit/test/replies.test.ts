import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createLogger, type OutboundAction, QueueName } from '@pincer/shared';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import {
  type Desired,
  type Presenter,
  ReplyGone,
  ReplyRunner,
  type ReplyTarget,
  RetryAfter,
  type ShowContext,
} from '../src/index.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const log = createLogger({ service: 'adapter-kit-test', level: 'error' });

interface Shown {
  reply: string;
  chat: string;
  text: string;
  seq: number;
  final: boolean;
  state: number | undefined;
}

/** A presenter that records what it was asked to show; `plan` scripts failures per call. */
class FakePresenter implements Presenter<number> {
  shown: Shown[] = [];
  plan: Array<(d: Desired, ctx: ShowContext<number>, state: number | undefined) => Promise<void>> = [];
  finishedCalls: string[] = [];
  async show(t: ReplyTarget, d: Desired, state: number | undefined, ctx: ShowContext<number>) {
    const step = this.plan.shift();
    if (step) await step(d, ctx, state);
    this.shown.push({ reply: t.reply_id, chat: t.chat.id, text: d.text, seq: d.seq, final: d.final, state });
    return (state ?? 0) + 1;
  }
  async finished(t: ReplyTarget) {
    this.finishedCalls.push(t.reply_id);
  }
}

let redis: Redis;
let prefix: string;
let queue: Queue;
let events: QueueEvents;
let eventsConnection: Redis;
let presenter: FakePresenter;
let runner: ReplyRunner<number>;

before(async () => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  prefix = `pincer-test-kit-${randomBytes(5).toString('hex')}`;
  queue = new Queue(QueueName.OutboundTelegram, { connection: redis, prefix });
  eventsConnection = redis.duplicate();
  events = new QueueEvents(QueueName.OutboundTelegram, { connection: eventsConnection, prefix });
  await events.waitUntilReady();
  presenter = new FakePresenter();
  runner = new ReplyRunner({
    connection: redis,
    prefix,
    queue: QueueName.OutboundTelegram,
    platform: 'test',
    presenter,
    log,
    concurrency: 16,
  });
  runner.start();
});

after(async () => {
  await runner.close();
  await events.close();
  await eventsConnection.quit();
  await queue.close();
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

let n = 0;
function action(
  reply: string,
  type: OutboundAction['type'],
  seq: number,
  text = '',
  chat = 'c1',
): OutboundAction {
  return {
    v: 1,
    type,
    chat: { id: chat, type: 'direct' },
    reply_id: reply,
    seq,
    ...(type === 'typing' ? {} : { text }),
    ...(type === 'finish' ? { status: 'complete' } : {}),
  } as OutboundAction;
}

async function publish(a: OutboundAction, opts: { jobId?: string; attempts?: number } = {}) {
  const job = await queue.add(a.type, a, {
    jobId: opts.jobId ?? `${a.reply_id}#${a.seq}#${n++}`,
    attempts: opts.attempts ?? 1,
    backoff: { type: 'fixed', delay: 50 },
  });
  return job;
}

test('a reply: older actions are ignored, the finish is shown last and completes its job', async () => {
  const r = `r-${n++}`;
  const chat = `chat-${n}`;
  // published out of order, as concurrent workers may see them
  const fin = await publish(action(r, 'finish', 40, 'final answer', chat));
  await publish(action(r, 'update', 30, 'partial 2', chat));
  await publish(action(r, 'create', 10, 'p', chat));
  await fin.waitUntilFinished(events, 5000);
  const mine = presenter.shown.filter((s) => s.reply === r);
  assert.equal(mine.at(-1)?.text, 'final answer');
  assert.equal(mine.at(-1)?.final, true);
  // nothing shown after the finish, and never an older seq after a newer one
  for (let i = 1; i < mine.length; i++) assert.ok(mine[i]!.seq > mine[i - 1]!.seq);
  // the state a show returns is handed to the next show of the reply
  assert.deepEqual(
    mine.map((s) => s.state),
    mine.map((_, i) => (i === 0 ? undefined : i)),
  );
  assert.deepEqual(presenter.finishedCalls.filter((x) => x === r).length, 1);
  // late actions of a finished reply change nothing
  const late = await publish(action(r, 'update', 35, 'late', chat));
  await late.waitUntilFinished(events, 5000);
  const again = await publish(action(r, 'finish', 40, 'final answer', chat));
  await again.waitUntilFinished(events, 5000);
  assert.equal(presenter.shown.filter((s) => s.reply === r).length, mine.length);
});

test('streamed updates are coalesced: a burst shows the latest text, not every step', async () => {
  const r = `r-${n++}`;
  const chat = `chat-${n}`;
  let release!: () => void;
  const gate = new Promise<void>((res) => (release = res));
  presenter.plan.push(() => gate); // the first show is slow (as if paced)
  await publish(action(r, 'create', 1, 'a', chat));
  await waitFor(() => presenter.plan.length === 0);
  for (let i = 2; i <= 20; i++) await publish(action(r, 'update', i, 'a'.repeat(i), chat));
  const fin = await publish(action(r, 'finish', 21, 'done', chat));
  release();
  await fin.waitUntilFinished(events, 5000);
  const mine = presenter.shown.filter((s) => s.reply === r);
  assert.ok(mine.length <= 3, `shown ${mine.length} times: ${mine.map((s) => s.text).join(',')}`);
  assert.equal(mine.at(-1)?.text, 'done');
});

test('RetryAfter waits and shows the then-latest text; the finish job completes', async () => {
  const r = `r-${n++}`;
  const chat = `chat-${n}`;
  presenter.plan.push(async () => {
    throw new RetryAfter(150, 'flood');
  });
  const started = Date.now();
  const fin = await publish(action(r, 'finish', 5, 'after the flood', chat));
  await fin.waitUntilFinished(events, 5000);
  assert.ok(Date.now() - started >= 150);
  const mine = presenter.shown.filter((s) => s.reply === r);
  assert.deepEqual(
    mine.map((s) => s.text),
    ['after the flood'],
  );
});

test('ReplyGone stops the reply: its job completes and nothing more is shown', async () => {
  const r = `r-${n++}`;
  const chat = `chat-${n}`;
  presenter.plan.push(async () => {
    throw new ReplyGone('blocked');
  });
  const fin = await publish(action(r, 'finish', 5, 'never seen', chat));
  await fin.waitUntilFinished(events, 5000);
  const again = await publish(action(r, 'finish', 5, 'never seen', chat));
  await again.waitUntilFinished(events, 5000);
  assert.equal(presenter.shown.filter((s) => s.reply === r).length, 0);
  assert.ok(presenter.finishedCalls.includes(r));
});

test('a finish that fails after saving progress is retried from the saved state', async () => {
  const r = `r-${n++}`;
  const chat = `chat-${n}`;
  presenter.plan.push(async (_d, ctx) => {
    await ctx.save(41); // e.g. part 1 of 2 sent
    throw new Error('connection reset');
  });
  const fin = await publish(action(r, 'finish', 9, 'two parts', chat), { attempts: 3 });
  await fin.waitUntilFinished(events, 5000);
  const mine = presenter.shown.filter((s) => s.reply === r);
  assert.equal(mine.length, 1);
  assert.equal(mine[0]!.state, 41, 'the retry starts from what was already shown');
});

test('replies of one chat are shown in the order they began', async () => {
  const chat = `chat-${n++}`;
  const a = `a-${n++}`;
  const b = `b-${n++}`;
  let release!: () => void;
  const gate = new Promise<void>((res) => (release = res));
  const blocker = `blk-${n++}`;
  presenter.plan.push(() => gate);
  await publish(action(blocker, 'finish', 1, 'first', chat));
  await waitFor(() => presenter.plan.length === 0);
  // while the chat is busy, B's finish is queued before A's, but A began first
  const fb = await publish(action(b, 'finish', 200, 'B', chat));
  const fa = await publish(action(a, 'finish', 100, 'A', chat));
  await waitFor(() => runner.active === 3); // both waiting behind the busy chat
  release();
  await Promise.all([fa.waitUntilFinished(events, 5000), fb.waitUntilFinished(events, 5000)]);
  const order = presenter.shown.filter((s) => s.chat === chat).map((s) => s.text);
  assert.deepEqual(order, ['first', 'A', 'B']);
});

test('a malformed action fails its job without retry and shows nothing', async () => {
  const job = await queue.add(
    'finish',
    { v: 1, type: 'finish', text: 5 },
    { jobId: `bad-${n++}`, attempts: 5 },
  );
  await assert.rejects(job.waitUntilFinished(events, 5000), /malformed outbound action/);
  const failed = await queue.getJob(job.id!);
  assert.equal(failed?.attemptsMade, 1);
});

async function waitFor(fn: () => boolean, ms = 3000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('close waits for the show in progress, so no per-reply lock outlives the process', async () => {
  const p2 = new FakePresenter();
  const r2 = new ReplyRunner({
    connection: redis,
    prefix,
    queue: 'outbound-close-test',
    platform: 'test',
    presenter: p2,
    log,
  });
  r2.start();
  const q2 = new Queue('outbound-close-test', { connection: redis, prefix });
  const reply = `r-${n++}`;
  let release!: () => void;
  p2.plan.push(() => new Promise<void>((res) => (release = res)));
  await q2.add('update', action(reply, 'create', 1, 'streaming', `chat-${n}`), { jobId: `c-${n++}` });
  await waitFor(() => p2.plan.length === 0); // the show has begun and holds the reply's lock
  const lock = `${prefix}:test:reply:${reply}:lock`;
  assert.equal(await redis.exists(lock), 1);
  let closed = false;
  const closing = r2.close().then(() => (closed = true));
  await new Promise((res) => setTimeout(res, 50));
  assert.equal(closed, false, 'close waits for the running show');
  release();
  await closing;
  assert.equal(await redis.exists(lock), 0, 'the lock is released');
  await q2.close();
});

test('two adapter processes on one queue: each reply is created once and ends with its final text', async () => {
  const queueName = 'outbound-two-runners';
  // a presenter that "sends" a message when the reply has none yet and edits it otherwise
  const created = new Map<string, number>();
  const lastShown = new Map<string, { text: string; final: boolean }>();
  const make = (): Presenter<string> => ({
    async show(t, d, state) {
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 15));
      if (state === undefined) created.set(t.reply_id, (created.get(t.reply_id) ?? 0) + 1);
      const shown = lastShown.get(t.reply_id);
      assert.ok(!shown?.final, `${t.reply_id}: nothing is shown after its final text`);
      lastShown.set(t.reply_id, { text: d.text, final: d.final });
      return `msg-of-${t.reply_id}`;
    },
  });
  const runners = [make(), make()].map(
    (presenter) =>
      new ReplyRunner({
        connection: redis,
        prefix,
        queue: queueName,
        platform: 'two',
        presenter,
        log,
        concurrency: 8,
      }),
  );
  for (const r of runners) r.start();
  const q = new Queue(queueName, { connection: redis, prefix });
  q.setMaxListeners(100);
  const replies = Array.from({ length: 12 }, (_, i) => `two-${n++}-${i}`);
  const finishes: Array<{ id?: string }> = [];
  for (const r of replies) {
    const chat = `chat-${r}`;
    await q.add('create', action(r, 'create', 1, 'a', chat), { jobId: `${r}#1` });
    for (let s = 2; s <= 6; s++)
      await q.add('update', action(r, 'update', s, 'a'.repeat(s), chat), { jobId: `${r}#${s}` });
    finishes.push(await q.add('finish', action(r, 'finish', 7, `final ${r}`, chat), { jobId: `${r}#7` }));
  }
  let doneCount = 0;
  const poll = setInterval(async () => {
    const states = await Promise.all(finishes.map((f) => q.getJobState(f.id!)));
    doneCount = states.filter((s) => s === 'completed').length;
  }, 50);
  // polled, not awaited through queue events: this test is about the runners, not event delivery
  await waitFor(() => doneCount === finishes.length, 10_000);
  clearInterval(poll);
  for (const r of replies) {
    assert.equal(created.get(r), 1, `${r} created ${created.get(r)} times`);
    assert.deepEqual(lastShown.get(r), { text: `final ${r}`, final: true });
  }
  await Promise.all(runners.map((r) => r.close()));
  await q.close();
});

test('a finish told to wait long goes back to the queue (delayed) instead of holding a worker slot', async () => {
  const queueName = 'outbound-park';
  const p3 = new FakePresenter();
  const r3 = new ReplyRunner({
    connection: redis,
    prefix,
    queue: queueName,
    platform: 'park',
    presenter: p3,
    log,
    parkAfterMs: 100,
  });
  r3.start();
  const q = new Queue(queueName, { connection: redis, prefix });
  const reply = `park-${n++}`;
  p3.plan.push(async () => {
    throw new RetryAfter(400, 'flood: retry after 0.4 s');
  });
  const job = await q.add('finish', action(reply, 'finish', 3, 'after parking', `chat-${n}`), {
    jobId: `${reply}#3`,
  });
  await waitFor(() => p3.plan.length === 0);
  let sawDelayed = false;
  await waitFor(() => {
    void q.getJobState(job.id!).then((s) => {
      if (s === 'delayed') sawDelayed = true;
    });
    return sawDelayed;
  }, 2000);
  assert.equal(r3.active, 0, 'nothing held in this process while parked');
  await waitFor(() => p3.shown.some((s) => s.reply === reply), 5000);
  assert.deepEqual(
    p3.shown.filter((s) => s.reply === reply).map((s) => s.text),
    ['after parking'],
  );
  await r3.close();
  await q.close();
});
