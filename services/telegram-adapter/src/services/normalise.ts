import type { InboundMessageInput } from '@pincer/shared';

/** The parts of the Bot API's objects the adapter reads (Telegram sends many more fields). */
export interface TgUser {
  id: number;
  is_bot?: boolean;
  first_name?: string;
  last_name?: string;
  username?: string;
  language_code?: string;
}
export interface TgChat {
  id: number;
  type: 'private' | 'group' | 'supergroup' | 'channel';
  title?: string;
  is_forum?: boolean;
}
export interface TgEntity {
  type: string;
  offset: number;
  length: number;
  user?: TgUser;
}
export interface TgMessage {
  message_id: number;
  message_thread_id?: number;
  is_topic_message?: boolean;
  from?: TgUser;
  sender_chat?: TgChat;
  chat: TgChat;
  date: number;
  edit_date?: number;
  text?: string;
  caption?: string;
  entities?: TgEntity[];
  caption_entities?: TgEntity[];
  reply_to_message?: TgMessage;
  photo?: Array<{ file_id: string; file_size?: number; width?: number; height?: number }>;
  document?: { file_id: string; file_name?: string; mime_type?: string; file_size?: number };
  voice?: { file_id: string; mime_type?: string; file_size?: number };
  audio?: { file_id: string; file_name?: string; mime_type?: string; file_size?: number };
  video?: { file_id: string; file_name?: string; mime_type?: string; file_size?: number };
  sticker?: { file_id: string; emoji?: string; file_size?: number };
  migrate_to_chat_id?: number;
  migrate_from_chat_id?: number;
}
export interface TgChatMemberUpdated {
  chat: TgChat;
  from: TgUser;
  date: number;
  old_chat_member: { status: string; user: TgUser };
  new_chat_member: { status: string; user: TgUser };
}
export interface TgUpdate {
  update_id: number;
  message?: TgMessage;
  edited_message?: TgMessage;
  my_chat_member?: TgChatMemberUpdated;
  [other: string]: unknown;
}
export interface BotIdentity {
  id: number;
  username: string;
  can_read_all_group_messages: boolean;
}

/** What one update means for the adapter. */
export type Normalised =
  | { kind: 'message'; message: InboundMessageInput }
  | { kind: 'migrated'; from: string; to: string }
  | { kind: 'membership'; chat: string; present: boolean; direct: boolean; message?: InboundMessageInput }
  | { kind: 'ignored'; reason: string };

export interface NormaliseOptions {
  editedMessages: 'ignore' | 'answer';
  now: number;
}

const CHAT_TYPES: ReadonlySet<unknown> = new Set(['private', 'group', 'supergroup', 'channel']);

/** Telegram's ids are integers and its chat types few: anything else names no chat to answer in. */
const wellFormedChat = (c: unknown): c is TgChat =>
  !!c &&
  typeof c === 'object' &&
  Number.isSafeInteger((c as TgChat).id) &&
  CHAT_TYPES.has((c as TgChat).type);

/** The parts a message's job is identified and routed by (its id, chat, sender, time). */
const wellFormedMessage = (m: TgMessage): boolean =>
  !!m &&
  typeof m === 'object' &&
  Number.isSafeInteger(m.message_id) &&
  typeof m.date === 'number' &&
  wellFormedChat(m.chat) &&
  (m.from === undefined || Number.isSafeInteger(m.from?.id));

const displayName = (u: TgUser) => [u.first_name, u.last_name].filter(Boolean).join(' ') || u.username || '';

/** Turns a Bot API update into an `inbound` message (or says why it carries none). */
export function normalise(update: TgUpdate, me: BotIdentity, o: NormaliseOptions): Normalised {
  if (update.my_chat_member) return membership(update, me, o);
  const edited = !update.message && !!update.edited_message;
  const msg = update.message ?? update.edited_message;
  if (!msg) return { kind: 'ignored', reason: 'unsupported update type' };
  if (!wellFormedMessage(msg)) return { kind: 'ignored', reason: 'malformed message' };
  if (edited && o.editedMessages === 'ignore') return { kind: 'ignored', reason: 'edited message' };
  if (msg.migrate_to_chat_id)
    return { kind: 'migrated', from: String(msg.chat.id), to: String(msg.migrate_to_chat_id) };
  if (msg.chat.type === 'channel') return { kind: 'ignored', reason: 'channel post' };
  if (msg.from?.is_bot) return { kind: 'ignored', reason: 'from a bot' };
  if (msg.migrate_from_chat_id) return { kind: 'ignored', reason: 'service message' };

  let text = msg.text ?? msg.caption ?? '';
  const entities = [...((msg.text !== undefined ? msg.entities : msg.caption_entities) ?? [])];
  const direct = msg.chat.type === 'private';
  let mention = false;
  // cuts (UTF-16 ranges, as entity offsets are) removed from the text: our mention, our command suffix
  const cuts: Array<[number, number]> = [];
  const myName = me.username.toLowerCase();
  for (const e of entities) {
    const part = text.slice(e.offset, e.offset + e.length);
    if (e.type === 'bot_command') {
      const at = part.indexOf('@');
      if (at >= 0) {
        // /cmd@otherbot is for another bot in the group
        if (part.slice(at + 1).toLowerCase() !== myName) {
          if (e.offset === 0) return { kind: 'ignored', reason: 'command for another bot' };
          continue;
        }
        cuts.push([e.offset + at, e.offset + e.length]);
      }
      // a command at the start is meant for the bot (bare commands in groups reach every bot)
      if (e.offset === 0) mention = true;
    } else if (e.type === 'mention' && part.toLowerCase() === `@${myName}`) {
      mention = true;
      cuts.push([e.offset, e.offset + e.length]);
    } else if (e.type === 'text_mention' && e.user?.id === me.id) {
      mention = true;
    }
  }
  if (cuts.length) {
    cuts.sort((a, b) => b[0] - a[0]);
    for (const [s, e] of cuts) text = text.slice(0, s) + text.slice(e);
    text = text.replace(/[ \t]{2,}/g, ' ').trim();
  }
  const replyToBot = msg.reply_to_message?.from?.id === me.id && !msg.reply_to_message.is_topic_message;

  const attachments: NonNullable<InboundMessageInput['attachments']> = [];
  if (msg.photo?.length) {
    const best = msg.photo[msg.photo.length - 1]!;
    attachments.push({ kind: 'image', file_id: best.file_id, ...size(best.file_size) });
  }
  if (msg.document)
    attachments.push({
      kind: 'file',
      file_id: msg.document.file_id,
      ...(msg.document.file_name ? { name: msg.document.file_name } : {}),
      ...(msg.document.mime_type ? { mime: msg.document.mime_type } : {}),
      ...size(msg.document.file_size),
    });
  if (msg.voice)
    attachments.push({
      kind: 'voice',
      file_id: msg.voice.file_id,
      mime: msg.voice.mime_type ?? 'audio/ogg',
      ...size(msg.voice.file_size),
    });
  if (msg.audio)
    attachments.push({
      kind: 'audio',
      file_id: msg.audio.file_id,
      ...(msg.audio.file_name ? { name: msg.audio.file_name } : {}),
      ...(msg.audio.mime_type ? { mime: msg.audio.mime_type } : {}),
      ...size(msg.audio.file_size),
    });
  if (msg.video)
    attachments.push({
      kind: 'video',
      file_id: msg.video.file_id,
      ...(msg.video.mime_type ? { mime: msg.video.mime_type } : {}),
      ...size(msg.video.file_size),
    });
  if (msg.sticker) {
    attachments.push({ kind: 'sticker', file_id: msg.sticker.file_id, ...size(msg.sticker.file_size) });
    if (!text && msg.sticker.emoji) text = msg.sticker.emoji;
  }
  if (!text && attachments.length === 0) return { kind: 'ignored', reason: 'no text or attachment' };

  const sender = msg.from
    ? {
        id: String(msg.from.id),
        display_name: displayName(msg.from).slice(0, 256),
        ...(msg.from.username ? { username: msg.from.username } : {}),
        ...(msg.from.language_code ? { language: msg.from.language_code } : {}),
      }
    : { id: String(msg.sender_chat?.id ?? msg.chat.id), display_name: msg.sender_chat?.title ?? '' };

  return {
    kind: 'message',
    message: {
      v: 1,
      platform: 'telegram',
      event: 'message',
      // an edit answered as a new message is its own job; the original keeps its id
      message_id: edited ? `${msg.message_id}.e${msg.edit_date ?? update.update_id}` : String(msg.message_id),
      order: update.update_id,
      chat: {
        id: String(msg.chat.id),
        type: direct ? 'direct' : 'group',
        ...(msg.is_topic_message && msg.message_thread_id
          ? { thread_id: String(msg.message_thread_id) }
          : {}),
        ...(msg.chat.title ? { title: msg.chat.title.slice(0, 256) } : {}),
      },
      sender,
      text,
      addressed: { direct, mention, reply_to_bot: replyToBot },
      attachments,
      sent_at: (edited ? (msg.edit_date ?? msg.date) : msg.date) * 1000,
      received_at: o.now,
      request_id: `tg-${update.update_id}`,
    },
  };
}

function size(n: number | undefined) {
  return n !== undefined ? { size: n } : {};
}

/** The bot joined or left a chat, or a user blocked or unblocked it. */
function membership(update: TgUpdate, me: BotIdentity, o: NormaliseOptions): Normalised {
  const u = update.my_chat_member!;
  if (u.new_chat_member.user.id !== me.id) return { kind: 'ignored', reason: 'another member' };
  const was = isIn(u.old_chat_member.status);
  const is = isIn(u.new_chat_member.status);
  const chat = String(u.chat.id);
  if (is && !was && (u.chat.type === 'group' || u.chat.type === 'supergroup')) {
    return {
      kind: 'membership',
      chat,
      present: true,
      direct: false,
      message: {
        v: 1,
        platform: 'telegram',
        event: 'bot_added',
        message_id: `joined.${update.update_id}`,
        order: update.update_id,
        chat: { id: chat, type: 'group', ...(u.chat.title ? { title: u.chat.title.slice(0, 256) } : {}) },
        sender: { id: String(u.from.id), display_name: displayName(u.from).slice(0, 256) },
        text: '',
        addressed: { direct: false, mention: true, reply_to_bot: false },
        attachments: [],
        sent_at: u.date * 1000,
        received_at: o.now,
        request_id: `tg-${update.update_id}`,
      },
    };
  }
  return { kind: 'membership', chat, present: is, direct: u.chat.type === 'private' };
}

function isIn(status: string): boolean {
  return status === 'member' || status === 'administrator' || status === 'creator' || status === 'restricted';
}
