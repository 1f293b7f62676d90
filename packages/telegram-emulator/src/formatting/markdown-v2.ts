// MarkdownV2 as the Bot API parses it: a single left-to-right pass with a stack of open entities,
// where only the innermost open entity can be closed and every reserved character outside an entity
// marker must be escaped. Errors name the entity and the byte offset of its opening marker.

import { ParseFailure } from '../errors.ts';
import type { Entity } from './entities.ts';
import { checkedLink, customEmojiId, linkUserId, utf8Length } from './entities.ts';

type Kind =
  | 'bold'
  | 'italic'
  | 'underline'
  | 'strikethrough'
  | 'spoiler'
  | 'code'
  | 'pre'
  | 'text_link'
  | 'custom_emoji'
  | 'blockquote';

interface Open {
  kind: Kind;
  language: string;
  /** UTF-16 offset in the output where the entity starts. */
  offset: number;
  /** Index in the input of the opening marker (reported as a byte offset). */
  at: number;
}

const RESERVED = '_*[]()~`>#+-=|{}.!\n';

const NAMES: Record<Kind, string> = {
  bold: 'Bold',
  italic: 'Italic',
  underline: 'Underline',
  strikethrough: 'Strikethrough',
  spoiler: 'Spoiler',
  code: 'Code',
  pre: 'Pre',
  text_link: 'TextUrl',
  custom_emoji: 'CustomEmoji',
  blockquote: 'BlockQuote',
};

const escapable = (c: string | undefined): boolean => {
  if (c === undefined) return false;
  const code = c.charCodeAt(0);
  return code > 0 && code <= 126;
};

export function parseMarkdownV2(
  source: string,
  resolveUser: (id: number) => Record<string, unknown>,
): { text: string; entities: Entity[] } {
  const at = (k: number): string | undefined => source[k];
  const byteOffset = (index: number): number => utf8Length(source.slice(0, index));
  const reserved = (c: string): ParseFailure =>
    new ParseFailure(`Character '${c}' is reserved and must be escaped with the preceding '\\'`);
  const name = (o: Open): string => (o.kind === 'pre' && o.language ? 'PreCode' : NAMES[o.kind]);
  const unclosed = (o: Open): ParseFailure =>
    new ParseFailure(`Can't find end of ${name(o)} entity at byte offset ${byteOffset(o.at)}`);

  let out = '';
  const entities: Entity[] = [];
  const stack: Open[] = [];
  let inQuote = false;
  let canStartQuote = true;

  /** Reads "(url)" right after a closing ']' at index i; returns the url and the index of ')'. */
  const readTarget = (i: number, what: string): { url: string; close: number } => {
    let j = i + 2;
    const begin = j;
    let url = '';
    while (j < source.length && source[j] !== ')') {
      if (source[j] === '\\' && escapable(at(j + 1))) {
        url += source[j + 1];
        j += 2;
        continue;
      }
      url += source[j++];
    }
    if (source[j] !== ')')
      throw new ParseFailure(`Can't find end of ${what} at byte offset ${byteOffset(begin)}`);
    return { url, close: j };
  };

  for (let i = 0; i < source.length; i++) {
    const c = source[i] as string;
    if (c === '\\' && escapable(at(i + 1))) {
      i++;
      const escaped = source[i] as string;
      out += escaped;
      if (escaped !== '\r') canStartQuote = escaped === '\n';
      continue;
    }

    const top = stack[stack.length - 1];
    const inCode = top !== undefined && (top.kind === 'code' || top.kind === 'pre');
    if (!(inCode ? c === '`' : RESERVED.includes(c))) {
      out += c;
      if (c !== '\r') canStartQuote = false;
      continue;
    }

    let closes = false;
    if (top) {
      if (inQuote && c === '\n' && at(i + 1) !== '>') closes = true;
      else {
        switch (top.kind) {
          case 'bold':
            closes = c === '*';
            break;
          case 'italic':
            closes = c === '_' && at(i + 1) !== '_';
            break;
          case 'code':
            closes = c === '`';
            break;
          case 'pre':
            closes = c === '`' && at(i + 1) === '`' && at(i + 2) === '`';
            break;
          case 'text_link':
          case 'custom_emoji':
            closes = c === ']';
            break;
          case 'underline':
            closes = c === '_' && at(i + 1) === '_';
            break;
          case 'strikethrough':
            closes = c === '~';
            break;
          case 'spoiler':
            closes = c === '|' && at(i + 1) === '|';
            break;
          case 'blockquote':
            closes = false;
            break;
        }
      }
    }

    if (!closes) {
      const markerAt = i;
      let kind: Kind | undefined;
      let language = '';
      switch (c) {
        case '_':
          if (at(i + 1) === '_') {
            kind = 'underline';
            i++;
          } else kind = 'italic';
          break;
        case '*':
          kind = 'bold';
          break;
        case '~':
          kind = 'strikethrough';
          break;
        case '|':
          if (at(i + 1) !== '|') throw reserved(c);
          i++;
          kind = 'spoiler';
          break;
        case '[':
          kind = 'text_link';
          break;
        case '`':
          if (at(i + 1) === '`' && at(i + 2) === '`') {
            i += 3;
            kind = 'pre';
            let langEnd = i;
            while (
              langEnd < source.length &&
              !/\s/.test(source[langEnd] as string) &&
              source[langEnd] !== '`'
            )
              langEnd++;
            if (i !== langEnd && langEnd < source.length && source[langEnd] !== '`') {
              language = source.slice(i, langEnd);
              i = langEnd;
            }
            // One line break right after the opening fence is not part of the code.
            const nl = at(i);
            if (nl === '\n' || nl === '\r') {
              const next = at(i + 1);
              i += (next === '\n' || next === '\r') && next !== nl ? 2 : 1;
            }
            i--;
          } else kind = 'code';
          break;
        case '!':
          if (at(i + 1) !== '[') throw reserved(c);
          i++;
          kind = 'custom_emoji';
          break;
        case '\n':
          out += '\n';
          canStartQuote = true;
          break;
        case '>':
          if (!canStartQuote) throw reserved(c);
          if (!inQuote) {
            kind = 'blockquote';
            inQuote = true;
          }
          break;
        default:
          throw reserved(c);
      }
      if (kind !== undefined) stack.push({ kind, language, offset: out.length, at: markerAt });
      continue;
    }

    // Closing the innermost entity.
    let open = stack[stack.length - 1] as Open;
    let type: string = open.kind;
    if (c === '\n' && open.kind !== 'blockquote') {
      // "…||" at the end of a quoted line marks the quote expandable; anything else is left open.
      const spoilerMark =
        open.kind === 'spoiler' && (open.at === i - 2 || (open.at === i - 3 && out.endsWith('\r')));
      if (!spoilerMark) throw unclosed(open);
      stack.pop();
      open = stack[stack.length - 1] as Open;
      if (open.kind !== 'blockquote') throw unclosed(open);
      type = 'expandable_blockquote';
    }
    let skip = out.length === open.offset;
    const entity: Entity = { offset: open.offset, length: 0, type };
    switch (open.kind) {
      case 'underline':
      case 'spoiler':
        i++;
        break;
      case 'pre':
        i += 2;
        if (open.language) entity.language = open.language;
        break;
      case 'text_link': {
        let url: string;
        if (at(i + 1) !== '(') url = out.slice(open.offset);
        else {
          const target = readTarget(i, 'a URL');
          url = target.url;
          i = target.close;
        }
        const userId = linkUserId(url);
        if (userId !== undefined) {
          entity.type = 'text_mention';
          entity.user = resolveUser(userId);
        } else {
          const checked = checkedLink(url);
          if (checked === undefined) skip = true;
          else entity.url = checked;
        }
        break;
      }
      case 'custom_emoji': {
        if (at(i + 1) !== '(') throw new ParseFailure('Custom emoji entity must contain a tg://emoji URL');
        const target = readTarget(i, 'a custom emoji URL');
        i = target.close;
        entity.custom_emoji_id = customEmojiId(target.url);
        break;
      }
      case 'blockquote':
        inQuote = false;
        out += source[i];
        canStartQuote = true;
        skip = false;
        break;
      default:
        break;
    }
    if (!skip) {
      entity.length = out.length - open.offset;
      entities.push(entity);
    }
    stack.pop();
  }

  if (inQuote) {
    let type = 'blockquote';
    const top = stack[stack.length - 1];
    if (top?.kind === 'spoiler' && top.at === source.length - 2) {
      stack.pop();
      type = 'expandable_blockquote';
    }
    const quote = stack[stack.length - 1];
    if (quote?.kind === 'blockquote') {
      if (out.length !== quote.offset)
        entities.push({ offset: quote.offset, length: out.length - quote.offset, type });
      stack.pop();
    }
  }
  const left = stack[stack.length - 1];
  if (left) throw unclosed(left);
  return { text: out, entities };
}
