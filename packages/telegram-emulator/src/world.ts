// The Telegram side of the emulator: users, chats and their messages, and how each looks as a Bot API
// object. Message ids count per chat; dates are unix seconds.

/* eslint-disable @typescript-eslint/no-explicit-any */

import { randomBytes } from 'node:crypto';
import type { Entity } from './formatting/index.ts';
import { apiEntity } from './formatting/index.ts';
import type { ChatInput, ChatView, DraftView, ShownMessage, UserInput } from './types.ts';

export interface TgUser {
  id: number;
  is_bot: boolean;
  first_name: string;
  last_name?: string;
  username?: string;
  language_code?: string;
}

export interface StoredFile {
  file_id: string;
  file_unique_id: string;
  file_size: number;
  file_path: string;
  data?: Buffer;
}

export type AttachmentKind = 'photo' | 'document' | 'voice';

export interface StoredMessage {
  message_id: number;
  chatId: number;
  from: TgUser;
  fromBot: boolean;
  date: number;
  edit_date?: number;
  text?: string;
  entities: Entity[];
  caption?: string;
  attachment?: { kind: AttachmentKind; payload: any };
  parseMode?: string;
  raw?: string;
  /** Explicit reply inside the same chat. */
  replyToId?: number;
  /** Reply to a message of another chat (reply_parameters.chat_id). */
  externalReply?: { chatId: number; messageId: number };
  threadId?: number;
  isTopicMessage?: boolean;
  /** Service message fields (new_chat_members, migrate_to_chat_id, forum_topic_created, …). */
  service?: { kind: string; fields: Record<string, unknown> };
  replyMarkup?: unknown;
  linkPreview?: unknown;
  edits: number;
  deleted: boolean;
}

export interface ChatState {
  id: number;
  type: 'private' | 'group' | 'supergroup';
  title?: string;
  isForum: boolean;
  user?: TgUser;
  messages: Map<number, StoredMessage>;
  order: StoredMessage[];
  nextMessageId: number;
  /** Forum topics by message_thread_id. */
  topics: Set<number>;
  blocked: boolean;
  migratedTo?: number;
  actions: { action: string; at: number; message_thread_id?: number }[];
  drafts: DraftView[];
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export function randomToken(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += B64URL[b % 64];
  return out;
}

const FILE_PREFIX: Record<AttachmentKind, string> = {
  photo: 'AgACAgIAAxkBAAI',
  document: 'BQACAgIAAxkBAAI',
  voice: 'AwACAgIAAxkBAAI',
};
const FILE_DIR: Record<AttachmentKind, string> = { photo: 'photos', document: 'documents', voice: 'voice' };
const FILE_EXT: Record<AttachmentKind, string> = { photo: 'jpg', document: 'bin', voice: 'oga' };

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export class World {
  readonly bot: TgUser;
  readonly users = new Map<number, TgUser>();
  readonly chats = new Map<number, ChatState>();
  readonly files = new Map<string, StoredFile>();
  private fileCounter = 0;

  constructor(bot: TgUser) {
    this.bot = bot;
  }

  rememberUser(input: UserInput): TgUser {
    if (!Number.isSafeInteger(input.id) || input.id <= 0)
      throw new Error(`user id must be a positive integer, got ${input.id}`);
    const known = this.users.get(input.id);
    const user: TgUser = {
      id: input.id,
      is_bot: input.is_bot ?? known?.is_bot ?? false,
      first_name: input.first_name ?? known?.first_name ?? `User ${input.id}`,
    };
    const last = input.last_name ?? known?.last_name;
    const username = input.username ?? known?.username;
    const lang = input.language_code ?? known?.language_code;
    if (last !== undefined) user.last_name = last;
    if (username !== undefined) user.username = username;
    if (lang !== undefined) user.language_code = lang;
    this.users.set(user.id, user);
    return user;
  }

  /** A user as text_mention entities show it (unknown ids get a bare record). */
  userForMention(id: number): Record<string, unknown> {
    if (id === this.bot.id) return { ...this.bot };
    return { ...(this.users.get(id) ?? { id, is_bot: false, first_name: '' }) };
  }

  ensureChat(input: ChatInput, privateUser?: TgUser): ChatState {
    if (!Number.isSafeInteger(input.id) || input.id === 0)
      throw new Error(`chat id must be a non-zero integer, got ${input.id}`);
    if (input.type === 'private' && input.id < 0)
      throw new Error('a private chat id is the user id (positive)');
    if (input.type !== 'private' && input.id > 0)
      throw new Error('group and supergroup chat ids are negative');
    if (input.type === 'supergroup' && !String(input.id).startsWith('-100'))
      throw new Error('supergroup chat ids start with -100');
    let chat = this.chats.get(input.id);
    if (chat) {
      if (chat.type !== input.type)
        throw new Error(`chat ${input.id} is a ${chat.type}, not a ${input.type}`);
      if (input.title !== undefined) chat.title = input.title;
      if (input.is_forum !== undefined) chat.isForum = input.is_forum;
      if (privateUser) chat.user = privateUser;
      return chat;
    }
    chat = {
      id: input.id,
      type: input.type,
      isForum: input.type === 'supergroup' && (input.is_forum ?? false),
      messages: new Map(),
      order: [],
      nextMessageId: 1,
      topics: new Set(),
      blocked: false,
      actions: [],
      drafts: [],
    };
    if (input.type !== 'private') chat.title = input.title ?? `Group ${Math.abs(input.id)}`;
    if (privateUser) chat.user = privateUser;
    this.chats.set(chat.id, chat);
    return chat;
  }

  addMessage(
    chat: ChatState,
    msg: Omit<StoredMessage, 'message_id' | 'chatId' | 'edits' | 'deleted'>,
    id?: number,
  ): StoredMessage {
    const message_id = id ?? chat.nextMessageId;
    chat.nextMessageId = Math.max(chat.nextMessageId, message_id + 1);
    const stored: StoredMessage = { ...msg, message_id, chatId: chat.id, edits: 0, deleted: false };
    chat.messages.set(message_id, stored);
    chat.order.push(stored);
    return stored;
  }

  liveMessage(chat: ChatState, id: number): StoredMessage | undefined {
    const m = chat.messages.get(id);
    return m && !m.deleted ? m : undefined;
  }

  newFile(kind: AttachmentKind, size: number, data?: Buffer, ext?: string): StoredFile {
    const n = this.fileCounter++;
    const file: StoredFile = {
      file_id: FILE_PREFIX[kind] + randomToken(56),
      file_unique_id: 'AgAD' + randomToken(12),
      file_size: size,
      file_path: `${FILE_DIR[kind]}/file_${n}.${ext ?? FILE_EXT[kind]}`,
    };
    if (data) file.data = data;
    this.files.set(file.file_id, file);
    return file;
  }

  /** Attachment payload with realistic ids, as a user's client would have uploaded it. */
  attachment(
    kind: AttachmentKind,
    opts: { file_name?: string; mime_type?: string; file_size?: number; duration?: number },
    data?: Buffer,
  ): any {
    if (kind === 'photo') {
      const sizes: [number, number, number][] = [
        [90, 67, 1_300],
        [320, 240, 15_600],
        [800, 600, 61_200],
      ];
      const unique = randomToken(12);
      return sizes.map(([w, h, s], i) => {
        const f = this.newFile(
          'photo',
          i === sizes.length - 1 && data ? data.length : s,
          i === sizes.length - 1 ? data : undefined,
        );
        f.file_unique_id = `AQAD${unique}${'xym'[i]}`;
        return {
          file_id: f.file_id,
          file_unique_id: f.file_unique_id,
          file_size: f.file_size,
          width: w,
          height: h,
        };
      });
    }
    if (kind === 'voice') {
      const f = this.newFile('voice', data?.length ?? opts.file_size ?? 9_412, data);
      return {
        duration: opts.duration ?? 3,
        mime_type: opts.mime_type ?? 'audio/ogg',
        file_id: f.file_id,
        file_unique_id: f.file_unique_id,
        file_size: f.file_size,
      };
    }
    const name = opts.file_name ?? 'document.pdf';
    const ext = /\.([A-Za-z0-9]{1,8})$/.exec(name)?.[1];
    const f = this.newFile('document', data?.length ?? opts.file_size ?? 24_576, data, ext);
    return {
      file_name: name,
      mime_type: opts.mime_type ?? 'application/pdf',
      file_id: f.file_id,
      file_unique_id: f.file_unique_id,
      file_size: f.file_size,
    };
  }

  chatJson(chat: ChatState): any {
    if (chat.type === 'private') {
      const u = chat.user ?? this.users.get(chat.id);
      const out: any = { id: chat.id, first_name: u?.first_name ?? '' };
      if (u?.last_name !== undefined) out.last_name = u.last_name;
      if (u?.username !== undefined) out.username = u.username;
      out.type = 'private';
      return out;
    }
    const out: any = { id: chat.id, title: chat.title, type: chat.type };
    if (chat.isForum) out.is_forum = true;
    return out;
  }

  /** The Bot API Message object; replies embed the replied message one level deep. */
  messageJson(m: StoredMessage, embedReply = true): any {
    const chat = this.chats.get(m.chatId) as ChatState;
    const out: any = { message_id: m.message_id };
    if (m.threadId !== undefined) out.message_thread_id = m.threadId;
    out.from = { ...m.from };
    out.chat = this.chatJson(chat);
    out.date = m.date;
    if (m.edit_date !== undefined) out.edit_date = m.edit_date;
    if (embedReply) {
      const replyId = m.replyToId ?? (m.isTopicMessage ? m.threadId : undefined);
      const target = replyId !== undefined ? this.liveMessage(chat, replyId) : undefined;
      if (target && target !== m) out.reply_to_message = this.messageJson(target, false);
      if (m.externalReply) {
        const other = this.chats.get(m.externalReply.chatId);
        const src = other && this.liveMessage(other, m.externalReply.messageId);
        if (other && src) {
          out.external_reply = {
            origin: { type: 'user', sender_user: { ...src.from }, date: src.date },
            chat: this.chatJson(other),
            message_id: src.message_id,
          };
        }
      }
    }
    if (m.isTopicMessage) out.is_topic_message = true;
    if (m.text !== undefined) {
      out.text = m.text;
      if (m.entities.length) out.entities = m.entities.map(apiEntity);
      if (m.linkPreview !== undefined) out.link_preview_options = m.linkPreview;
    }
    if (m.attachment) {
      out[m.attachment.kind] = m.attachment.payload;
      if (m.caption !== undefined) {
        out.caption = m.caption;
        if (m.entities.length) out.caption_entities = m.entities.map(apiEntity);
      }
    }
    if (m.service) Object.assign(out, m.service.fields);
    if (m.replyMarkup !== undefined) out.reply_markup = m.replyMarkup;
    return out;
  }

  shown(m: StoredMessage): ShownMessage {
    const out: ShownMessage = {
      message_id: m.message_id,
      from_bot: m.fromBot,
      text: m.text ?? m.caption ?? '',
      entities: m.entities.map(apiEntity),
      edits: m.edits,
      deleted: m.deleted,
      date: m.date,
    };
    if (!m.fromBot) out.from = { ...m.from };
    if (m.parseMode !== undefined) out.parse_mode = m.parseMode;
    if (m.raw !== undefined) out.raw = m.raw;
    if (m.replyToId !== undefined) out.reply_to_message_id = m.replyToId;
    if (m.threadId !== undefined) out.message_thread_id = m.threadId;
    if (m.edit_date !== undefined) out.edit_date = m.edit_date;
    if (m.service) out.service = m.service.kind;
    if (m.attachment) out.attachment = m.attachment.kind;
    if (m.replyMarkup !== undefined) out.reply_markup = m.replyMarkup;
    return out;
  }

  /** A chat nobody has written in yet shows as empty, so tests can wait on it before it exists. */
  view(chatId: number): ChatView {
    const chat = this.chats.get(chatId);
    if (!chat) {
      const type = chatId > 0 ? 'private' : String(chatId).startsWith('-100') ? 'supergroup' : 'group';
      return {
        id: chatId,
        type,
        messages: [],
        botMessages: [],
        typing: [],
        actions: [],
        drafts: [],
        blocked: false,
      };
    }
    const messages = chat.order.map((m) => this.shown(m));
    const view: ChatView = {
      id: chat.id,
      type: chat.type,
      messages,
      botMessages: messages.filter((m) => m.from_bot),
      typing: chat.actions.filter((a) => a.action === 'typing').map((a) => a.at),
      actions: chat.actions.map((a) => ({ ...a })),
      drafts: chat.drafts.map((d) => ({ ...d, entities: [...d.entities] })),
      blocked: chat.blocked,
    };
    if (chat.migratedTo !== undefined) view.migrated_to_chat_id = chat.migratedTo;
    return view;
  }
}
