// MessageEntity handling shared by the parsers: ordering, nesting rules, the final clean-up and trim
// the Bot API applies to every text, and detection of mentions, commands, hashtags and links.
// All offsets and lengths are UTF-16 code units, like JavaScript string indices and the Bot API.

import { ParseFailure } from '../errors.ts';

export interface Entity {
  offset: number;
  length: number;
  type: string;
  url?: string;
  user?: Record<string, unknown>;
  language?: string;
  custom_emoji_id?: string;
}

export const SPLITTABLE = new Set(['bold', 'italic', 'underline', 'strikethrough', 'spoiler']);
export const BLOCKQUOTES = new Set(['blockquote', 'expandable_blockquote']);
const PRE_LIKE = new Set(['code', 'pre']);

export const ENTITY_TYPES = new Set([
  'mention',
  'hashtag',
  'cashtag',
  'bot_command',
  'url',
  'email',
  'phone_number',
  'bold',
  'italic',
  'underline',
  'strikethrough',
  'spoiler',
  'blockquote',
  'expandable_blockquote',
  'code',
  'pre',
  'text_link',
  'text_mention',
  'custom_emoji',
]);

// Lower sorts first among entities with the same span; mirrors the order clients nest them.
const PRIORITY: Record<string, number> = {
  blockquote: 0,
  expandable_blockquote: 0,
  pre: 11,
  code: 20,
  text_link: 49,
  text_mention: 49,
  mention: 50,
  hashtag: 50,
  cashtag: 50,
  bot_command: 50,
  url: 50,
  email: 50,
  phone_number: 50,
  bold: 90,
  italic: 91,
  underline: 92,
  strikethrough: 93,
  spoiler: 94,
  custom_emoji: 99,
};

const priority = (e: Entity): number => (e.type === 'pre' && e.language ? 10 : (PRIORITY[e.type] ?? 50));

export function sortEntities(list: Entity[]): Entity[] {
  return list.sort((a, b) => a.offset - b.offset || b.length - a.length || priority(a) - priority(b));
}

const end = (e: Entity): number => e.offset + e.length;
const contains = (outer: Entity, inner: Entity): boolean =>
  outer.offset <= inner.offset && end(inner) <= end(outer);
const intersects = (a: Entity, b: Entity): boolean => a.offset < end(b) && b.offset < end(a);

/** Entity in the key order the Bot API emits (offset, length, type, extras). */
export function apiEntity(e: Entity): Entity {
  const out: Entity = { offset: e.offset, length: e.length, type: e.type };
  if (e.url !== undefined) out.url = e.url;
  if (e.user !== undefined) out.user = e.user;
  if (e.language !== undefined) out.language = e.language;
  if (e.custom_emoji_id !== undefined) out.custom_emoji_id = e.custom_emoji_id;
  return out;
}

/**
 * Enforces the nesting rules: continuous entities (code, links, mentions…) never overlap each other,
 * blockquotes never overlap each other, and nothing but a blockquote may wrap code or pre.
 */
export function fixNesting(input: Entity[]): Entity[] {
  const entities = sortEntities(input.filter((e) => e.length > 0));
  const continuous: Entity[] = [];
  const quotes: Entity[] = [];
  const splittable: Entity[] = [];
  for (const e of entities) {
    if (SPLITTABLE.has(e.type)) splittable.push(e);
    else if (BLOCKQUOTES.has(e.type)) {
      if (!quotes.some((q) => intersects(q, e))) quotes.push(e);
    } else if (!continuous.some((c) => intersects(c, e))) continuous.push(e);
  }
  const keptContinuous = continuous.filter(
    (c) => !quotes.some((q) => intersects(q, c) && !contains(q, c) && !contains(c, q)),
  );
  const pre = keptContinuous.filter((c) => PRE_LIKE.has(c.type));
  const keptSplittable = splittable.filter((s) => !pre.some((p) => contains(p, s)));
  return sortEntities([...quotes, ...keptContinuous, ...keptSplittable]);
}

/** Marker for "Text must be non-empty"; each method words it its own way. */
export class EmptyText extends Error {}

const isSpaceOrNewline = (c: string | undefined): boolean => c === ' ' || c === '\n';

/**
 * What the Bot API does to a text before storing it: checks explicit entity bounds, drops control
 * characters and '\r', trims leading/trailing spaces and newlines, then adds the entities it detects
 * itself (mentions, commands, hashtags, links) where they do not clash with the sent ones.
 */
export function finalizeText(
  text: string,
  given: Entity[],
  opts: { allowEmpty?: boolean; detect?: boolean } = {},
): { text: string; entities: Entity[] } {
  for (const e of given) {
    if (!Number.isInteger(e.offset) || e.offset < 0 || e.offset > 1_000_000)
      throw new ParseFailure(`Receive an entity with incorrect offset ${e.offset}`);
    if (!Number.isInteger(e.length) || e.length < 0 || e.length > 1_000_000)
      throw new ParseFailure(`Receive an entity with incorrect length ${e.length}`);
  }
  const sorted = sortEntities(given.filter((e) => e.length > 0).map((e) => ({ ...e })));
  for (const e of sorted) {
    if (e.offset > text.length)
      throw new ParseFailure(`Entity begins after the end of the text at UTF-16 offset ${e.offset}`);
    if (end(e) > text.length)
      throw new ParseFailure(
        `Entity beginning at UTF-16 offset ${e.offset} ends after the end of the text at UTF-16 offset ${end(e)}`,
      );
    if (isLowSurrogate(text.charCodeAt(e.offset)))
      throw new ParseFailure(
        `Entity begins in a middle of a UTF-16 symbol at byte offset ${utf8Length(text.slice(0, e.offset + 1))}`,
      );
    if (end(e) < text.length && isLowSurrogate(text.charCodeAt(end(e))))
      throw new ParseFailure(
        `Entity beginning at UTF-16 offset ${e.offset} ends in a middle of a UTF-16 symbol at byte offset ${utf8Length(text.slice(0, end(e) + 1))}`,
      );
  }
  let entities = fixNesting(sorted);

  // Clean: '\r' and a few invisible direction/combining marks vanish, other control characters become spaces.
  const map = new Array<number>(text.length + 1);
  let cleaned = '';
  for (let i = 0; i < text.length; i++) {
    map[i] = cleaned.length;
    const code = text.charCodeAt(i);
    if (
      code === 13 ||
      (code >= 0x2028 && code <= 0x202e) ||
      code === 0x0333 ||
      code === 0x033f ||
      code === 0x030a
    )
      continue;
    cleaned += code < 32 && code !== 10 ? ' ' : text[i];
  }
  map[text.length] = cleaned.length;
  entities = entities
    .map((e) => {
      const start = map[e.offset] ?? 0;
      return { ...e, offset: start, length: (map[end(e)] ?? start) - start };
    })
    .filter((e) => e.length > 0);

  let last = cleaned.length - 1;
  while (last >= 0 && isSpaceOrNewline(cleaned[last])) last--;
  if (last < 0) {
    if (opts.allowEmpty) return { text: '', entities: [] };
    throw new EmptyText('Text must be non-empty');
  }
  const rtrimmed = cleaned.slice(0, last + 1);
  entities = entities
    .filter((e) => e.offset < rtrimmed.length)
    .map((e) => (end(e) > rtrimmed.length ? { ...e, length: rtrimmed.length - e.offset } : e));
  // Leading whitespace goes only up to the first entity, as in the real server.
  const firstEntity = entities.length ? Math.min(...entities.map((e) => e.offset)) : rtrimmed.length;
  let first = 0;
  while (first < firstEntity && isSpaceOrNewline(rtrimmed[first])) first++;
  const finalText = rtrimmed.slice(first);
  entities = entities.map((e) => ({ ...e, offset: e.offset - first }));

  if (opts.detect) entities = mergeDetected(entities, detectEntities(finalText));
  return { text: finalText, entities: sortEntities(entities).map(apiEntity) };
}

/** Adds detected entities that neither overlap a sent continuous entity nor cut through a blockquote. */
export function mergeDetected(entities: Entity[], detected: Entity[]): Entity[] {
  const blocking = entities.filter((e) => !SPLITTABLE.has(e.type) && !BLOCKQUOTES.has(e.type));
  const quotes = entities.filter((e) => BLOCKQUOTES.has(e.type));
  const added = detected.filter(
    (d) =>
      !blocking.some((b) => intersects(b, d)) && !quotes.some((q) => intersects(q, d) && !contains(q, d)),
  );
  return sortEntities([...entities, ...added]);
}

// ---------------------------------------------------------------------------------------------
// Detection

const WORD = /[\p{L}\p{N}_]/u;
const LETTER = /\p{L}/u;
const ASCII_WORD = /[A-Za-z0-9_]/;

function codePointBefore(s: string, i: number): string | undefined {
  if (i <= 0) return undefined;
  const c = s.charCodeAt(i - 1);
  if (isLowSurrogate(c) && i >= 2) return s.slice(i - 2, i);
  return s[i - 1];
}

function codePointAt(s: string, i: number): string | undefined {
  if (i >= s.length) return undefined;
  const cp = s.codePointAt(i);
  return cp === undefined ? undefined : String.fromCodePoint(cp);
}

const isWord = (c: string | undefined): boolean => c !== undefined && WORD.test(c);

function asciiRun(s: string, from: number): number {
  let j = from;
  while (j < s.length && ASCII_WORD.test(s[j] as string)) j++;
  return j;
}

function detectMentions(s: string, out: Entity[]): void {
  for (let i = s.indexOf('@'); i !== -1; i = s.indexOf('@', i + 1)) {
    if (isWord(codePointBefore(s, i))) continue;
    const stop = asciiRun(s, i + 1);
    const size = stop - i - 1;
    if (size < 2 || size > 32) continue;
    if (isWord(codePointAt(s, stop))) continue;
    out.push({ offset: i, length: stop - i, type: 'mention' });
  }
}

function detectBotCommands(s: string, out: Entity[]): void {
  const blocked = (c: string | undefined): boolean => isWord(c) || c === '/' || c === '<' || c === '>';
  for (let i = s.indexOf('/'); i !== -1; i = s.indexOf('/', i + 1)) {
    if (blocked(codePointBefore(s, i))) continue;
    let stop = asciiRun(s, i + 1);
    const size = stop - i - 1;
    if (size < 1 || size > 64) continue;
    if (s[stop] === '@') {
      const mentionStop = asciiRun(s, stop + 1);
      const mentionSize = mentionStop - stop - 1;
      if (mentionSize < 3 || mentionSize > 32) continue;
      stop = mentionStop;
    }
    if (blocked(codePointAt(s, stop))) continue;
    out.push({ offset: i, length: stop - i, type: 'bot_command' });
  }
}

const isHashtagChar = (c: string | undefined): boolean =>
  c !== undefined &&
  (c === '_' ||
    c === '\u200c' ||
    c === '\u00b7' ||
    (c >= '\u0d80' && c <= '\u0dff') ||
    /[\p{L}\p{Nd}]/u.test(c));

function detectHashtags(s: string, out: Entity[]): void {
  for (let i = s.indexOf('#'); i !== -1; i = s.indexOf('#', i + 1)) {
    if (isHashtagChar(codePointBefore(s, i))) continue;
    let j = i + 1;
    let letters = false;
    let count = 0;
    while (j < s.length) {
      const c = codePointAt(s, j);
      if (!isHashtagChar(c)) break;
      if (count < 256) {
        letters ||= LETTER.test(c as string);
        count++;
      }
      j += (c as string).length;
    }
    if (count < 1 || !letters || s[j] === '#') continue;
    out.push({ offset: i, length: j - i, type: 'hashtag' });
  }
}

function detectCashtags(s: string, out: Entity[]): void {
  for (const m of s.matchAll(/\$([A-Z]{1,8})(?![A-Z])/g)) {
    const i = m.index;
    const before = codePointBefore(s, i);
    if (isHashtagChar(before) || before === '$') continue;
    const after = codePointAt(s, i + m[0].length);
    if (isHashtagChar(after) || after === '$') continue;
    out.push({ offset: i, length: m[0].length, type: 'cashtag' });
  }
}

const TLDS = new Set(
  (
    'com org net io dev app ai co me ru uk de fr cn jp info biz xyz tech site online ' +
    'edu gov us ca au in br es it nl se no fi pl ch at be eu tv cc ly gg so sh to ws ' +
    'news blog page cloud shop store pro link live today world email one top club'
  ).split(' '),
);
const URL_WITH_SCHEME = /(?:https?|ftp):\/\/[^\s<>"«»]+/giu;
const BARE_DOMAIN =
  /(?<![\p{L}\p{N}_@.\-/])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,24})(?::\d{1,5})?(?:\/[^\s<>"«»]*)?/giu;
const EMAIL =
  /(?<![\p{L}\p{N}_.+-])[A-Za-z0-9._%+-]+@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+([a-z]{2,24})(?![\p{L}\p{N}_])/giu;

/** Strips the punctuation that ends a sentence rather than a link, keeping balanced brackets. */
function trimUrl(raw: string): string {
  let url = raw;
  for (;;) {
    const last = url[url.length - 1];
    if (last === undefined) return url;
    if ('.,:;!?\'"'.includes(last)) url = url.slice(0, -1);
    else if (last === ')' && count(url, '(') < count(url, ')')) url = url.slice(0, -1);
    else if (last === ']' && count(url, '[') < count(url, ']')) url = url.slice(0, -1);
    else return url;
  }
}
const count = (s: string, c: string): number => s.split(c).length - 1;

function detectLinks(s: string, out: Entity[]): void {
  const found: Entity[] = [];
  for (const m of s.matchAll(EMAIL)) {
    if (TLDS.has((m[1] as string).toLowerCase()))
      found.push({ offset: m.index, length: m[0].length, type: 'email' });
  }
  for (const m of s.matchAll(URL_WITH_SCHEME)) {
    const url = trimUrl(m[0]);
    if (url.length > url.indexOf('//') + 2) found.push({ offset: m.index, length: url.length, type: 'url' });
  }
  for (const m of s.matchAll(BARE_DOMAIN)) {
    if (!TLDS.has((m[1] as string).toLowerCase())) continue;
    found.push({ offset: m.index, length: trimUrl(m[0]).length, type: 'url' });
  }
  for (const e of sortEntities(found)) {
    if (!out.some((o) => intersects(o, e))) out.push(e);
  }
}

/** Entities Telegram finds by itself in plain text. */
export function detectEntities(text: string): Entity[] {
  const links: Entity[] = [];
  detectLinks(text, links);
  const others: Entity[] = [];
  detectMentions(text, others);
  detectBotCommands(text, others);
  detectHashtags(text, others);
  detectCashtags(text, others);
  const result = [...links];
  for (const e of sortEntities(others)) {
    if (!result.some((r) => intersects(r, e))) result.push(e);
  }
  return sortEntities(result);
}

// ---------------------------------------------------------------------------------------------
// Links

/**
 * Normalises a link the way the server does before storing a text_link: http(s) URLs get a path,
 * a bare domain gets "http://", unsupported schemes or garbage yield undefined (the entity is dropped).
 */
export function checkedLink(raw: string): string | undefined {
  const link = raw.trim();
  if (!link) return undefined;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(link)?.[1]?.toLowerCase();
  if (scheme === 'tg' || scheme === 'ton') return /^[a-z]+:\/\/\S+$/i.test(link) ? link : undefined;
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https' && scheme !== 'ftp') {
    // "localhost:8080" has no scheme; it only looks like one.
    if (!/^[a-z0-9.-]+:\d+/i.test(link)) return undefined;
  }
  const withScheme = scheme === 'http' || scheme === 'https' || scheme === 'ftp' ? link : `http://${link}`;
  try {
    const url = new URL(withScheme);
    if (!url.hostname || !/^[\p{L}\p{N}.-]+$|^\[[0-9a-f:.]+\]$/iu.test(url.hostname)) return undefined;
    if (!url.hostname.includes('.') && url.hostname !== 'localhost' && !url.hostname.startsWith('['))
      return undefined;
    return url.href;
  } catch {
    return undefined;
  }
}

/** tg://user?id=N links become text_mention entities. */
export function linkUserId(url: string): number | undefined {
  const m = /^tg:(?:\/\/)?user\?id=(\d{1,15})$/i.exec(url.trim());
  if (!m) return undefined;
  const id = Number(m[1]);
  return id > 0 ? id : undefined;
}

/** tg://emoji?id=N → the custom emoji identifier, or the server's complaint. */
export function customEmojiId(url: string): string {
  const m = /^([a-z]+):(?:\/\/)?([^?/]*)(.*)$/i.exec(url);
  if (!m || (m[1] as string).toLowerCase() !== 'tg')
    throw new ParseFailure('Custom emoji URL must have scheme tg');
  if ((m[2] as string).toLowerCase() !== 'emoji')
    throw new ParseFailure('Custom emoji URL must have host "emoji"');
  const id = /[?&]id=([^&]*)/.exec(m[3] as string)?.[1];
  if (id === undefined) throw new ParseFailure('Custom emoji URL must have an emoji identifier');
  if (!/^\d{1,19}$/.test(id) || BigInt(id) === 0n)
    throw new ParseFailure('Invalid custom emoji identifier specified');
  return id;
}

// ---------------------------------------------------------------------------------------------
// UTF helpers

export const isLowSurrogate = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;
export const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');
/** Length the Bot API limits (4096 for texts): UTF-16 code units of the visible text. */
export const utf16Length = (s: string): number => s.length;
