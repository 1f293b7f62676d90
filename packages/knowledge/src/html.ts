// HTML to Markdown-ish text with htmlparser2's streaming parser (no DOM is built): headings become `#`
// lines, blocks become paragraphs, list items `- ` / `1. ` lines, table rows `a | b` lines, <pre> a fence.
import { Parser } from 'htmlparser2';

const SKIPPED = new Set([
  'script',
  'style',
  'noscript',
  'template',
  'svg',
  'canvas',
  'iframe',
  'object',
  'head',
]);
const BLOCKS = new Set([
  'address',
  'article',
  'aside',
  'blockquote',
  'caption',
  'dd',
  'details',
  'dialog',
  'div',
  'dl',
  'dt',
  'fieldset',
  'figcaption',
  'figure',
  'footer',
  'form',
  'header',
  'hgroup',
  'hr',
  'main',
  'nav',
  'p',
  'section',
  'summary',
  'table',
  'tbody',
  'thead',
  'tfoot',
  'body',
  'html',
]);
const HEADING = /^h([1-6])$/;

interface Block {
  text: string;
  listItem: boolean;
}

export interface HtmlText {
  text: string;
  title: string | undefined;
}

export function htmlToText(html: string): HtmlText {
  const blocks: Block[] = [];
  const lists: Array<{ ordered: boolean; count: number }> = [];
  let line = '';
  let prefix = '';
  let listItem = false;
  let skipDepth = 0;
  let pre = 0;
  let inTitle = false;
  let title = '';
  let firstH1: string | undefined;
  let heading = 0;
  let cellsInRow = 0;

  const flush = (): void => {
    // Source whitespace collapses to one space; <br> newlines survive.
    const text = line
      .split('\n')
      .map((l) => l.replace(/[ \t\r\f\v\u00a0]+/g, ' ').trim())
      .filter((l) => l !== '')
      .join('\n');
    if (text) {
      if (heading === 1 && firstH1 === undefined) firstH1 = text;
      blocks.push({ text: prefix + (heading ? text.replace(/\n/g, ' ') : text), listItem });
    }
    line = '';
    prefix = '';
    listItem = false;
    heading = 0;
  };

  const parser = new Parser(
    {
      onopentag(name) {
        if (name === 'title') inTitle = true;
        if (skipDepth > 0 || SKIPPED.has(name)) {
          if (SKIPPED.has(name)) skipDepth++;
          return;
        }
        const h = HEADING.exec(name);
        if (h) {
          flush();
          heading = Number(h[1]);
          prefix = '#'.repeat(heading) + ' ';
        } else if (name === 'ul' || name === 'ol') {
          flush();
          lists.push({ ordered: name === 'ol', count: 0 });
        } else if (name === 'li') {
          flush();
          const list = lists.at(-1);
          const indent = '  '.repeat(Math.max(0, lists.length - 1));
          prefix = indent + (list?.ordered ? `${++list.count}. ` : '- ');
          listItem = true;
        } else if (name === 'pre') {
          flush();
          pre++;
        } else if (name === 'tr') {
          flush();
          cellsInRow = 0;
        } else if (name === 'td' || name === 'th') {
          if (cellsInRow++ > 0) line += ' | ';
        } else if (name === 'br') {
          line += '\n';
        } else if (BLOCKS.has(name)) {
          flush();
        }
      },
      ontext(text) {
        if (inTitle) title += text;
        if (skipDepth > 0) return;
        line += pre > 0 ? text : text.replace(/\s+/g, ' ');
      },
      onclosetag(name) {
        if (name === 'title') inTitle = false;
        if (SKIPPED.has(name)) {
          if (skipDepth > 0) skipDepth--;
          return;
        }
        if (skipDepth > 0) return;
        if (name === 'pre') {
          pre = Math.max(0, pre - 1);
          const code = line.replace(/^\n+|\s+$/g, '');
          line = '';
          if (code) blocks.push({ text: '```\n' + code + '\n```', listItem: false });
        } else if (name === 'ul' || name === 'ol') {
          flush();
          lists.pop();
        } else if (HEADING.test(name) || name === 'li' || name === 'tr' || BLOCKS.has(name)) {
          flush();
        }
      },
    },
    { decodeEntities: true, lowerCaseTags: true },
  );
  parser.write(html);
  parser.end();
  flush();

  let out = '';
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i]!;
    if (i > 0) out += b.listItem && blocks[i - 1]!.listItem ? '\n' : '\n\n';
    out += b.text;
  }
  const cleanTitle = title.replace(/\s+/g, ' ').trim();
  return { text: out, title: cleanTitle || firstH1 };
}
