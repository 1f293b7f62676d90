import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputFile, TelegramApiError } from 'node-telegram-bot-api';
import type { ChatInput } from '../src/index.ts';
import { ann, bob, sdk, withEmulator } from './support.ts';

const annDm = { id: ann.id, type: 'private' as const };
const group: ChatInput = { id: -4001, type: 'group', title: 'Friends' };
const forum: ChatInput = { id: -1004002003004, type: 'supergroup', title: 'Dev forum', is_forum: true };

async function failure(p: Promise<unknown>): Promise<TelegramApiError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TelegramApiError, String(err));
    return err;
  }
  return assert.fail('expected the call to fail');
}

describe('sending, editing, deleting', () => {
  it('refuses unknown chats and messages with the real descriptions', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      assert.equal(
        (await failure(api.sendMessage({ chat_id: 999, text: 'x' }))).description,
        'Bad Request: chat not found',
      );
      const first = emu.userSend({ chat: annDm, from: ann, text: 'hello' });
      const reply = failure(
        api.sendMessage({ chat_id: ann.id, text: 'x', reply_parameters: { message_id: 77 } }),
      );
      assert.equal((await reply).description, 'Bad Request: message to be replied not found');
      const relaxed = await api.sendMessage({
        chat_id: ann.id,
        text: 'sent anyway',
        reply_parameters: { message_id: 77, allow_sending_without_reply: true },
      });
      assert.equal(relaxed.reply_to_message, undefined);
      const legacy = await api.sendMessage({
        chat_id: ann.id,
        text: 'legacy reply',
        reply_to_message_id: first.message.message_id,
      } as any);
      assert.equal(legacy.reply_to_message?.message_id, first.message.message_id);
      assert.equal(
        (await failure(api.sendMessage({ chat_id: ann.id, text: 'x', message_thread_id: 5 }))).description,
        'Bad Request: message thread not found',
      );
      assert.equal(
        (await failure(api.editMessageText({ chat_id: ann.id, message_id: 999, text: 'x' }))).description,
        'Bad Request: message to edit not found',
      );
      assert.equal(
        (
          await failure(
            api.editMessageText({ chat_id: ann.id, message_id: first.message.message_id, text: 'x' }),
          )
        ).description,
        "Bad Request: message can't be edited",
      );
      assert.equal(
        (await failure(api.deleteMessage({ chat_id: ann.id, message_id: 999 }))).description,
        'Bad Request: message to delete not found',
      );
      assert.equal(
        (await failure(api.sendChatAction({ chat_id: ann.id, action: 'dancing' as 'typing' }))).description,
        'Bad Request: wrong parameter action in request',
      );
    });
  });

  it('numbers messages per chat and shows the chat in order, edits and deletions included', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      const asked = emu.userSend({ chat: annDm, from: ann, text: 'question?' });
      await api.sendChatAction({ chat_id: ann.id, action: 'typing' });
      const placeholder = await api.sendMessage({
        chat_id: ann.id,
        text: 'thinking…',
        reply_parameters: { message_id: asked.message.message_id },
      });
      assert.equal(placeholder.message_id, asked.message.message_id + 1);
      assert.equal(placeholder.from?.id, emu.bot.id);
      assert.equal(placeholder.from?.is_bot, true);
      assert.equal(placeholder.reply_to_message?.text, 'question?');
      const done: any = await api.editMessageText({
        chat_id: ann.id,
        message_id: placeholder.message_id,
        text: 'answer',
      });
      assert.equal(typeof done.edit_date, 'number');
      const extra = await api.sendMessage({ chat_id: ann.id, text: 'oops' });
      assert.equal(await api.deleteMessage({ chat_id: ann.id, message_id: extra.message_id }), true);

      const view = emu.chat(ann.id);
      assert.deepEqual(
        view.messages.map((m) => [m.message_id, m.from_bot, m.text, m.edits, m.deleted]),
        [
          [1, false, 'question?', 0, false],
          [2, true, 'answer', 1, false],
          [3, true, 'oops', 0, true],
        ],
      );
      assert.equal(view.botMessages.length, 2);
      assert.equal(view.typing.length, 1);
      assert.equal(view.messages[1]?.reply_to_message_id, 1);
    });
  });

  it('answers 403 once the user blocked the bot, for messages and chat actions', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      emu.userSend({ chat: annDm, from: ann, text: 'bye' });
      emu.blockBot(ann.id);
      for (const call of [
        api.sendMessage({ chat_id: ann.id, text: 'x' }),
        api.sendChatAction({ chat_id: ann.id, action: 'typing' }),
      ]) {
        const err = await failure(call);
        assert.equal(err.errorCode, 403);
        assert.equal(err.description, 'Forbidden: bot was blocked by the user');
      }
      const updates: any[] = await api.getUpdates({});
      const member = updates.find((u) => u.my_chat_member)?.my_chat_member;
      assert.equal(member?.new_chat_member.status, 'kicked');
      assert.equal(emu.chat(ann.id).blocked, true);
    });
  });

  it('upgrades a group: the old id answers with migrate_to_chat_id and both service messages arrive', async () => {
    await withEmulator({ privacyMode: true }, async (emu) => {
      const api = sdk(emu);
      emu.addBotToGroup(group, ann);
      const newId = emu.migrateGroup(group.id);
      assert.match(String(newId), /^-100\d{10}$/);
      const err = await failure(api.sendMessage({ chat_id: group.id, text: 'hello?' }));
      assert.equal(err.errorCode, 400);
      assert.equal(err.description, 'Bad Request: group chat was upgraded to a supergroup chat');
      assert.equal(err.migrateToChatId, newId);
      const updates: any[] = await api.getUpdates({});
      const messages = updates.flatMap((u) => (u.message ? [u.message] : []));
      assert.ok(messages.some((m) => m.chat.id === group.id && m.migrate_to_chat_id === newId));
      assert.ok(
        messages.some(
          (m) => m.chat.id === newId && m.chat.type === 'supergroup' && m.migrate_from_chat_id === group.id,
        ),
      );
      const sent = await api.sendMessage({ chat_id: newId, text: 'hello, supergroup' });
      assert.equal(sent.chat.type, 'supergroup');
    });
  });

  it('uploads a document with multipart and serves it back through getFile', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      emu.userSend({ chat: annDm, from: ann, text: 'send me the report' });
      const bytes = new TextEncoder().encode('quarterly numbers');
      const sent = await api.sendDocument({
        chat_id: ann.id,
        document: new InputFile(new Blob([bytes], { type: 'text/plain' }), { filename: 'report.txt' }),
        caption: '<b>Report</b>',
        parse_mode: 'HTML',
      });
      assert.equal(sent.document?.file_name, 'report.txt');
      assert.equal(sent.document?.mime_type, 'text/plain');
      assert.equal(sent.caption, 'Report');
      assert.deepEqual(sent.caption_entities, [{ offset: 0, length: 6, type: 'bold' }]);
      assert.deepEqual(emu.calls.at(-1)?.params['document'], {
        filename: 'report.txt',
        mime_type: 'text/plain',
        size: bytes.length,
      });
      const file = await api.getFile({ file_id: sent.document!.file_id });
      const download = await fetch(`${emu.url}/file/bot${emu.token}/${file.file_path}`);
      assert.equal(await download.text(), 'quarterly numbers');

      const photo = emu.userSend({ chat: annDm, from: ann, photo: true, caption: 'look' });
      const sizes = photo.message.photo as { file_id: string; width: number }[];
      assert.equal(sizes.length, 3);
      assert.match(sizes[2]!.file_id, /^AgAC/);
      const info = await api.getFile({ file_id: sizes[2]!.file_id });
      assert.match(info.file_path ?? '', /^photos\/file_\d+\.jpg$/);
      assert.equal(
        (await failure(api.getFile({ file_id: 'nope' }))).description,
        'Bad Request: invalid file_id',
      );
    });
  });

  it('shows drafts in private chats only', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      emu.userSend({ chat: annDm, from: ann, text: 'hi' });
      assert.equal(await api.sendMessageDraft({ chat_id: ann.id, draft_id: 7, text: 'Thinking' }), true);
      assert.deepEqual(
        emu.chat(ann.id).drafts.map((d) => [d.draft_id, d.text]),
        [[7, 'Thinking']],
      );
      emu.addBotToGroup(group, ann);
      assert.equal(
        (await failure(api.sendMessageDraft({ chat_id: group.id, draft_id: 7, text: 'x' }))).errorCode,
        400,
      );
    });
  });

  it('answers a pressed inline button once', async () => {
    await withEmulator({}, async (emu) => {
      const api = sdk(emu);
      emu.userSend({ chat: annDm, from: ann, text: 'hi' });
      const m = await api.sendMessage({
        chat_id: ann.id,
        text: 'Working…',
        reply_markup: { inline_keyboard: [[{ text: 'Stop', callback_data: 'stop' }]] },
      });
      const press = emu.userPress(ann.id, m.message_id, 'stop');
      const updates: any[] = await api.getUpdates({});
      const cq = updates.find((u) => u.update_id === press.update_id)?.callback_query;
      assert.equal(cq?.data, 'stop');
      assert.equal(cq?.message?.message_id, m.message_id);
      assert.equal(await api.answerCallbackQuery({ callback_query_id: press.id }), true);
      const again = await failure(api.answerCallbackQuery({ callback_query_id: press.id }));
      assert.equal(
        again.description,
        'Bad Request: query is too old and response timeout expired or query ID is invalid',
      );
    });
  });
});

describe('groups', () => {
  it('in privacy mode delivers commands for this bot, mentions, replies to it and service messages only', async () => {
    await withEmulator({ privacyMode: true }, async (emu) => {
      const api = sdk(emu);
      assert.equal((await api.getMe()).can_read_all_group_messages, false);
      emu.addBotToGroup(group, ann);
      const say = (text: string, extra: object = {}) =>
        emu.userSend({ chat: group, from: bob, text, ...extra }).update_id;
      assert.equal(say('just chatting'), undefined);
      assert.equal(say('/help@other_bot'), undefined);
      assert.equal(say('mail me at bob@pincer_test_bot.com'), undefined);
      assert.notEqual(say('/help'), undefined);
      assert.notEqual(say('/help@Pincer_Test_Bot now'), undefined);
      assert.notEqual(say('hey @PINCER_test_bot, summarise'), undefined);
      assert.notEqual(
        say('hey you', {
          entities: [{ type: 'text_mention', offset: 4, length: 3, user: { id: emu.bot.id } }],
        }),
        undefined,
      );
      const botMsg = await api.sendMessage({ chat_id: group.id, text: 'I am here' });
      assert.notEqual(say('thanks', { reply_to_message_id: botMsg.message_id }), undefined);
      const humanMsg = emu.userSend({ chat: group, from: ann, text: 'unrelated' });
      assert.equal(say('agreed', { reply_to_message_id: humanMsg.message.message_id }), undefined);

      const updates: any[] = await api.getUpdates({});
      const kinds = updates.map((u) =>
        u.my_chat_member ? 'my_chat_member' : u.message?.new_chat_members ? 'joined' : u.message?.text,
      );
      assert.deepEqual(kinds, [
        'my_chat_member',
        'joined',
        '/help',
        '/help@Pincer_Test_Bot now',
        'hey @PINCER_test_bot, summarise',
        'hey you',
        'thanks',
      ]);
      assert.equal(
        emu.chat(group.id).messages.filter((m) => !m.from_bot && !m.service).length,
        10,
        'the chat shows everything',
      );
    });
  });

  it('without privacy mode delivers every group message', async () => {
    await withEmulator({ privacyMode: false }, async (emu) => {
      assert.equal((await sdk(emu).getMe()).can_read_all_group_messages, true);
      assert.notEqual(emu.userSend({ chat: group, from: bob, text: 'just chatting' }).update_id, undefined);
    });
  });

  it('places messages in forum topics with is_topic_message and the topic root as reply', async () => {
    await withEmulator({ privacyMode: false }, async (emu) => {
      const api = sdk(emu);
      const inTopic = emu.userSend({ chat: forum, from: ann, text: 'bug report', message_thread_id: 10 });
      const m = inTopic.message;
      assert.equal(m.chat.type, 'supergroup');
      assert.equal(m.chat.is_forum, true);
      assert.equal(m.message_thread_id, 10);
      assert.equal(m.is_topic_message, true);
      assert.equal(m.reply_to_message.message_id, 10);
      assert.ok(m.reply_to_message.forum_topic_created);

      const answer = await api.sendMessage({
        chat_id: forum.id,
        text: 'on it',
        message_thread_id: 10,
        reply_parameters: { message_id: m.message_id },
      });
      assert.equal(answer.message_thread_id, 10);
      assert.equal(answer.is_topic_message, true);
      assert.equal(answer.reply_to_message?.message_id, m.message_id);
      const implicit = await api.sendMessage({
        chat_id: forum.id,
        text: 'same topic',
        reply_parameters: { message_id: m.message_id },
      });
      assert.equal(implicit.message_thread_id, 10, 'a reply lands in the topic of its target');
      assert.equal(
        (await failure(api.sendMessage({ chat_id: forum.id, text: 'x', message_thread_id: 99 }))).description,
        'Bad Request: message thread not found',
      );
      const general = emu.userSend({ chat: forum, from: ann, text: 'general chat' }).message;
      assert.equal(general.message_thread_id, undefined);
      assert.equal(general.is_topic_message, undefined);
      assert.equal(
        emu.chat(forum.id).botMessages.every((b) => b.message_thread_id === 10),
        true,
      );
    });
  });
});
