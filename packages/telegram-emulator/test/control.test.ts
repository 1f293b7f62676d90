import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ann, sdk, withEmulator } from './support.ts';

async function control(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'content-type': 'application/json' };
  }
  const res = await fetch(`${base}/_emulator${path}`, init);
  return { status: res.status, body: await res.json() };
}

describe('HTTP control API', () => {
  it('scripts users, shows chats and calls, injects faults and reports state', async () => {
    await withEmulator({}, async (emu) => {
      const posted = await control(emu.url, 'POST', '/messages', {
        chat: { id: ann.id, type: 'private' },
        from: ann,
        text: 'hello from the benchmark',
      });
      assert.equal(posted.status, 200);
      assert.equal(posted.body.message.text, 'hello from the benchmark');
      assert.equal(typeof posted.body.update_id, 'number');

      const api = sdk(emu);
      const sent = await api.sendMessage({ chat_id: ann.id, text: 'reply' });
      const edited = await control(emu.url, 'POST', '/edits', {
        chat_id: ann.id,
        message_id: posted.body.message.message_id,
        text: 'edited',
      });
      assert.equal(typeof edited.body.update_id, 'number');

      const chat = await control(emu.url, 'GET', `/chats/${ann.id}`);
      assert.deepEqual(
        chat.body.messages.map((m: any) => [m.message_id, m.from_bot, m.text]),
        [
          [1, false, 'edited'],
          [sent.message_id, true, 'reply'],
        ],
      );
      const empty = await control(emu.url, 'GET', '/chats/-1');
      assert.deepEqual([empty.status, empty.body.type, empty.body.messages], [200, 'group', []]);
      assert.equal((await control(emu.url, 'GET', '/nowhere')).status, 404);

      const calls = await control(emu.url, 'GET', '/calls?since=0');
      assert.deepEqual(
        calls.body.calls.map((c: any) => c.method),
        ['sendMessage'],
      );
      assert.equal((await control(emu.url, 'GET', `/calls?since=${calls.body.next}`)).body.calls.length, 0);

      assert.equal(
        (await control(emu.url, 'POST', '/faults', { kind: 'server_error', method: 'getMe' })).status,
        200,
      );
      assert.equal((await control(emu.url, 'GET', '/state')).body.faults.length, 1);
      await assert.rejects(api.getMe(), (e: any) => e.errorCode === 500);
      await control(emu.url, 'POST', '/faults', { kind: 'server_error' });
      await control(emu.url, 'DELETE', '/faults');
      assert.equal((await api.getMe()).id, emu.bot.id);
      assert.equal((await control(emu.url, 'POST', '/faults', { kind: 'meteor' })).status, 400);

      await control(emu.url, 'POST', '/block', { user_id: ann.id });
      await assert.rejects(api.sendMessage({ chat_id: ann.id, text: 'x' }), (e: any) => e.errorCode === 403);

      await control(emu.url, 'POST', '/groups', { chat: { id: -7001, type: 'group', title: 'G' }, by: ann });
      const migrated = await control(emu.url, 'POST', '/migrate', { chat_id: -7001 });
      assert.match(String(migrated.body.new_chat_id), /^-100\d+$/);

      const state = await control(emu.url, 'GET', '/state');
      assert.equal(state.body.pending_updates, emu.pendingUpdates());
      assert.equal(state.body.bot.username, 'pincer_test_bot');
      assert.equal(
        (
          await control(emu.url, 'POST', '/messages', {
            chat: { id: 5, type: 'private' },
            from: ann,
            text: 'x',
          })
        ).status,
        400,
      );
    });
  });
});

describe('CLI', () => {
  it('starts from flags and env, prints url and token, and stops on SIGTERM', async () => {
    const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--conditions=pincer-source', main, '--port', '0', '--bot-username', 'cli_bot', '--no-flood'],
      {
        env: { ...process.env, TG_EMULATOR_TOKEN: '123456789:AAtestTokenFromEnv_abcdefghijklmnopq' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const lines = createInterface({ input: child.stdout });
      const [line] = (await once(lines, 'line')) as [string];
      const started = JSON.parse(line) as {
        url: string;
        token: string;
        bot: { username: string; id: number };
      };
      assert.equal(started.token, '123456789:AAtestTokenFromEnv_abcdefghijklmnopq');
      assert.equal(started.bot.id, 123456789);
      const me: any = await fetch(`${started.url}/bot${started.token}/getMe`).then((r) => r.json());
      assert.equal(me.result.username, 'cli_bot');
    } finally {
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      assert.equal(code, 0);
    }
  });
});
