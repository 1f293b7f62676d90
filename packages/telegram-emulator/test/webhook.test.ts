import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import type { TelegramApiError } from 'node-telegram-bot-api';
import { Bot } from 'node-telegram-bot-api';
import { createWebhookServer } from 'node-telegram-bot-api/node';
import { ann, bob, Receiver, sdk, withEmulator } from './support.ts';

const dm = (user: typeof ann, text: string) => ({
  chat: { id: user.id, type: 'private' as const },
  from: user,
  text,
});

async function withReceiver(fn: (r: Receiver) => Promise<void>): Promise<void> {
  const receiver = await new Receiver().start();
  try {
    await fn(receiver);
  } finally {
    await receiver.stop();
  }
}

describe('webhook', () => {
  it('pushes each update as compact JSON with the secret header', async () => {
    await withReceiver(async (hook) => {
      await withEmulator({}, async (emu) => {
        const api = sdk(emu);
        const set = await api.setWebhook({ url: hook.url, secret_token: 'S3cret_token-1' });
        assert.equal(set, true);
        assert.deepEqual(emu.webhook(), { url: hook.url, secret_token: 'S3cret_token-1' });
        const sent = emu.userSend(dm(ann, 'hello 👋'));
        await emu.waitFor(() => emu.pendingUpdates() === 0 && hook.received.length === 1, 5000, 'the push');
        const [got] = hook.received;
        assert.equal(got?.headers['content-type'], 'application/json');
        assert.equal(got?.headers['x-telegram-bot-api-secret-token'], 'S3cret_token-1');
        assert.equal(got?.body, JSON.stringify(got?.json), 'compact JSON');
        assert.equal(got?.json.update_id, sent.update_id);
        assert.equal(got?.json.message.text, 'hello 👋');
        const info = await api.getWebhookInfo();
        assert.equal(info.url, hook.url);
        assert.equal(info.pending_update_count, 0);
        assert.equal(info.max_connections, 40);
        assert.equal(info.has_custom_certificate, false);
        assert.equal(info.last_error_message, undefined);
      });
    });
  });

  it('retries a failing receiver, records the error, and loses nothing', async () => {
    await withReceiver(async (hook) => {
      let failing = true;
      hook.respond = (_r, res) => {
        if (failing) res.writeHead(401, 'Unauthorized').end();
        else res.writeHead(200).end();
      };
      await withEmulator({ webhookRetryDelaysMs: [30, 60] }, async (emu) => {
        const api = sdk(emu);
        await api.setWebhook({ url: hook.url });
        const ids = ['one', 'two', 'three'].map((t) => emu.userSend(dm(ann, t)).update_id);
        await emu.waitFor(() => hook.received.length >= 3, 5000, 'a few failed attempts');
        const info = await api.getWebhookInfo();
        assert.equal(info.last_error_message, 'Wrong response from the webhook: 401 Unauthorized');
        assert.ok(typeof info.last_error_date === 'number' && info.last_error_date > 0);
        assert.equal(info.pending_update_count, 3);
        assert.ok(
          hook.received.every((r) => r.json.update_id === ids[0]),
          'one chat is pushed in order: the head update blocks the rest',
        );
        failing = false;
        await emu.waitFor(() => emu.pendingUpdates() === 0, 5000, 'every update acknowledged');
        const order = hook.received
          .map((r) => r.json.update_id)
          .filter((id, i, all) => all.indexOf(id) === i);
        assert.deepEqual(order, ids, 'in update_id order');
      });
    });
  });

  it('keeps retrying while the receiver is down and delivers once it is up', async () => {
    await withEmulator({ webhookRetryDelaysMs: [20, 40, 80] }, async (emu) => {
      const api = sdk(emu);
      // Reserve a port, then free it so nothing listens there yet.
      const probe = new Receiver();
      await probe.start();
      const url = probe.url;
      await probe.stop();
      await api.setWebhook({ url });
      const sent = emu.userSend(dm(ann, 'are you there?'));
      await emu.waitFor(() => emu.state().webhook?.last_error_message, 5000, 'a connection failure');
      assert.equal((await api.getWebhookInfo()).last_error_message, 'Connection refused');
      assert.equal(emu.pendingUpdates(), 1);

      const port = Number(new URL(url).port);
      const got: any[] = [];
      const server = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          got.push(JSON.parse(body));
          res.end();
        });
      });
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
      try {
        await emu.waitFor(
          () => got.length === 1 && emu.pendingUpdates() === 0,
          5000,
          'delivery after recovery',
        );
        assert.equal(got[0].update_id, sent.update_id);
      } finally {
        server.closeAllConnections();
        server.close();
      }
    });
  });

  it('times out a receiver that never answers and retries the same update', async () => {
    await withReceiver(async (hook) => {
      hook.respond = (r, res) => {
        if (hook.received.indexOf(r) === 0) return; // swallow the first push
        res.writeHead(204).end();
      };
      await withEmulator({ webhookRetryDelaysMs: [10], webhookTimeoutMs: 200 }, async (emu) => {
        await sdk(emu).setWebhook({ url: hook.url });
        const sent = emu.userSend(dm(ann, 'slow receiver'));
        await emu.waitFor(() => emu.pendingUpdates() === 0, 5000, 'delivery after the timeout');
        assert.deepEqual(
          hook.received.map((r) => r.json.update_id),
          [sent.update_id, sent.update_id],
          'at-least-once: the timed-out push is repeated',
        );
        assert.equal(emu.state().webhook?.last_error_message, 'Read timeout expired');
      });
    });
  });

  it('pushes different chats concurrently up to max_connections', async () => {
    await withReceiver(async (hook) => {
      const waiting: (() => void)[] = [];
      hook.respond = (_r, res) => {
        waiting.push(() => res.writeHead(200).end());
      };
      await withEmulator({}, async (emu) => {
        await sdk(emu).setWebhook({ url: hook.url, max_connections: 2 });
        for (const u of [ann, bob, { id: 4203, first_name: 'Cy' }]) emu.userSend(dm(u, 'hi'));
        await emu.waitFor(() => hook.received.length === 2, 5000, 'two pushes in flight');
        assert.equal(emu.state().webhook?.in_flight, 2, 'no third push while two are unanswered');
        waiting.shift()?.();
        await emu.waitFor(() => hook.received.length === 3, 5000, 'the third push');
        for (const release of waiting.splice(0)) release();
        await emu.waitFor(() => emu.pendingUpdates() === 0, 5000, 'everything acknowledged');
      });
    });
  });

  it('validates setWebhook and reports it set, already set and deleted', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      const fail = (p: Parameters<typeof api.setWebhook>[0]) =>
        api.setWebhook(p).then(
          () => assert.fail('expected 400'),
          (e: unknown) => (e as TelegramApiError).description,
        );
      assert.equal(
        await fail({ url: 'http://127.0.0.1:9/x', secret_token: 'has space' }),
        'Bad Request: secret token contains unallowed characters',
      );
      assert.equal(
        await fail({ url: 'http://127.0.0.1:9/x', secret_token: 'a'.repeat(257) }),
        'Bad Request: secret token is too long',
      );
      assert.equal(await fail({ url: 'not a url' }), 'Bad Request: invalid webhook URL specified');

      const first = await fetch(
        `${emu.url}/bot${emu.token}/setWebhook?url=${encodeURIComponent('http://127.0.0.1:9/x')}&max_connections=500`,
      );
      assert.deepEqual(await first.json(), { ok: true, result: true, description: 'Webhook was set' });
      assert.equal((await api.getWebhookInfo()).max_connections, 100, 'clamped like the real server');
      const again = await fetch(
        `${emu.url}/bot${emu.token}/setWebhook?url=${encodeURIComponent('http://127.0.0.1:9/x')}&max_connections=500`,
      );
      assert.deepEqual(await again.json(), { ok: true, result: true, description: 'Webhook is already set' });
      const del = await fetch(`${emu.url}/bot${emu.token}/deleteWebhook`);
      assert.deepEqual(await del.json(), { ok: true, result: true, description: 'Webhook was deleted' });
      const del2 = await fetch(`${emu.url}/bot${emu.token}/deleteWebhook`);
      assert.deepEqual(await del2.json(), {
        ok: true,
        result: true,
        description: 'Webhook is already deleted',
      });
      assert.deepEqual(await api.getWebhookInfo(), {
        url: '',
        has_custom_certificate: false,
        pending_update_count: 0,
      });
    });
  });

  it('drop_pending_updates discards the backlog; deleteWebhook hands pending updates to getUpdates', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      emu.userSend(dm(ann, 'old'));
      await api.setWebhook({ url: 'http://127.0.0.1:9/hook', drop_pending_updates: true });
      assert.equal(emu.pendingUpdates(), 0);
      const kept = emu.userSend(dm(ann, 'kept'));
      await emu.waitFor(() => emu.state().webhook?.last_error_message, 5000, 'a failed push');
      await api.deleteWebhook({});
      const updates = await api.getUpdates({});
      assert.deepEqual(
        updates.map((u) => u.update_id),
        [kept.update_id],
      );
    });
  });

  it('feeds the SDK webhook server, which checks the secret', async () => {
    const bot = new Bot('0:unused', { maxRetries: 0 });
    const seen: string[] = [];
    bot.on('message', (ctx) => {
      seen.push((ctx.update as any).message?.text ?? '');
    });
    const server = createWebhookServer(bot, { path: '/tg', secretToken: 'right_secret' });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tg`;
    try {
      await withEmulator({ webhookRetryDelaysMs: [20] }, async (emu) => {
        const api = sdk(emu);
        await api.setWebhook({ url, secret_token: 'wrong_secret' });
        emu.userSend(dm(ann, 'via the SDK'));
        await emu.waitFor(
          () => emu.state().webhook?.last_error_message,
          5000,
          'the SDK to refuse the secret',
        );
        assert.equal(
          emu.state().webhook?.last_error_message,
          'Wrong response from the webhook: 401 Unauthorized',
        );
        assert.deepEqual(seen, []);
        await api.setWebhook({ url, secret_token: 'right_secret' });
        await emu.waitFor(() => emu.pendingUpdates() === 0, 5000, 'delivery with the right secret');
        assert.deepEqual(seen, ['via the SDK']);
      });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('runs a method returned in the webhook answer', async () => {
    await withReceiver(async (hook) => {
      hook.respond = (r, res) => {
        const chatId = r.json.message.chat.id;
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ method: 'sendMessage', chat_id: chatId, text: 'answered inline' }));
      };
      await withEmulator({}, async (emu) => {
        await sdk(emu).setWebhook({ url: hook.url });
        emu.userSend(dm(ann, 'question'));
        await emu.waitFor(() => emu.calls.some((c) => c.via === 'webhook_reply'), 5000, 'the reply');
        assert.equal(emu.chat(ann.id).botMessages[0]?.text, 'answered inline');
        const call = emu.calls.find((c) => c.via === 'webhook_reply');
        assert.equal(call?.method, 'sendMessage');
        assert.equal(call?.ok, true);
      });
    });
  });
});
