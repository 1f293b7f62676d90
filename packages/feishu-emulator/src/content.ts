// Message content as the IM API accepts it (the "Send message content" rules) and as a reader sees it.
import { cardText, validateMessageCard } from './cards.ts';
import { ApiError, ERR } from './errors.ts';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export const MSG_TYPES = new Set([
  'text',
  'post',
  'image',
  'file',
  'audio',
  'media',
  'sticker',
  'interactive',
  'share_chat',
  'share_user',
]);

const TEXT_MAX_BYTES = 150 * 1024;
const RICH_MAX_BYTES = 30 * 1024;
const LOCALE = /^[a-z]{2}_[a-z]{2}$/;

// Post tags and the field each one needs.
const POST_TAGS: Record<string, string | undefined> = {
  text: 'text',
  a: 'href',
  at: 'user_id',
  img: 'image_key',
  media: 'file_key',
  emotion: 'emoji_type',
  code_block: 'text',
  md: 'text',
  hr: undefined,
};

const invalid = (detail: string) => new ApiError(ERR.imInvalidParam, detail);

function requireString(obj: Json, key: string, what: string): void {
  if (typeof obj[key] !== 'string' || obj[key] === '')
    throw invalid(`invalid ${what} content, ${key} is required`);
}

function validatePost(post: Json): void {
  const locales = Object.keys(post);
  if (locales.length === 0 || !locales.every((l) => LOCALE.test(l)))
    throw invalid('invalid post content, expected {"zh_cn":{"title":…,"content":[[…]]}}');
  for (const locale of locales) {
    const body = post[locale];
    if (!isObject(body)) throw invalid(`invalid post content, ${locale} must be an object`);
    if (body.title !== undefined && typeof body.title !== 'string')
      throw invalid('invalid post content, title must be a string');
    if (!Array.isArray(body.content))
      throw invalid(`invalid post content, ${locale}.content must be an array of paragraphs`);
    for (const paragraph of body.content) {
      if (!Array.isArray(paragraph)) throw invalid('invalid post content, each paragraph must be an array');
      for (const el of paragraph) {
        if (!isObject(el) || typeof el.tag !== 'string' || !(el.tag in POST_TAGS))
          throw invalid(
            `invalid post content, unknown tag ${isObject(el) ? JSON.stringify(el.tag) : 'in paragraph'}`,
          );
        const field = POST_TAGS[el.tag];
        if (field && typeof el[field] !== 'string')
          throw invalid(`invalid post content, ${el.tag} needs ${field}`);
      }
    }
  }
}

export interface CheckedContent {
  /** The parsed content JSON. */
  value: Json;
  /** Set for `{"type":"card","data":{"card_id"}}`: the CardKit entity the message shows. */
  cardId?: string;
}

/** Validate `content` (a JSON string) for `msgType`, as create, reply and PUT do. */
export function checkContent(msgType: unknown, content: unknown): CheckedContent {
  if (typeof msgType !== 'string' || msgType === '') throw invalid('msg_type is required');
  if (!MSG_TYPES.has(msgType)) throw invalid(`invalid msg_type ${msgType}`);
  if (typeof content !== 'string' || content === '') throw invalid('content is required');
  const size = Buffer.byteLength(content, 'utf8');
  if (size > (msgType === 'text' ? TEXT_MAX_BYTES : RICH_MAX_BYTES)) throw new ApiError(ERR.imTooLong);
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch {
    throw invalid('invalid content, content is not a valid json string');
  }
  if (!isObject(value)) throw invalid('invalid content, content must be a JSON object');
  switch (msgType) {
    case 'text':
      requireString(value, 'text', 'text');
      break;
    case 'post':
      validatePost(value);
      break;
    case 'image':
      requireString(value, 'image_key', 'image');
      break;
    case 'file':
    case 'audio':
    case 'media':
    case 'sticker':
      requireString(value, 'file_key', msgType);
      break;
    case 'share_chat':
      requireString(value, 'chat_id', msgType);
      break;
    case 'share_user':
      requireString(value, 'user_id', msgType);
      break;
    case 'interactive':
      if (value.type === 'card') {
        const data = value.data;
        return { value, cardId: isObject(data) && typeof data.card_id === 'string' ? data.card_id : '' };
      }
      if (value.type === 'template')
        throw new ApiError(
          ERR.imCardFailed,
          'ErrCode: 200380; ErrMsg: template does not exist, please confirm whether this template has been released;',
        );
      validateMessageCard(value);
      break;
  }
  return { value };
}

/** Text content flattened: `<at user_id="…">Name</at>` reads as @Name. */
function readableText(text: string): string {
  return text.replace(/<at\s+user_id="([^"]*)"\s*>([^<]*)<\/at>/g, (_m, id: string, name: string) =>
    id === 'all' ? '@所有人' : `@${name || id}`,
  );
}

function postText(post: Json): string {
  const body = (['zh_cn', 'en_us', 'ja_jp'].map((l) => post[l]).find(isObject) ??
    Object.values(post).find(isObject) ??
    post) as Json;
  const lines: string[] = [];
  if (typeof body.title === 'string' && body.title) lines.push(body.title);
  for (const paragraph of Array.isArray(body.content) ? body.content : []) {
    if (!Array.isArray(paragraph)) continue;
    let line = '';
    for (const el of paragraph) {
      if (!isObject(el)) continue;
      if (el.tag === 'at') line += `@${String(el.user_name ?? el.user_id ?? '')}`;
      else if (el.tag === 'img') line += '[image]';
      else if (el.tag === 'emotion') line += `[${String(el.emoji_type ?? '')}]`;
      else if (el.tag === 'hr') line += '---';
      else if (typeof el.text === 'string') line += el.text;
      else if (typeof el.href === 'string') line += el.href;
    }
    lines.push(line);
  }
  return lines.join('\n');
}

/** What a reader of the chat sees for this content. */
export function flattenContent(msgType: string, value: unknown): string {
  if (!isObject(value)) return '';
  switch (msgType) {
    case 'text':
      return readableText(String(value.text ?? ''));
    case 'post':
      return postText(value);
    case 'interactive':
      return cardText(value);
    case 'image':
      return '[image]';
    case 'file':
      return `[file${typeof value.file_name === 'string' ? ` ${value.file_name}` : ''}]`;
    default:
      return `[${msgType}]`;
  }
}
