import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QueueName } from '@pincer/shared';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { REDIS_URL, type Stack, startStack } from './stack.ts';

const lastUserText = (body: any) => body.messages.at(-1).content;

describe('conversation engine', () => {
  let s: Stack;
  before(async () => {
    s = await startStack({ mock: { tokenRate: 400 } });
  });
  after(async () => {
    await s.close();
  });

  it('answers a direct message with typing, a streamed reply and a stored exchange', async () => {
    s.mock.script({
      match: { contains: 'capital of France' },
      reply: { content: 'The capital of France is Paris, a city on the Seine.' },
    });
    await s.send({
      text: 'What is the capital of France?',
      chat: { id: '501', type: 'direct' },
      sender: { id: '501', display_name: 'Ada' },
    });
    const r = await s.finished((x) => x.chat === '501');
    assert.equal(r.status, 'complete');
    assert.equal(r.text, 'The capital of France is Paris, a city on the Seine.');
    assert.deepEqual(
      r.actions.map((a) => a.type).filter((t, i, all) => t !== all[i - 1]),
      ['typing', 'create', 'update', 'finish'].filter((t) => r.actions.some((a) => a.type === t)),
    );
    assert.equal(r.actions[0]!.type, 'typing');
    assert.ok(
      r.actions.every((a, i) => i === 0 || a.seq > r.actions[i - 1]!.seq),
      'seq increases',
    );
    assert.ok(
      r.actions.every((a) => a.reply_to_message_id),
      'answers the triggering message',
    );
    const sent = s.mock.requests.at(-1)!.body;
    assert.equal(sent.messages[0].role, 'system');
    assert.equal(lastUserText(sent), 'What is the capital of France?');
    const { rows } = await s.t.db
      .query(`SELECT m.role, m.status, m.model, m.prompt_tokens, m.completion_tokens, m.latency_ms, u.display_name
      FROM messages m JOIN conversations c ON c.id = m.conversation_id LEFT JOIN users u ON u.id = c.user_id WHERE c.chat_id = '501' ORDER BY m.id`);
    assert.equal(rows.length, 2);
    assert.equal(rows[0].status, 'answered');
    assert.equal(rows[1].role, 'assistant');
    assert.equal(rows[1].status, 'complete');
    assert.equal(rows[1].model, 'small');
    assert.ok(rows[1].completion_tokens > 0 && rows[1].prompt_tokens > 0 && rows[1].latency_ms >= 0);
    assert.equal(rows[0].display_name, 'Ada');
    const audit = await s.t.db.query(
      `SELECT kind, outcome, model, content FROM audit_log WHERE kind = 'model.invoke' ORDER BY id DESC LIMIT 1`,
    );
    assert.equal(audit.rows[0].outcome, 'complete');
    assert.equal(audit.rows[0].content, null, 'no text in the audit log unless configured');
  });

  it('keeps display names current and maps one sender to one user', async () => {
    await s.send({
      text: 'hi one',
      chat: { id: '502', type: 'direct' },
      sender: { id: '502', display_name: 'Old Name' },
    });
    await s.finished((x) => x.chat === '502');
    await s.send({
      text: 'hi two',
      chat: { id: '502', type: 'direct' },
      sender: { id: '502', display_name: 'New Name' },
    });
    await s.finished((x) => x.chat === '502' && x.text.includes('hi two'));
    const { rows } = await s.t.db.query(
      `SELECT u.display_name, count(*) OVER () AS n FROM identities i JOIN users u ON u.id = i.user_id WHERE i.external_id = '502'`,
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0].display_name, 'New Name');
  });

  it('answers one message at a time per conversation, in order, while conversations run in parallel', async () => {
    for (const m of ['first', 'second', 'third'])
      s.mock.script({ match: { contains: `order-${m}` }, reply: { content: `answer ${m} `.repeat(12) } });
    const before = s.mock.requests.length;
    for (const m of ['first', 'second', 'third'])
      await s.send({ text: `order-${m}`, chat: { id: '600', type: 'direct' } });
    for (const chat of ['601', '602', '603'])
      await s.send({ text: `parallel ${chat}`, chat: { id: chat, type: 'direct' } });
    await Promise.all(
      ['600', '601', '602', '603'].map((c) =>
        s.finished((x) => x.chat === c && x.text.includes(c === '600' ? 'answer third' : 'Mock reply')),
      ),
    );
    const mine = s.mock.requests.slice(before).filter((r) => lastUserText(r.body).startsWith('order-'));
    assert.deepEqual(
      mine.map((r) => lastUserText(r.body)),
      ['order-first', 'order-second', 'order-third'],
    );
    for (let i = 1; i < mine.length; i++)
      assert.ok(
        mine[i]!.startedAt >= mine[i - 1]!.finishedAt!,
        'the next answer starts after the previous one finished',
      );
    // the third question sees the first two exchanges in its history
    assert.deepEqual(
      mine[2]!.body.messages.map((m: any) => m.role),
      ['system', 'user', 'assistant', 'user', 'assistant', 'user'],
    );
    assert.ok(s.mock.maxActive >= 2, `conversations overlapped (max ${s.mock.maxActive} at once)`);
  });

  it('/start, /help, /model (list and switch), a content rule, and /new with a fresh history', async () => {
    await s.send({ text: '/start', chat: { id: '700', type: 'direct' } });
    assert.match((await s.finished((x) => x.chat === '700' && x.text.includes('Pincer'))).text, /Hello/);
    await s.send({ text: '/help', chat: { id: '700', type: 'direct' } });
    assert.match((await s.finished((x) => x.chat === '700' && x.text.includes('/new'))).text, /Commands/);
    await s.send({ text: '/model', chat: { id: '700', type: 'direct' } });
    const list = await s.finished((x) => x.chat === '700' && x.text.includes('Models'));
    assert.match(list.text, /small/);
    assert.match(list.text, /big/);
    await s.send({ text: '/model big', chat: { id: '700', type: 'direct' } });
    await s.finished((x) => x.chat === '700' && x.text.includes('now uses big'));
    await s.send({ text: 'remember the word banana', chat: { id: '700', type: 'direct' } });
    await s.finished((x) => x.chat === '700' && x.text.includes('banana'));
    assert.equal(s.mock.requests.at(-1)!.body.model, 'big-model', 'the switched model is used');
    await s.send({ text: '/new', chat: { id: '700', type: 'direct' } });
    await s.finished((x) => x.chat === '700' && x.text === 'Started a new conversation.');
    await s.send({ text: 'what word?', chat: { id: '700', type: 'direct' } });
    await s.finished((x) => x.chat === '700' && x.text.includes('what word?'));
    const last = s.mock.requests.at(-1)!.body;
    assert.deepEqual(
      last.messages.map((m: any) => m.role),
      ['system', 'user'],
      'a new conversation starts with no history',
    );
    assert.equal(last.model, 'big-model', 'the new conversation keeps the chosen model');
    await s.send({ text: '/model nonsense', chat: { id: '700', type: 'direct' } });
    await s.finished((x) => x.chat === '700' && x.text.includes('no model called "nonsense"'));
  });

  it('/stop cancels the reply being written and the model request behind it', async () => {
    s.mock.script({
      match: { contains: 'long story' },
      reply: { content: 'once upon a time '.repeat(400), tokenRate: 50 },
    });
    await s.send({ text: 'tell me a long story', chat: { id: '800', type: 'direct' } });
    await s.mock.waitFor(
      (r) => lastUserText(r.body ?? { messages: [{}] }) === 'tell me a long story' && r.chunksSent > 2,
      5000,
    );
    await s.send({ text: '/stop', chat: { id: '800', type: 'direct' } });
    const r = await s.finished((x) => x.chat === '800' && x.status === 'stopped');
    assert.match(r.text, /^once upon/);
    const req = await s.mock.waitFor(
      (x) => lastUserText(x.body ?? { messages: [{}] }) === 'tell me a long story' && x.aborted,
      3000,
    );
    assert.ok(req.chunksSent < 300, 'generation stopped early');
    await s.send({ text: '/stop', chat: { id: '800', type: 'direct' } });
    await s.finished((x) => x.chat === '800' && x.text.includes('Nothing is being written'));
  });

  it('in groups answers only when addressed, and keeps one conversation per group', async () => {
    const before = s.mock.requests.length;
    const group = { id: '-900', type: 'group' as const, title: 'Team' };
    await s.send({
      text: 'chatter among humans',
      chat: group,
      sender: { id: '901', display_name: 'A' },
      addressed: { direct: false, mention: false, reply_to_bot: false },
    });
    await s.send({
      text: 'bot, hello from A',
      chat: group,
      sender: { id: '901', display_name: 'A' },
      addressed: { direct: false, mention: true, reply_to_bot: false },
    });
    await s.finished((x) => x.chat === '-900' && x.text.includes('hello from A'));
    await s.send({
      text: 'and from B',
      chat: group,
      sender: { id: '902', display_name: 'B' },
      addressed: { direct: false, mention: false, reply_to_bot: true },
    });
    await s.finished((x) => x.chat === '-900' && x.text.includes('and from B'));
    const sent = s.mock.requests.slice(before);
    assert.equal(sent.length, 2, 'the unaddressed message was not answered');
    assert.deepEqual(
      sent[1]!.body.messages.map((m: any) => m.role),
      ['system', 'user', 'assistant', 'user'],
      'B sees the group conversation',
    );
    await s.send({
      event: 'bot_added',
      text: '',
      chat: { id: '-950', type: 'group' },
      sender: { id: '903', display_name: 'C' },
      addressed: { direct: false, mention: false, reply_to_bot: false },
    });
    await s.finished((x) => x.chat === '-950' && x.text.includes('Hello'));
  });

  it('tells the user plainly, in their language, when the model fails, without retrying', async () => {
    s.mock.script({ match: { contains: '失败' }, reply: { status: 500 } });
    s.mock.script({ match: { contains: 'fail please' }, reply: { status: 500 } });
    const before = s.mock.requests.length;
    await s.send({ text: '请让它失败', chat: { id: '1000', type: 'direct' } });
    const zh = await s.finished((x) => x.chat === '1000');
    assert.equal(zh.status, 'failed');
    assert.match(zh.text, /请稍后再试|出错/);
    await s.send({ text: 'fail please', chat: { id: '1001', type: 'direct' } });
    const en = await s.finished((x) => x.chat === '1001');
    assert.match(en.text, /try again/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(s.mock.requests.length - before, 2, 'one upstream call each: no retry storm');
    const { rows } = await s.t.db.query(
      `SELECT outcome FROM audit_log WHERE kind = 'model.invoke' AND outcome LIKE 'failed:%'`,
    );
    assert.ok(rows.length >= 2);
  });

  it('refuses a malformed inbound job with a reason, and goes on with the others', async () => {
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const q = new Queue(QueueName.Inbound, { connection, prefix: s.prefix });
    try {
      const bad = await q.add(
        'message',
        { v: 1, platform: 'telegram', text: 42 },
        { jobId: 'bad-payload-1' },
      );
      await s.send({ text: 'still fine', chat: { id: '1100', type: 'direct' } });
      await s.finished((x) => x.chat === '1100');
      for (let i = 0; i < 50 && (await bad.getState()) !== 'failed'; i++)
        await new Promise((r) => setTimeout(r, 50));
      const job = await q.getJob('bad-payload-1');
      assert.equal(await job!.getState(), 'failed');
      assert.match(job!.failedReason, /malformed inbound payload/);
      assert.equal(job!.attemptsMade, 1, 'not retried');
    } finally {
      await q.close();
      await connection.quit();
    }
  });

  it('a redelivered platform message is answered once', async () => {
    const before = s.mock.requests.length;
    await s.send({ text: 'only once please', chat: { id: '1200', type: 'direct' }, message_id: 'dup-1' });
    await s.finished((x) => x.chat === '1200');
    // same platform message again (a new job id: the queue's own dedup already expired, say)
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const q = new Queue(QueueName.Inbound, { connection, prefix: s.prefix });
    const job = await q.add(
      'message',
      {
        v: 1,
        platform: 'telegram',
        message_id: 'dup-1',
        order: 1,
        chat: { id: '1200', type: 'direct' },
        sender: { id: '1200', display_name: 'x' },
        text: 'only once please',
        addressed: { direct: true, mention: false, reply_to_bot: false },
        sent_at: Date.now(),
        received_at: Date.now(),
      },
      { jobId: 'redelivered-dup-1' },
    );
    for (let i = 0; i < 50 && (await job.getState()) !== 'completed'; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(await job.getState(), 'completed');
    assert.equal(s.mock.requests.length - before, 1);
    await q.close();
    await connection.quit();
  });
});

describe('history within the context window', () => {
  it('keeps at most history_messages and never more tokens than the context allows', async () => {
    const s = await startStack({
      config: { core: { history_messages: 4 } },
      models: undefined,
    });
    try {
      for (let i = 0; i < 4; i++) {
        await s.send({ text: `question ${i} ${'word '.repeat(20)}`, chat: { id: '1300', type: 'direct' } });
        await s.finished((x) => x.chat === '1300' && x.text.includes(`question ${i}`));
      }
      const roles = s.mock.requests.at(-1)!.body.messages.map((m: any) => m.role);
      assert.deepEqual(
        roles,
        ['system', 'user', 'assistant', 'user', 'assistant', 'user'],
        'four earlier messages at most',
      );
    } finally {
      await s.close();
    }
    const tiny = await startStack({
      models: (url) => ({
        providers: { p: { type: 'openai', nodes: [{ url: `${url}/v1` }] } },
        models: { small: { provider: 'p', model_id: 'small-model', context_window: 700, max_tokens: 200 } },
        routing: { default_model: 'small' },
      }),
    });
    try {
      for (let i = 0; i < 8; i++) {
        tiny.mock.script({ times: 1, reply: { content: `answer ${i} ${'lorem '.repeat(25)}` } });
        await tiny.send({
          text: `question ${i} ${'ipsum '.repeat(25)}`,
          chat: { id: '1301', type: 'direct' },
        });
        await tiny.finished((x) => x.chat === '1301' && x.text.includes(`answer ${i}`));
      }
      const messages = tiny.mock.requests.at(-1)!.body.messages as { role: string; content: string }[];
      const estimate = messages.reduce((n, m) => n + Math.ceil(m.content.length / 3.5) + 4, 0);
      assert.ok(
        estimate <= 700 - 200,
        `prompt of about ${estimate} tokens fits the context left after max_tokens`,
      );
      assert.ok(messages.length < 1 + 2 * 7 + 1, `older history dropped (${messages.length} messages)`);
      assert.match(messages.at(-1)!.content, /question 7/);
      assert.match(messages.at(-3)?.content ?? '', /question 6/, 'the newest history is kept');
    } finally {
      await tiny.close();
    }
  });
});

describe('ordering under concurrency', () => {
  it('answers every chat in sent order when many messages of many chats arrive at once', async () => {
    const s = await startStack({ config: { system: { max_concurrency: 32 } } });
    try {
      const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
      const q = new Queue(QueueName.Inbound, { connection, prefix: s.prefix });
      const chats = Array.from({ length: 12 }, (_, i) => String(7001 + i));
      const jobs = [];
      let order = 1;
      // interleaved: message i of every chat, then message i + 1 of every chat
      for (let i = 0; i < 8; i++) {
        for (const chat of chats) {
          const data = {
            v: 1,
            platform: 'telegram',
            message_id: `o${i}`,
            order: order++,
            chat: { id: chat, type: 'direct' },
            sender: { id: chat, display_name: 'x' },
            text: `c${chat} m${i}`,
            addressed: { direct: true, mention: false, reply_to_bot: false },
            sent_at: Date.now(),
            received_at: Date.now(),
          };
          jobs.push({ name: 'message', data, opts: { jobId: `telegram/${chat}/o${i}` } });
        }
      }
      await q.addBulk(jobs);
      for (const chat of chats)
        await s.finished((x) => x.chat === chat && x.text.includes(`c${chat} m7`), 30_000);
      for (const chat of chats) {
        const asked = s.mock.requests
          .map((r) => lastUserText(r.body))
          .filter((t: string) => t.startsWith(`c${chat} `));
        assert.deepEqual(
          asked,
          [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `c${chat} m${i}`),
          `chat ${chat} answered in order`,
        );
      }
      await q.close();
      await connection.quit();
    } finally {
      await s.close();
    }
  });
});
