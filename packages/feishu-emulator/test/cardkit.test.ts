// CardKit through the real SDK: card entities, streaming text, settings, sequence, limits, sending once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FeishuEmulator } from '../src/index.ts';
import { startFeishuEmulator } from '../src/index.ts';
import { apiError, sdkClient, streamingCard, text } from './helpers.ts';

describe('CardKit streaming', () => {
  let emu: FeishuEmulator;
  let client: ReturnType<typeof sdkClient>;
  let n = 0;
  before(async () => {
    emu = await startFeishuEmulator({ limits: { cardOpsPerSec: 10 }, streamingTimeoutMs: 1000 });
    client = sdkClient(emu);
  });
  after(() => emu.close());

  const createCard = async (data = streamingCard()) => {
    const res = await client.cardkit.v1.card.create({ data: { type: 'card_json', data } });
    return res.data?.card_id as string;
  };
  const userMessage = () =>
    emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: `ou_card${++n}` }, text: 'explain' });
  const sendCard = (messageId: string, cardId: string) =>
    client.im.v1.message.reply({
      path: { message_id: messageId },
      data: { msg_type: 'interactive', content: JSON.stringify({ type: 'card', data: { card_id: cardId } }) },
    });
  const stream = (cardId: string, content: string, sequence: number, uuid?: string) =>
    client.cardkit.v1.cardElement.content({
      path: { card_id: cardId, element_id: 'answer' },
      data: { content, sequence, ...(uuid ? { uuid } : {}) },
    });

  it('streams text into a sent card and closes it with settings', async () => {
    const { chat_id, message_id } = userMessage();
    const cardId = await createCard();
    assert.match(cardId, /^\d{19}$/);
    await sendCard(message_id, cardId);
    await stream(cardId, 'Hel', 1);
    await stream(cardId, 'Hello, wor', 2);
    await stream(cardId, 'Hello, world.', 3);
    let shown = emu.chat(chat_id).botMessages[0];
    assert.equal(shown?.text, 'Hello, world.');
    assert.deepEqual(shown?.card?.elements, { answer: 'Hello, world.' });
    assert.equal(shown?.card?.streaming_mode, true);
    assert.equal(shown?.card?.summary, '[Generating]');
    assert.equal(shown?.card?.contentUpdates, 3);

    const closed = await client.cardkit.v1.card.settings({
      path: { card_id: cardId },
      data: {
        settings: JSON.stringify({
          config: { streaming_mode: false, summary: { content: 'Hello, world.' } },
        }),
        sequence: 4,
      },
    });
    assert.equal(closed.code, 0);
    shown = emu.chat(chat_id).botMessages[0];
    assert.equal(shown?.card?.streaming_mode, false);
    assert.equal(shown?.card?.summary, 'Hello, world.');
    assert.equal(shown?.card?.sequence, 4);
    const late = await apiError(stream(cardId, 'more', 5));
    assert.deepEqual([late.status, late.code], [400, 300309]);
  });

  it('accepts a top-level streaming_mode in settings', async () => {
    const cardId = await createCard();
    await client.cardkit.v1.card.settings({
      path: { card_id: cardId },
      data: { settings: JSON.stringify({ streaming_mode: false }), sequence: 1 },
    });
    assert.equal((await apiError(stream(cardId, 'x', 2))).code, 300309);
    await client.cardkit.v1.card.settings({
      path: { card_id: cardId },
      data: { settings: JSON.stringify({ streaming_mode: true }), sequence: 3 },
    });
    assert.equal((await stream(cardId, 'x', 4)).code, 0);
  });

  it('requires a strictly increasing sequence; a uuid makes a retry safe', async () => {
    const cardId = await createCard();
    await stream(cardId, 'a', 5, 'op-5');
    assert.equal((await apiError(stream(cardId, 'ab', 5))).code, 300317);
    assert.equal((await apiError(stream(cardId, 'ab', 4))).code, 300317);
    assert.equal((await stream(cardId, 'a', 5, 'op-5')).code, 0, 'the same request again is a no-op success');
    assert.equal((await apiError(stream(cardId, 'other', 6, 'op-5'))).code, 200770);
    await stream(cardId, 'ab', 6);
    const settingsSeq = await apiError(
      client.cardkit.v1.card.settings({
        path: { card_id: cardId },
        data: { settings: '{"config":{}}', sequence: 6 },
      }),
    );
    assert.equal(settingsSeq.code, 300317, 'one sequence per card, across operations');
    assert.equal((await apiError(stream(cardId, 'x', 0))).code, 10002);
  });

  it('validates card entities like the platform', async () => {
    const make = (card: unknown) =>
      apiError(
        client.cardkit.v1.card.create({
          data: { type: 'card_json', data: typeof card === 'string' ? card : JSON.stringify(card) },
        }),
      );
    const md = (id: string) => ({ tag: 'markdown', element_id: id, content: 'x' });
    assert.equal((await make({ elements: [md('a')] })).code, 300303);
    assert.equal((await make({ schema: '2.0', body: { elements: [md('a'), md('a')] } })).code, 300301);
    assert.equal(
      (await make({ schema: '2.0', config: { update_multi: false }, body: { elements: [] } })).code,
      300302,
    );
    assert.equal((await make('')).code, 300307);
    assert.equal((await make('{"schema":')).code, 200220);
    assert.equal((await make({ schema: '2.0', body: { elements: [md('1abc')] } })).code, 10002);
    assert.equal(
      (await make({ schema: '2.0', body: { elements: Array.from({ length: 201 }, (_, i) => md(`m${i}`)) } }))
        .code,
      300305,
    );
    assert.equal(
      (
        await make({
          schema: '2.0',
          body: { elements: [{ tag: 'markdown', content: 'z'.repeat(31 * 1024) }] },
        })
      ).code,
      200860,
    );
    const template = await apiError(
      client.cardkit.v1.card.create({ data: { type: 'template', data: '{}' } }),
    );
    assert.equal(template.code, 10002);

    const nested = await createCard(
      JSON.stringify({
        schema: '2.0',
        config: { streaming_mode: true },
        body: {
          elements: [
            {
              tag: 'column_set',
              columns: [
                { tag: 'column', elements: [{ tag: 'markdown', element_id: 'answer', content: '' }] },
              ],
            },
            { tag: 'button', element_id: 'stop', text: { tag: 'plain_text', content: 'Stop' } },
          ],
        },
      }),
    );
    assert.equal((await stream(nested, 'nested works', 1)).code, 0);
    const notText = await apiError(
      client.cardkit.v1.cardElement.content({
        path: { card_id: nested, element_id: 'stop' },
        data: { content: 'x', sequence: 2 },
      }),
    );
    assert.equal(notText.code, 300310);
    const missing = await apiError(
      client.cardkit.v1.cardElement.content({
        path: { card_id: nested, element_id: 'nope' },
        data: { content: 'x', sequence: 2 },
      }),
    );
    assert.equal(missing.code, 300313);
    assert.equal((await apiError(stream('7000000000000000000', 'x', 1))).code, 200740);
    const huge = await apiError(stream(nested, 'y'.repeat(40 * 1024), 3));
    assert.equal(huge.code, 200860);
  });

  it('sends a card entity once, and only one that exists', async () => {
    const { message_id } = userMessage();
    const cardId = await createCard();
    assert.equal((await sendCard(message_id, cardId)).code, 0);
    const again = await apiError(sendCard(message_id, cardId));
    assert.equal(again.code, 230099);
    const unknown = await apiError(sendCard(message_id, '7111111111111111111'));
    assert.equal(unknown.code, 230099);
  });

  it('closes streaming by itself after the timeout, and settings reopen it', async () => {
    const { chat_id, message_id } = userMessage();
    const cardId = await createCard();
    await sendCard(message_id, cardId);
    await stream(cardId, 'start', 1);
    await emu.waitFor(
      () => emu.chat(chat_id).botMessages[0]?.card?.streaming_mode === false,
      3000,
      'streaming timeout',
    );
    assert.equal((await apiError(stream(cardId, 'later', 2))).code, 200850);
    await client.cardkit.v1.card.settings({
      path: { card_id: cardId },
      data: { settings: '{"config":{"streaming_mode":true}}', sequence: 3 },
    });
    assert.equal((await stream(cardId, 'reopened', 4)).code, 0);
    assert.equal(emu.chat(chat_id).botMessages[0]?.text, 'reopened');
  });

  it('replaces the whole card with PUT /cards/:id', async () => {
    const { chat_id, message_id } = userMessage();
    const cardId = await createCard();
    await sendCard(message_id, cardId);
    const final = JSON.stringify({
      schema: '2.0',
      config: { streaming_mode: false },
      body: {
        elements: [
          { tag: 'markdown', element_id: 'answer', content: 'Final answer' },
          { tag: 'markdown', content: '_model: qwen_' },
        ],
      },
    });
    const res = await client.cardkit.v1.card.update({
      path: { card_id: cardId },
      data: { card: { type: 'card_json', data: final }, sequence: 1 },
    });
    assert.equal(res.code, 0);
    const shown = emu.chat(chat_id).botMessages[0];
    assert.equal(shown?.text, 'Final answer\n_model: qwen_');
    assert.equal(shown?.card?.streaming_mode, false);
  });

  it('limits operations per card and answers 429', async () => {
    const cardId = await createCard();
    const codes: number[] = [];
    for (let i = 1; i <= 11; i++)
      codes.push(
        await stream(cardId, `t${i}`, i).then(
          () => 0,
          (e: { response: { status: number } }) => e.response.status,
        ),
      );
    assert.deepEqual(codes, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 429]);
  });
});

describe('falling back from CardKit', () => {
  it('lets a bot fall back to a PATCHed card and then to a post', async () => {
    const emu = await startFeishuEmulator({ limits: false });
    try {
      const client = sdkClient(emu);
      const { chat_id, message_id } = emu.userSend({
        chat: { type: 'p2p' },
        sender: { open_id: 'ou_fallback' },
        text: 'q',
      });
      emu.inject({ kind: 'api_unavailable', api: 'card.create' });
      const denied = await apiError(
        client.cardkit.v1.card.create({ data: { type: 'card_json', data: streamingCard() } }),
      );
      assert.equal(denied.code, 99991672);
      const card = (s: string) =>
        JSON.stringify({ config: { update_multi: true }, elements: [{ tag: 'markdown', content: s }] });
      const sent = await client.im.v1.message.reply({
        path: { message_id },
        data: { msg_type: 'interactive', content: card('…') },
      });
      emu.inject({ kind: 'card_failed', api: 'message.patch' });
      const failed = await apiError(
        client.im.v1.message.patch({
          path: { message_id: sent.data?.message_id as string },
          data: { content: card('answer') },
        }),
      );
      assert.equal(failed.code, 230099);
      await client.im.v1.message.reply({
        path: { message_id },
        data: {
          msg_type: 'post',
          content: JSON.stringify({ zh_cn: { content: [[{ tag: 'md', text: 'answer' }]] } }),
        },
      });
      const texts = emu.chat(chat_id).botMessages.map((m) => m.text);
      assert.deepEqual(texts, ['…', 'answer']);
      await client.im.v1.message.create({
        params: { receive_id_type: 'chat_id' },
        data: { receive_id: chat_id, msg_type: 'text', content: text('done') },
      });
    } finally {
      await emu.close();
    }
  });
});
