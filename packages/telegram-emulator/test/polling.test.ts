import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Bot, TelegramApiError } from 'node-telegram-bot-api';
import { ann, bob, raw, sdk, withEmulator } from './support.ts';

const dm = (text: string) => ({ chat: { id: ann.id, type: 'private' as const }, from: ann, text });

describe('getUpdates long polling', () => {
  it('answers at once when updates are pending and holds an empty poll until one arrives', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      const first = emu.userSend(dm('one'));
      const ready = await api.getUpdates({ timeout: 30 });
      assert.deepEqual(
        ready.map((u) => u.update_id),
        [first.update_id],
      );

      const offset = (first.update_id as number) + 1;
      const started = Date.now();
      const held = api.getUpdates({ offset, timeout: 30 });
      await emu.waitFor(() => emu.state().long_poll_waiting, 5000, 'the poll to be held');
      assert.equal(emu.pendingUpdates(), 0, 'the offset confirmed the first update');
      const second = emu.userSend(dm('two'));
      const woken: any[] = await held;
      assert.ok(Date.now() - started < 5000, 'woken by the update, not by the timeout');
      assert.deepEqual(
        woken.map((u) => [u.update_id, u.message?.text]),
        [[second.update_id, 'two']],
      );
    });
  });

  it('returns [] after the timeout when nothing arrives', async () => {
    await withEmulator({}, async (emu) => {
      const started = Date.now();
      const updates = await sdk(emu).getUpdates({ timeout: 1 });
      const waited = Date.now() - started;
      assert.deepEqual(updates, []);
      assert.ok(waited >= 950 && waited < 4000, `held about a second, took ${waited} ms`);
    });
  });

  it('redelivers unconfirmed updates and forgets confirmed ones; ids increase', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      const ids = ['a', 'b', 'c'].map((t) => emu.userSend(dm(t)).update_id as number);
      assert.ok(ids[0]! < ids[1]! && ids[1]! < ids[2]!);

      const page = await api.getUpdates({ limit: 2 });
      assert.deepEqual(
        page.map((u) => u.update_id),
        ids.slice(0, 2),
      );
      const again = await api.getUpdates({});
      assert.deepEqual(
        again.map((u) => u.update_id),
        ids,
        'nothing confirmed yet',
      );
      const rest = await api.getUpdates({ offset: ids[1]! + 1 });
      assert.deepEqual(
        rest.map((u) => u.update_id),
        [ids[2]],
      );
      assert.equal(emu.pendingUpdates(), 1);
      await api.getUpdates({ offset: ids[2]! + 1 });
      assert.equal(emu.pendingUpdates(), 0);
    });
  });

  it('a negative offset keeps only the last updates', async () => {
    await withEmulator({}, async (emu) => {
      const ids = ['a', 'b', 'c', 'd'].map((t) => emu.userSend(dm(t)).update_id);
      const tail = await sdk(emu).getUpdates({ offset: -2 });
      assert.deepEqual(
        tail.map((u) => u.update_id),
        ids.slice(2),
      );
      assert.equal(emu.pendingUpdates(), 2, 'the older ones are forgotten');
    });
  });

  it('clamps limit to 1..100', async () => {
    await withEmulator({}, async (emu) => {
      for (let i = 0; i < 3; i++) emu.userSend(dm(`m${i}`));
      const r = await raw(emu, 'getUpdates', { json: { limit: 0 } });
      assert.equal(r.body.result.length, 1);
    });
  });

  it('answers the older held poll 409 when a second getUpdates arrives', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      const older = api.getUpdates({ timeout: 30 }).then(
        () => assert.fail('the older poll must be terminated'),
        (err: unknown) => err,
      );
      await emu.waitFor(() => emu.state().long_poll_waiting, 5000, 'the first poll to be held');
      const newer = api.getUpdates({ timeout: 30 });
      const err = await older;
      assert.ok(err instanceof TelegramApiError);
      assert.equal(err.errorCode, 409);
      assert.equal(
        err.description,
        'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
      );
      const sent = emu.userSend(dm('for the newer poll'));
      assert.deepEqual(
        (await newer).map((u) => u.update_id),
        [sent.update_id],
      );
    });
  });

  it('answers 409 while a webhook is set', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      await api.setWebhook({ url: 'http://127.0.0.1:9/hook' });
      const err = await api.getUpdates({}).then(
        () => assert.fail('expected a conflict'),
        (e: unknown) => e as TelegramApiError,
      );
      assert.equal(err.errorCode, 409);
      assert.equal(
        err.description,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
      );
      await api.deleteWebhook({});
      assert.deepEqual(await api.getUpdates({}), []);
    });
  });

  it('a client that abandons its held poll loses nothing', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      const ac = new AbortController();
      const abandoned = api.getUpdates({ timeout: 30 }, ac.signal).catch((e: unknown) => e);
      await emu.waitFor(() => emu.state().long_poll_waiting, 5000, 'the poll to be held');
      ac.abort();
      await abandoned;
      await emu.waitFor(() => !emu.state().long_poll_waiting, 5000, 'the poll to be released');
      const sent = emu.userSend(dm('while nobody listens'));
      const got = await api.getUpdates({ timeout: 5 });
      assert.deepEqual(
        got.map((u) => u.update_id),
        [sent.update_id],
      );
    });
  });

  it('remembers allowed_updates across calls and filters new updates by it', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      await api.getUpdates({ allowed_updates: ['callback_query'] });
      assert.equal(emu.userSend(dm('not wanted')).update_id, undefined);
      await api.getUpdates({});
      assert.equal(
        emu.userSend(dm('still not wanted')).update_id,
        undefined,
        'the setting persists when omitted',
      );
      await api.getUpdates({ allowed_updates: [] });
      assert.notEqual(
        emu.userSend(dm('wanted again')).update_id,
        undefined,
        'an empty list restores the default',
      );
      const updates: any[] = await api.getUpdates({});
      assert.deepEqual(
        updates.map((u) => u.message?.text),
        ['wanted again'],
      );
    });
  });

  it("serves the SDK's Bot.startPolling end to end", async () => {
    await withEmulator({}, async (emu) => {
      const bot = new Bot(emu.token, { apiRoot: emu.url, maxRetries: 0 });
      bot.on('message', async (ctx) => {
        const message = (ctx.update as any).message;
        await ctx.api.sendMessage({ chat_id: message.chat.id, text: `echo: ${message.text}` });
      });
      const running = bot.startPolling(undefined, { timeout: 1 });
      emu.userSend(dm('ping'));
      emu.userSend({ chat: { id: bob.id, type: 'private' }, from: bob, text: 'pong' });
      await emu.waitFor(
        () => emu.chat(ann.id).botMessages.length === 1 && emu.chat(bob.id).botMessages.length === 1,
      );
      assert.equal(emu.chat(ann.id).botMessages[0]?.text, 'echo: ping');
      assert.equal(emu.chat(bob.id).botMessages[0]?.text, 'echo: pong');
      bot.stop();
      await running.catch(() => undefined);
    });
  });
});
