// The shapes of pushed events for every kind of scripted user message.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FeishuEmulator } from '../src/index.ts';
import { startFeishuEmulator } from '../src/index.ts';

describe('im.message.receive_v1 shapes', () => {
  let emu: FeishuEmulator;
  before(async () => {
    emu = await startFeishuEmulator();
  });
  after(() => emu.close());

  const message = (input: Parameters<FeishuEmulator['messageEnvelope']>[0]) =>
    emu.messageEnvelope(input).event.message as Record<string, any>;

  it('puts @_all and unlisted mentions where the platform does', () => {
    const m = message({
      chat: { type: 'group', id: 'oc_g' },
      sender: { open_id: 'ou_a' },
      text: '@all standup in 5',
      mentionAll: true,
      mentions: [{ open_id: 'ou_c', name: 'Carol' }],
    });
    assert.equal(
      JSON.parse(m.content).text,
      '@_user_1 @_all standup in 5',
      'a mention not written in the text goes first',
    );
    assert.deepEqual(
      m.mentions.map((x: { key: string }) => x.key),
      ['@_user_1', '@_all'],
    );
    assert.equal(m.chat_type, 'group');
  });

  it('sends a post without a locale wrapper, with at elements listed as mentions', () => {
    const m = message({
      chat: { type: 'p2p' },
      sender: { open_id: 'ou_a' },
      post: {
        title: 'Plan',
        content: [
          [
            { tag: 'at', user_id: 'ou_bot_x', user_name: 'Pincer' },
            { tag: 'text', text: ' please review ' },
            { tag: 'a', text: 'this', href: 'https://example.com' },
          ],
          [{ tag: 'code_block', language: 'ts', text: 'let x = 1;' }],
        ],
      },
    });
    assert.equal(m.message_type, 'post');
    const content = JSON.parse(m.content);
    assert.equal(content.title, 'Plan');
    assert.equal(content.content[0][0].user_id, 'ou_bot_x');
    assert.equal(content.zh_cn, undefined);
    assert.equal(m.mentions[0].id.open_id, 'ou_bot_x');
    assert.equal(m.mentions[0].name, 'Pincer');
  });

  it('sends images, files, thread replies and old messages', () => {
    const image = message({ chat: { type: 'p2p' }, sender: { open_id: 'ou_a' }, image: true });
    assert.equal(image.message_type, 'image');
    assert.match(JSON.parse(image.content).image_key, /^img_v3_/);
    const file = message({
      chat: { type: 'p2p' },
      sender: { open_id: 'ou_a' },
      file: { file_name: 'report.pdf' },
    });
    assert.deepEqual(Object.keys(JSON.parse(file.content)).sort(), ['file_key', 'file_name']);
    const threaded = message({
      chat: { type: 'group', id: 'oc_topic' },
      sender: { open_id: 'ou_a' },
      text: 'in the topic',
      root_id: 'om_root',
      parent_id: 'om_parent',
      thread_id: 'omt_123456789abc',
    });
    assert.deepEqual(
      [threaded.root_id, threaded.parent_id, threaded.thread_id],
      ['om_root', 'om_parent', 'omt_123456789abc'],
    );
    const old = Date.now() - 3600_000;
    const stale = message({
      chat: { type: 'p2p' },
      sender: { open_id: 'ou_a' },
      text: 'from an hour ago',
      create_time: old,
    });
    assert.equal(stale.create_time, String(old));
    assert.throws(
      () => emu.messageEnvelope({ chat: { type: 'group' }, sender: { open_id: 'ou_a' }, text: 'x' }),
      /chat\.id/,
    );
    assert.throws(
      () => emu.messageEnvelope({ chat: { type: 'p2p' }, sender: { open_id: 'ou_a' } }),
      /exactly one/,
    );
  });

  it('gives every user one p2p chat and stable ids', () => {
    const a = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_same' }, text: '1' });
    const b = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_same' }, text: '2' });
    assert.equal(a.chat_id, b.chat_id);
    assert.match(a.chat_id, /^oc_[0-9a-f]{32}$/);
    assert.notEqual(a.event_id, b.event_id);
    assert.match(a.event_id, /^[0-9a-f]{32}$/);
    const first = emu.messageEnvelope({ chat: { type: 'p2p' }, sender: { open_id: 'ou_same' }, text: '3' });
    const sender = (first.event.sender as { sender_id: { union_id: string; user_id: string } }).sender_id;
    assert.match(sender.union_id, /^on_[0-9a-f]{32}$/);
    assert.equal(
      emu
        .chat(a.chat_id)
        .messages.map((m) => m.text)
        .join(','),
      '1,2',
    );
  });
});
