import { splitMarkdown, alignTable } from '@pincer/shared';
import { plainInline } from '@pincer/adapter-kit';
import { getDefaults, Lexer, type Token, type Tokens } from 'marked';

/**
 * Model Markdown → Telegram HTML (parse_mode HTML). Telegram accepts only b, i, u, s, a, code, pre,
 * blockquote and tg-spoiler, and only the &lt; &gt; &amp; &quot; entities; a stray `<` or an unbalanced tag
 * makes it reject the whole message ("can't parse entities"). So every piece of text is escaped and every tag
 * is opened and closed by the same function: the output is valid whatever the input, including the half
 * written Markdown of a streaming answer (the lexer already reads an unclosed fence as code to the end and a
 * dangling `**` or `[link` as text).
 */

export interface TelegramPart {
  html: string;
  plain: string;
}

const DEFAULT_LIMIT = 4000;
const HR = '———';
const BULLET = '•';
const TASK_OPEN = '☐';
const TASK_DONE = '☑';
const LINK_SCHEMES = new Set(['http:', 'https:', 'tg:', 'mailto:']);

/**
 * Renders Markdown as Telegram HTML parts (parse_mode HTML), each with visible text ≤ limit (default 4000)
 * characters: splitMarkdown first, then each part rendered. `plain` is the part's text for the fallback when
 * Telegram answers "can't parse entities" (sent without parse_mode: the Markdown source of that part,
 * unchanged). Parts with nothing visible (say, a code fence that has no code yet) are left out.
 */
export function renderTelegram(markdown: string, opts: { limit?: number } = {}): TelegramPart[] {
  const limit = opts.limit ?? DEFAULT_LIMIT;
  const parts: TelegramPart[] = [];
  for (const source of splitMarkdown(markdown, limit)) addPart(source, limit, parts);
  return parts;
}

function addPart(source: string, limit: number, out: TelegramPart[]): void {
  const html = renderHtml(source);
  const visible = visibleLength(html);
  if (visible <= limit || source.length <= 1) {
    if (visible > 0) out.push({ html, plain: source });
    return;
  }
  // Rendering can add text (aligned table columns, list indentation): cut this part finer. Every piece is
  // shorter than the part, so this ends.
  const smaller = Math.floor((source.length * limit * 0.9) / visible);
  for (const piece of splitMarkdown(source, Math.max(1, Math.min(smaller, source.length - 1)))) {
    addPart(piece, limit, out);
  }
}

/** Visible text length of Telegram HTML (tags removed, entities decoded), UTF-16 units: what Telegram counts against 4096. */
export function visibleLength(html: string): number {
  let length = 0;
  for (let i = 0; i < html.length; i++) {
    const ch = html.charCodeAt(i);
    if (ch === 60 /* < */) {
      const close = html.indexOf('>', i);
      if (close === -1) return length + html.length - i;
      i = close;
    } else if (ch === 38 /* & */) {
      const semi = html.indexOf(';', i);
      const decoded =
        semi !== -1 && semi - i <= 10 ? decodeEntity(html.slice(i + 1, semi), TELEGRAM_ENTITIES) : null;
      if (decoded === null) length++;
      else {
        length += decoded.length;
        i = semi;
      }
    } else length++;
  }
  return length;
}

// --- blocks ---------------------------------------------------------------------------------------

interface Block {
  html: string;
  /** A <pre> block: never indented or wrapped (Telegram allows nothing around or inside it). */
  pre: boolean;
  /** Separator placed before this block when blocks are joined. */
  sep: string;
}

interface BlockContext {
  inQuote: boolean;
}

function renderHtml(markdown: string): string {
  // Fresh options each time: marked's global defaults are shared mutable state.
  const tokens = Lexer.lex(markdown, { ...getDefaults(), gfm: true, breaks: false });
  return joinBlocks(renderBlocks(tokens, { inQuote: false })).trimEnd();
}

function joinBlocks(blocks: Block[]): string {
  let html = '';
  blocks.forEach((block, i) => {
    html += (i === 0 ? '' : block.sep) + block.html;
  });
  return html;
}

function flow(html: string): Block {
  // No trailing whitespace on any line of running text (it is invisible and only costs length).
  return { html: html.replace(/[ \t]+(?=\n|$)/g, ''), pre: false, sep: '\n\n' };
}

function renderBlocks(tokens: Token[], ctx: BlockContext): Block[] {
  const blocks: Block[] = [];
  for (const token of tokens) {
    for (const block of renderBlock(token, ctx)) if (block.html !== '') blocks.push(block);
  }
  return blocks;
}

function renderBlock(token: Token, ctx: BlockContext): Block[] {
  switch (token.type) {
    case 'paragraph':
      return [flow(renderInline((token as Tokens.Paragraph).tokens, NO_MARKS))];
    case 'text': {
      const text = token as Tokens.Text;
      return [flow(text.tokens ? renderInline(text.tokens, NO_MARKS) : escapeText(decodeEntities(text.raw)))];
    }
    case 'heading':
      return [flow(bold(renderInline((token as Tokens.Heading).tokens, { ...NO_MARKS, bold: true })))];
    case 'code': {
      const code = token as Tokens.Code;
      if (code.text === '') return [];
      const lang = languageClass(code.lang);
      const attr = lang ? ` class="language-${lang}"` : '';
      return [{ html: `<pre><code${attr}>${escapeText(code.text)}</code></pre>`, pre: true, sep: '\n\n' }];
    }
    case 'table':
      return [{ html: `<pre>${escapeText(tableText(token as Tokens.Table))}</pre>`, pre: true, sep: '\n\n' }];
    case 'hr':
      return [flow(HR)];
    case 'blockquote':
      return renderQuote(token as Tokens.Blockquote, ctx);
    case 'list':
      return renderList(token as Tokens.List, ctx);
    case 'html':
      return [flow(escapeText(token.raw.replace(/\n+$/, '')))];
    case 'space':
    case 'def':
      return [];
    default:
      return 'raw' in token && typeof token.raw === 'string' ? [flow(escapeText(token.raw.trim()))] : [];
  }
}

/** Telegram quotes cannot nest or hold a <pre>: nested quotes are flattened, code blocks split the quote. */
function renderQuote(token: Tokens.Blockquote, ctx: BlockContext): Block[] {
  const inner = renderBlocks(token.tokens, { ...ctx, inQuote: true });
  if (ctx.inQuote) return inner;
  const out: Block[] = [];
  let run: Block[] = [];
  const flush = (): void => {
    if (run.length === 0) return;
    out.push({ html: `<blockquote>${joinBlocks(run)}</blockquote>`, pre: false, sep: run[0]!.sep });
    run = [];
  };
  for (const block of inner) {
    if (block.pre) {
      flush();
      out.push(block);
    } else run.push(block);
  }
  flush();
  if (out.length > 0) out[0] = { ...out[0]!, sep: '\n\n' };
  return out;
}

function renderList(list: Tokens.List, ctx: BlockContext): Block[] {
  const out: Block[] = [];
  const itemSep = list.loose ? '\n\n' : '\n';
  const start = typeof list.start === 'number' ? list.start : 1;
  list.items.forEach((item, index) => {
    const number = `${start + index}.`;
    const task = item.checked ? TASK_DONE : TASK_OPEN;
    const marker = !item.task ? (list.ordered ? number : BULLET) : list.ordered ? `${number} ${task}` : task;
    // Continuation lines line up with the item's text, as in the Markdown source.
    const indent = ' '.repeat(marker.length + 1);
    const children = renderBlocks(
      item.tokens.filter((t) => t.type !== 'checkbox'),
      ctx,
    );
    const add = (block: Block, sep: string): void => {
      out.push({ ...block, sep: out.length === 0 ? '\n\n' : sep });
    };
    if (children.length === 0 || children[0]!.pre) add(flow(marker), itemSep);
    children.forEach((child, i) => {
      const sep = i === 0 ? (child.pre ? '\n' : itemSep) : list.loose ? child.sep : '\n';
      if (child.pre) return add(child, sep);
      const lines = child.html.split('\n').map((line, n) => {
        if (i === 0 && n === 0) return `${marker} ${line}`;
        return line === '' ? '' : indent + line;
      });
      add(flow(lines.join('\n')), sep);
    });
  });
  return out;
}

function tableText(table: Tokens.Table): string {
  return alignTable(
    table.header.map((cell) => plainInline(cell.tokens, decodeEntities)),
    table.rows.map((row) => row.map((cell) => plainInline(cell.tokens, decodeEntities))),
    table.align,
  );
}

// --- inline ---------------------------------------------------------------------------------------

interface Marks {
  bold: boolean;
  italic: boolean;
  strike: boolean;
  /** Inside <a>: Telegram links cannot contain code or other links. */
  link: boolean;
}

const NO_MARKS: Marks = { bold: false, italic: false, strike: false, link: false };

function renderInline(tokens: Token[], marks: Marks): string {
  let html = '';
  for (const token of tokens) html += renderInlineToken(token, marks);
  return html;
}

function renderInlineToken(token: Token, marks: Marks): string {
  switch (token.type) {
    case 'text': {
      const text = token as Tokens.Text;
      // Soft line breaks stay line breaks: chat answers are written line by line.
      return text.tokens ? renderInline(text.tokens, marks) : escapeText(decodeEntities(text.raw));
    }
    case 'escape':
      return escapeText((token as Tokens.Escape).text);
    case 'strong': {
      const inner = renderInline((token as Tokens.Strong).tokens, { ...marks, bold: true });
      return marks.bold ? inner : bold(inner);
    }
    case 'em': {
      const inner = renderInline((token as Tokens.Em).tokens, { ...marks, italic: true });
      return marks.italic ? inner : `<i>${inner}</i>`;
    }
    case 'del': {
      const inner = renderInline((token as Tokens.Del).tokens, { ...marks, strike: true });
      return marks.strike ? inner : `<s>${inner}</s>`;
    }
    case 'codespan': {
      const code = escapeText((token as Tokens.Codespan).text);
      return marks.link ? code : `<code>${code}</code>`;
    }
    case 'br':
      return '\n';
    case 'link': {
      const link = token as Tokens.Link;
      if (marks.link) return renderInline(link.tokens, marks);
      const href = safeHref(link.href);
      let inner = renderInline(link.tokens, { ...marks, link: true });
      if (visibleLength(inner) === 0) inner = escapeText(link.href);
      return href ? `<a href="${escapeAttr(href)}">${inner}</a>` : inner;
    }
    case 'image': {
      const image = token as Tokens.Image;
      const href = marks.link ? null : safeHref(image.href);
      const label = escapeText(image.text || (href ? 'image' : ''));
      return href ? `<a href="${escapeAttr(href)}">${label}</a>` : label;
    }
    case 'html':
      return escapeText(token.raw);
    case 'checkbox':
      return '';
    default:
      return 'raw' in token && typeof token.raw === 'string' ? escapeText(token.raw) : '';
  }
}

function bold(html: string): string {
  return html === '' ? '' : `<b>${html}</b>`;
}

/** Only schemes Telegram opens; anything else (javascript:, file:, relative paths) stays plain text. */
function safeHref(href: string): string | null {
  let url: URL;
  try {
    url = new URL(href.trim());
  } catch {
    return null;
  }
  if (!LINK_SCHEMES.has(url.protocol)) return null;
  if ((url.protocol === 'http:' || url.protocol === 'https:') && url.hostname === '') return null;
  return url.href;
}

/** `language-x` must be a plain token; an odd info string is dropped rather than escaped into the class. */
function languageClass(lang: string | undefined): string | null {
  const word = (lang ?? '').trim().split(/\s+/)[0] ?? '';
  return /^[A-Za-z0-9_+#.-]{1,32}$/.test(word) ? word.toLowerCase() : null;
}

function escapeText(text: string): string {
  return text.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

function escapeAttr(text: string): string {
  return escapeText(text).replace(/"/g, '&quot;');
}

const TELEGRAM_ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"' };
const MARKDOWN_ENTITIES: Readonly<Record<string, string>> = {
  ...TELEGRAM_ENTITIES,
  apos: "'",
  nbsp: '\u00a0',
};

/**
 * Markdown text may carry HTML entities (`&amp;`, `&#8212;`). The common ones are decoded before escaping;
 * any other named entity is shown as typed, because Telegram knows only four.
 */
function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z]{2,8});/g, (all, body: string) => {
    return decodeEntity(body, MARKDOWN_ENTITIES) ?? all;
  });
}

function decodeEntity(body: string, named: Readonly<Record<string, string>>): string | null {
  if (body.startsWith('#')) {
    const hex = body[1] === 'x' || body[1] === 'X';
    const digits = body.slice(hex ? 2 : 1);
    if (!(hex ? /^[0-9a-fA-F]+$/ : /^[0-9]+$/).test(digits)) return null;
    const code = Number.parseInt(digits, hex ? 16 : 10);
    if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return '\ufffd';
    return String.fromCodePoint(code);
  }
  return Object.hasOwn(named, body) ? named[body]! : null;
}
