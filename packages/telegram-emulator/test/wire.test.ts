import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ann, raw, withEmulator } from './support.ts';

describe('the wire', () => {
  it('has a realistic token and answers 401 for another one', async () => {
    await withEmulator({}, async (emu) => {
      assert.match(emu.token, /^\d+:[A-Za-z0-9_-]{35}$/);
      assert.equal(Number(emu.token.split(':')[0]), emu.bot.id);
      const r = await raw(emu, 'getMe', { get: '', token: '123456:wrong' });
      assert.equal(r.status, 401);
      assert.deepEqual(r.body, { ok: false, error_code: 401, description: 'Unauthorized' });
      assert.deepEqual(
        emu.calls.map((c) => [c.method, c.ok, c.error_code]),
        [['getMe', false, 401]],
      );
    });
  });

  it('answers 404 Not Found for unknown methods and paths, and ignores method case', async () => {
    await withEmulator({}, async (emu) => {
      const unknown = await raw(emu, 'sendTelepathy', { json: {} });
      assert.equal(unknown.status, 404);
      assert.deepEqual(unknown.body, { ok: false, error_code: 404, description: 'Not Found' });
      const stray = await fetch(`${emu.url}/nothing/here`);
      assert.equal(stray.status, 404);
      const lower = await raw(emu, 'getme', { get: '' });
      assert.equal(lower.status, 200);
      assert.equal(lower.body.result.username, 'pincer_test_bot');
      assert.equal(emu.calls.at(-1)?.method, 'getMe');
    });
  });

  it('accepts GET query, JSON, urlencoded (nested JSON strings) and multipart alike', async () => {
    await withEmulator({}, async (emu) => {
      const first = emu.userSend({ chat: { id: ann.id, type: 'private' }, from: ann, text: 'hi' }).message
        .message_id;
      const reply = JSON.stringify({ message_id: first });

      const viaGet = await raw(emu, 'sendMessage', {
        get: new URLSearchParams({
          chat_id: String(ann.id),
          text: 'by GET',
          reply_parameters: reply,
        }).toString(),
      });
      const viaJson = await raw(emu, 'sendMessage', {
        json: { chat_id: ann.id, text: 'by JSON', reply_parameters: { message_id: first } },
      });
      const viaForm = await raw(emu, 'sendMessage', {
        body: new URLSearchParams({ chat_id: String(ann.id), text: 'by form', reply_parameters: reply }),
      });
      const form = new FormData();
      form.set('chat_id', String(ann.id));
      form.set('text', 'by multipart');
      form.set('reply_parameters', reply);
      const viaMultipart = await raw(emu, 'sendMessage', { body: form });

      for (const [r, text] of [
        [viaGet, 'by GET'],
        [viaJson, 'by JSON'],
        [viaForm, 'by form'],
        [viaMultipart, 'by multipart'],
      ] as const) {
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.ok, true);
        assert.equal(r.body.result.text, text);
        assert.equal(r.body.result.reply_to_message.message_id, first);
      }
      const params = emu.calls.filter((c) => c.method === 'sendMessage').map((c) => c.params);
      for (const p of params) {
        assert.equal(p['chat_id'], ann.id, 'chat_id recorded as a number whatever the encoding');
        assert.deepEqual(p['reply_parameters'], { message_id: first }, 'nested JSON recorded decoded');
      }
    });
  });

  it('reports broken nested JSON and missing chat_id like the real server', async () => {
    await withEmulator({}, async (emu) => {
      emu.userSend({ chat: { id: ann.id, type: 'private' }, from: ann, text: 'hi' });
      const broken = await raw(emu, 'sendMessage', {
        body: new URLSearchParams({ chat_id: String(ann.id), text: 'x', reply_parameters: '{oops' }),
      });
      assert.deepEqual(broken.body, {
        ok: false,
        error_code: 400,
        description: "Bad Request: can't parse reply parameters JSON object",
      });
      const noChat = await raw(emu, 'sendMessage', { json: { text: 'x' } });
      assert.deepEqual(noChat.body, {
        ok: false,
        error_code: 400,
        description: 'Bad Request: chat_id is empty',
      });
    });
  });

  it('refuses oversized bodies with 413', async () => {
    await withEmulator({}, async (emu) => {
      const res = await fetch(`${emu.url}/bot${emu.token}/sendMessage`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ chat_id: 1, text: 'x'.repeat(11 * 1024 * 1024) }),
      });
      assert.equal(res.status, 413);
      assert.deepEqual(await res.json(), {
        ok: false,
        error_code: 413,
        description: 'Request Entity Too Large',
      });
    });
  });
});
