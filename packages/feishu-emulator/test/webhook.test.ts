// Webhook pushes into an express app running the SDK's adaptExpress: encryption, signature, challenge, retries.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { afterEach, describe, it } from 'node:test';
import express from 'express';
import type { FeishuEmulator, FeishuEmulatorOptions } from '../src/index.ts';
import { startFeishuEmulator } from '../src/index.ts';
import { lark, listen, silentLogger } from './helpers.ts';

type Received = Record<string, any>;

let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

async function emulator(opts: FeishuEmulatorOptions = {}): Promise<FeishuEmulator> {
  const emu = await startFeishuEmulator(opts);
  cleanup.push(() => emu.close());
  return emu;
}

async function serve(server: Server): Promise<string> {
  const url = await listen(server);
  cleanup.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return url;
}

/** An express app with the SDK's webhook adapter at /webhook/feishu; records raw requests and dispatched events. */
async function botApp(emu: FeishuEmulator) {
  const received: Received[] = [];
  const raw: Array<{ headers: Record<string, unknown>; body: unknown }> = [];
  const dispatcher = new lark.EventDispatcher({
    encryptKey: emu.encryptKey,
    verificationToken: emu.verificationToken,
    logger: silentLogger,
  }).register({
    'im.message.receive_v1': async (data: Received) => {
      received.push(data);
    },
  });
  const app = express();
  app.use(express.json());
  app.post('/webhook/feishu', (req, _res, next) => {
    raw.push({ headers: req.headers, body: req.body });
    next();
  });
  app.post('/webhook/feishu', lark.adaptExpress(dispatcher, { autoChallenge: true, logger: silentLogger }));
  const url = await serve(createServer(app));
  return { url: `${url}/webhook/feishu`, received, raw };
}

const KEY = 'encrypt-key-for-tests';

describe('webhook pushes', () => {
  it('encrypts and signs; the SDK decrypts, verifies and dispatches', async () => {
    const emu = await emulator({ encryptKey: KEY });
    const bot = await botApp(emu);
    emu.setEventTarget({ webhook: bot.url });
    const sent = emu.userSend({
      chat: { type: 'p2p' },
      sender: { open_id: 'ou_hook', name: 'Hook' },
      text: 'secret',
    });
    const data = await emu.waitFor(() => bot.received[0], 5000, 'dispatched event');
    assert.equal(data.event_id, sent.event_id);
    assert.equal(JSON.parse(data.message.content).text, 'secret');
    assert.equal(data.token, emu.verificationToken);
    const request = bot.raw[0];
    assert.deepEqual(Object.keys(request?.body as object), ['encrypt']);
    assert.match(String(request?.headers['x-lark-signature']), /^[0-9a-f]{64}$/);
    assert.match(String(request?.headers['x-lark-request-timestamp']), /^\d{10}$/);
    assert.ok(request?.headers['x-lark-request-nonce']);
    await emu.waitFor(() => emu.deliveries[0], 5000, 'delivery record');
    assert.deepEqual(
      [emu.deliveries[0]?.transport, emu.deliveries[0]?.status, emu.deliveries[0]?.ok],
      ['webhook', 200, true],
    );
  });

  it('a tampered signature is not dispatched; a tampered token is, so the bot must check it', async () => {
    const emu = await emulator({ encryptKey: KEY });
    const bot = await botApp(emu);
    const envelope = emu.messageEnvelope({
      chat: { type: 'p2p' },
      sender: { open_id: 'ou_evil' },
      text: 'forged',
    });
    const post = (req: { headers: Record<string, string>; body: string }) =>
      fetch(bot.url, { method: 'POST', headers: req.headers, body: req.body });

    const forged = await post(emu.buildWebhookRequest(envelope, { tamper: 'signature' }));
    assert.equal(forged.status, 200, 'the adapter answers 200 even when it drops the event');
    assert.equal(bot.received.length, 0);

    await post(emu.buildWebhookRequest(envelope, { tamper: 'token' }));
    const withBadToken = await emu.waitFor(() => bot.received[0], 2000, 'dispatch');
    assert.equal(withBadToken.token, 'tampered-token');
    assert.notEqual(withBadToken.token, emu.verificationToken);

    const stale = emu.buildWebhookRequest(envelope, { tamper: 'timestamp' });
    assert.ok(Date.now() / 1000 - Number(stale.headers['x-lark-request-timestamp']) >= 3600);
    await post(stale);
    await emu.waitFor(() => bot.received.length === 2, 2000, 'stale but validly signed');
    const chatId = (envelope.event.message as { chat_id: string }).chat_id;
    assert.equal(emu.chat(chatId).messages.length, 0, 'messageEnvelope stores nothing');
  });

  it('runs url_verification against autoChallenge', async () => {
    const emu = await emulator({ encryptKey: KEY });
    const bot = await botApp(emu);
    assert.equal(await emu.verifyUrl(bot.url), true);
    assert.equal(bot.received.length, 0);
    const wrong = await serve(
      createServer((_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end('{"challenge":"nope"}');
      }),
    );
    assert.equal(await emu.verifyUrl(wrong), false);
  });

  it('pushes plaintext, unsigned, without an encrypt key', async () => {
    const emu = await emulator();
    const bot = await botApp(emu);
    emu.setEventTarget({ webhook: bot.url });
    const sent = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_plain' }, text: 'open' });
    await emu.waitFor(() => bot.received[0], 5000, 'event');
    const request = bot.raw[0] as { headers: Record<string, unknown>; body: Record<string, any> };
    assert.equal(request.body.schema, '2.0');
    assert.equal(request.body.header.event_id, sent.event_id);
    assert.equal(request.headers['x-lark-signature'], undefined);
  });

  it('redelivers after a non-200 or a slow answer, on the schedule, and gives up after four', async () => {
    const emu = await emulator({ ackTimeoutMs: 800, redeliveryDelaysMs: [20, 40, 60, 80] });
    const answers = [500, 'slow', 200];
    const arrivals: Array<{ at: number; eventId: string }> = [];
    const url = await serve(
      createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          arrivals.push({
            at: Date.now(),
            eventId: JSON.parse(Buffer.concat(chunks).toString()).header.event_id,
          });
          const answer = answers.shift() ?? 500;
          if (answer === 'slow') setTimeout(() => res.end('late'), 1200);
          else {
            res.statusCode = answer as number;
            res.end();
          }
        });
      }),
    );
    emu.setEventTarget({ webhook: url });
    const sent = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_flaky' }, text: 'x' });
    await emu.waitFor(() => emu.deliveries.find((d) => d.ok), 5000, 'success');
    assert.deepEqual(
      emu.deliveries.map((d) => [d.attempt, d.status, d.ok]),
      [
        [0, 500, false],
        [1, 0, false],
        [2, 200, true],
      ],
    );
    assert.match(emu.deliveries[1]?.error ?? '', /no HTTP 200 within 800 ms/);
    assert.ok(arrivals.every((a) => a.eventId === sent.event_id));
    assert.ok((arrivals[1]?.at as number) - (arrivals[0]?.at as number) >= 20);

    emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_flaky' }, text: 'never acked' });
    await emu.waitFor(() => emu.deliveries.find((d) => d.gaveUp), 5000, 'give up');
    const last = emu.deliveries.filter((d) => d.event_id !== sent.event_id);
    assert.deepEqual(
      last.map((d) => d.attempt),
      [0, 1, 2, 3, 4],
    );
  });
});
