// The emulator's state and the scripted users who act in it: they post, edit, block the bot, add it
// to groups and upgrade groups, producing the updates the real platform would produce.

/* eslint-disable @typescript-eslint/no-explicit-any */

import { randomInt } from 'node:crypto';
import { ApiError, badRequest } from './errors.ts';
import { FloodControl } from './flood.ts';
import type { Entity } from './formatting/index.ts';
import { detectEntities, mergeDetected, sortEntities } from './formatting/index.ts';
import type { Params } from './params.ts';
import { int } from './params.ts';
import type { ChatInput, FloodOptions, UserInput, UserMessageInput } from './types.ts';
import { UpdateQueue } from './updates.ts';
import { WebhookPusher } from './webhook.ts';
import type { ChatState, StoredMessage, TgUser } from './world.ts';
import { nowSeconds, World } from './world.ts';

export interface EngineOptions {
  bot: TgUser;
  privacyMode: boolean;
  flood: false | FloodOptions;
  webhookRetryDelaysMs: number[];
  webhookTimeoutMs: number;
  onWebhookReply: (call: Record<string, unknown>) => void;
}

const DEFAULT_ADMIN: UserInput = {
  id: 1_000_000_001,
  first_name: 'Group',
  last_name: 'Admin',
  username: 'group_admin',
};

export class Engine {
  readonly world: World;
  readonly queue: UpdateQueue;
  readonly pusher: WebhookPusher;
  readonly flood: FloodControl | undefined;
  readonly privacyMode: boolean;
  commands: { command: string; description: string }[] = [];
  private readonly callbackQueries = new Set<string>();
  private readonly listeners = new Set<() => void>();

  constructor(opts: EngineOptions) {
    this.world = new World(opts.bot);
    this.privacyMode = opts.privacyMode;
    this.flood = opts.flood === false ? undefined : new FloodControl(opts.flood);
    this.queue = new UpdateQueue(() => this.changed());
    this.pusher = new WebhookPusher(this.queue, {
      retryDelaysMs: opts.webhookRetryDelaysMs,
      timeoutMs: opts.webhookTimeoutMs,
      onReply: opts.onWebhookReply,
      changed: () => this.changed(),
    });
  }

  get bot(): TgUser {
    return this.world.bot;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(): void {
    this.pusher.pump();
    for (const l of [...this.listeners]) l();
  }

  // -------------------------------------------------------------------------------------------
  // Lookups the Bot API methods share

  chatId(p: Params, name = 'chat_id'): number {
    const raw = p[name];
    if (raw === undefined || raw === null || raw === '') throw badRequest(`${name} is empty`);
    const id = int(p, name);
    if (id === undefined) throw badRequest('chat not found');
    return id;
  }

  /** The chat a call addresses, with the errors the real server gives for unknown, upgraded and blocked chats. */
  targetChat(p: Params, opts: { sending: boolean }): ChatState {
    const id = this.chatId(p);
    const chat = this.world.chats.get(id);
    if (!chat) throw badRequest('chat not found');
    if (chat.migratedTo !== undefined)
      throw new ApiError(400, 'Bad Request: group chat was upgraded to a supergroup chat', {
        migrate_to_chat_id: chat.migratedTo,
      });
    if (opts.sending && chat.blocked) throw new ApiError(403, 'Forbidden: bot was blocked by the user');
    return chat;
  }

  /** Thread a send goes to: a forum topic, or a reply thread in a supergroup. */
  thread(chat: ChatState, threadId: number | undefined): { threadId?: number; isTopic?: boolean } {
    if (threadId === undefined || threadId === 0) return {};
    if (chat.isForum) {
      if (chat.topics.has(threadId)) return { threadId, isTopic: true };
    } else if (chat.type === 'supergroup' && this.world.liveMessage(chat, threadId)) {
      return { threadId };
    }
    throw badRequest('message thread not found');
  }

  /** The thread a reply lands in when no thread was named. */
  threadOfReply(chat: ChatState, target: StoredMessage): { threadId?: number; isTopic?: boolean } {
    if (chat.isForum)
      return target.isTopicMessage && target.threadId !== undefined
        ? { threadId: target.threadId, isTopic: true }
        : {};
    if (chat.type === 'supergroup') return { threadId: target.threadId ?? target.message_id };
    return {};
  }

  takeFloodSlot(chat: ChatState): void {
    const wait = this.flood?.acquire(chat.id, chat.type !== 'private');
    if (wait !== undefined)
      throw new ApiError(429, `Too Many Requests: retry after ${wait}`, { retry_after: wait });
  }

  // -------------------------------------------------------------------------------------------
  // Scripted users

  private enqueueMessage(
    kind: 'message' | 'edited_message',
    chat: ChatState,
    m: StoredMessage,
  ): number | undefined {
    if (!this.delivered(chat, m)) return undefined;
    return this.queue.push(kind, this.world.messageJson(m), chat.id);
  }

  /** What privacy mode lets through in groups: commands for this bot, mentions, replies to it, service messages. */
  delivered(chat: ChatState, m: StoredMessage): boolean {
    if (chat.type === 'private' || !this.privacyMode || m.service) return true;
    const text = m.text ?? m.caption ?? '';
    const username = this.bot.username?.toLowerCase() ?? '';
    for (const e of m.entities) {
      const part = text.slice(e.offset, e.offset + e.length);
      if (e.type === 'bot_command') {
        const at = part.indexOf('@');
        if (at < 0 || part.slice(at + 1).toLowerCase() === username) return true;
      } else if (e.type === 'mention' && part.toLowerCase() === `@${username}`) return true;
      else if (e.type === 'text_mention' && (e.user as { id?: number } | undefined)?.id === this.bot.id)
        return true;
    }
    if (m.replyToId !== undefined && chat.messages.get(m.replyToId)?.fromBot) return true;
    return false;
  }

  private entitiesFor(text: string, explicit: any[] | undefined): Entity[] {
    const given: Entity[] = (explicit ?? []).map((e) => {
      if (typeof e?.type !== 'string' || typeof e?.offset !== 'number' || typeof e?.length !== 'number')
        throw new Error('entities need type, offset and length');
      if (e.offset < 0 || e.offset + e.length > text.length)
        throw new Error(`entity ${JSON.stringify(e)} is outside the text`);
      return { ...e };
    });
    return sortEntities(mergeDetected(given, detectEntities(text)));
  }

  private ensureTopic(chat: ChatState, threadId: number, creator: TgUser, date: number): void {
    if (chat.topics.has(threadId)) return;
    chat.topics.add(threadId);
    if (chat.messages.has(threadId)) return;
    this.world.addMessage(
      chat,
      {
        from: creator,
        fromBot: false,
        date,
        entities: [],
        threadId,
        isTopicMessage: true,
        service: {
          kind: 'forum_topic_created',
          fields: { forum_topic_created: { name: `Topic ${threadId}`, icon_color: 7322096 } },
        },
      },
      threadId,
    );
  }

  userSend(input: UserMessageInput): { message: any; update_id?: number } {
    const from = this.world.rememberUser(input.from);
    if (input.chat.type === 'private' && input.chat.id !== from.id)
      throw new Error(`in a private chat chat.id must equal from.id (${input.chat.id} ≠ ${from.id})`);
    const chat = this.world.ensureChat(input.chat, input.chat.type === 'private' ? from : undefined);
    if (chat.migratedTo !== undefined)
      throw new Error(`chat ${chat.id} was upgraded to supergroup ${chat.migratedTo}`);
    if (chat.blocked) this.setBlocked(chat, from, false);
    const date = input.date ?? nowSeconds();

    const attachmentKind = input.photo
      ? 'photo'
      : input.document
        ? 'document'
        : input.voice
          ? 'voice'
          : undefined;
    if (!attachmentKind && input.text === undefined)
      throw new Error('a user message needs text or an attachment');
    const content = attachmentKind ? (input.caption ?? '') : (input.text as string);
    const entities = this.entitiesFor(content, input.entities);

    let thread: { threadId?: number; isTopic?: boolean } = {};
    if (input.message_thread_id !== undefined) {
      if (chat.isForum) {
        this.ensureTopic(chat, input.message_thread_id, from, date);
        thread = { threadId: input.message_thread_id, isTopic: true };
      } else if (chat.type === 'supergroup') thread = { threadId: input.message_thread_id };
      else throw new Error('message_thread_id needs a supergroup (a forum for topics)');
    }
    let replyToId: number | undefined;
    if (input.reply_to_message_id !== undefined) {
      const target = this.world.liveMessage(chat, input.reply_to_message_id);
      if (!target) throw new Error(`no message ${input.reply_to_message_id} in chat ${chat.id} to reply to`);
      replyToId = target.message_id;
      if (input.message_thread_id === undefined) thread = this.threadOfReply(chat, target);
    }

    const msg: Omit<StoredMessage, 'message_id' | 'chatId' | 'edits' | 'deleted'> = {
      from,
      fromBot: false,
      date,
      entities,
    };
    if (attachmentKind) {
      msg.attachment = {
        kind: attachmentKind,
        payload: this.world.attachment(attachmentKind, { ...(input.document ?? {}), ...(input.voice ?? {}) }),
      };
      if (input.caption !== undefined) msg.caption = input.caption;
    } else msg.text = input.text as string;
    if (replyToId !== undefined) msg.replyToId = replyToId;
    if (thread.threadId !== undefined) msg.threadId = thread.threadId;
    if (thread.isTopic) msg.isTopicMessage = true;

    const stored = this.world.addMessage(chat, msg);
    const update_id = this.enqueueMessage('message', chat, stored);
    this.changed();
    const result: { message: any; update_id?: number } = { message: this.world.messageJson(stored) };
    if (update_id !== undefined) result.update_id = update_id;
    return result;
  }

  userEdit(chatId: number, messageId: number, text: string): { update_id?: number } {
    const chat = this.world.chats.get(chatId);
    if (!chat) throw new Error(`no chat ${chatId}`);
    const m = this.world.liveMessage(chat, messageId);
    if (!m || m.fromBot || m.service) throw new Error(`no user message ${messageId} in chat ${chatId}`);
    if (m.attachment) m.caption = text;
    else m.text = text;
    m.entities = this.entitiesFor(text, undefined);
    m.edits++;
    m.edit_date = Math.max(nowSeconds(), m.date);
    const update_id = this.enqueueMessage('edited_message', chat, m);
    this.changed();
    return update_id === undefined ? {} : { update_id };
  }

  private memberUpdate(chat: ChatState, by: TgUser, oldStatus: string, newStatus: string): void {
    const member = (status: string): any =>
      status === 'kicked'
        ? { user: { ...this.bot }, status, until_date: 0 }
        : { user: { ...this.bot }, status };
    this.queue.push(
      'my_chat_member',
      {
        chat: this.world.chatJson(chat),
        from: { ...by },
        date: nowSeconds(),
        old_chat_member: member(oldStatus),
        new_chat_member: member(newStatus),
      },
      chat.id,
    );
  }

  private setBlocked(chat: ChatState, user: TgUser, blocked: boolean): void {
    chat.blocked = blocked;
    this.memberUpdate(chat, user, blocked ? 'member' : 'kicked', blocked ? 'kicked' : 'member');
  }

  addBotToGroup(input: ChatInput, byInput: UserInput): void {
    if (input.type === 'private')
      throw new Error('a bot is added to a group or supergroup, not a private chat');
    const by = this.world.rememberUser(byInput);
    const chat = this.world.ensureChat(input);
    if (chat.migratedTo !== undefined)
      throw new Error(`chat ${chat.id} was upgraded to supergroup ${chat.migratedTo}`);
    this.memberUpdate(chat, by, 'left', 'member');
    const bot = { ...this.bot };
    const m = this.world.addMessage(chat, {
      from: by,
      fromBot: false,
      date: nowSeconds(),
      entities: [],
      service: {
        kind: 'new_chat_members',
        fields: { new_chat_participant: bot, new_chat_member: bot, new_chat_members: [bot] },
      },
    });
    this.enqueueMessage('message', chat, m);
    this.changed();
  }

  blockBot(userId: number): void {
    const chat = this.world.chats.get(userId);
    if (!chat || chat.type !== 'private') throw new Error(`user ${userId} has no private chat with the bot`);
    if (chat.blocked) return;
    this.setBlocked(chat, this.world.users.get(userId) ?? (chat.user as TgUser), true);
    this.changed();
  }

  migrateGroup(chatId: number): number {
    const chat = this.world.chats.get(chatId);
    if (!chat || chat.type !== 'group') throw new Error(`chat ${chatId} is not a basic group`);
    if (chat.migratedTo !== undefined) return chat.migratedTo;
    const lastHuman = [...chat.order].reverse().find((m) => !m.fromBot)?.from;
    const by = lastHuman ?? this.world.rememberUser(DEFAULT_ADMIN);
    let newId: number;
    do newId = Number(`-100${randomInt(1_000_000_000, 9_999_999_999)}`);
    while (this.world.chats.has(newId));
    const superChat = this.world.ensureChat({ id: newId, type: 'supergroup', title: chat.title ?? '' });
    const date = nowSeconds();
    const to = this.world.addMessage(chat, {
      from: by,
      fromBot: false,
      date,
      entities: [],
      service: { kind: 'migrate_to_chat_id', fields: { migrate_to_chat_id: newId } },
    });
    this.enqueueMessage('message', chat, to);
    chat.migratedTo = newId;
    const fromMsg = this.world.addMessage(superChat, {
      from: by,
      fromBot: false,
      date,
      entities: [],
      service: { kind: 'migrate_from_chat_id', fields: { migrate_from_chat_id: chatId } },
    });
    this.enqueueMessage('message', superChat, fromMsg);
    this.changed();
    return newId;
  }

  /** A user presses an inline keyboard button under one of the bot's messages. */
  userPress(
    chatId: number,
    messageId: number,
    data: string,
    fromInput?: UserInput,
  ): { update_id?: number; id: string } {
    const chat = this.world.chats.get(chatId);
    if (!chat) throw new Error(`no chat ${chatId}`);
    const m = this.world.liveMessage(chat, messageId);
    if (!m || !m.fromBot) throw new Error(`no bot message ${messageId} in chat ${chatId}`);
    const from = fromInput ? this.world.rememberUser(fromInput) : chat.user;
    if (!from) throw new Error('who pressed the button? pass `from` for group chats');
    const id = `${randomInt(100_000_000, 999_999_999)}${randomInt(100_000_000, 999_999_999)}`;
    this.callbackQueries.add(id);
    const update_id = this.queue.push(
      'callback_query',
      {
        id,
        from: { ...from },
        message: this.world.messageJson(m),
        chat_instance: `-${(Math.abs(chat.id) * 7919) % 9_007_199_254_740_881}`,
        data,
      },
      chat.id,
    );
    this.changed();
    return update_id === undefined ? { id } : { id, update_id };
  }

  answerCallback(id: string): boolean {
    return this.callbackQueries.delete(id);
  }

  close(): void {
    this.queue.close();
    this.pusher.close();
    this.listeners.clear();
  }
}
