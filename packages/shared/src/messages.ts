import { z } from 'zod';

/**
 * The contract between the platform adapters and core, carried by the queues. Versioned: a change
 * that old jobs in flight would not satisfy gets a new `v`.
 */

export const ChatPlatform = z.enum(['telegram', 'feishu']);
export type ChatPlatform = z.infer<typeof ChatPlatform>;

const Chat = z.object({
  /** Platform chat id (Telegram chat id, Feishu chat_id). */
  id: z.string().min(1).max(128),
  type: z.enum(['direct', 'group']),
  /** Forum topic (Telegram message_thread_id) or Feishu thread; replies go into it. */
  thread_id: z.string().max(128).optional(),
  title: z.string().max(256).optional(),
});

const Attachment = z.object({
  kind: z.enum(['image', 'file', 'audio', 'voice', 'video', 'sticker']),
  /** Platform file reference (Telegram file_id, Feishu image_key / file_key). */
  file_id: z.string().min(1).max(512),
  name: z.string().max(512).optional(),
  mime: z.string().max(128).optional(),
  size: z.number().int().nonnegative().optional(),
});

/** One chat message (or chat event) as an adapter puts it on the `inbound` queue. */
export const InboundMessage = z.object({
  v: z.literal(1),
  platform: ChatPlatform,
  /** `message` for a user's message; `bot_added` when the bot joined a group (triggers the welcome rule). */
  event: z.enum(['message', 'bot_added']).default('message'),
  /** Platform message id; with the platform and chat, the job id (see inboundJobId). */
  message_id: z.string().min(1).max(128),
  /** Monotonic within a chat (Telegram update_id, Feishu create_time in ms): the answering order. */
  order: z.number().finite(),
  chat: Chat,
  sender: z.object({
    id: z.string().min(1).max(128),
    display_name: z.string().max(256).default(''),
    username: z.string().max(256).optional(),
    /** BCP 47 language hint from the platform, if any. */
    language: z.string().max(35).optional(),
  }),
  /** Text with the bot's own mention and command suffix (`/cmd@thisbot`) already removed. */
  text: z.string().max(100_000),
  /** Whether the message is addressed to the bot: a direct chat, an @mention, or a reply to the bot. */
  addressed: z.object({ direct: z.boolean(), mention: z.boolean(), reply_to_bot: z.boolean() }),
  attachments: z.array(Attachment).max(50).default([]),
  /** Platform time of the message and our time of receipt (ms since the epoch). */
  sent_at: z.number().finite(),
  received_at: z.number().finite(),
  /** Correlates log lines from the adapter through core to the reply. */
  request_id: z.string().max(128).optional(),
});
export type InboundMessage = z.output<typeof InboundMessage>;
export type InboundMessageInput = z.input<typeof InboundMessage>;

/**
 * The `inbound` job id: a redelivered platform event is the same job. `/`-separated because BullMQ
 * refuses `:` in custom job ids (its next major version refuses any); the chat id is included
 * because Telegram message ids are only unique within a chat.
 */
export function inboundJobId(m: Pick<InboundMessage, 'platform' | 'chat' | 'message_id'>): string {
  return `${m.platform}/${m.chat.id}/${m.message_id}`;
}

const OutboundChat = z.object({
  id: z.string(),
  type: z.enum(['direct', 'group']),
  thread_id: z.string().optional(),
});

const ReplyBase = z.object({
  v: z.literal(1),
  chat: OutboundChat,
  /** Stable per answer: a retried or repeated action for the same reply shows one message. */
  reply_id: z.string(),
  /** Increases with each action of a reply; an adapter ignores an action older than one it applied. */
  seq: z.number().int().nonnegative(),
  /** The platform message being answered (Telegram reply_parameters, Feishu reply). */
  reply_to_message_id: z.string().optional(),
  request_id: z.string().optional(),
});

/**
 * What core asks an adapter to show; job name = `type`, job id = `<reply_id>#<seq>`. An adapter applies
 * actions of a reply in `seq` order (an older one than it applied is ignored); a `finish` for a reply it
 * never created sends the text as a new message; a second `finish` of the same reply changes nothing.
 */
export const OutboundAction = z.discriminatedUnion('type', [
  z.object({ type: z.literal('typing'), ...ReplyBase.shape }),
  /** Create the reply message with the text so far. */
  z.object({ type: z.literal('create'), ...ReplyBase.shape, text: z.string() }),
  /** Replace the reply's text with the whole text so far (idempotent). */
  z.object({ type: z.literal('update'), ...ReplyBase.shape, text: z.string() }),
  /** The final text, rendered; `status` says how generation ended. */
  z.object({
    type: z.literal('finish'),
    ...ReplyBase.shape,
    text: z.string(),
    status: z.enum(['complete', 'stopped', 'failed']),
  }),
]);
export type OutboundAction = z.output<typeof OutboundAction>;

/** BullMQ settings shared by every queue (kept as plain data: this package imports no driver). */
export const QUEUE_DEFAULTS = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;
