// Turns (text, parse_mode | entities) as sent to the Bot API into what the chat shows, or the exact
// 400 the real server answers.

import { ApiError, badRequest, cantParseEntities, ParseFailure } from '../errors.ts';
import type { Entity } from './entities.ts';
import { checkedLink, EmptyText, ENTITY_TYPES, finalizeText, utf16Length } from './entities.ts';
import { parseHtml } from './html.ts';
import { parseMarkdown } from './markdown.ts';
import { parseMarkdownV2 } from './markdown-v2.ts';

export type { Entity } from './entities.ts';
export { detectEntities, mergeDetected, sortEntities, apiEntity } from './entities.ts';

export interface FormatOptions {
  resolveUser: (id: number) => Record<string, unknown>;
  /** Visible length limit in UTF-16 code units. */
  maxLength: number;
  allowEmpty?: boolean;
  empty: () => ApiError;
  tooLong: () => ApiError;
  /** Name of the entities parameter, for its JSON error ("entities" or "caption_entities"). */
  entitiesField?: string;
}

export interface FormattedText {
  text: string;
  entities: Entity[];
  parseMode?: string;
}

const AUTO_DETECTED = new Set([
  'mention',
  'hashtag',
  'cashtag',
  'bot_command',
  'url',
  'email',
  'phone_number',
]);

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);

/** The parse_mode as the server understands it (case-insensitive; "" and "none" mean plain text). */
export function normalizeParseMode(value: unknown): 'HTML' | 'MarkdownV2' | 'Markdown' | undefined {
  if (value === undefined || value === null) return undefined;
  const mode = String(value).toLowerCase();
  if (mode === '' || mode === 'none') return undefined;
  if (mode === 'html') return 'HTML';
  if (mode === 'markdownv2') return 'MarkdownV2';
  if (mode === 'markdown') return 'Markdown';
  throw badRequest('unsupported parse_mode');
}

function explicitEntities(value: unknown, opts: FormatOptions): Entity[] {
  if (value === undefined || value === null || value === '') return [];
  const field = (opts.entitiesField ?? 'entities').replace('_', ' ');
  let list: unknown = value;
  if (typeof value === 'string') {
    try {
      list = JSON.parse(value);
    } catch {
      throw badRequest(`can't parse ${field} JSON object`);
    }
  }
  if (!Array.isArray(list)) throw badRequest(`can't parse ${field} JSON object`);
  const out: Entity[] = [];
  for (const raw of list) {
    if (typeof raw !== 'object' || raw === null)
      throw badRequest("can't parse MessageEntity: expected an Object");
    const e = raw as Record<string, unknown>;
    if (typeof e['type'] !== 'string')
      throw badRequest('can\'t parse MessageEntity: Field "type" must be of type String');
    if (typeof e['offset'] !== 'number')
      throw badRequest('can\'t parse MessageEntity: Field "offset" must be of type Number');
    if (typeof e['length'] !== 'number')
      throw badRequest('can\'t parse MessageEntity: Field "length" must be of type Number');
    const type = e['type'];
    if (!ENTITY_TYPES.has(type)) throw badRequest(`unsupported entity type "${type}"`);
    if (AUTO_DETECTED.has(type)) continue;
    const entity: Entity = { offset: e['offset'], length: e['length'], type };
    if (type === 'text_link') {
      const url = checkedLink(String(e['url'] ?? ''));
      if (url === undefined)
        throw badRequest(`can't parse entities: Wrong URL "${String(e['url'] ?? '')}" specified`);
      entity.url = url;
    } else if (type === 'text_mention') {
      const user = e['user'] as Record<string, unknown> | undefined;
      if (!user || typeof user['id'] !== 'number')
        throw badRequest('can\'t parse MessageEntity: Field "user" must be of type Object');
      entity.user = opts.resolveUser(user['id']);
    } else if (type === 'pre' && typeof e['language'] === 'string' && e['language']) {
      entity.language = e['language'];
    } else if (type === 'custom_emoji') {
      const id = String(e['custom_emoji_id'] ?? '');
      if (!/^\d{1,19}$/.test(id) || BigInt(id) === 0n)
        throw badRequest('invalid custom emoji identifier specified');
      entity.custom_emoji_id = id;
    }
    out.push(entity);
  }
  return out;
}

/** Parses, validates, cleans and measures a text exactly as sendMessage/editMessageText do. */
export function formatText(
  rawText: unknown,
  parseModeValue: unknown,
  entitiesValue: unknown,
  opts: FormatOptions,
): FormattedText {
  const source = rawText === undefined || rawText === null ? '' : String(rawText);
  const parseMode = normalizeParseMode(parseModeValue);
  let parsed: { text: string; entities: Entity[] };
  try {
    if (parseMode === 'HTML') parsed = parseHtml(source, opts.resolveUser);
    else if (parseMode === 'MarkdownV2') parsed = parseMarkdownV2(source, opts.resolveUser);
    else if (parseMode === 'Markdown') parsed = parseMarkdown(source, opts.resolveUser);
    else parsed = { text: source, entities: explicitEntities(entitiesValue, opts) };
  } catch (err) {
    if (err instanceof ParseFailure) throw cantParseEntities(err.message);
    throw err;
  }
  let result: { text: string; entities: Entity[] };
  try {
    result = finalizeText(parsed.text, parsed.entities, {
      detect: true,
      allowEmpty: opts.allowEmpty ?? false,
    });
  } catch (err) {
    if (err instanceof EmptyText) throw opts.empty();
    if (err instanceof ParseFailure) throw badRequest(lowerFirst(err.message));
    throw err;
  }
  if (utf16Length(result.text) > opts.maxLength) throw opts.tooLong();
  return parseMode ? { ...result, parseMode } : result;
}

/**
 * What sendMessage would make of a text, without a server: the visible text and entities, or an
 * Error whose message is the Bot API description ("Bad Request: can't parse entities: …").
 */
export function parseFormatted(
  text: string,
  parseMode?: 'HTML' | 'MarkdownV2' | 'Markdown',
  entities?: unknown[],
): { text: string; entities: Entity[] } {
  try {
    const out = formatText(text, parseMode, entities, {
      resolveUser: (id) => ({ id, is_bot: false, first_name: '' }),
      maxLength: 4096,
      empty: () => badRequest('message text is empty'),
      tooLong: () => badRequest('message is too long'),
    });
    return { text: out.text, entities: out.entities };
  } catch (err) {
    if (err instanceof ApiError) throw new Error(err.description, { cause: err });
    throw err;
  }
}
