// Bot API methods: each validates like the real server, answers with its result or an ApiError, and
// changes the emulated world only when it succeeds.

/* eslint-disable @typescript-eslint/no-explicit-any */

import { isIP } from 'node:net';
import type { Engine } from './engine.ts';
import { ApiError, badRequest } from './errors.ts';
import type { FormattedText } from './formatting/index.ts';
import { formatText } from './formatting/index.ts';
import type { Params } from './params.ts';
import { bool, int, isUpload, json, str } from './params.ts';
import { LONG_POLL_MAX_TIMEOUT_S, UPDATE_TYPES } from './updates.ts';
import type { AttachmentKind, ChatState, StoredMessage } from './world.ts';
import { nowSeconds } from './world.ts';

/** A success that also carries the server's "description" (setWebhook, deleteWebhook). */
export class Described {
  readonly result: unknown;
  readonly description: string;

  constructor(result: unknown, description: string) {
    this.result = result;
    this.description = description;
  }
}

export interface CallContext {
  /** Registers what to do if the client goes away before the answer (long polling). */
  onAbandon: (stop: () => void) => void;
}

export type Method = (e: Engine, p: Params, ctx: CallContext) => unknown;

const TEXT_LIMIT = 4096;
const CAPTION_LIMIT = 1024;
const CHAT_ACTIONS = new Set([
  'typing',
  'upload_photo',
  'record_video',
  'upload_video',
  'record_voice',
  'upload_voice',
  'upload_document',
  'choose_sticker',
  'find_location',
  'record_video_note',
  'upload_video_note',
]);
const DELETE_WINDOW_S = 48 * 3600;
const MAX_DOWNLOAD = 20 * 1024 * 1024;

function messageText(e: Engine, p: Params, opts: { allowEmpty?: boolean } = {}): FormattedText {
  return formatText(p['text'], p['parse_mode'], p['entities'], {
    resolveUser: (id) => e.world.userForMention(id),
    maxLength: TEXT_LIMIT,
    allowEmpty: opts.allowEmpty ?? false,
    empty: () => badRequest('message text is empty'),
    tooLong: () => badRequest('message is too long'),
  });
}

function caption(e: Engine, p: Params): FormattedText | undefined {
  if (p['caption'] === undefined) return undefined;
  return formatText(p['caption'], p['parse_mode'], p['caption_entities'], {
    resolveUser: (id) => e.world.userForMention(id),
    maxLength: CAPTION_LIMIT,
    allowEmpty: true,
    entitiesField: 'caption_entities',
    empty: () => badRequest('message caption is empty'),
    tooLong: () => badRequest('message caption is too long'),
  });
}

function replyMarkup(p: Params): unknown {
  const markup = json<Record<string, unknown>>(p, 'reply_markup', 'reply markup');
  if (markup !== undefined && (Array.isArray(markup) || typeof markup !== 'object'))
    throw badRequest("can't parse reply keyboard markup JSON object");
  return markup;
}

interface Placement {
  replyToId?: number;
  externalReply?: { chatId: number; messageId: number };
  threadId?: number;
  isTopic?: boolean;
}

/** Where a new bot message goes: its reply target (reply_parameters or legacy reply_to_message_id) and thread. */
function placement(e: Engine, chat: ChatState, p: Params): Placement {
  const out: Placement = {};
  const thread = e.thread(chat, int(p, 'message_thread_id'));
  const rp = json<Record<string, unknown>>(p, 'reply_parameters', 'reply parameters');
  let replyId: number | undefined;
  let replyChatId = chat.id;
  let allowWithout = bool(p, 'allow_sending_without_reply');
  if (rp) {
    replyId = int(rp, 'message_id');
    if (rp['chat_id'] !== undefined && rp['chat_id'] !== '') replyChatId = e.chatId(rp, 'chat_id');
    if (rp['allow_sending_without_reply'] !== undefined)
      allowWithout = bool(rp, 'allow_sending_without_reply');
    if (replyId === undefined) throw badRequest('message to be replied not found');
  } else replyId = int(p, 'reply_to_message_id');

  if (replyId !== undefined && replyId !== 0) {
    const replyChat = e.world.chats.get(replyChatId);
    if (!replyChat) throw badRequest('chat not found');
    const target = e.world.liveMessage(replyChat, replyId);
    if (!target) {
      if (!allowWithout) throw badRequest('message to be replied not found');
    } else if (replyChat === chat) {
      out.replyToId = target.message_id;
      if (thread.threadId === undefined) Object.assign(out, e.threadOfReply(chat, target));
    } else out.externalReply = { chatId: replyChat.id, messageId: target.message_id };
  }
  if (thread.threadId !== undefined) {
    out.threadId = thread.threadId;
    if (thread.isTopic) out.isTopic = true;
  }
  return out;
}

function botMessage(
  e: Engine,
  place: Placement,
): Omit<StoredMessage, 'message_id' | 'chatId' | 'edits' | 'deleted'> {
  const msg: Omit<StoredMessage, 'message_id' | 'chatId' | 'edits' | 'deleted'> = {
    from: { ...e.bot },
    fromBot: true,
    date: nowSeconds(),
    entities: [],
  };
  if (place.replyToId !== undefined) msg.replyToId = place.replyToId;
  if (place.externalReply) msg.externalReply = place.externalReply;
  if (place.threadId !== undefined) msg.threadId = place.threadId;
  if (place.isTopic) msg.isTopicMessage = true;
  return msg;
}

function messageId(p: Params): number {
  const id = int(p, 'message_id');
  if (id === undefined || id <= 0) throw badRequest('message identifier is not specified');
  return id;
}

const sameContent = (a: unknown, b: unknown): boolean =>
  JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

// ---------------------------------------------------------------------------------------------

const getMe: Method = (e) => ({
  id: e.bot.id,
  is_bot: true,
  first_name: e.bot.first_name,
  username: e.bot.username,
  can_join_groups: true,
  can_read_all_group_messages: !e.privacyMode,
  supports_inline_queries: false,
  can_connect_to_business: false,
  has_main_web_app: false,
});

function allowedUpdates(p: Params): string[] | undefined {
  const list = json<unknown>(p, 'allowed_updates', 'allowed updates');
  if (list === undefined) return undefined;
  if (!Array.isArray(list)) throw badRequest("can't parse allowed updates JSON object");
  return list.filter((t): t is string => typeof t === 'string' && UPDATE_TYPES.includes(t));
}

const getUpdates: Method = async (e, p, ctx) => {
  if (e.pusher.config)
    throw new ApiError(
      409,
      "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
    );
  e.queue.terminateHeld(
    'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
  );
  const limit = Math.min(100, Math.max(1, int(p, 'limit') ?? 100));
  const timeout = Math.min(LONG_POLL_MAX_TIMEOUT_S, Math.max(0, int(p, 'timeout') ?? 0));
  const allowed = allowedUpdates(p);
  if (allowed !== undefined) e.queue.allowed = allowed;
  e.queue.confirm(int(p, 'offset') ?? 0);
  const updates = await e.queue.poll(limit, timeout, ctx.onAbandon);
  return updates.map((u) => u.json);
};

const setWebhook: Method = (e, p) => {
  const url = str(p, 'url') ?? '';
  const drop = bool(p, 'drop_pending_updates');
  if (url === '') return deleteWebhook(e, p, { onAbandon: () => undefined });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw badRequest('invalid webhook URL specified');
  }
  // Local-server rules: http and any port are allowed, since the receiver runs on this machine.
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    throw badRequest('bad webhook: Unsupported URL protocol');
  const secret = str(p, 'secret_token') ?? '';
  if (secret.length > 256) throw badRequest('secret token is too long');
  if (secret && !/^[A-Za-z0-9_-]+$/.test(secret))
    throw badRequest('secret token contains unallowed characters');
  const maxConnections = Math.min(100, Math.max(1, int(p, 'max_connections') ?? 40));
  const allowed = allowedUpdates(p);
  if (allowed !== undefined) e.queue.allowed = allowed;
  if (drop) e.queue.dropAll();
  e.queue.terminateHeld('Conflict: terminated by setWebhook request');
  const current = e.pusher.config;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const next = {
    url,
    max_connections: maxConnections,
    ip_address: isIP(host) ? host : host === 'localhost' ? '127.0.0.1' : '',
    ...(secret ? { secret_token: secret } : {}),
    ...(e.queue.allowed && e.queue.allowed.length ? { allowed_updates: [...e.queue.allowed] } : {}),
  };
  if (current && sameContent({ ...current }, next)) return new Described(true, 'Webhook is already set');
  e.pusher.set(next);
  return new Described(true, 'Webhook was set');
};

const deleteWebhook: Method = (e, p) => {
  if (bool(p, 'drop_pending_updates')) e.queue.dropAll();
  if (!e.pusher.config) return new Described(true, 'Webhook is already deleted');
  e.pusher.clear();
  return new Described(true, 'Webhook was deleted');
};

const getWebhookInfo: Method = (e) => {
  const cfg = e.pusher.config;
  const info: Record<string, unknown> = {
    url: cfg?.url ?? '',
    has_custom_certificate: false,
    pending_update_count: e.queue.pending.length,
  };
  if (!cfg) return info;
  if (cfg.ip_address) info['ip_address'] = cfg.ip_address;
  if (e.pusher.lastErrorDate !== undefined) {
    info['last_error_date'] = e.pusher.lastErrorDate;
    info['last_error_message'] = e.pusher.lastErrorMessage;
  }
  info['max_connections'] = cfg.max_connections;
  if (cfg.allowed_updates) info['allowed_updates'] = cfg.allowed_updates;
  return info;
};

const sendMessage: Method = (e, p) => {
  e.chatId(p);
  const text = messageText(e, p);
  const markup = replyMarkup(p);
  const preview = json<unknown>(p, 'link_preview_options', 'link preview options');
  const chat = e.targetChat(p, { sending: true });
  const place = placement(e, chat, p);
  e.takeFloodSlot(chat);
  const msg = botMessage(e, place);
  msg.text = text.text;
  msg.entities = text.entities;
  msg.raw = String(p['text']);
  if (text.parseMode) msg.parseMode = text.parseMode;
  if (markup !== undefined) msg.replyMarkup = markup;
  if (preview !== undefined) msg.linkPreview = preview;
  const stored = e.world.addMessage(chat, msg);
  e.changed();
  return e.world.messageJson(stored);
};

const editMessageText: Method = (e, p) => {
  if (p['inline_message_id'] !== undefined && p['chat_id'] === undefined)
    throw badRequest('message to edit not found');
  e.chatId(p);
  const id = messageId(p);
  const text = messageText(e, p);
  const markup = replyMarkup(p);
  const chat = e.targetChat(p, { sending: false });
  const m = e.world.liveMessage(chat, id);
  if (!m) throw badRequest('message to edit not found');
  if (!m.fromBot || m.service) throw badRequest("message can't be edited");
  if (m.text === undefined) throw badRequest('there is no text in the message to edit');
  if (m.text === text.text && sameContent(m.entities, text.entities) && sameContent(m.replyMarkup, markup))
    throw badRequest(
      'message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
    );
  e.takeFloodSlot(chat);
  m.text = text.text;
  m.entities = text.entities;
  m.raw = String(p['text']);
  if (text.parseMode) m.parseMode = text.parseMode;
  else delete m.parseMode;
  if (markup !== undefined) m.replyMarkup = markup;
  else delete m.replyMarkup;
  m.edits++;
  m.edit_date = Math.max(nowSeconds(), m.date);
  e.changed();
  return e.world.messageJson(m);
};

const deleteMessage: Method = (e, p) => {
  e.chatId(p);
  const id = messageId(p);
  const chat = e.targetChat(p, { sending: false });
  const m = e.world.liveMessage(chat, id);
  if (!m) throw badRequest('message to delete not found');
  const mayDelete = (m.fromBot || chat.type === 'private') && nowSeconds() - m.date < DELETE_WINDOW_S;
  if (!mayDelete) throw badRequest("message can't be deleted");
  e.takeFloodSlot(chat);
  m.deleted = true;
  e.changed();
  return true;
};

const sendChatAction: Method = (e, p) => {
  e.chatId(p);
  const action = str(p, 'action') ?? '';
  if (!CHAT_ACTIONS.has(action)) throw badRequest('wrong parameter action in request');
  const chat = e.targetChat(p, { sending: true });
  const thread = e.thread(chat, int(p, 'message_thread_id'));
  const entry: ChatState['actions'][number] = { action, at: Date.now() };
  if (thread.threadId !== undefined) entry.message_thread_id = thread.threadId;
  chat.actions.push(entry);
  e.changed();
  return true;
};

const sendMessageDraft: Method = (e, p) => {
  e.chatId(p);
  const draftId = int(p, 'draft_id');
  if (draftId === undefined || draftId === 0) throw badRequest('draft_id must be non-zero');
  const text = messageText(e, p, { allowEmpty: true });
  const chat = e.targetChat(p, { sending: true });
  if (chat.type !== 'private') throw badRequest('TEXTDRAFT_PEER_INVALID');
  const thread = e.thread(chat, int(p, 'message_thread_id'));
  e.takeFloodSlot(chat);
  const draft: ChatState['drafts'][number] = {
    draft_id: draftId,
    text: text.text,
    entities: text.entities,
    at: Date.now(),
  };
  if (thread.threadId !== undefined) draft.message_thread_id = thread.threadId;
  chat.drafts.push(draft);
  e.changed();
  return true;
};

function sendAttachment(kind: AttachmentKind): Method {
  return (e, p) => {
    e.chatId(p);
    const file = p[kind];
    if (file === undefined || file === '') throw badRequest(`there is no ${kind} in the request`);
    const cap = caption(e, p);
    const markup = replyMarkup(p);
    const chat = e.targetChat(p, { sending: true });
    let payload: any;
    if (isUpload(file)) {
      payload = e.world.attachment(
        kind,
        {
          file_name: file.filename,
          mime_type: file.mimeType === 'application/octet-stream' ? undefined : file.mimeType,
          duration: int(p, 'duration'),
        },
        file.data,
      );
    } else {
      const ref = String(file);
      const known = e.world.files.get(ref);
      if (!known && !/^https?:\/\//.test(ref)) throw badRequest('wrong file identifier/HTTP URL specified');
      payload = e.world.attachment(
        kind,
        { file_size: known?.file_size, duration: int(p, 'duration') },
        known?.data,
      );
    }
    const place = placement(e, chat, p);
    e.takeFloodSlot(chat);
    const msg = botMessage(e, place);
    msg.attachment = { kind, payload };
    if (cap) {
      msg.caption = cap.text;
      msg.entities = cap.entities;
      msg.raw = String(p['caption']);
      if (cap.parseMode) msg.parseMode = cap.parseMode;
    }
    if (markup !== undefined) msg.replyMarkup = markup;
    const stored = e.world.addMessage(chat, msg);
    e.changed();
    return e.world.messageJson(stored);
  };
}

const getFile: Method = (e, p) => {
  const id = str(p, 'file_id') ?? '';
  if (!id) throw badRequest('file_id is empty');
  const file = e.world.files.get(id);
  if (!file) throw badRequest('invalid file_id');
  if (file.file_size > MAX_DOWNLOAD) throw badRequest('file is too big');
  return {
    file_id: file.file_id,
    file_unique_id: file.file_unique_id,
    file_size: file.file_size,
    file_path: file.file_path,
  };
};

const answerCallbackQuery: Method = (e, p) => {
  const id = str(p, 'callback_query_id') ?? '';
  if (!id) throw badRequest('callback_query_id is empty');
  if (!e.answerCallback(id))
    throw badRequest('query is too old and response timeout expired or query ID is invalid');
  return true;
};

const setMyCommands: Method = (e, p) => {
  const list = json<unknown>(p, 'commands', 'commands');
  if (!Array.isArray(list)) throw badRequest("can't parse commands JSON object");
  const commands = list.map((c: any) => {
    const command = String(c?.command ?? '');
    const description = String(c?.description ?? '');
    if (!/^[a-z0-9_]{1,32}$/.test(command)) throw badRequest('BOT_COMMAND_INVALID');
    if (!description || description.length > 256) throw badRequest('command description must be non-empty');
    return { command, description };
  });
  e.commands = commands;
  return true;
};

const getChat: Method = (e, p) => {
  const chat = e.targetChat(p, { sending: false });
  return { ...e.world.chatJson(chat), accent_color_id: 0, max_reaction_count: 11, accepted_gift_types: {} };
};

const setMessageReaction: Method = (e, p) => {
  e.chatId(p);
  const id = messageId(p);
  const chat = e.targetChat(p, { sending: false });
  if (!e.world.liveMessage(chat, id)) throw badRequest('message to react not found');
  json<unknown>(p, 'reaction', 'reaction');
  return true;
};

export const METHODS: Record<string, Method> = {
  getMe,
  getUpdates,
  setWebhook,
  deleteWebhook,
  getWebhookInfo,
  sendMessage,
  editMessageText,
  deleteMessage,
  sendChatAction,
  sendMessageDraft,
  sendPhoto: sendAttachment('photo'),
  sendDocument: sendAttachment('document'),
  sendVoice: sendAttachment('voice'),
  getFile,
  answerCallbackQuery,
  setMyCommands,
  getMyCommands: (e) => e.commands.map((c) => ({ ...c })),
  deleteMyCommands: (e) => {
    e.commands = [];
    return true;
  },
  getChat,
  setMessageReaction,
  close: () => true,
  logOut: () => true,
};

/** Method names are case-insensitive on the real server. */
const BY_LOWER = new Map(Object.entries(METHODS).map(([name, fn]) => [name.toLowerCase(), { name, fn }]));

export function findMethod(name: string): { name: string; fn: Method } | undefined {
  return BY_LOWER.get(name.toLowerCase());
}
