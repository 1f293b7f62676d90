// The open API through the real SDK Client: tokens, bot info, messages, edits, reactions, limits, faults.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FeishuEmulator } from '../src/index.ts';
import { startFeishuEmulator } from '../src/index.ts';
import { apiError, sdkClient, text } from './helpers.ts';

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

describe('tenant_access_token and bot info', () => {
  let emu: FeishuEmulator;
  before(async () => {
    emu = await startFeishuEmulator({ bot: { app_name: 'Pincer Test' } });
  });
  after(() => emu.close());

  it('issues a token the SDK uses, and answers bot/v3/info', async () => {
    const client = sdkClient(emu);
    const info = (await client.request({ method: 'GET', url: '/open-apis/bot/v3/info' })) as {
      code: number;
      bot: { open_id: string; app_name: string; ip_white_list: unknown[] };
    };
    assert.equal(info.code, 0);
    assert.equal(info.bot.open_id, emu.bot.open_id);
    assert.equal(info.bot.app_name, 'Pincer Test');
    assert.deepEqual(info.bot.ip_white_list, []);
    const tokenCalls = emu.calls.filter((c) => c.api === 'token');
    assert.equal(tokenCalls.length, 1);
    assert.equal(tokenCalls[0]?.code, 0);
  });

  it('refuses a wrong secret (10014) and an unknown app (10003) with HTTP 200', async () => {
    const url = `${emu.url}/open-apis/auth/v3/tenant_access_token/internal`;
    const bad = await post(url, { app_id: emu.appId, app_secret: 'nope' });
    assert.equal(bad.status, 200);
    assert.deepEqual(await bad.json(), { code: 10014, data: {}, msg: 'app secret invalid' });
    const unknown = await post(url, { app_id: 'cli_0000000000000000', app_secret: emu.appSecret });
    assert.equal(((await unknown.json()) as { code: number }).code, 10003);
    await assert.rejects(
      sdkClient(emu, 'wrong').im.v1.message.create({
        params: { receive_id_type: 'open_id' },
        data: { receive_id: 'ou_x', msg_type: 'text', content: text('hi') },
      }),
      /code: 10014/,
    );
  });

  it('keeps handing out a token with 30 min left, and issues a new one below that', async () => {
    const url = `${emu.url}/open-apis/auth/v3/tenant_access_token/internal`;
    const creds = { app_id: emu.appId, app_secret: emu.appSecret };
    const a = (await (await post(url, creds)).json()) as { tenant_access_token: string; expire: number };
    const b = (await (await post(url, creds)).json()) as { tenant_access_token: string; expire: number };
    assert.match(a.tenant_access_token, /^t-/);
    assert.equal(b.tenant_access_token, a.tenant_access_token);
    assert.ok(b.expire <= 7200 && b.expire > 7100);

    const short = await startFeishuEmulator({ tokenTtlSec: 600 });
    try {
      const url2 = `${short.url}/open-apis/auth/v3/tenant_access_token/internal`;
      const creds2 = { app_id: short.appId, app_secret: short.appSecret };
      const t1 = ((await (await post(url2, creds2)).json()) as { tenant_access_token: string })
        .tenant_access_token;
      const t2 = ((await (await post(url2, creds2)).json()) as { tenant_access_token: string })
        .tenant_access_token;
      assert.notEqual(t1, t2);
      for (const t of [t1, t2]) {
        const res = await fetch(`${short.url}/open-apis/bot/v3/info`, {
          headers: { authorization: `Bearer ${t}` },
        });
        assert.equal(res.status, 200, 'the older token stays valid');
      }
    } finally {
      await short.close();
    }
  });

  it('answers 99991661 without a token and 99991663 for an unknown or expired one', async () => {
    const none = await fetch(`${emu.url}/open-apis/bot/v3/info`);
    assert.equal(none.status, 400);
    assert.equal(((await none.json()) as { code: number }).code, 99991661);
    const noBearer = await fetch(`${emu.url}/open-apis/bot/v3/info`, { headers: { authorization: 't-abc' } });
    assert.equal(((await noBearer.json()) as { code: number }).code, 99991661);
    const bogus = await fetch(`${emu.url}/open-apis/bot/v3/info`, {
      headers: { authorization: 'Bearer t-bogus' },
    });
    assert.equal(bogus.status, 400);
    const body = (await bogus.json()) as { code: number; error: { log_id: string } };
    assert.equal(body.code, 99991663);
    assert.match(body.error.log_id, /^\d{14}[0-9A-F]+$/);

    const client = sdkClient(emu);
    const get = () => client.request({ method: 'GET', url: '/open-apis/bot/v3/info' });
    await get();
    emu.expireTokens();
    const err = await apiError(get());
    assert.equal(err.status, 400);
    assert.equal(err.code, 99991663, 'the SDK keeps its cached token, which is now invalid');
    const fresh = (await sdkClient(emu).request({ method: 'GET', url: '/open-apis/bot/v3/info' })) as {
      code: number;
    };
    assert.equal(fresh.code, 0);
  });

  it('answers unknown paths and wrong methods in plain text 404', async () => {
    const res = await fetch(`${emu.url}/open-apis/nonexistent/v1/foo`);
    assert.equal(res.status, 404);
    assert.equal(await res.text(), '404 page not found');
    const wrong = await fetch(`${emu.url}/open-apis/auth/v3/tenant_access_token/internal`);
    assert.equal(wrong.status, 404);
  });
});

describe('messages', () => {
  let emu: FeishuEmulator;
  let client: ReturnType<typeof sdkClient>;
  let n = 0;
  const user = () => ({ open_id: `ou_user${++n}`, name: `User ${n}` });
  before(async () => {
    emu = await startFeishuEmulator({ limits: false });
    client = sdkClient(emu);
  });
  after(() => emu.close());

  const sendTo = (chatId: string, msgType: string, content: string, uuid?: string) =>
    client.im.v1.message.create({
      params: { receive_id_type: 'chat_id' },
      data: { receive_id: chatId, msg_type: msgType, content, ...(uuid ? { uuid } : {}) },
    });

  it('creates a message the user sees, shaped like the real one', async () => {
    const { chat_id } = emu.userSend({ chat: { type: 'p2p' }, sender: user(), text: 'hi' });
    const res = await sendTo(
      chat_id,
      'text',
      JSON.stringify({ text: 'Hello <at user_id="ou_user1">User 1</at>' }),
    );
    assert.equal(res.code, 0);
    assert.match(res.data?.message_id ?? '', /^om_[0-9a-f]{32}$/);
    assert.equal(res.data?.chat_id, chat_id);
    assert.equal(res.data?.msg_type, 'text');
    assert.match(res.data?.create_time ?? '', /^\d{13}$/);
    assert.deepEqual(res.data?.sender, {
      id: emu.appId,
      id_type: 'app_id',
      sender_type: 'app',
      tenant_key: emu.tenantKey,
    });
    const view = emu.chat(chat_id);
    assert.equal(view.type, 'p2p');
    assert.equal(view.messages.length, 2);
    assert.equal(view.botMessages.length, 1);
    assert.equal(view.botMessages[0]?.text, 'Hello @User 1');
  });

  it('sends to an open_id through the p2p chat and checks receive_id', async () => {
    const u = user();
    const res = await client.im.v1.message.create({
      params: { receive_id_type: 'open_id' },
      data: { receive_id: u.open_id, msg_type: 'text', content: text('direct') },
    });
    const chatId = res.data?.chat_id as string;
    assert.equal(emu.chat(chatId).botMessages[0]?.text, 'direct');
    const { chat_id: again } = emu.userSend({ chat: { type: 'p2p' }, sender: u, text: 'back' });
    assert.equal(again, chatId, 'one p2p chat per user');

    const badType = await apiError(
      client.im.v1.message.create({
        params: { receive_id_type: 'chat' as 'chat_id' },
        data: { receive_id: chatId, msg_type: 'text', content: text('x') },
      }),
    );
    assert.deepEqual([badType.status, badType.code], [400, 99992402]);
    const mismatched = await apiError(
      client.im.v1.message.create({
        params: { receive_id_type: 'open_id' },
        data: { receive_id: chatId, msg_type: 'text', content: text('x') },
      }),
    );
    assert.equal(mismatched.code, 230001);
    const notInChat = await apiError(sendTo('oc_00000000000000000000000000000000', 'text', text('x')));
    assert.equal(notInChat.code, 230002);
  });

  it('validates content per msg_type and size', async () => {
    const { chat_id } = emu.userSend({
      chat: { type: 'group', id: 'oc_validation' },
      sender: user(),
      text: 'go',
    });
    const cases: Array<[string, string, number]> = [
      ['text', '{}', 230001],
      ['text', 'not json', 230001],
      ['post', JSON.stringify({ title: 't', content: [[{ tag: 'text', text: 'no locale' }]] }), 230001],
      ['post', JSON.stringify({ zh_cn: { content: [[{ tag: 'blink', text: 'x' }]] } }), 230001],
      ['post', JSON.stringify({ zh_cn: { content: [[{ tag: 'a', text: 'no href' }]] } }), 230001],
      ['interactive', JSON.stringify({ header: {} }), 230099],
      [
        'interactive',
        JSON.stringify({ schema: '2.0', body: { elements: [{ tag: 'note', elements: [] }] } }),
        230099,
      ],
      ['sticker_pack', text('x'), 230001],
      ['text', text('x'.repeat(150 * 1024)), 230025],
      [
        'post',
        JSON.stringify({ zh_cn: { content: [[{ tag: 'md', text: 'y'.repeat(31 * 1024) }]] } }),
        230025,
      ],
    ];
    for (const [type, content, code] of cases) {
      const err = await apiError(sendTo(chat_id, type, content));
      assert.equal(err.code, code, `${type} ${content.slice(0, 60)}`);
      assert.equal(err.status, 400);
    }
    assert.equal(emu.chat(chat_id).botMessages.length, 0, 'nothing invalid reached the chat');

    const postContent = {
      zh_cn: {
        title: 'Report',
        content: [[{ tag: 'md', text: '**bold** and `code`' }], [{ tag: 'text', text: 'line 2' }]],
      },
    };
    await sendTo(chat_id, 'post', JSON.stringify(postContent));
    const card = { config: { update_multi: true }, elements: [{ tag: 'markdown', content: 'card body' }] };
    await sendTo(chat_id, 'interactive', JSON.stringify(card));
    const shown = emu.chat(chat_id).botMessages;
    assert.equal(shown[0]?.text, 'Report\n**bold** and `code`\nline 2');
    assert.equal(shown[1]?.text, 'card body');
  });

  it('replies, in a thread when asked, and refuses recalled or deleted targets', async () => {
    const { chat_id, message_id } = emu.userSend({
      chat: { type: 'group', id: 'oc_threads' },
      sender: user(),
      text: 'question',
    });
    const plain = await client.im.v1.message.reply({
      path: { message_id },
      data: { msg_type: 'text', content: text('a1') },
    });
    assert.equal(plain.data?.parent_id, message_id);
    assert.equal(plain.data?.root_id, message_id);
    assert.equal(plain.data?.thread_id, undefined);
    const threaded = await client.im.v1.message.reply({
      path: { message_id },
      data: { msg_type: 'text', content: text('a2'), reply_in_thread: true },
    });
    assert.match(threaded.data?.thread_id ?? '', /^omt_/);
    const shown = emu.chat(chat_id).botMessages[1];
    assert.equal(shown?.reply_in_thread, true);

    const { message_id: gone } = emu.userSend({
      chat: { type: 'group', id: 'oc_threads' },
      sender: user(),
      text: 'oops',
    });
    emu.recall(gone);
    const recalled = await apiError(
      client.im.v1.message.reply({
        path: { message_id: gone },
        data: { msg_type: 'text', content: text('x') },
      }),
    );
    assert.equal(recalled.code, 230011);
    const { message_id: deleted } = emu.userSend({
      chat: { type: 'group', id: 'oc_threads' },
      sender: user(),
      text: 'oops',
    });
    emu.delete(deleted);
    const del = await apiError(
      client.im.v1.message.reply({
        path: { message_id: deleted },
        data: { msg_type: 'text', content: text('x') },
      }),
    );
    assert.equal(del.code, 230110);
  });

  it('treats a repeated uuid as the same message for an hour', async () => {
    const { chat_id, message_id } = emu.userSend({ chat: { type: 'p2p' }, sender: user(), text: 'q' });
    const first = await sendTo(chat_id, 'text', text('once'), 'reply-1');
    const second = await sendTo(chat_id, 'text', text('twice?'), 'reply-1');
    assert.equal(second.data?.message_id, first.data?.message_id);
    const viaReply = await client.im.v1.message.reply({
      path: { message_id },
      data: { msg_type: 'text', content: text('x'), uuid: 'reply-1' },
    });
    assert.equal(viaReply.data?.message_id, first.data?.message_id);
    const bot = emu.chat(chat_id).botMessages;
    assert.equal(bot.length, 1);
    assert.equal(bot[0]?.text, 'once');
    assert.equal(bot[0]?.uuid, 'reply-1');
    const tooLong = await apiError(sendTo(chat_id, 'text', text('x'), 'u'.repeat(51)));
    assert.equal(tooLong.code, 230001);
  });

  it('PATCHes shared cards only, the bot’s own, not recalled', async () => {
    const { chat_id, message_id: userMsg } = emu.userSend({
      chat: { type: 'p2p' },
      sender: user(),
      text: 'q',
    });
    const card = (body: string, shared = true) =>
      JSON.stringify({ config: { update_multi: shared }, elements: [{ tag: 'markdown', content: body }] });
    const sent = await sendTo(chat_id, 'interactive', card('thinking…'));
    const id = sent.data?.message_id as string;
    const patched = await client.im.v1.message.patch({
      path: { message_id: id },
      data: { content: card('done') },
    });
    assert.equal(patched.code, 0);
    const shown = emu.chat(chat_id).botMessages[0];
    assert.equal(shown?.text, 'done');
    assert.equal(shown?.updates, 1);

    const exclusive = await sendTo(chat_id, 'interactive', card('mine', false));
    const notShared = await apiError(
      client.im.v1.message.patch({
        path: { message_id: exclusive.data?.message_id as string },
        data: { content: card('x') },
      }),
    );
    assert.equal(notShared.code, 230001);
    const dropsShared = await apiError(
      client.im.v1.message.patch({ path: { message_id: id }, data: { content: card('x', false) } }),
    );
    assert.equal(dropsShared.code, 230001);
    const textMsg = await sendTo(chat_id, 'text', text('t'));
    const wrongType = await apiError(
      client.im.v1.message.patch({
        path: { message_id: textMsg.data?.message_id as string },
        data: { content: card('x') },
      }),
    );
    assert.equal(wrongType.code, 230054);
    const notOwn = await apiError(
      client.im.v1.message.patch({ path: { message_id: userMsg }, data: { content: card('x') } }),
    );
    assert.equal(notOwn.code, 230017);
    emu.recall(id);
    const recalled = await apiError(
      client.im.v1.message.patch({ path: { message_id: id }, data: { content: card('x') } }),
    );
    assert.equal(recalled.code, 230011);
  });

  it('PUT edits text and post up to 20 times', async () => {
    const { chat_id } = emu.userSend({ chat: { type: 'p2p' }, sender: user(), text: 'q' });
    const sent = await sendTo(chat_id, 'text', text('v0'));
    const id = sent.data?.message_id as string;
    for (let i = 1; i <= 20; i++) {
      const res = await client.im.v1.message.update({
        path: { message_id: id },
        data: { msg_type: 'text', content: text(`v${i}`) },
      });
      assert.equal(res.code, 0);
    }
    const limit = await apiError(
      client.im.v1.message.update({
        path: { message_id: id },
        data: { msg_type: 'text', content: text('v21') },
      }),
    );
    assert.equal(limit.code, 230072);
    const shown = emu.chat(chat_id).botMessages[0];
    assert.equal(shown?.text, 'v20');
    assert.equal(shown?.updates, 20);

    const toPost = await sendTo(chat_id, 'text', text('plain'));
    const asPost = await client.im.v1.message.update({
      path: { message_id: toPost.data?.message_id as string },
      data: {
        msg_type: 'post',
        content: JSON.stringify({ zh_cn: { content: [[{ tag: 'md', text: '**rich**' }]] } }),
      },
    });
    assert.equal(asPost.data?.msg_type, 'post');
    const cardMsg = await sendTo(
      chat_id,
      'interactive',
      JSON.stringify({ elements: [{ tag: 'markdown', content: 'c' }] }),
    );
    const cardEdit = await apiError(
      client.im.v1.message.update({
        path: { message_id: cardMsg.data?.message_id as string },
        data: { msg_type: 'text', content: text('x') },
      }),
    );
    assert.equal(cardEdit.code, 230054);
    emu.delete(toPost.data?.message_id as string);
    const deleted = await apiError(
      client.im.v1.message.update({
        path: { message_id: toPost.data?.message_id as string },
        data: { msg_type: 'text', content: text('x') },
      }),
    );
    assert.equal(deleted.code, 230110);
  });

  it('adds and removes reactions', async () => {
    const { chat_id, message_id } = emu.userSend({ chat: { type: 'p2p' }, sender: user(), text: 'q' });
    const added = await client.im.v1.messageReaction.create({
      path: { message_id },
      data: { reaction_type: { emoji_type: 'Typing' } },
    });
    const reactionId = added.data?.reaction_id as string;
    assert.ok(reactionId.length > 20);
    assert.deepEqual(added.data?.operator, { operator_id: emu.appId, operator_type: 'app' });
    assert.deepEqual(emu.chat(chat_id).reactions, [
      { message_id, reaction_id: reactionId, emoji_type: 'Typing', deleted: false },
    ]);
    const removed = await client.im.v1.messageReaction.delete({
      path: { message_id, reaction_id: reactionId },
    });
    assert.equal(removed.data?.reaction_type?.emoji_type, 'Typing');
    assert.equal(emu.chat(chat_id).reactions[0]?.deleted, true);
    const twice = await apiError(
      client.im.v1.messageReaction.delete({ path: { message_id, reaction_id: reactionId } }),
    );
    assert.equal(twice.code, 231011);
    const badEmoji = await apiError(
      client.im.v1.messageReaction.create({
        path: { message_id },
        data: { reaction_type: { emoji_type: 'typing' } },
      }),
    );
    assert.equal(badEmoji.code, 231001);
    emu.delete(message_id);
    const gone = await apiError(
      client.im.v1.messageReaction.create({
        path: { message_id },
        data: { reaction_type: { emoji_type: 'OK' } },
      }),
    );
    assert.equal(gone.code, 231003);
  });

  it('recalls its own message with DELETE', async () => {
    const { chat_id } = emu.userSend({ chat: { type: 'p2p' }, sender: user(), text: 'q' });
    const sent = await sendTo(chat_id, 'text', text('oops'));
    const id = sent.data?.message_id as string;
    await client.im.v1.message.delete({ path: { message_id: id } });
    assert.equal(emu.chat(chat_id).botMessages[0]?.recalled, true);
    const edit = await apiError(
      client.im.v1.message.update({
        path: { message_id: id },
        data: { msg_type: 'text', content: text('x') },
      }),
    );
    assert.equal(edit.code, 230011);
  });
});

describe('rate limits', () => {
  let emu: FeishuEmulator;
  before(async () => {
    emu = await startFeishuEmulator({ limits: { appQps: 8, chatQps: 5, messagePatchQps: 2 } });
  });
  after(() => emu.close());

  it('answers 230020 past 5 messages a second in one chat', async () => {
    const client = sdkClient(emu);
    const { chat_id } = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_limits' }, text: 'q' });
    const results = [];
    for (let i = 0; i < 6; i++) {
      results.push(
        await client.im.v1.message
          .create({
            params: { receive_id_type: 'chat_id' },
            data: { receive_id: chat_id, msg_type: 'text', content: text(`m${i}`) },
          })
          .then(
            () => 0,
            (e: { response: { status: number; data: { code: number } } }) => e.response.data.code,
          ),
      );
    }
    assert.deepEqual(results, [0, 0, 0, 0, 0, 230020]);
    assert.equal(emu.chat(chat_id).botMessages.length, 5);
  });

  it('answers HTTP 429 with 99991400 and the ratelimit headers past the per-API rate', async () => {
    const client = sdkClient(emu);
    const get = () => client.request({ method: 'GET', url: '/open-apis/bot/v3/info' });
    for (let i = 0; i < 8; i++) await get();
    const err = await apiError(get());
    assert.equal(err.status, 429);
    assert.equal(err.code, 99991400);
    assert.equal(err.msg, 'request trigger frequency limit');
    assert.equal(err.headers['x-ogw-ratelimit-limit'], '8');
    assert.ok(Number(err.headers['x-ogw-ratelimit-reset']) >= 1);
  });

  it('limits PATCH per message', async () => {
    const client = sdkClient(emu);
    const { chat_id } = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_patcher' }, text: 'q' });
    const card = (s: string) =>
      JSON.stringify({ config: { update_multi: true }, elements: [{ tag: 'markdown', content: s }] });
    const sent = await client.im.v1.message.create({
      params: { receive_id_type: 'chat_id' },
      data: { receive_id: chat_id, msg_type: 'interactive', content: card('0') },
    });
    const id = sent.data?.message_id as string;
    await client.im.v1.message.patch({ path: { message_id: id }, data: { content: card('1') } });
    await client.im.v1.message.patch({ path: { message_id: id }, data: { content: card('2') } });
    const err = await apiError(
      client.im.v1.message.patch({ path: { message_id: id }, data: { content: card('3') } }),
    );
    assert.equal(err.code, 230020);
    assert.equal(emu.chat(chat_id).botMessages[0]?.text, '2');
  });
});

describe('injected faults', () => {
  let emu: FeishuEmulator;
  before(async () => {
    emu = await startFeishuEmulator({ limits: false });
  });
  after(() => emu.close());

  it('fails the aimed API the given number of times, then recovers', async () => {
    const client = sdkClient(emu);
    const { chat_id } = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_fault' }, text: 'q' });
    const send = () =>
      client.im.v1.message.create({
        params: { receive_id_type: 'chat_id' },
        data: { receive_id: chat_id, msg_type: 'text', content: text('x') },
      });
    emu.inject({ kind: 'rate_limit', api: 'message.create', times: 2, resetSec: 3 });
    const first = await apiError(send());
    assert.deepEqual(
      [first.status, first.code, first.headers['x-ogw-ratelimit-reset']],
      [429, 99991400, '3'],
    );
    assert.equal((await apiError(send())).status, 429);
    assert.equal((await send()).code, 0);

    emu.inject({ kind: 'server_error', api: 'message.create' });
    assert.equal((await apiError(send())).status, 500);
    emu.inject({ kind: 'frequency', api: 'message.create' });
    assert.equal((await apiError(send())).code, 230020);
    emu.inject({ kind: 'token_invalid', api: 'message.create' });
    assert.equal((await apiError(send())).code, 99991663);
    emu.inject({ kind: 'api_unavailable', api: 'card.create' });
    const denied = await apiError(client.cardkit.v1.card.create({ data: { type: 'card_json', data: '{}' } }));
    assert.equal(denied.code, 99991672);
    assert.match(denied.msg, /cardkit:card:write/);

    emu.inject({ kind: 'card_failed', times: Infinity });
    for (let i = 0; i < 3; i++) assert.equal((await apiError(send())).code, 230099);
    emu.clearFaults();
    assert.equal((await send()).code, 0);
    assert.equal(emu.chat(chat_id).botMessages.length, 2);
  });
});
