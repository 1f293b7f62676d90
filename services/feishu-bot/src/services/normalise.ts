import type { InboundMessageInput } from '@pincer/shared';

/** The parts of an im.message.receive_v1 event the bot reads. */
export interface FsMention {
  key: string;
  id?: { open_id?: string };
  name?: string;
}
export interface FsMessageEvent {
  event_id?: string;
  sender?: { sender_id?: { open_id?: string; union_id?: string; user_id?: string }; sender_type?: string };
  message?: {
    message_id?: string;
    root_id?: string;
    parent_id?: string;
    thread_id?: string;
    create_time?: string;
    chat_id?: string;
    chat_type?: string;
    message_type?: string;
    content?: string;
    mentions?: FsMention[];
  };
}
export interface FsBotAddedEvent {
  event_id?: string;
  create_time?: string;
  chat_id?: string;
  name?: string;
  operator_id?: { open_id?: string };
}

export type Normalised =
  { kind: 'message'; message: InboundMessageInput } | { kind: 'ignored'; reason: string };

type Attachment = NonNullable<InboundMessageInput['attachments']>[number];

const MENTION_KEY = /@_user_\d+|@_all/g;

/** Text with the bot's mention removed, @_all as "@all", other mentions as "@Name". */
function resolveMentions(text: string, mentions: readonly FsMention[], botOpenId: string): string {
  const byKey = new Map(mentions.map((m) => [m.key, m]));
  return text
    .replace(MENTION_KEY, (key) => {
      if (key === '@_all') return '@all';
      const m = byKey.get(key);
      if (!m) return key;
      if (m.id?.open_id === botOpenId) return '';
      return `@${m.name ?? ''}`;
    })
    .replace(/[ \t]{2,}/g, ' ')
    .trim();
}

type PostElement = Record<string, unknown> & { tag?: string };

/** A received post flattened to Markdown-ish text: one line per paragraph, links, code blocks kept. */
function flattenPost(
  post: { title?: string; content?: unknown },
  mentions: readonly FsMention[],
  botOpenId: string,
  attachments: Attachment[],
): string {
  const lines: string[] = [];
  if (post.title) lines.push(`**${post.title}**`, '');
  const paragraphs = Array.isArray(post.content) ? (post.content as unknown[]) : [];
  for (const p of paragraphs) {
    let line = '';
    for (const raw of Array.isArray(p) ? (p as PostElement[]) : []) {
      const el = raw ?? {};
      const s = (k: string) => (typeof el[k] === 'string' ? (el[k] as string) : '');
      switch (el.tag) {
        case 'text':
        case 'md':
          line += s('text');
          break;
        case 'a':
          line += s('href') ? `[${s('text') || s('href')}](${s('href')})` : s('text');
          break;
        case 'at': {
          const id = s('user_id');
          const m = mentions.find((x) => x.key === id) ?? mentions.find((x) => x.id?.open_id === id);
          const openId = m?.id?.open_id ?? id;
          if (id === 'all' || id === '@_all') line += '@all';
          else if (openId !== botOpenId) line += `@${s('user_name') || m?.name || ''}`;
          break;
        }
        case 'emotion':
          line += `:${s('emoji_type')}:`;
          break;
        case 'code_block': {
          const code = s('text').replace(/\n$/, '');
          const lang = s('language').toLowerCase();
          if (line.trim()) lines.push(line);
          lines.push(`\`\`\`${lang}`, code, '```');
          line = '';
          break;
        }
        case 'hr':
          if (line.trim()) lines.push(line);
          lines.push('---');
          line = '';
          break;
        case 'img':
          if (s('image_key')) attachments.push({ kind: 'image', file_id: s('image_key') });
          break;
        case 'media':
          if (s('file_key')) attachments.push({ kind: 'video', file_id: s('file_key') });
          break;
        default:
          if (s('text')) line += s('text');
      }
    }
    if (line.trim() || lines.length === 0 || lines.at(-1) !== '') lines.push(line);
  }
  return lines
    .join('\n')
    .replace(/[ \t]{2,}/g, ' ')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function parseContent(content: string | undefined): Record<string, unknown> {
  try {
    const v = JSON.parse(content ?? '{}') as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** An im.message.receive_v1 event as an `inbound` message (or why it is not one). */
export function normaliseMessage(e: FsMessageEvent, botOpenId: string, now: number): Normalised {
  const m = e.message;
  const senderId = e.sender?.sender_id?.open_id;
  // ids become Redis keys and job ids: strings only
  if (typeof m?.message_id !== 'string' || !m.message_id || typeof m.chat_id !== 'string' || !m.chat_id)
    return { kind: 'ignored', reason: 'no message id or chat id' };
  if (e.sender?.sender_type && e.sender.sender_type !== 'user')
    return { kind: 'ignored', reason: 'sent by an app' };
  if (!senderId) return { kind: 'ignored', reason: 'no sender open_id' };
  const mentions = m.mentions ?? [];
  const direct = m.chat_type === 'p2p';
  const mention = mentions.some((x) => x.key !== '@_all' && !!x.id?.open_id && x.id.open_id === botOpenId);
  const c = parseContent(m.content);
  const str = (k: string) => (typeof c[k] === 'string' ? (c[k] as string) : '');
  const attachments: Attachment[] = [];
  let text = '';
  switch (m.message_type) {
    case 'text':
      text = resolveMentions(str('text'), mentions, botOpenId);
      break;
    case 'post':
      text = flattenPost(c, mentions, botOpenId, attachments);
      break;
    case 'image':
      if (str('image_key')) attachments.push({ kind: 'image', file_id: str('image_key') });
      break;
    case 'file':
      if (str('file_key'))
        attachments.push({
          kind: 'file',
          file_id: str('file_key'),
          ...(str('file_name') ? { name: str('file_name') } : {}),
        });
      break;
    case 'audio':
      if (str('file_key')) attachments.push({ kind: 'audio', file_id: str('file_key') });
      break;
    case 'media':
      if (str('file_key'))
        attachments.push({
          kind: 'video',
          file_id: str('file_key'),
          ...(str('file_name') ? { name: str('file_name') } : {}),
        });
      break;
    case 'sticker':
      if (str('file_key')) attachments.push({ kind: 'sticker', file_id: str('file_key') });
      break;
    default:
      return { kind: 'ignored', reason: `unsupported message type ${m.message_type ?? '?'}` };
  }
  if (!text && attachments.length === 0) return { kind: 'ignored', reason: 'empty message' };
  const created = Number(m.create_time);
  const sentAt = Number.isFinite(created) && created > 0 ? created : now;
  return {
    kind: 'message',
    message: {
      v: 1,
      platform: 'feishu',
      event: 'message',
      message_id: m.message_id,
      order: sentAt,
      chat: {
        id: m.chat_id,
        type: direct ? 'direct' : 'group',
        ...(m.thread_id ? { thread_id: m.thread_id } : {}),
      },
      sender: { id: senderId, display_name: '' },
      text: text.slice(0, 100_000),
      addressed: { direct, mention, reply_to_bot: false },
      attachments: attachments.slice(0, 50),
      sent_at: sentAt,
      received_at: now,
      ...(e.event_id ? { request_id: e.event_id.slice(0, 128) } : {}),
    },
  };
}

/** im.chat.member.bot.added_v1: core's welcome rule. */
export function normaliseBotAdded(e: FsBotAddedEvent, now: number): Normalised {
  if (typeof e.chat_id !== 'string' || !e.chat_id || typeof e.event_id !== 'string' || !e.event_id)
    return { kind: 'ignored', reason: 'no chat id' };
  const created = Number(e.create_time);
  const at = Number.isFinite(created) && created > 0 ? created : now;
  return {
    kind: 'message',
    message: {
      v: 1,
      platform: 'feishu',
      event: 'bot_added',
      message_id: `joined.${e.event_id}`.slice(0, 128),
      order: at,
      chat: { id: e.chat_id, type: 'group', ...(e.name ? { title: e.name.slice(0, 256) } : {}) },
      sender: { id: e.operator_id?.open_id || e.chat_id, display_name: '' },
      text: '',
      addressed: { direct: false, mention: true, reply_to_bot: false },
      attachments: [],
      sent_at: at,
      received_at: now,
      request_id: e.event_id.slice(0, 128),
    },
  };
}
