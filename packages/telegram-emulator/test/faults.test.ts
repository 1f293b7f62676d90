import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TelegramApiError } from 'node-telegram-bot-api';
import { NetworkError, TimeoutError } from 'node-telegram-bot-api';
import { ann, bob, sdk, withEmulator } from './support.ts';

const annDm = { id: ann.id, type: 'private' as const };

describe('flood control', () => {
  it('answers 429 with retry_after past the burst, and lets the call through after waiting', async () => {
    await withEmulator({ flood: {} }, async (emu) => {
      emu.userSend({ chat: annDm, from: ann, text: 'hi' });
      const api = sdk(emu);
      const burst = [];
      for (let i = 0; i < 3; i++) burst.push(await api.sendMessage({ chat_id: ann.id, text: `burst ${i}` }));
      const err = await api.sendMessage({ chat_id: ann.id, text: 'one too many' }).then(
        () => assert.fail('expected 429'),
        (e: unknown) => e as TelegramApiError,
      );
      assert.equal(err.errorCode, 429);
      assert.equal(err.description, 'Too Many Requests: retry after 1');
      assert.deepEqual(err.parameters, { retry_after: 1 });
      assert.equal(emu.chat(ann.id).botMessages.length, 3, 'the refused call changed nothing');
      const edit = await api
        .editMessageText({ chat_id: ann.id, message_id: burst[0]!.message_id, text: 'edited' })
        .then(
          () => assert.fail('edits count against the same bucket'),
          (e: unknown) => e as TelegramApiError,
        );
      assert.equal(edit.errorCode, 429);
      assert.equal(emu.chat(ann.id).botMessages[0]?.text, 'burst 0');

      // Chat actions and getMe do not count.
      await api.sendChatAction({ chat_id: ann.id, action: 'typing' });
      await api.getMe();

      // The SDK honours retry_after when allowed to retry; the emulator then accepts the call.
      const patient = sdk(emu, { maxRetries: 1 });
      const started = Date.now();
      const sent = await patient.sendMessage({ chat_id: ann.id, text: 'after waiting' });
      assert.equal(sent.text, 'after waiting');
      assert.ok(Date.now() - started < 3000);
    });
  });

  it('limits a group to 20 messages a minute', async () => {
    await withEmulator({ flood: { perChatPerSec: 1000, perChatBurst: 1000 } }, async (emu) => {
      const group = { id: -5001, type: 'group' as const, title: 'Busy' };
      emu.addBotToGroup(group, ann);
      const api = sdk(emu);
      for (let i = 0; i < 20; i++) await api.sendMessage({ chat_id: group.id, text: `m${i}` });
      const err = await api.sendMessage({ chat_id: group.id, text: 'm20' }).then(
        () => assert.fail('expected 429'),
        (e: unknown) => e as TelegramApiError,
      );
      assert.equal(err.errorCode, 429);
      assert.ok((err.retryAfter ?? 0) >= 55 && (err.retryAfter ?? 0) <= 60, `retry_after ${err.retryAfter}`);
      // A private chat is not limited by the group's window.
      emu.userSend({ chat: annDm, from: ann, text: 'hi' });
      await api.sendMessage({ chat_id: ann.id, text: 'still fine here' });
    });
  });
});

describe('injected faults', () => {
  it('server_error answers 5xx once, without effect, and the SDK retry then succeeds', async () => {
    await withEmulator({}, async (emu) => {
      emu.userSend({ chat: annDm, from: ann, text: 'hi' });
      emu.inject({ kind: 'server_error', method: 'sendMessage', status: 502 });
      const err = await sdk(emu)
        .sendMessage({ chat_id: ann.id, text: 'x' })
        .then(
          () => assert.fail('expected 502'),
          (e: unknown) => e as TelegramApiError,
        );
      assert.equal(err.errorCode, 502);
      assert.equal(err.description, 'Bad Gateway');
      assert.equal(emu.chat(ann.id).botMessages.length, 0);
      emu.inject({ kind: 'server_error', times: 1 });
      const ok = await sdk(emu, { maxRetries: 1, retryBackoffMs: 1 }).sendMessage({
        chat_id: ann.id,
        text: 'retried',
      });
      assert.equal(ok.text, 'retried');
      assert.equal(emu.chat(ann.id).botMessages.length, 1);
      assert.deepEqual(
        emu.calls.filter((c) => c.method === 'sendMessage').map((c) => [c.ok, c.error_code, c.fault]),
        [
          [false, 502, 'server_error'],
          [false, 500, 'server_error'],
          [true, undefined, undefined],
        ],
      );
    });
  });

  it('timeout_after_commit sends the message but never answers, so a retrying client duplicates it', async () => {
    await withEmulator({}, async (emu) => {
      emu.userSend({ chat: annDm, from: ann, text: 'hi' });
      emu.inject({ kind: 'timeout_after_commit', method: 'sendMessage', chatId: ann.id });
      const err = await sdk(emu, { timeoutMs: 300 })
        .sendMessage({ chat_id: ann.id, text: 'slow' })
        .then(
          () => assert.fail('expected a timeout'),
          (e: unknown) => e,
        );
      assert.ok(err instanceof TimeoutError, String(err));
      assert.deepEqual(
        emu.chat(ann.id).botMessages.map((m) => m.text),
        ['slow'],
        'the message was really sent',
      );

      emu.inject({ kind: 'timeout_after_commit', method: 'sendMessage' });
      const retried = await sdk(emu, { timeoutMs: 300, maxRetries: 1, retryBackoffMs: 1 }).sendMessage({
        chat_id: ann.id,
        text: 'again',
      });
      assert.equal(retried.text, 'again');
      assert.deepEqual(
        emu.chat(ann.id).botMessages.map((m) => m.text),
        ['slow', 'again', 'again'],
        'the retry duplicated the message',
      );
    });
  });

  it('flood fault answers 429 with the given retry_after', async () => {
    await withEmulator({}, async (emu) => {
      emu.userSend({ chat: annDm, from: ann, text: 'hi' });
      emu.inject({ kind: 'flood', method: 'editMessageText', retryAfter: 7 });
      const api = sdk(emu);
      const m = await api.sendMessage({ chat_id: ann.id, text: 'draft' });
      const err = await api
        .editMessageText({ chat_id: ann.id, message_id: m.message_id, text: 'final' })
        .then(
          () => assert.fail('expected 429'),
          (e: unknown) => e as TelegramApiError,
        );
      assert.equal(err.description, 'Too Many Requests: retry after 7');
      assert.equal(err.retryAfter, 7);
      assert.equal(emu.chat(ann.id).botMessages[0]?.text, 'draft');
      await api.editMessageText({ chat_id: ann.id, message_id: m.message_id, text: 'final' });
      assert.equal(emu.chat(ann.id).botMessages[0]?.text, 'final');
    });
  });

  it('drop_connection cuts the socket without effect; filters pick the chat', async () => {
    await withEmulator({}, async (emu) => {
      emu.userSend({ chat: annDm, from: ann, text: 'hi' });
      emu.userSend({ chat: { id: bob.id, type: 'private' }, from: bob, text: 'hi' });
      emu.inject({ kind: 'drop_connection', chatId: bob.id, times: 2 });
      const api = sdk(emu);
      await api.sendMessage({ chat_id: ann.id, text: 'unaffected' });
      for (let i = 0; i < 2; i++) {
        const err = await api.sendMessage({ chat_id: bob.id, text: 'lost' }).then(
          () => assert.fail('expected a network error'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof NetworkError, String(err));
      }
      assert.equal(emu.chat(bob.id).botMessages.length, 0);
      await api.sendMessage({ chat_id: bob.id, text: 'third time' });
      assert.deepEqual(
        emu.chat(bob.id).botMessages.map((m) => m.text),
        ['third time'],
      );
      emu.inject({ kind: 'drop_connection' });
      emu.clearFaults();
      await api.getMe();
    });
  });
});
