// The Bot API's HTML dialect: a fixed set of tags, properly nested, attributes quoted or as name
// tokens, and only &lt; &gt; &amp; &quot; plus numeric references decoded (anything else after '&'
// stays literal). Error texts carry the byte offset of the offending '<' in the sent text.

import { ParseFailure } from '../errors.ts';
import type { Entity } from './entities.ts';
import { checkedLink, linkUserId, utf8Length } from './entities.ts';

const TAGS = new Set([
  'a',
  'b',
  'strong',
  'i',
  'em',
  's',
  'strike',
  'del',
  'u',
  'ins',
  'tg-spoiler',
  'tg-emoji',
  'span',
  'pre',
  'code',
  'blockquote',
]);

// Whitespace as the server's tag scanner sees it; the end of the text counts as whitespace too.
const isSpace = (c: string | undefined): boolean =>
  c === undefined || c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\v' || c === '\0';
const isAlnum = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9]/.test(c);

/** Decodes one character reference at `pos` ('&'); code 0 means "not a reference, keep the '&'". */
function decodeReference(s: string, pos: number): { code: number; next: number } {
  let endPos = pos + 1;
  let code = 0;
  if (s[pos + 1] === '#') {
    endPos++;
    if (s[pos + 2] === 'x') {
      endPos++;
      while (endPos < s.length && /[0-9a-fA-F]/.test(s[endPos] as string))
        code = code * 16 + parseInt(s[endPos++] as string, 16);
    } else {
      while (endPos < s.length && /[0-9]/.test(s[endPos] as string)) code = code * 10 + Number(s[endPos++]);
    }
    if (code === 0 || code >= 0x10ffff || endPos - pos >= 10) return { code: 0, next: pos };
  } else {
    while (endPos < s.length && /[A-Za-z]/.test(s[endPos] as string)) endPos++;
    const name = s.slice(pos + 1, endPos);
    const named: Record<string, number> = { lt: 60, gt: 62, amp: 38, quot: 34 };
    code = named[name] ?? 0;
    if (code === 0) return { code: 0, next: pos };
  }
  return { code, next: s[endPos] === ';' ? endPos + 1 : endPos };
}

interface OpenTag {
  tag: string;
  argument: string;
  offset: number;
}

export function parseHtml(
  source: string,
  resolveUser: (id: number) => Record<string, unknown>,
): { text: string; entities: Entity[] } {
  const n = source.length;
  const byteOffset = (index: number): number => utf8Length(source.slice(0, index));
  let out = '';
  let surrogateDecoded = false;
  const entities: (Entity & { codeLanguage?: string })[] = [];
  const stack: OpenTag[] = [];

  for (let i = 0; i < n; i++) {
    const c = source[i] as string;
    if (c === '&') {
      const ref = decodeReference(source, i);
      if (ref.code !== 0) {
        if (ref.code >= 0xd800 && ref.code <= 0xdfff) surrogateDecoded = true;
        out += String.fromCodePoint(ref.code);
        i = ref.next - 1;
        continue;
      }
    }
    if (c !== '<') {
      out += c;
      continue;
    }

    const begin = i++;
    if (source[i] !== '/') {
      while (!isSpace(source[i]) && source[i] !== '>') i++;
      if (i >= n) throw new ParseFailure(`Unclosed start tag at byte offset ${byteOffset(begin)}`);
      const tag = source.slice(begin + 1, i).toLowerCase();
      if (!TAGS.has(tag))
        throw new ParseFailure(`Unsupported start tag "${tag}" at byte offset ${byteOffset(begin)}`);

      let argument = '';
      while (source[i] !== '>') {
        while (i < n && isSpace(source[i])) i++;
        if (source[i] === '>') break;
        const nameBegin = i;
        while (
          !isSpace(source[i]) &&
          source[i] !== '=' &&
          source[i] !== '>' &&
          source[i] !== '/' &&
          source[i] !== '"' &&
          source[i] !== "'"
        )
          i++;
        const attribute = source.slice(nameBegin, i);
        if (!attribute)
          throw new ParseFailure(
            `Empty attribute name in the tag "${tag}" at byte offset ${byteOffset(begin)}`,
          );
        while (i < n && isSpace(source[i])) i++;
        if (source[i] !== '=') {
          if (i >= n)
            throw new ParseFailure(`Unclosed start tag "${tag}" at byte offset ${byteOffset(begin)}`);
          if (tag === 'blockquote' && attribute === 'expandable') argument = '1';
          continue;
        }
        i++;
        while (i < n && isSpace(source[i])) i++;
        if (i >= n) throw new ParseFailure(`Unclosed start tag "${tag}" at byte offset ${byteOffset(begin)}`);

        let value = '';
        if (source[i] !== "'" && source[i] !== '"') {
          const tokenBegin = i;
          while (isAlnum(source[i]) || source[i] === '.' || source[i] === '-') i++;
          value = source.slice(tokenBegin, i).toLowerCase();
          if (!isSpace(source[i]) && source[i] !== '>')
            throw new ParseFailure(`Unexpected end of name token at byte offset ${byteOffset(tokenBegin)}`);
        } else {
          const quote = source[i++];
          while (i < n && source[i] !== quote) {
            if (source[i] === '&') {
              const ref = decodeReference(source, i);
              if (ref.code !== 0) {
                value += String.fromCodePoint(ref.code);
                i = ref.next;
                continue;
              }
            }
            value += source[i++];
          }
          if (source[i] === quote) i++;
        }
        if (i >= n) throw new ParseFailure(`Unclosed start tag at byte offset ${byteOffset(begin)}`);

        if (tag === 'a' && attribute === 'href') argument = value;
        else if (tag === 'code' && attribute === 'class' && value.startsWith('language-'))
          argument = value.slice(9);
        else if (tag === 'span' && attribute === 'class' && value.startsWith('tg-'))
          argument = value.slice(3);
        else if (tag === 'tg-emoji' && attribute === 'emoji-id') argument = value;
        else if (tag === 'blockquote' && attribute === 'expandable') argument = '1';
      }
      if (tag === 'span' && argument !== 'spoiler')
        throw new ParseFailure(`Tag "span" must have class "tg-spoiler" at byte offset ${byteOffset(begin)}`);
      stack.push({ tag, argument, offset: out.length });
      continue;
    }

    // An end tag.
    const open = stack[stack.length - 1];
    if (!open) throw new ParseFailure(`Unexpected end tag at byte offset ${byteOffset(begin)}`);
    while (!isSpace(source[i]) && source[i] !== '>') i++;
    const endTag = source.slice(begin + 2, i).toLowerCase();
    while (i < n && isSpace(source[i])) i++;
    if (source[i] !== '>') throw new ParseFailure(`Unclosed end tag at byte offset ${byteOffset(begin)}`);
    const tag = open.tag;
    if (endTag && endTag !== tag)
      throw new ParseFailure(
        `Unmatched end tag at byte offset ${byteOffset(begin)}, expected "</${tag}>", found "</${endTag}>"`,
      );

    if (out.length > open.offset) {
      const offset = open.offset;
      const length = out.length - offset;
      const last = entities[entities.length - 1];
      const sameSpan = last !== undefined && last.offset === offset && last.length === length;
      if (tag === 'i' || tag === 'em') entities.push({ offset, length, type: 'italic' });
      else if (tag === 'b' || tag === 'strong') entities.push({ offset, length, type: 'bold' });
      else if (tag === 's' || tag === 'strike' || tag === 'del')
        entities.push({ offset, length, type: 'strikethrough' });
      else if (tag === 'u' || tag === 'ins') entities.push({ offset, length, type: 'underline' });
      else if (tag === 'tg-spoiler' || tag === 'span') entities.push({ offset, length, type: 'spoiler' });
      else if (tag === 'tg-emoji') {
        if (!/^-?\d{1,19}$/.test(open.argument) || BigInt(open.argument) === 0n)
          throw new ParseFailure('Invalid custom emoji identifier specified');
        entities.push({ offset, length, type: 'custom_emoji', custom_emoji_id: open.argument });
      } else if (tag === 'a') {
        const url = open.argument || out.slice(offset);
        const userId = linkUserId(url);
        if (userId !== undefined)
          entities.push({ offset, length, type: 'text_mention', user: resolveUser(userId) });
        else {
          const checked = checkedLink(url);
          if (checked !== undefined) entities.push({ offset, length, type: 'text_link', url: checked });
        }
      } else if (tag === 'pre') {
        if (sameSpan && last.type === 'code' && last.codeLanguage) {
          last.type = 'pre';
          last.language = last.codeLanguage;
        } else entities.push({ offset, length, type: 'pre' });
      } else if (tag === 'code') {
        if (sameSpan && last.type === 'pre' && !last.language && open.argument) last.language = open.argument;
        else entities.push({ offset, length, type: 'code', codeLanguage: open.argument });
      } else if (tag === 'blockquote') {
        entities.push({ offset, length, type: open.argument ? 'expandable_blockquote' : 'blockquote' });
      }
    }
    stack.pop();
  }
  const left = stack[stack.length - 1];
  if (left) throw new ParseFailure(`Can't find end tag corresponding to start tag "${left.tag}"`);
  if (surrogateDecoded)
    throw new ParseFailure(
      'Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units',
    );
  return {
    text: out,
    entities: entities.map(({ codeLanguage: _drop, ...e }) => e),
  };
}
