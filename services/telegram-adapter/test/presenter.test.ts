import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ReplyGone, type ReplyTarget, RetryAfter, TypingKeeper } from '@pincer/adapter-kit';
import { createLogger } from '@pincer/shared';
import { startTelegramEmulator, type TelegramEmulator } from '@pincer/telegram-emulator';
import { Redis } from 'ioredis';
import { REDIS_URL } from '../../core/test/stack.ts';
import { loadConfig } from '../src/config.ts';
import { ChatStore } from '../src/repositories/chats.ts';
import { TelegramApi } from '../src/repositories/telegram.ts';
import { createMetrics } from '../src/services/metrics.ts';
import { TelegramPresenter, type TgReplyState } from '../src/services/presenter.ts';
import type { renderTelegram } from '../src/services/render.ts';
import { newUserId } from './harness.ts';

/** The presenter against the emulator alone: the Bot API's failure answers and what the adapter does about them. */
describe('Telegram presenter: Bot API failures', () => {
  let emu: TelegramEmulator;
  let redis: Redis;
  let prefix: string;
  let metrics: ReturnType<typeof createMetrics>;
  let store: ChatStore;
  let typing: TypingKeeper;
  const log = createLogger({ service: 'telegram-adapter', level: 'error' });

  before(async () => {
    emu = await startTelegramEmulator({ privacyMode: false });
    redis = new Redis(REDIS_URL);
    prefix = `pincer-test-tgp-${randomBytes(5).toString('hex')}`;
    metrics = createMetrics();
    store = new ChatStore(redis, prefix);
    typing = new TypingKeeper(redis, prefix, 1000);
  });
  after(async () => {
    typing.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    await emu.close();
  });

  const presenter = (render?: typeof renderTelegram) =>
    new TelegramPresenter({
      api: new TelegramApi(emu.token, emu.url, metrics),
      store,
      typing,
      settings: loadConfig({ PINCER_CONFIG_DIR: '/nonexistent' }).telegram,
      metrics,
      log,
      ...(render ? { render } : {}),
    });

  const target = (chatId: number, type: 'direct' | 'group' = 'direct'): ReplyTarget => ({
    chat: { id: String(chatId), type },
    reply_id: `r-${randomBytes(4).toString('hex')}`,
  });
  const noSave = { save: async () => {} };
  const say = (uid: number, text = 'hi') =>
    emu.userSend({ chat: { id: uid, type: 'private' }, from: { id: uid, first_name: 'T' }, text });

  it('HTML Telegram cannot parse is resent as plain text', async () => {
    const uid = newUserId();
    say(uid);
    const broken = () => [{ html: '<b>unclosed bold', plain: '**unclosed bold**' }];
    const st = await presenter(broken).show(
      target(uid),
      { text: 'x', seq: 1, final: true },
      undefined,
      noSave,
    );
    const shown = emu.chat(uid).botMessages;
    assert.equal(shown.length, 1);
    assert.equal(shown[0]!.text, '**unclosed bold**');
    assert.equal(st.parts[0]!.plain, true);
    assert.ok(
      emu.calls.some((c) => /can't parse entities/.test(c.description ?? '')),
      'Telegram refused it first',
    );
    assert.match(await metrics.registry.metrics(), /pincer_telegram_plain_text_fallbacks_total\{[^}]*\} 1/);
  });

  it('a finished reply Telegram refuses is shown as plain text instead of being lost', async () => {
    const uid = newUserId();
    say(uid);
    // a renderer mistake: a part over Telegram's limit ("message is too long")
    const tooLong = () => [{ html: 'x'.repeat(5000), plain: 'y'.repeat(5000) }];
    const st = await presenter(tooLong).show(
      target(uid),
      { text: 'x', seq: 1, final: true },
      undefined,
      noSave,
    );
    assert.ok(emu.calls.some((c) => /message is too long/.test(c.description ?? '')));
    const shown = emu.chat(uid).botMessages;
    assert.equal(shown.length, 1);
    assert.equal(shown[0]!.text, 'y'.repeat(4096));
    assert.equal(st.parts[0]!.plain, true);
  });

  it('streamed edits are paced at the defaults: 1 s apart in direct chats, 3 s in groups', async () => {
    const uid = newUserId();
    say(uid);
    const gid = -newUserId();
    emu.userSend({
      chat: { id: gid, type: 'group', title: 'P' },
      from: { id: newUserId(), first_name: 'Q' },
      text: 'x',
    });
    const p = presenter();
    for (const [chat, type, interval] of [
      [uid, 'direct', 1000],
      [gid, 'group', 3000],
    ] as const) {
      const t = target(chat, type);
      const st = await p.show(t, { text: 'first', seq: 1, final: false }, undefined, noSave);
      const wait = p.delayBefore(t, { text: 'second', seq: 2, final: false }, st);
      assert.ok(wait > interval - 200 && wait <= interval, `${type}: next edit in ${wait} ms`);
      // the final text is not held back by the streaming cadence
      assert.ok(p.delayBefore(t, { text: 'done', seq: 3, final: true }, st) < interval - 200);
    }
  });

  it('429 becomes RetryAfter(retry_after) with the parts already sent kept', async () => {
    const uid = newUserId();
    say(uid);
    const p = presenter();
    const t = target(uid);
    const long = `${'word '.repeat(600)}\n\n${'more '.repeat(600)}`; // two parts
    let saved: TgReplyState | undefined;
    // the first part goes out, the second meets the flood limit
    const first = await p.show(t, { text: 'word', seq: 1, final: false }, undefined, noSave);
    emu.inject({ kind: 'flood', method: 'sendMessage', chatId: uid, times: 1, retryAfter: 1 });
    const err = await p
      .show(t, { text: long, seq: 2, final: true }, first, { save: async (s) => void (saved = s) })
      .then(
        () => undefined,
        (e: Error) => e,
      );
    assert.ok(err instanceof RetryAfter, String(err));
    assert.equal(err.ms, 1000);
    // on the next try (with what was saved) the reply completes without repeating part 1
    const st = await p.show(t, { text: long, seq: 2, final: true }, saved ?? first, noSave);
    assert.equal(st.parts.length, 2);
    assert.equal(emu.chat(uid).botMessages.length, 2);
  });

  it('403 (blocked) stops the reply, remembers the chat, and nothing more is sent there', async () => {
    const uid = newUserId();
    say(uid);
    emu.blockBot(uid); // no poller here: the adapter learns it from the 403
    const p = presenter();
    const err = await p
      .show(target(uid), { text: 'hello', seq: 1, final: true }, undefined, noSave)
      .catch((e) => e);
    assert.ok(err instanceof ReplyGone, String(err));
    assert.ok((await store.resolve(String(uid))).gone);
    const calls = emu.calls.length;
    const again = await p
      .show(target(uid), { text: 'again', seq: 1, final: true }, undefined, noSave)
      .catch((e) => e);
    assert.ok(again instanceof ReplyGone);
    assert.equal(emu.calls.length, calls, 'no call made to a chat known to be gone');
    assert.match(
      await metrics.registry.metrics(),
      /pincer_telegram_chats_unreachable_total\{[^}]*reason="blocked"[^}]*\} 1/,
    );
  });

  it('a group upgraded to a supergroup: the send follows migrate_to_chat_id, later ones go there directly', async () => {
    const gid = -newUserId();
    emu.userSend({
      chat: { id: gid, type: 'group', title: 'G' },
      from: { id: newUserId(), first_name: 'M' },
      text: 'hello',
    });
    const newId = emu.migrateGroup(gid);
    const p = presenter();
    const st = await p.show(
      target(gid, 'group'),
      { text: 'answer one', seq: 1, final: true },
      undefined,
      noSave,
    );
    assert.equal(st.chatId, String(newId));
    assert.ok(emu.calls.some((c) => c.error_code === 400 && String(c.params.chat_id) === String(gid)));
    await p.show(target(gid, 'group'), { text: 'answer two', seq: 1, final: true }, undefined, noSave);
    assert.deepEqual(
      emu.chat(newId).botMessages.map((m) => m.text),
      ['answer one', 'answer two'],
    );
    assert.equal(
      emu.calls.filter((c) => c.error_code === 400 && String(c.params.chat_id) === String(gid)).length,
      1,
    );
  });

  it('a part deleted by someone is sent again; "message is not modified" is success', async () => {
    const uid = newUserId();
    say(uid);
    const p = presenter();
    const t = target(uid);
    const st = await p.show(t, { text: 'first text', seq: 1, final: false }, undefined, noSave);
    const same = await p.show(
      t,
      { text: 'first text', seq: 2, final: false },
      { ...st, parts: [{ ...st.parts[0]!, html: 'stale' }] },
      noSave,
    );
    assert.equal(same.parts[0]!.id, st.parts[0]!.id, 'not modified: kept');
    await fetch(`${emu.url}/bot${emu.token}/deleteMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ chat_id: uid, message_id: st.parts[0]!.id }),
    });
    const fin = await p.show(t, { text: 'final text', seq: 3, final: true }, same, noSave);
    assert.notEqual(fin.parts[0]!.id, st.parts[0]!.id);
    assert.equal(
      emu
        .chat(uid)
        .botMessages.filter((m) => !m.deleted)
        .at(-1)?.text,
      'final text',
    );
  });
});
