import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QueueName } from '@pincer/shared';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { REDIS_URL } from '../../core/test/stack.ts';
import { newUserId, startTelegramStack, type TelegramStack } from './harness.ts';

/** Once nothing is queued or being worked on anywhere, every listed user has exactly one answer per message. */
async function assertAnsweredOnce(t: TelegramStack, sent: Array<{ uid: number; text: string }>) {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queues = [QueueName.Inbound, QueueName.OutboundTelegram].map(
    (name) => new Queue(name, { connection, prefix: t.stack.prefix }),
  );
  try {
    // a late duplicate would come from work still queued: wait for all of it to end first
    await eventually(async () => {
      const counts = await Promise.all(
        queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')),
      );
      const idle = counts.every((c) => Object.values(c).every((v) => v === 0));
      return idle && t.emu.pendingUpdates() === 0 ? true : undefined;
    }, 'queues drained');
  } finally {
    await Promise.all(queues.map((q) => q.close()));
    await connection.quit();
  }
  for (const { uid, text } of sent) {
    const answers = t.emu.chat(uid).botMessages.filter((m) => m.text.includes(text));
    assert.equal(answers.length, 1, `user ${uid} "${text}": ${answers.length} answers`);
  }
}

async function eventually<T>(fn: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const answered = (t: TelegramStack, sent: Array<{ uid: number; text: string }>) => () =>
  sent.every(({ uid, text }) => t.emu.chat(uid).botMessages.some((m) => m.text.includes(text)));

describe('Telegram: nothing lost, nothing repeated', () => {
  it('a 429 storm: every reply is delivered once, after waiting retry_after', async () => {
    const t = await startTelegramStack({
      emulator: { flood: { perChatPerSec: 1, perChatBurst: 2, perGroupPerMin: 20, globalPerSec: 8 } },
      // the adapter paces itself a little faster than the emulator allows, so Telegram pushes back
      telegram: {
        limits: { per_chat_per_sec: 5, per_chat_burst: 5, per_group_per_min: 60, global_per_sec: 50 },
      },
    });
    try {
      t.emu.inject({ kind: 'flood', method: 'sendMessage', times: 6, retryAfter: 1 });
      const sent: Array<{ uid: number; text: string }> = [];
      for (let i = 0; i < 12; i++) {
        const uid = newUserId();
        const text = `storm message ${i}`;
        sent.push({ uid, text });
        t.emu.userSend({ chat: { id: uid, type: 'private' }, from: { id: uid, first_name: `U${i}` }, text });
      }
      await t.emu.waitFor(answered(t, sent), 60_000, 'every storm message answered');
      assert.ok(t.emu.calls.filter((c) => c.error_code === 429).length >= 6, 'Telegram did answer 429s');
      await assertAnsweredOnce(t, sent);
      const m = await (await fetch(`${t.adapter.url}/metrics`)).text();
      assert.match(m, /pincer_telegram_rate_limited_total\{[^}]*\} [1-9]/);
    } finally {
      await t.close();
    }
  });

  it('polling: restarts, messages sent while the adapter is down, and a lost confirmation neither lose nor repeat', async () => {
    const t = await startTelegramStack();
    const redis = new Redis(REDIS_URL);
    try {
      const sent: Array<{ uid: number; text: string }> = [];
      const say = (text: string) => {
        const uid = newUserId();
        sent.push({ uid, text });
        t.emu.userSend({ chat: { id: uid, type: 'private' }, from: { id: uid, first_name: 'P' }, text });
      };
      say('before restart');
      await t.emu.waitFor(answered(t, sent), 15_000, 'first answer');
      // down for a while: Telegram keeps the updates
      await t.restartAdapter(async () => {
        say('while down 1');
        say('while down 2');
      });
      await t.emu.waitFor(answered(t, sent), 15_000, 'messages from the downtime');
      // the poll that would confirm a batch is lost and the adapter dies before its offset is saved:
      // Telegram hands the batch out again and the adapter must not answer it twice
      t.emu.inject({ kind: 'drop_connection', method: 'getUpdates', times: 1 });
      say('around a lost confirmation');
      await t.emu.waitFor(answered(t, sent), 15_000, 'answer before the crash');
      await t.emu.waitFor(
        () => t.emu.calls.some((c) => c.method === 'getUpdates' && (c as any).fault === 'drop_connection'),
        10_000,
        'the confirming poll lost',
      );
      await t.restartAdapter(async () => {
        await redis.del(`${t.stack.prefix}:telegram:offset`);
      });
      say('after the crash');
      await t.emu.waitFor(answered(t, sent), 15_000, 'answer after the crash');
      await t.emu.waitFor(() => t.emu.pendingUpdates() === 0, 10_000, 'everything confirmed');
      await assertAnsweredOnce(t, sent);
    } finally {
      await redis.quit();
      await t.close();
    }
  });

  it('webhook: a wrong secret is refused; pushes during a restart and repeated pushes are answered once', async () => {
    const t = await startTelegramStack({ mode: 'webhook' });
    try {
      assert.equal(t.emu.webhook()?.url, t.env.TELEGRAM_WEBHOOK_URL);
      const uid = newUserId();
      const forged = {
        update_id: 999_999,
        message: {
          message_id: 1,
          date: 1,
          chat: { id: uid, type: 'private' },
          from: { id: uid },
          text: 'forged',
        },
      };
      const hook = `${t.adapter.url}/webhook/telegram`;
      const wrong = await fetch(hook, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': 'not-the-secret' },
        body: JSON.stringify(forged),
      });
      assert.equal(wrong.status, 401);
      const none = await fetch(hook, { method: 'POST', body: JSON.stringify(forged) });
      assert.equal(none.status, 401);
      const bad = await fetch(hook, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-telegram-bot-api-secret-token': t.env.TELEGRAM_WEBHOOK_SECRET!,
        },
        body: '{"update_id": 1, "message": ',
      });
      assert.equal(bad.status, 400);

      const sent: Array<{ uid: number; text: string }> = [];
      const say = (text: string) => {
        const id = newUserId();
        sent.push({ uid: id, text });
        t.emu.userSend({ chat: { id, type: 'private' }, from: { id, first_name: 'W' }, text });
      };
      say('pushed once');
      await t.emu.waitFor(answered(t, sent), 15_000, 'webhook answer');
      await t.restartAdapter(async () => {
        say('pushed while down');
      });
      await t.emu.waitFor(answered(t, sent), 30_000, 'the push retried after the restart');
      // the same update pushed again (at-least-once delivery) is the same job
      const again = await fetch(hook, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-telegram-bot-api-secret-token': t.env.TELEGRAM_WEBHOOK_SECRET!,
        },
        body: JSON.stringify({
          update_id: 1,
          message: {
            message_id: t.emu
              .chat(sent[0]!.uid)
              .messages.find((m) => !m.from_bot && m.text === 'pushed once')!.message_id,
            date: Math.floor(Date.now() / 1000),
            chat: { id: sent[0]!.uid, type: 'private' },
            from: { id: sent[0]!.uid, first_name: 'W' },
            text: 'pushed once',
          },
        }),
      });
      assert.equal(again.status, 200);
      say('after the repeat');
      await t.emu.waitFor(answered(t, sent), 15_000, 'the last answer');
      assert.equal(t.emu.chat(uid).messages.length, 0, 'the forged update reached nobody');
      await assertAnsweredOnce(t, sent);
    } finally {
      await t.close();
    }
  });

  it('a user who blocked the bot is recorded and no longer written to; a migrated group is followed', async () => {
    const t = await startTelegramStack();
    try {
      const uid = newUserId();
      const chat = { id: uid, type: 'private' as const };
      t.emu.userSend({ chat, from: { id: uid, first_name: 'B' }, text: 'hi before blocking' });
      await t.emu.waitFor(() => t.emu.chat(uid).botMessages[0], 15_000, 'first answer');
      // the user blocks the bot while an answer is being written: Telegram sends my_chat_member
      // (kicked) and the adapter stops writing there, dropping the answer instead of collecting 403s
      t.stack.mock.script({ match: { contains: 'slow' }, times: 1, reply: { firstTokenDelayMs: 1000 } });
      t.emu.userSend({ chat, from: { id: uid, first_name: 'B' }, text: 'slow one' });
      await t.stack.mock.waitFor((r) => JSON.stringify(r.body).includes('slow one'), 10_000);
      t.emu.blockBot(uid);
      const sendsBefore = t.emu.calls.filter((c) => c.method === 'sendMessage').length;
      const m = await eventually(async () => {
        const text = await (await fetch(`${t.adapter.url}/metrics`)).text();
        return /pincer_telegram_replies_total\{[^}]*outcome="gone"[^}]*\} 1/.test(text) ? text : undefined;
      }, 'the reply dropped as undeliverable');
      assert.match(m, /pincer_telegram_chats_unreachable_total\{[^}]*reason="blocked"[^}]*\} 1/);
      assert.equal(
        t.emu.calls.filter((c) => c.method === 'sendMessage').length,
        sendsBefore,
        'nothing sent to a blocked user',
      );

      const gid = -newUserId();
      const group = { id: gid, type: 'group' as const, title: 'Old group' };
      const me = `@${t.emu.bot.username}`;
      t.emu.userSend({ chat: group, from: { id: uid + 1, first_name: 'G' }, text: `${me} first` });
      await t.emu.waitFor(() => t.emu.chat(gid).botMessages[0], 15_000, 'group answer');
      t.stack.mock.script({ match: { contains: 'migrating' }, times: 1, reply: { firstTokenDelayMs: 800 } });
      t.emu.userSend({ chat: group, from: { id: uid + 1, first_name: 'G' }, text: `${me} migrating soon` });
      await t.stack.mock.waitFor((r) => JSON.stringify(r.body).includes('migrating soon'), 10_000);
      const newId = t.emu.migrateGroup(gid);
      const moved = await t.emu.waitFor(
        () => t.emu.chat(newId).botMessages.find((x) => x.text.includes('migrating soon')),
        15_000,
        'the answer in the supergroup',
      );
      assert.ok(moved);
    } finally {
      await t.close();
    }
  });
});
