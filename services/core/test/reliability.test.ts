import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ADMIN_TOKEN, startStack } from './stack.ts';

const lastUser = (body: any) => body?.messages?.at(-1)?.content ?? '';

describe('reliability (findings of the core review, each pinned)', () => {
  it('the same message id in two chats is two messages (Telegram ids are per chat)', async () => {
    const s = await startStack();
    try {
      await s.send({ text: 'from chat A', chat: { id: '4001', type: 'direct' }, message_id: '42' });
      await s.send({ text: 'from chat B', chat: { id: '4002', type: 'direct' }, message_id: '42' });
      await s.finished((x) => x.chat === '4001' && x.text.includes('from chat A'));
      await s.finished((x) => x.chat === '4002' && x.text.includes('from chat B'));
    } finally {
      await s.close();
    }
  });

  it('a redelivered answered message shows its stored answer again (a lost finish is repaired)', async () => {
    const s = await startStack();
    try {
      await s.send({ text: 'answer me once', chat: { id: '4100', type: 'direct' }, message_id: 'm1' });
      const first = await s.finished((x) => x.chat === '4100');
      const calls = s.mock.requests.length;
      // the platform delivers it again (a new job: the first one completed long ago)
      await s.send({
        text: 'answer me once',
        chat: { id: '4100', type: 'direct' },
        message_id: 'm1',
        order: 1,
        jobId: 'redelivery-of-m1',
      });
      for (let i = 0; i < 100 && first.finishes < 2; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(first.finishes, 2, 'the stored answer was published again');
      assert.equal(first.text, 'Mock reply: answer me once');
      assert.equal(s.mock.requests.length, calls, 'not generated again');
      const finishes = first.actions.filter((a) => a.type === 'finish');
      assert.ok(finishes[1]!.seq > finishes[0]!.seq, 'a newer seq, so adapters do not drop it as old');
    } finally {
      await s.close();
    }
  });

  it('messages waiting behind a slow answer are not counted twice against the rate limit', async () => {
    const s = await startStack({ config: { security: { rate_limit: '4/min' } } });
    try {
      s.mock.script({ match: { contains: 'slow one' }, reply: { delayMs: 1500 } });
      for (const t of ['slow one', 'quick two', 'quick three', 'quick four'])
        await s.send({ text: t, chat: { id: '4200', type: 'direct' } });
      for (const t of ['slow one', 'quick two', 'quick three', 'quick four'])
        await s.finished((x) => x.chat === '4200' && x.text.includes(t), 15_000);
      assert.ok(![...s.replies.values()].some((x) => x.text.includes('faster than I can answer')));
    } finally {
      await s.close();
    }
  });

  it('a model stream cut mid-answer is asked again: the reply is rewound and finished once', async () => {
    const s = await startStack({ mock: { tokenRate: 200 } });
    try {
      // the upstream connection dies after a few chunks, once; llm-proxy says so in the stream
      s.mock.script({
        match: { contains: 'cut me' },
        times: 1,
        reply: { content: 'the first try that breaks off early', disconnectAfterChunks: 3 },
      });
      await s.send({ text: 'cut me off please', chat: { id: '4250', type: 'direct' } });
      const r = await s.finished((x) => x.chat === '4250', 15_000);
      assert.equal(r.status, 'complete');
      assert.equal(r.text, 'Mock reply: cut me off please', 'the second answer replaced the cut one');
      assert.equal(r.finishes, 1);
      const asked = s.mock.requests.filter((q) => lastUser(q.body) === 'cut me off please');
      assert.equal(asked.length, 2, 'asked twice');
      const shown = r.actions.filter((a) => a.type !== 'typing').map((a) => a.text ?? '');
      assert.ok(
        shown.some((t) => t !== '' && 'the first try that breaks off early'.startsWith(t)),
        `the cut answer was on screen before it was replaced: ${JSON.stringify(shown)}`,
      );
    } finally {
      await s.close();
    }
  });

  it('a reply with NUL characters is stored and shown without them', async () => {
    const s = await startStack();
    try {
      s.mock.script({ match: { contains: 'nul please' }, reply: { content: 'a\u0000b' } });
      await s.send({ text: 'nul please', chat: { id: '4300', type: 'direct' } });
      const r = await s.finished((x) => x.chat === '4300');
      assert.equal(r.status, 'complete');
      const { rows } = await s.t.db.query(
        `SELECT content FROM messages WHERE role = 'assistant' AND reply_to IS NOT NULL ORDER BY id DESC LIMIT 1`,
      );
      assert.equal(rows[0].content, 'ab');
    } finally {
      await s.close();
    }
  });

  it('a message that keeps failing is given up after three attempts, and the chat goes on', async () => {
    const s = await startStack();
    try {
      // a fault only this test database has: storing any answer that mentions "poison" fails
      await s.t.db.query(`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF NEW.role = 'assistant' AND NEW.content LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$`);
      await s.t.db.query(
        `CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION poison()`,
      );
      await s.send({ text: 'poison please', chat: { id: '4400', type: 'direct' } });
      await s.send({ text: 'and then this', chat: { id: '4400', type: 'direct' } });
      const failed = await s.finished((x) => x.chat === '4400' && x.status === 'failed', 30_000);
      assert.match(failed.text, /went wrong/);
      await s.finished((x) => x.chat === '4400' && x.text.includes('and then this'), 30_000);
      const { rows } = await s.t.db.query(
        `SELECT status, attempts FROM messages WHERE content = 'poison please'`,
      );
      assert.deepEqual(rows[0], { status: 'failed', attempts: 3 });
      assert.equal(
        s.mock.requests.filter((r) => lastUser(r.body) === 'poison please').length,
        3,
        'three attempts, no more',
      );
    } finally {
      await s.close();
    }
  });

  it("losing the turn lock's connection mid-stream: core survives and the user gets one finished answer", async () => {
    const s = await startStack({ mock: { tokenRate: 40 } });
    try {
      s.mock.script({ match: { contains: 'lock test' }, reply: { content: 'steady words '.repeat(20) } });
      await s.send({ text: 'lock test', chat: { id: '4500', type: 'direct' } });
      await s.mock.waitFor((r) => lastUser(r.body) === 'lock test' && r.chunksSent >= 5, 10_000);
      const { rows } = await s.t.db.query(
        `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      assert.equal(rows.length, 1, 'one turn held');
      await s.t.db.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
      const r = await s.finished((x) => x.chat === '4500', 20_000);
      assert.equal(r.status, 'complete');
      assert.equal(r.text, 'steady words '.repeat(20));
      assert.equal(r.finishes, 1);
      const stored = await s.t.db.query(
        `SELECT count(*)::int AS n FROM messages WHERE role = 'assistant' AND reply_to IS NOT NULL`,
      );
      assert.equal(stored.rows[0].n, 1);
      // the process is alive and answers the next message
      await s.send({ text: 'still here?', chat: { id: '4500', type: 'direct' } });
      await s.finished((x) => x.chat === '4500' && x.text.includes('still here?'));
    } finally {
      await s.close();
    }
  });

  it('REST chat is capped per process (429, never a pool timeout), and a failed request leaves nothing queued', async () => {
    const s = await startStack({ config: { system: { max_concurrency: 2 } }, mock: { tokenRate: 20 } });
    try {
      const statuses = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          fetch(`${s.core.url}/api/v1/chat`, {
            method: 'POST',
            headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
            body: JSON.stringify({ message: `parallel ${i} please` }),
          }).then((r) => r.status),
        ),
      );
      assert.ok(statuses.includes(200), statuses.join(','));
      assert.ok(statuses.includes(429), statuses.join(','));
      assert.ok(
        statuses.every((x) => x === 200 || x === 429),
        statuses.join(','),
      );
      const { rows } = await s.t.db.query(`SELECT count(*)::int AS n FROM messages WHERE status = 'queued'`);
      assert.equal(rows[0].n, 0);
    } finally {
      await s.close();
    }
  });
});
