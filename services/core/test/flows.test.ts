import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, api, PROXY_KEY, type Stack, startStack } from './stack.ts';

describe('access, pairing, rate limits and the REST chat API (real engine)', () => {
  let s: Stack;
  const secretsSeen: string[] = [];
  before(async () => {
    s = await startStack({
      config: {
        access: {
          telegram: { direct: 'pairing', groups: 'mention' },
          feishu: { direct: 'allowlist', allow_users: ['ou_friend'] },
        },
        security: { rate_limit: '3/min' },
      },
    });
  });
  after(async () => {
    await s.close();
  });

  it('pairing: an unknown user gets a code, an admin approves it through the API, then the user is answered', async () => {
    const before = s.mock.requests.length;
    await s.send({
      text: 'hello, may I?',
      chat: { id: '3000', type: 'direct' },
      sender: { id: '3000', display_name: 'Newcomer' },
    });
    const first = await s.finished((x) => x.chat === '3000');
    const code = /pairing code: ([A-Z0-9]{8})/.exec(first.text)?.[1];
    if (code) secretsSeen.push(code);
    assert.ok(code, first.text);
    assert.equal(s.mock.requests.length, before, 'no model call for an unpaired user');
    await s.send({
      text: 'again?',
      chat: { id: '3000', type: 'direct' },
      sender: { id: '3000', display_name: 'Newcomer' },
    });
    assert.match(
      (await s.finished((x) => x.chat === '3000' && x.reply_id !== first.reply_id)).text,
      new RegExp(code!),
      'the same code while pending',
    );

    const pending = await api(s, 'GET', '/api/v1/pairing?status=pending');
    assert.equal(pending.status, 200);
    const req = pending.json.data.find((p: any) => p.code === code);
    assert.equal(req.display_name, 'Newcomer');
    assert.equal((await api(s, 'POST', `/api/v1/pairing/${req.id}/approve`)).status, 200);

    await s.send({
      text: 'now then',
      chat: { id: '3000', type: 'direct' },
      sender: { id: '3000', display_name: 'Newcomer' },
    });
    const answered = await s.finished((x) => x.chat === '3000' && x.text.includes('now then'));
    assert.equal(answered.status, 'complete');
  });

  it('allowlist: listed users are answered, others told politely', async () => {
    await s.send({
      platform: 'feishu',
      text: 'hi from a friend',
      chat: { id: 'oc_1', type: 'direct' },
      sender: { id: 'ou_friend', display_name: 'F' },
    });
    assert.match((await s.finished((x) => x.chat === 'oc_1')).text, /hi from a friend/);
    await s.send({
      platform: 'feishu',
      text: '你好',
      chat: { id: 'oc_2', type: 'direct' },
      sender: { id: 'ou_stranger', display_name: 'S' },
    });
    assert.match(
      (await s.finished((x) => x.chat === 'oc_2')).text,
      /私人助手/,
      'refused in the language they wrote in',
    );
  });

  it('rate limit: over the limit gets one polite reply, then silence, and no model calls', async () => {
    // a group where the bot answers when addressed, so pairing does not interfere
    const group = { id: '-3100', type: 'group' as const };
    const sender = { id: '3101', display_name: 'Chatty' };
    const addressed = { direct: false, mention: true, reply_to_bot: false };
    for (let i = 0; i < 3; i++) {
      await s.send({ text: `msg ${i}`, chat: group, sender, addressed });
      await s.finished((x) => x.chat === '-3100' && x.text.includes(`msg ${i}`));
    }
    const calls = s.mock.requests.length;
    await s.send({ text: 'msg 3', chat: group, sender, addressed });
    const polite = await s.finished((x) => x.chat === '-3100' && x.text.includes('faster than I can answer'));
    assert.ok(polite);
    await s.send({ text: 'msg 4', chat: group, sender, addressed });
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(s.mock.requests.length, calls, 'no model calls over the limit');
    assert.equal(
      [...s.replies.values()].filter((x) => x.text.includes('faster than I can answer')).length,
      1,
      'one polite reply only',
    );
  });

  it('REST chat: non-stream, continued conversation with history, and SSE streaming', async () => {
    const created = await api(s, 'POST', '/api/v1/keys', { name: 'rest-user', role: 'user' });
    const key = created.json.key as string;
    secretsSeen.push(key);
    s.mock.script({ match: { contains: 'rest question' }, reply: { content: 'rest answer one' } });
    const one = await api(s, 'POST', '/api/v1/chat', { message: 'rest question' }, key);
    assert.equal(one.status, 200, one.text);
    assert.equal(one.json.reply.content, 'rest answer one');
    assert.equal(one.json.reply.status, 'complete');
    assert.ok(one.json.conversation_id);
    const two = await api(
      s,
      'POST',
      '/api/v1/chat',
      { message: 'and a follow-up', conversation_id: one.json.conversation_id, model: 'big' },
      key,
    );
    assert.equal(two.status, 200, two.text);
    const sent = s.mock.requests.at(-1)!.body;
    assert.equal(sent.model, 'big-model');
    assert.deepEqual(sent.messages.map((m: any) => m.content).slice(1), [
      'rest question',
      'rest answer one',
      'and a follow-up',
    ]);
    const other = await api(s, 'POST', '/api/v1/keys', { name: 'someone-else', role: 'user' });
    assert.equal(
      (
        await api(
          s,
          'POST',
          '/api/v1/chat',
          { message: 'x', conversation_id: one.json.conversation_id },
          other.json.key,
        )
      ).status,
      403,
    );

    const res = await fetch(`${s.core.url}/api/v1/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          { role: 'system', content: 'be terse' },
          { role: 'user', content: 'earlier' },
          { role: 'assistant', content: 'noted' },
          { role: 'user', content: 'stream this please' },
        ],
        stream: true,
      }),
    });
    assert.match(res.headers.get('content-type')!, /text\/event-stream/);
    const text = await res.text();
    const deltas = [...text.matchAll(/event: delta\ndata: (.*)\n/g)]
      .map((m) => JSON.parse(m[1]!).text)
      .join('');
    const done = JSON.parse(/event: done\ndata: (.*)\n/.exec(text)![1]!);
    assert.equal(deltas, done.reply.content);
    assert.match(deltas, /stream this please/);
    const streamed = s.mock.requests.at(-1)!.body;
    assert.deepEqual(streamed.messages, [
      { role: 'system', content: 'be terse' },
      { role: 'user', content: 'earlier' },
      { role: 'assistant', content: 'noted' },
      { role: 'user', content: 'stream this please' },
    ]);
    const msgs = await api(
      s,
      'GET',
      `/api/v1/conversations/${done.conversation_id}/messages`,
      undefined,
      key,
    );
    assert.equal(msgs.status, 200);
    assert.equal(msgs.json.data.at(-1).role, 'assistant');
    assert.ok(msgs.json.data.at(-1).latency_ms >= 0);
  });

  it('never logs tokens, keys, pairing codes or message text (debug level included)', () => {
    const all = s.logs.join('\n');
    assert.ok(s.logs.length > 10, 'there are logs to scan');
    for (const secret of [
      ADMIN_TOKEN,
      PROXY_KEY,
      ...secretsSeen,
      'hello, may I?',
      'stream this please',
      'rest question',
      'hi from a friend',
    ]) {
      assert.ok(!all.includes(secret), `a log line contains ${secret.slice(0, 12)}…`);
    }
  });
});
