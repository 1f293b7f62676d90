// The emulator as its own process: the CLI's JSON line and the /_emulator/ control API.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sdkClient, text } from './helpers.ts';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

interface Started {
  url: string;
  appId: string;
  appSecret: string;
  verificationToken: string;
  encryptKey: string | null;
  bot: { open_id: string; app_name: string };
}

describe('CLI and control API', () => {
  let child: ChildProcess;
  let info: Started;
  const control = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${info.url}/_emulator/${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  before(async () => {
    child = spawn(
      process.execPath,
      [
        '--conditions=pincer-source',
        MAIN,
        '--port',
        '0',
        '--app-id',
        'cli_a1b2c3d4e5f60718',
        '--app-secret',
        'shh',
        '--no-limits',
      ],
      {
        env: { ...process.env, FEISHU_EMULATOR_ENCRYPT_KEY: 'from-env', FEISHU_EMULATOR_BOT_NAME: 'EnvBot' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const [line] = (await once(lines, 'line')) as [string];
    info = JSON.parse(line) as Started;
  });
  after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  it('prints one JSON line with what a client needs', () => {
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(info.appId, 'cli_a1b2c3d4e5f60718');
    assert.equal(info.appSecret, 'shh');
    assert.equal(info.encryptKey, 'from-env');
    assert.equal(info.bot.app_name, 'EnvBot');
    assert.match(info.bot.open_id, /^ou_[0-9a-f]{32}$/);
  });

  it('scripts users, shows chats and records calls over HTTP', async () => {
    const sent = await control('POST', 'messages', {
      chat: { type: 'p2p' },
      sender: { open_id: 'ou_remote' },
      text: 'hi',
    });
    assert.equal(sent.status, 200);
    assert.match(sent.body.message_id, /^om_/);
    const emu = { ...info, encryptKey: info.encryptKey ?? undefined } as unknown as Parameters<
      typeof sdkClient
    >[0];
    const client = sdkClient(emu);
    await client.im.v1.message.reply({
      path: { message_id: sent.body.message_id },
      data: { msg_type: 'text', content: text('hello back') },
    });

    const chat = await control('GET', `chats/${sent.body.chat_id}`);
    assert.deepEqual(
      chat.body.messages.map((m: { text: string; from_bot: boolean }) => [m.from_bot, m.text]),
      [
        [false, 'hi'],
        [true, 'hello back'],
      ],
    );
    const calls = await control('GET', 'calls?since=0');
    assert.deepEqual(
      calls.body.calls.map((c: { api: string }) => c.api),
      ['token', 'message.reply'],
    );
    const later = await control('GET', `calls?since=${calls.body.next}`);
    assert.deepEqual(later.body.calls, []);

    assert.equal(
      (await control('POST', 'faults', { kind: 'server_error', api: 'message.reply', times: 'Infinity' }))
        .status,
      200,
    );
    const reply = () =>
      client.im.v1.message.reply({
        path: { message_id: sent.body.message_id },
        data: { msg_type: 'text', content: text('x') },
      });
    await assert.rejects(reply(), /status code 500/);
    await assert.rejects(reply(), /status code 500/);
    await control('DELETE', 'faults');
    assert.equal((await reply()).code, 0);

    await control('POST', 'expire-tokens');
    await assert.rejects(reply(), /status code 400/);

    const state = await control('GET', 'state');
    assert.equal(state.body.appId, 'cli_a1b2c3d4e5f60718');
    assert.deepEqual(state.body.eventTarget, { ws: true });
    assert.ok(state.body.chats.some((c: { id: string }) => c.id === sent.body.chat_id));
    const bad = await control('POST', 'faults', { kind: 'meteor' });
    assert.equal(bad.status, 400);
  });

  it('holds events for the long connection and switches to a webhook target', async () => {
    const received: unknown[] = [];
    const { createServer } = await import('node:http');
    const { listen } = await import('./helpers.ts');
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(JSON.parse(Buffer.concat(chunks).toString()));
        res.end();
      });
    });
    const hook = await listen(server);
    try {
      const held = await control('POST', 'messages', {
        chat: { type: 'p2p' },
        sender: { open_id: 'ou_held' },
        text: 'queued',
      });
      assert.equal((await control('POST', 'event-target', { webhook: hook })).status, 200);
      // Poll the control API with a deadline, as a separate process would.
      const deadline = Date.now() + 5000;
      let delivered: Array<{ event_id: string; ok: boolean; transport: string }> = [];
      while (delivered.filter((d) => d.ok).length < 2 && Date.now() < deadline) {
        delivered = (await control('GET', 'deliveries?since=0')).body.deliveries;
        await new Promise((r) => setTimeout(r, 20));
      }
      const record = delivered.find((d) => d.event_id === held.body.event_id);
      assert.deepEqual(
        [record?.transport, record?.ok],
        ['webhook', true],
        'the held event went to the new webhook',
      );
      assert.equal(received.length, 2, 'both events held for the long connection');
      assert.deepEqual(Object.keys(received[0] as object), ['encrypt']);
      const dup = await control('POST', 'duplicate', { event_id: held.body.event_id, newEventId: true });
      assert.notEqual(dup.body.event_id, held.body.event_id);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('stops on SIGTERM', async () => {
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0);
  });
});
