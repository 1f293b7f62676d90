// Legacy "Markdown" parse mode: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting, and
// only _ * ` [ can be escaped.

import { ParseFailure } from '../errors.ts';
import type { Entity } from './entities.ts';
import { checkedLink, linkUserId, utf8Length } from './entities.ts';

export function parseMarkdown(
  source: string,
  resolveUser: (id: number) => Record<string, unknown>,
): { text: string; entities: Entity[] } {
  let out = '';
  const entities: Entity[] = [];
  const n = source.length;
  for (let i = 0; i < n; i++) {
    const c = source[i] as string;
    const next = source[i + 1];
    if (c === '\\' && (next === '_' || next === '*' || next === '`' || next === '[')) {
      out += next;
      i++;
      continue;
    }
    if (c !== '_' && c !== '*' && c !== '`' && c !== '[') {
      out += c;
      continue;
    }
    const begin = i;
    const endChar = c === '[' ? ']' : c;
    let isPre = false;
    let language = '';
    i++;
    if (c === '`' && source[i] === '`' && source[i + 1] === '`') {
      i += 2;
      isPre = true;
      let langEnd = i;
      while (langEnd < n && !/\s/.test(source[langEnd] as string) && source[langEnd] !== '`') langEnd++;
      if (i !== langEnd && langEnd < n && source[langEnd] !== '`') {
        language = source.slice(i, langEnd);
        i = langEnd;
      }
      const nl = source[i];
      if (nl === '\n' || nl === '\r') {
        const after = source[i + 1];
        i += (after === '\n' || after === '\r') && after !== nl ? 2 : 1;
      }
    }
    const offset = out.length;
    while (i < n && (source[i] !== endChar || (isPre && !(source[i + 1] === '`' && source[i + 2] === '`')))) {
      out += source[i++];
    }
    if (i === n)
      throw new ParseFailure(
        `Can't find end of the entity starting at byte offset ${utf8Length(source.slice(0, begin))}`,
      );
    if (out.length !== offset) {
      const length = out.length - offset;
      if (c === '_') entities.push({ offset, length, type: 'italic' });
      else if (c === '*') entities.push({ offset, length, type: 'bold' });
      else if (c === '[') {
        let url = '';
        if (source[i + 1] !== '(') url = source.slice(begin + 1, i);
        else {
          i += 2;
          while (i < n && source[i] !== ')') url += source[i++];
        }
        const userId = linkUserId(url);
        if (userId !== undefined)
          entities.push({ offset, length, type: 'text_mention', user: resolveUser(userId) });
        else {
          const checked = checkedLink(url);
          if (checked !== undefined) entities.push({ offset, length, type: 'text_link', url: checked });
        }
      } else if (isPre) entities.push({ offset, length, type: 'pre', ...(language ? { language } : {}) });
      else entities.push({ offset, length, type: 'code' });
    }
    if (isPre) i += 2;
  }
  return { text: out, entities };
}
