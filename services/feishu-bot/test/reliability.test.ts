import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createLogger } from '@pincer/shared';
import { freePort, REDIS_URL } from '../../core/test/stack.ts';
import { startBot } from '../src/bot.ts';
import { loadConfig } from '../src/config.ts';
import { type FeishuStack, newUser, startFeishuStack } from './harness.ts';

const LONG = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} of a long streamed answer.`).join(
  ' ',
);

const finalCard = (t: FeishuStack, chatId: string, parent: string) =>
  t.emu.chat(chatId).botMessages.find((m) => m.parent_id === parent && m.card && !m.card.streaming_mode);

const metric = async (t: FeishuStack) => (await fetch(`${t.bot.url}/metrics`)).text();

describe('Feishu: nothing lost, nothing repeated', () => {
  it('429s (honouring x-ogw-ratelimit-reset), 230020 and expired tenant tokens: every answer shown once', async () => {
    const t = await startFeishuStack();
    try {
      t.emu.inject({ kind: 'rate_limit', api: 'card.element.content', times: 2, resetSec: 1 });
      t.emu.inject({ kind: 'frequency', api: 'message.reply', times: 1 });
      const uid = newUser();
      t.stack.mock.script({
        match: { contains: 'limits please' },
        times: 1,
        reply: { content: LONG, tokenRate: 150 },
      });
      const s = t.emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: uid }, text: 'limits please' });
      const m = await t.emu.waitFor(
        () => finalCard(t, s.chat_id, s.message_id),
        20_000,
        'the answer despite the limits',
      );
      assert.ok(m.text.includes('Sentence number 39'), 'the whole answer');
      assert.ok(
        t.emu.calls.some((c) => c.status === 429 && c.code === 99991400),
        'Feishu answered 429',
      );
      assert.ok(
        t.emu.calls.some((c) => c.code === 230020),
        'Feishu answered 230020',
      );
      const first429 = t.emu.calls.find((c) => c.status === 429)!;
      // the next change to the card (a content update, or the finished card at once) waits for the reset
      const next = t.emu.calls.find(
        (c) =>
          c.at > first429.at && (c.api === 'card.element.content' || c.api === 'card.update') && c.code === 0,
      );
      assert.ok(next && next.at - first429.at >= 900, 'waited for the reset before the next card update');

      t.emu.expireTokens();
      const s2 = t.emu.userSend({
        chat: { type: 'p2p' },
        sender: { open_id: uid },
        text: 'after the token expired',
      });
      const m2 = await t.emu.waitFor(
        () => finalCard(t, s2.chat_id, s2.message_id),
        15_000,
        'the answer with a new token',
      );
      assert.match(m2.text, /after the token expired/);
      assert.ok(
        t.emu.calls.some((c) => c.code === 99991663),
        'the old token was refused',
      );
      assert.equal(t.emu.chat(s.chat_id).botMessages.length, 2, 'one message per answer');
      const mt = await metric(t);
      assert.match(mt, /pincer_feishu_token_refreshes_total\{[^}]*reason="rejected"[^}]*\} [1-9]/);
      assert.match(
        mt,
        /pincer_feishu_api_errors_total\{[^}]*api="card.element.content",code="99991400"[^}]*\} 2/,
      );
    } finally {
      await t.close();
    }
  });

  it('a restart of the bot mid-stream loses nothing and repeats nothing; stale messages are dropped by policy', async () => {
    const t = await startFeishuStack();
    try {
      const uid = newUser();
      t.stack.mock.script({
        match: { contains: 'slow one' },
        times: 1,
        reply: { content: LONG, tokenRate: 60 },
      });
      const s = t.emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: uid }, text: 'slow one' });
      await t.emu.waitFor(
        () =>
          t.emu
            .chat(s.chat_id)
            .botMessages.find((m) => (m.card?.contentUpdates ?? 0) >= 1 && m.card!.streaming_mode),
        15_000,
        'the answer streaming',
      );
      let during: { chat_id: string; message_id: string } | undefined;
      await t.restartBot(async () => {
        during = t.emu.userSend({
          chat: { type: 'p2p' },
          sender: { open_id: newUser() },
          text: 'sent while the bot is down',
        });
      });
      const m = await t.emu.waitFor(
        () => finalCard(t, s.chat_id, s.message_id),
        20_000,
        'the answer finished by the new bot',
      );
      assert.ok(m.text.includes('Sentence number 39'), 'the whole answer');
      assert.equal(t.emu.chat(s.chat_id).botMessages.length, 1, 'still one message');
      await t.emu.waitFor(
        () => finalCard(t, during!.chat_id, during!.message_id),
        15_000,
        'the message sent during the restart',
      );

      const old = t.emu.userSend({
        chat: { type: 'p2p' },
        sender: { open_id: uid },
        text: 'from before the outage',
        create_time: Date.now() - 2 * 3600_000,
      });
      const fresh = t.emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: uid }, text: 'fresh one' });
      await t.emu.waitFor(() => finalCard(t, fresh.chat_id, fresh.message_id), 15_000, 'the fresh message');
      assert.equal(
        t.emu.chat(old.chat_id).botMessages.filter((b) => b.parent_id === old.message_id).length,
        0,
      );
      assert.match(await metric(t), /pincer_feishu_stale_dropped_total\{[^}]*\} 1/);
      assert.ok(t.logs.some((l) => l.includes('stale message dropped')));
    } finally {
      await t.close();
    }
  });

  it('fallbacks: CardKit refused → a PATCHed card; cards refused → a post; nothing shown → the user is told', async () => {
    const t = await startFeishuStack({ mode: 'webhook', feishu: { patch_interval_ms: 300 } });
    try {
      const uid = newUser();
      t.emu.inject({ kind: 'card_failed', api: 'card.create', times: 1 });
      t.stack.mock.script({
        match: { contains: 'patch me' },
        times: 1,
        reply: { content: LONG, tokenRate: 100 },
      });
      const s = t.emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: uid }, text: 'patch me' });
      const patched = await t.emu.waitFor(
        () =>
          t.emu
            .chat(s.chat_id)
            .botMessages.find((m) => m.parent_id === s.message_id && m.text.includes('Sentence number 39')),
        20_000,
        'the PATCHed card',
      );
      assert.equal(patched.msg_type, 'interactive');
      assert.equal(patched.card, undefined, 'not a CardKit entity');
      assert.ok(patched.updates >= 1, `PATCHed while streaming (${patched.updates})`);

      t.emu.inject({ kind: 'api_unavailable', api: 'card.create', times: 1 });
      t.emu.inject({ kind: 'card_failed', api: 'message.reply', times: 1 });
      const s2 = t.emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: uid }, text: 'post me' });
      const post = await t.emu.waitFor(
        () => t.emu.chat(s2.chat_id).botMessages.find((m) => m.parent_id === s2.message_id),
        15_000,
        'the post',
      );
      assert.equal(post.msg_type, 'post');
      assert.match(post.text, /Mock reply: post me/);

      // a reply whose every way of showing is refused: one short plain message instead
      t.emu.inject({ kind: 'card_failed', api: 'message.reply', times: 2 });
      const s3 = t.emu.userSend({
        chat: { type: 'p2p' },
        sender: { open_id: uid },
        text: 'refused everywhere',
      });
      const notice = await t.emu.waitFor(
        () => t.emu.chat(s3.chat_id).botMessages.find((m) => m.parent_id === s3.message_id),
        15_000,
        'the notice',
      );
      assert.equal(notice.msg_type, 'text');
      assert.match(notice.text, /could not be shown.*230099/);
      assert.equal(t.emu.chat(s3.chat_id).botMessages.filter((m) => m.parent_id === s3.message_id).length, 1);
      const mt = await metric(t);
      assert.match(mt, /pincer_feishu_fallbacks_total\{[^}]*to="card"[^}]*\} [1-9]/);
      assert.match(mt, /pincer_feishu_fallbacks_total\{[^}]*to="post"[^}]*\} [1-9]/);
    } finally {
      await t.close();
    }
  });

  it('a streaming card that stops taking updates: the finished answer continues as a new card', async () => {
    const t = await startFeishuStack();
    try {
      const uid = newUser();
      t.stack.mock.script({
        match: { contains: 'card breaks' },
        times: 1,
        reply: { content: LONG, tokenRate: 60 },
      });
      const s = t.emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: uid }, text: 'card breaks' });
      await t.emu.waitFor(
        () => t.emu.chat(s.chat_id).botMessages.find((m) => m.parent_id === s.message_id && m.card),
        15_000,
        'the streaming card',
      );
      // from now on CardKit refuses every update of this card (its element, or the whole card)
      t.emu.inject({ kind: 'card_failed', api: 'card.element.content', times: 1000 });
      t.emu.inject({ kind: 'card_failed', api: 'card.update', times: 1000 });
      const rescued = await t.emu.waitFor(
        () =>
          t.emu
            .chat(s.chat_id)
            .botMessages.find(
              (m) => m.parent_id === s.message_id && !m.card && m.text.includes('Sentence number 39'),
            ),
        20_000,
        'the answer as a PATCHed card',
      );
      t.emu.clearFaults();
      assert.equal(rescued.msg_type, 'interactive');
      assert.doesNotMatch(rescued.text, /could not be shown/);
    } finally {
      await t.close();
    }
  });

  it('an answer to a message recalled meanwhile is stopped, not sent', async () => {
    const t = await startFeishuStack();
    try {
      const uid = newUser();
      t.stack.mock.script({
        match: { contains: 'recall me' },
        times: 1,
        reply: { content: LONG, firstTokenDelayMs: 300 },
      });
      const s = t.emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: uid }, text: 'recall me' });
      t.emu.recall(s.message_id);
      await t.emu.waitFor(() => t.logs.some((l) => l.includes('reply stopped')), 15_000, 'the reply stopped');
      assert.equal(t.emu.chat(s.chat_id).botMessages.length, 0);
      assert.ok(
        t.emu.calls.some((c) => c.code === 230011),
        'Feishu said it was recalled',
      );
    } finally {
      await t.close();
    }
  });

  it('without app credentials the bot idles and says why', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pincer-fs-idle-'));
    const port = await freePort();
    const config = loadConfig({ REDIS_URL, PINCER_CONFIG_DIR: dir, PORT: String(port) });
    const bot = await startBot(config, createLogger({ service: 'feishu-bot', level: 'error' }), {
      host: '127.0.0.1',
    });
    try {
      await bot.ready;
      const h = await fetch(`${bot.url}/healthz`);
      assert.equal(h.status, 200);
      const body = (await h.json()) as any;
      assert.equal(body.status, 'idle');
      assert.match(body.feishu.reason, /FEISHU_APP_ID/);
    } finally {
      await bot.shutdown(1000);
    }
    assert.throws(
      () => loadConfig({ REDIS_URL, PINCER_CONFIG_DIR: dir, FEISHU_APP_ID: 'nope', FEISHU_MODE: 'webhook' }),
      /FEISHU_APP_ID[\s\S]*FEISHU_APP_SECRET|FEISHU_APP_SECRET[\s\S]*FEISHU_APP_ID/,
    );
  });
});
