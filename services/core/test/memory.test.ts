import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { activeConversation } from '../src/repositories/conversations.ts';
import { storeUserMessage } from '../src/repositories/messages.ts';
import { isNearDuplicate, parseExtraction } from '../src/services/memory.ts';
import { api, type Stack, startStack } from './stack.ts';

/** The user behind a Telegram sender id. */
async function userOf(s: Stack, externalId: string): Promise<number> {
  const { rows } = await s.t.db.query(
    `SELECT user_id FROM identities WHERE platform = 'telegram' AND external_id = $1`,
    [externalId],
  );
  return rows[0].user_id;
}

async function memoriesOf(s: Stack, userId: number): Promise<string[]> {
  const { rows } = await s.t.db.query('SELECT content FROM memories WHERE user_id = $1 ORDER BY id', [
    userId,
  ]);
  return rows.map((r) => r.content);
}

/** Waits until the extraction job has read the user's message `text` (its watermark passed it). */
async function extractedUpTo(s: Stack, userId: number, text: string): Promise<void> {
  const { rows } = await s.t.db.query('SELECT max(id) AS id FROM messages WHERE content = $1', [text]);
  await until(
    async () =>
      (await s.t.db.query('SELECT memory_extracted_upto AS w FROM users WHERE id = $1', [userId])).rows[0].w,
    (w) => w >= rows[0].id,
  );
}

async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met; last value ${JSON.stringify(v)}`);
    await sleep(50);
  }
}

describe('long-term memory (real engine, Postgres, llm-proxy and the mock model)', () => {
  let s: Stack;
  let n = 0;
  /** Sends a direct message from `who` and returns the finished reply and the model request it caused. */
  const say = async (who: string, text: string, chat?: { id: string; type: 'direct' | 'group' }) => {
    const before = s.mock.requests.length;
    const id = `m${++n}`;
    await s.send({
      text,
      message_id: id,
      chat: chat ?? { id: who, type: 'direct' },
      sender: { id: who, display_name: who },
      addressed: { direct: !chat, mention: !!chat, reply_to_bot: false },
    });
    const reply = await s.finished((r) => r.actions.some((a) => a.reply_to_message_id === id));
    const request = s.mock.requests
      .slice(before)
      .find((r) => r.path === '/v1/chat/completions' && r.body.messages.at(-1).content === text);
    return { reply, request };
  };

  before(async () => {
    s = await startStack({
      // extraction runs at once after an exchange (production waits extract_delay_ms for a burst to end)
      config: { memory: { extract: true, extract_delay_ms: 0 } },
    });
  });
  after(async () => {
    await s?.close();
  });

  it('/remember, /memories and /forget: a user sees and deletes what is remembered about them', async () => {
    assert.match((await say('501', '/memories')).reply.text, /don't remember anything/);
    assert.match((await say('501', '/remember I am allergic to peanuts')).reply.text, /I'll remember/);
    assert.match((await say('501', '/remember i am allergic to peanuts!')).reply.text, /already knew/);
    await say('501', '/remember My sister is called Ines');
    await say('501', '/remember I work night shifts at the hospital');
    const listed = (await say('501', '/memories')).reply.text;
    assert.match(
      listed,
      /1\. I am allergic to peanuts\n2\. My sister is called Ines\n3\. I work night shifts at the hospital/,
    );
    assert.match((await say('501', '/forget 2')).reply.text, /Forgotten:\n- My sister is called Ines/);
    assert.match(
      (await say('501', '/forget night shifts')).reply.text,
      /- I work night shifts at the hospital/,
    );
    assert.match((await say('501', '/forget dragons')).reply.text, /nothing matching "dragons"/);
    // punctuation, an emoji or a lone letter match nothing (not everything)
    for (const what of ['???', '🙂', '-', 'a'])
      assert.match((await say('501', `/forget ${what}`)).reply.text, /nothing matching/);
    assert.match((await say('501', '/forget')).reply.text, /\/forget all/);
    assert.match((await say('501', '/remember')).reply.text, /\/remember <fact>/);
    assert.deepEqual(await memoriesOf(s, await userOf(s, '501')), ['I am allergic to peanuts']);
    assert.match((await say('501', '/forget all')).reply.text, /forgotten everything/);
    const uid = await userOf(s, '501');
    assert.deepEqual(await memoriesOf(s, uid), []);
    // what was said before the forget is never read by the extraction again (it would bring it back)
    const { rows } = await s.t.db.query(
      `SELECT u.memory_extracted_upto AS w, (SELECT max(id) FROM messages WHERE user_id = u.id AND role = 'user') AS last
       FROM users u WHERE u.id = $1`,
      [uid],
    );
    assert.ok(rows[0].w >= rows[0].last - 1, JSON.stringify(rows[0]));
    // the commands never reach the model
    assert.ok(
      !s.mock.requests.some(
        (r) => r.path === '/v1/chat/completions' && JSON.stringify(r.body).includes('/remember'),
      ),
    );
  });

  it("a user's memories go into their own prompts, never into another user's", async () => {
    await say('601', '/remember My dog is called Biscuit');
    const mine = await say('601', 'What should I buy for my dog?');
    assert.match(
      mine.request!.body.messages[0].content,
      /What you remember about the user[\s\S]*- My dog is called Biscuit/,
    );
    const theirs = await say('602', 'What should I buy for my dog?');
    assert.doesNotMatch(JSON.stringify(theirs.request!.body), /Biscuit/);
    // in a group (one conversation for all members) personal memories stay out by default
    const group = { id: '-6100', type: 'group' as const };
    const inGroup = await say('601', 'What should I buy for my dog in the group?', group);
    assert.doesNotMatch(JSON.stringify(inGroup.request!.body), /Biscuit/);
    assert.match((await say('601', '/memories', group)).reply.text, /direct chat/);
    // /forget in a group says how many, not what
    await say('601', '/remember I like green tea');
    assert.equal((await say('601', '/forget green tea', group)).reply.text, 'Forgotten:\n1');
  });

  it('when there are more memories than the budget, the ones related to the message come first', async () => {
    const user = '701';
    for (let i = 0; i < 40; i++)
      await say(user, `/remember Fact number ${i} is about the weather on day ${i} of the long trip`);
    await say(user, '/remember My favourite cheese is Roquefort');
    const r = await say(user, 'Which cheese do I like?');
    const system = r.request!.body.messages[0].content as string;
    assert.match(system, /Roquefort/);
    const kept = system.split('\n').filter((l) => l.startsWith('- Fact number')).length;
    assert.ok(kept < 40, `the budget kept ${kept} of 40`);
  });

  it('after an exchange, a background job extracts durable facts; a contradiction replaces the old fact', async () => {
    const user = '801';
    s.mock.script({
      // the extraction's input quotes the user's messages as <user>…</user>; the chat request does not
      match: { path: '/v1/chat/completions', contains: '<user>I just moved to Lisbon' },
      times: 1,
      reply: {
        content:
          'Here is what I found:\n```json\n{"add": ["The user lives in Lisbon.", "The user has a cat named Miso."], "update": [], "delete": []}\n```',
      },
    });
    await say(user, 'I just moved to Lisbon with my cat Miso. Any tips for the first week?');
    const id = await userOf(s, user);
    assert.deepEqual(
      await until(
        () => memoriesOf(s, id),
        (m) => m.length === 2,
      ),
      ['The user lives in Lisbon.', 'The user has a cat named Miso.'],
    );
    const extraction = s.mock.requests.find(
      (r) =>
        r.path === '/v1/chat/completions' &&
        r.body.messages[0].content.includes('long-term memory about ONE user') &&
        r.body.messages[1].content.includes('Lisbon'),
    )!;
    assert.match(extraction.body.messages[1].content, /<user>I just moved to Lisbon/);
    // the extraction reads the user's words only, not the assistant's answers
    assert.doesNotMatch(extraction.body.messages[1].content, /Mock reply/);
    // /remember's text is kept in memory, not in the chat log admins can read
    const logged = await s.t.db.query(`SELECT content FROM messages WHERE content LIKE '/remember%'`);
    assert.ok(logged.rows.length > 3);
    assert.ok(logged.rows.every((r) => ['/remember [kept in memory]', '/remember'].includes(r.content)));

    const { rows } = await s.t.db.query(
      `SELECT id FROM memories WHERE user_id = $1 AND content LIKE '%Lisbon%'`,
      [id],
    );
    s.mock.script({
      match: { path: '/v1/chat/completions', contains: '<user>Update: I moved again, to Porto' },
      times: 1,
      reply: {
        content: JSON.stringify({
          add: ['The user has a cat named Miso', 'The user lives in Porto.'],
          update: [{ id: rows[0].id, fact: 'The user lives in Porto.' }],
          delete: [999999999],
        }),
      },
    });
    await say(user, 'Update: I moved again, to Porto.');
    const after = await until(
      () => memoriesOf(s, id),
      (m) => m.some((x) => x.includes('Porto')),
    );
    // the job has finished with that message (not merely had time to)
    await extractedUpTo(s, id, 'Update: I moved again, to Porto.');
    assert.deepEqual(await memoriesOf(s, id), ['The user lives in Porto.', 'The user has a cat named Miso.']);
    assert.ok(after.length <= 2);

    // what was extracted is used in the next answer
    const next = await say(user, 'Where do I live?');
    assert.match(next.request!.body.messages[0].content, /The user lives in Porto\./);

    // a model that answers with something else than the JSON asked for changes nothing, and the
    // messages it read are not read again
    s.mock.script({
      match: { path: '/v1/chat/completions', contains: '<user>I also play the cello.' },
      times: 1,
      reply: { content: 'Sure! I will remember.' },
    });
    await say(user, 'I also play the cello.');
    await extractedUpTo(s, id, 'I also play the cello.');
    assert.deepEqual(await memoriesOf(s, id), ['The user lives in Porto.', 'The user has a cat named Miso.']);
  });

  it('the API: a key sees and deletes its own memories; admins see counts, content only if allowed', async () => {
    const key = (await api(s, 'POST', '/api/v1/keys', { name: 'mem-user', role: 'user' })).json;
    const add = await api(s, 'POST', '/api/v1/memories', { content: 'I prefer metric units' }, key.key);
    assert.equal(add.status, 201, add.text);
    const mine = await api(s, 'GET', '/api/v1/memories', undefined, key.key);
    assert.deepEqual(
      mine.json.data.map((m: any) => [m.content, m.source]),
      [['I prefer metric units', 'user']],
    );
    const other = (await api(s, 'POST', '/api/v1/keys', { name: 'mem-other', role: 'user' })).json;
    assert.equal((await api(s, 'GET', '/api/v1/memories', undefined, other.key)).json.data.length, 0);
    assert.equal(
      (await api(s, 'DELETE', `/api/v1/memories/${add.json.id}`, undefined, other.key)).status,
      404,
    );
    const owner = await s.t.db.query(
      `SELECT user_id FROM identities WHERE platform = 'api' AND external_id = $1`,
      [key.id],
    );
    const adminView = await api(s, 'GET', `/api/v1/users/${owner.rows[0].user_id}/memories`);
    assert.deepEqual(adminView.json, { user_id: owner.rows[0].user_id, count: 1, data: null });
    assert.equal(
      (await api(s, 'GET', `/api/v1/users/${owner.rows[0].user_id}/memories`, undefined, key.key)).status,
      403,
    );
    assert.equal((await api(s, 'POST', '/api/v1/memories', { content: '' }, key.key)).status, 400);
    // deleting one by id is a forget like /forget: what the user said before counts as read
    // a message no extraction has read yet (stored directly: a chat would schedule an extraction)
    const conv = await activeConversation(s.t.db, {
      scope: `api:mem-${key.id}`,
      platform: 'api',
      chatId: `mem-${key.id}`,
      chatType: 'direct',
      userId: owner.rows[0].user_id,
    });
    await storeUserMessage(s.t.db, {
      conversationId: conv.id,
      userId: owner.rows[0].user_id,
      platform: null,
      platformMessageId: null,
      orderKey: 1,
      content: 'I live in Oslo',
      sentAt: null,
      status: 'answered',
    });
    const oslo = await api(s, 'POST', '/api/v1/memories', { content: 'The user lives in Oslo' }, key.key);
    assert.equal(
      (await api(s, 'DELETE', `/api/v1/memories/${oslo.json.id}`, undefined, key.key)).status,
      204,
    );
    const marks = await s.t.db.query(
      `SELECT u.memory_extracted_upto AS upto, (SELECT max(id) FROM messages m WHERE m.user_id = u.id AND m.role = 'user') AS last
         FROM users u WHERE u.id = $1`,
      [owner.rows[0].user_id],
    );
    assert.ok(Number(marks.rows[0].last) > 0);
    assert.equal(Number(marks.rows[0].upto), Number(marks.rows[0].last));
    assert.equal((await api(s, 'DELETE', '/api/v1/memories', undefined, key.key)).json.deleted, 1);
    assert.equal((await api(s, 'GET', '/api/v1/memories', undefined, key.key)).json.data.length, 0);
  });
});

describe('memory extraction helpers', () => {
  it('finds the JSON in an answer and refuses anything else', () => {
    assert.deepEqual(parseExtraction('ok {"add": ["x"]} done'), { add: ['x'], update: [], delete: [] });
    assert.equal(parseExtraction('no json here'), undefined);
    assert.equal(parseExtraction('{"add": "not a list"}'), undefined);
    assert.equal(parseExtraction('{"add": [1, 2'), undefined);
  });

  it('treats a reworded fact as known, in English and Chinese', () => {
    const known = [{ content: 'The user lives in Lisbon.' }, { content: '用户住在上海浦东' }];
    assert.ok(isNearDuplicate('the user lives in Lisbon', known));
    assert.ok(isNearDuplicate('用户住在上海浦东。', known));
    assert.ok(!isNearDuplicate('The user lives in Porto.', known));
    assert.ok(!isNearDuplicate('用户喜欢喝绿茶', known));
  });
});
