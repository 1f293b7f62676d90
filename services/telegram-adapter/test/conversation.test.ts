import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { ADMIN_TOKEN, REDIS_URL } from '../../core/test/stack.ts';
import { newUserId, startTelegramStack, type TelegramStack } from './harness.ts';

const ANSWER = [
  'Here is **bold**, _italic_ and a [link](https://example.org).',
  '',
  '```python',
  'print("a < b")',
  '```',
  '',
  '- one',
  '- two',
  '',
  '> quoted',
].join('\n');

describe('Telegram: conversations through the real adapter, core, llm-proxy and the mock model', () => {
  let t: TelegramStack;
  before(async () => {
    t = await startTelegramStack({
      stack: { config: { access: { telegram: { direct: 'open', groups: 'mention' } } } },
    });
  });
  after(() => t?.close());

  it('a direct conversation: typing at once, streamed edits in place, the final Markdown rendered as HTML', async () => {
    const uid = newUserId();
    t.stack.mock.script({
      match: { contains: 'stream me' },
      times: 1,
      reply: { content: ANSWER, tokenRate: 25 },
    });
    const sentAt = Date.now();
    const { message } = t.emu.userSend({
      chat: { id: uid, type: 'private' },
      from: { id: uid, first_name: 'Ann' },
      text: 'stream me something',
    });
    const typingAt = await t.emu.waitFor(() => t.emu.chat(uid).typing[0], 5000, 'typing');
    assert.ok(typingAt - sentAt < 1000, `typing shown ${typingAt - sentAt} ms after the message`);

    const final = await t.emu.waitFor(
      () =>
        t.emu
          .chat(uid)
          .botMessages.find((m) => m.text.includes('quoted') && m.entities.some((e) => e.type === 'pre')),
      20_000,
      'the finished reply',
    );
    const bot = t.emu.chat(uid).botMessages;
    assert.equal(bot.length, 1, 'one message, edited in place');
    assert.equal(final.reply_to_message_id, message.message_id, 'answers the user message');
    assert.ok(final.edits >= 1, `streamed with edits (edits: ${final.edits})`);
    assert.equal(final.parse_mode, 'HTML');
    // what the user sees: formatting as entities, no Markdown syntax left
    assert.ok(!final.text.includes('**') && !final.text.includes('```'), final.text);
    assert.ok(final.text.includes('print("a < b")'));
    const types = new Set(final.entities.map((e: any) => e.type));
    for (const ty of ['bold', 'italic', 'text_link', 'pre', 'blockquote'])
      assert.ok(types.has(ty), `${ty} in ${[...types]}`);
    assert.equal(final.entities.find((e: any) => e.type === 'pre')?.language, 'python');
    // edits were paced (300 ms apart in this test's config) and never hit a flood limit
    const edits = t.emu.calls.filter(
      (c) => c.method === 'editMessageText' && String(c.params.chat_id) === String(uid),
    );
    for (let i = 1; i < edits.length; i++) assert.ok(edits[i]!.at - edits[i - 1]!.at >= 250, 'edits paced');
    assert.ok(!t.emu.calls.some((c) => c.error_code === 429));
  });

  it('"typing…" is kept alive while the model is slow, and stops with the finished reply', async () => {
    const uid = newUserId();
    t.stack.mock.script({ match: { contains: 'think long' }, times: 1, reply: { firstTokenDelayMs: 3500 } });
    t.emu.userSend({
      chat: { id: uid, type: 'private' },
      from: { id: uid, first_name: 'Ty' },
      text: 'think long',
    });
    await t.emu.waitFor(
      () => t.emu.chat(uid).botMessages.find((m) => m.text.includes('think long')),
      15_000,
      'the slow answer',
    );
    const typing = t.emu.chat(uid).typing;
    // this test's adapter repeats typing every second (Telegram shows it for about 5 s)
    assert.ok(typing.length >= 3, `typing sent ${typing.length} times while waiting`);
    for (let i = 1; i < typing.length; i++)
      assert.ok(typing[i]! - typing[i - 1]! >= 900, 'repeated, not spammed');
    // once the reply is finished, nothing keeps it alive
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await eventuallyEmpty(redis, `${t.stack.prefix}:telegram:typing:telegram/${uid}/*`);
      assert.deepEqual(keys, []);
    } finally {
      await redis.quit();
    }
  });

  it('groups: answered only when mentioned, replied to, or commanded with this bot’s suffix', async () => {
    const gid = -(1_000_000_000_000 + newUserId());
    const uid = newUserId();
    const chat = { id: gid, type: 'supergroup' as const, title: 'Team' };
    const from = { id: uid, first_name: 'Bo' };
    const me = `@${t.emu.bot.username}`;
    t.emu.userSend({ chat, from, text: 'just chatting among humans' });
    t.emu.userSend({ chat, from, text: '/help@some_other_bot' });
    const asked = t.emu.userSend({ chat, from, text: `${me} what is 2+2?` });
    const answered = await t.emu.waitFor(
      () =>
        t.emu
          .chat(gid)
          .botMessages.find(
            (m) => m.reply_to_message_id === asked.message.message_id && m.text.includes('what is 2+2?'),
          ),
      15_000,
      'the mention answered',
    );
    assert.ok(!answered.text.includes(me), 'the mention is removed before the model sees the text');
    // a reply to the bot's message is addressed too
    const reply = t.emu.userSend({ chat, from, text: 'and 3+3?', reply_to_message_id: answered.message_id });
    await t.emu.waitFor(
      () => t.emu.chat(gid).botMessages.find((m) => m.reply_to_message_id === reply.message.message_id),
      15_000,
      'the reply answered',
    );
    const help = t.emu.userSend({ chat, from, text: `/help@${t.emu.bot.username}` });
    const helpText = await t.emu.waitFor(
      () => t.emu.chat(gid).botMessages.find((m) => m.reply_to_message_id === help.message.message_id),
      15_000,
      'the help answered',
    );
    assert.match(helpText.text, /\/new/, 'core’s help text');
    // nothing else was answered: not the chatter, not the other bot's command
    assert.equal(t.emu.chat(gid).botMessages.length, 3);
  });

  it('a long answer is split under 4096 characters per message, code fences closed and reopened', async () => {
    const uid = newUserId();
    const code = Array.from(
      { length: 150 },
      (_, i) => `line_${i} = compute(${i})  # a fairly long comment`,
    ).join('\n');
    const text = `${'Intro paragraph. '.repeat(60)}\n\n\`\`\`python\n${code}\n\`\`\`\n\n${'Outro words. '.repeat(80)}`;
    t.stack.mock.script({ match: { contains: 'long one' }, times: 1, reply: { content: text } });
    t.emu.userSend({
      chat: { id: uid, type: 'private' },
      from: { id: uid, first_name: 'Cy' },
      text: 'long one please',
    });
    const parts = await t.emu.waitFor(
      () => {
        const b = t.emu.chat(uid).botMessages;
        return b.length >= 3 && b.at(-1)!.text.includes('Outro words.') ? b : undefined;
      },
      20_000,
      'all parts',
    );
    const visible = parts.map((m) => m.text).join('\n');
    for (const m of parts) assert.ok(m.text.length <= 4096, `part of ${m.text.length}`);
    assert.ok(visible.includes('line_0 = ') && visible.includes('line_149 = '), 'nothing lost');
    const withCode = parts.filter((m) =>
      m.entities.some((e: any) => e.type === 'pre' && e.language === 'python'),
    );
    assert.ok(withCode.length >= 2, 'the code block continues in the next message, still highlighted');
    assert.equal(parts[0]!.reply_to_message_id !== undefined, true);
  });

  it('pairing: an unknown user gets core’s pairing code; once approved, they are answered', async () => {
    const p = await startTelegramStack({
      stack: { config: { access: { telegram: { direct: 'pairing', groups: 'mention' } } } },
    });
    try {
      const uid = newUserId();
      const chat = { id: uid, type: 'private' as const };
      p.emu.userSend({ chat, from: { id: uid, first_name: 'New' }, text: 'hello?' });
      const msg = await p.emu.waitFor(() => p.emu.chat(uid).botMessages[0], 15_000, 'pairing message');
      const code = /pairing code: ([A-Z0-9]{8})/.exec(msg.text)?.[1];
      assert.ok(code, msg.text);
      const list = await fetch(`${p.stack.core.url}/api/v1/pairing?status=pending`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }).then((r) => r.json() as Promise<any>);
      const req = list.data.find((x: any) => x.code === code);
      const ok = await fetch(`${p.stack.core.url}/api/v1/pairing/${req.id}/approve`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      assert.equal(ok.status, 200);
      p.emu.userSend({ chat, from: { id: uid, first_name: 'New' }, text: 'approved now' });
      await p.emu.waitFor(
        () => p.emu.chat(uid).botMessages.find((m) => m.text.includes('approved now')),
        15_000,
        'the model answer',
      );
    } finally {
      await p.close();
    }
  });

  it('health and metrics report the mode, Telegram reachability and traffic', async () => {
    const h = await fetch(`${t.adapter.url}/healthz`);
    assert.equal(h.status, 200);
    const body = (await h.json()) as any;
    assert.equal(body.status, 'ok');
    assert.equal(body.mode, 'polling');
    assert.equal(body.telegram.reachable, true);
    assert.equal(body.bot.username, t.emu.bot.username);
    const m = await (await fetch(`${t.adapter.url}/metrics`)).text();
    assert.match(m, /pincer_telegram_updates_total\{[^}]*kind="message"[^}]*outcome="queued"[^}]*\} [1-9]/);
    assert.match(m, /pincer_telegram_messages_sent_total\{[^}]*\} [1-9]/);
    assert.match(m, /pincer_telegram_messages_edited_total\{[^}]*\} [1-9]/);
    assert.match(m, /pincer_telegram_api_request_duration_seconds_count\{[^}]*method="sendMessage"/);
    assert.match(m, /pincer_telegram_up\{[^}]*\} 1/);
    // core's backlog gauge, which the queue alert reads
    const core = await (await fetch(`${t.stack.core.url}/metrics`)).text();
    assert.match(core, /pincer_queue_waiting\{queue="inbound",service="core"\} \d+/);
    assert.match(core, /pincer_queue_waiting\{queue="outbound-telegram",service="core"\} \d+/);
  });
});

/** Polls until no key matches (a finished reply's typing flag is deleted right after its finish is shown). */
async function eventuallyEmpty(redis: Redis, pattern: string): Promise<string[]> {
  const end = Date.now() + 5000;
  for (;;) {
    const keys = await redis.keys(pattern);
    if (keys.length === 0 || Date.now() > end) return keys;
    await new Promise((r) => setTimeout(r, 50));
  }
}
