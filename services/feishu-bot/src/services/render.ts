import { alignTable, splitMarkdown } from '@pincer/shared';
import { plainInline } from '@pincer/adapter-kit';
import { getDefaults, Lexer, type Token, type Tokens } from 'marked';

/*
 * Model Markdown → what Feishu renders. What the docs say, and why the code does what it does:
 *
 * Card JSON 2.0 `markdown` element (open.feishu.cn/document/feishu-cards/card-json-v2-components/
 * content-components/rich-text: "支持的 Markdown 语法", "特殊字符转义说明"):
 * - All of CommonMark except HTML blocks, plus GFM tables: the Markdown is re-serialized, not translated.
 * - Feishu's own tags are inline HTML: <at id=all> (pings everyone), <font>, <text_tag>, <link>, <person>,
 *   <number_tag>, <local_datetime>, <audio>, <raw>, <a>, <br>, <hr>. Model text must not trigger them, so
 *   `<` and `>` outside code become `&#60;`/`&#62;`, the `&#NN;` form the doc prescribes for literal
 *   characters. Code is left verbatim: an entity there would show as typed (not verified that tags inside
 *   code are inert, but CommonMark parses no HTML there).
 * - `:NAME:` is a Feishu emoji (`:DONE:`); its first colon is escaped the same way.
 * - Links need an http(s) scheme. Images need an uploaded image_key (a URL fails the card: CardKit error
 *   200570, larksuite/openclaw-lark), so images become links.
 * - Tables: the doc allows four per element, yet sends fail with 230099/11310 "card table number over limit"
 *   from the 4th (openclaw-lark issue #46 and PR #65 settle on 3): later tables become code blocks.
 * - Code languages come from a fixed, case-insensitive list (python, c_sharp, docker_file, …): aliases are
 *   mapped, unknown ones dropped (plain text). Lists nest by four spaces. Task boxes are not in the syntax,
 *   hence ☐/☑.
 *
 * Post `md` tag (open.feishu.cn/document/server-docs/im-v1/message-content-description/create_json):
 * - Documents only <at user_id=…>, [links](…), ordered/unordered lists (4-space nesting), fenced code with
 *   language, `> ` quotes, `---` rules, **bold**, *italic*, ~underline~, ~~strike~~. So headings become
 *   bold lines, tables code blocks, images links; nested quotes are flattened. Inline code is not listed and
 *   keeps its backticks, which read fine either way.
 * - No escaping is documented and backslashes show literally (NousResearch/hermes-agent PR #109140), so
 *   escaped characters are written bare and every `<` gets a zero-width space after it: `<at user_id="all">`
 *   still reads the same but is no longer a mention.
 */

export const CARD_TABLE_LIMIT = 3;
export const CARD_MAX_CHARS = 28000;
export const POST_MAX_CHARS = 3500;

const TASK_OPEN = '☐';
const TASK_DONE = '☑';
const INDENT = '    ';
const ZWSP = '\u200b';

const LANGUAGES = new Set(
  (
    'plain_text abap ada apache apex assembly bash c_sharp cpp c cmake cobol css coffee_script d dart delphi ' +
    'diff django docker_file erlang fortran gherkin go graphql groovy html htmlbars http haskell json java ' +
    'javascript julia kotlin latex lisp lua matlab makefile markdown nginx objective_c ' +
    'opengl_shading_language php perl powershell prolog properties protobuf python r ruby rust sas scss sql ' +
    'scala scheme shell solidity swift toml thrift typescript vbscript visual_basic xml yaml'
  ).split(' '),
);
const LANGUAGE_ALIASES: Readonly<Record<string, string>> = {
  py: 'python',
  python3: 'python',
  js: 'javascript',
  jsx: 'javascript',
  mjs: 'javascript',
  cjs: 'javascript',
  node: 'javascript',
  ts: 'typescript',
  tsx: 'typescript',
  sh: 'shell',
  zsh: 'shell',
  console: 'shell',
  'c++': 'cpp',
  cc: 'cpp',
  cxx: 'cpp',
  hpp: 'cpp',
  h: 'c',
  'c#': 'c_sharp',
  cs: 'c_sharp',
  csharp: 'c_sharp',
  objc: 'objective_c',
  'objective-c': 'objective_c',
  objectivec: 'objective_c',
  dockerfile: 'docker_file',
  docker: 'docker_file',
  yml: 'yaml',
  md: 'markdown',
  rb: 'ruby',
  rs: 'rust',
  kt: 'kotlin',
  kts: 'kotlin',
  golang: 'go',
  ps1: 'powershell',
  pwsh: 'powershell',
  htm: 'html',
  vb: 'visual_basic',
  proto: 'protobuf',
  tex: 'latex',
  coffee: 'coffee_script',
  coffeescript: 'coffee_script',
  make: 'makefile',
  mk: 'makefile',
  text: 'plain_text',
  txt: 'plain_text',
  plaintext: 'plain_text',
  jsonc: 'json',
  json5: 'json',
  svg: 'xml',
  sol: 'solidity',
  patch: 'diff',
  gql: 'graphql',
  hs: 'haskell',
  erl: 'erlang',
  pl: 'perl',
  glsl: 'opengl_shading_language',
  vbs: 'vbscript',
};

type Target = 'card' | 'post';

/**
 * Markdown for a Feishu card markdown element (card JSON schema 2.0): the Markdown the card supports (bold,
 * italics, strikethrough, links, inline code, code blocks with language, lists, quotes, headings, hr, tables –
 * but cards reject more than a few tables: after the 3rd table, render further tables as code blocks), with
 * characters the card would misinterpret as its own tags (<at …>, <font …>, <text_tag>, etc.) escaped as HTML
 * entities.
 */
export function toCardMarkdown(markdown: string): string {
  return new Writer('card').document(markdown);
}

/** Content for a `post` message's `md` tag (the fallback when cards fail): post md supports less – headings become bold, tables become code blocks, images become links. */
export function toPostMd(markdown: string): string {
  return new Writer('post').document(markdown);
}

/**
 * Splits for Feishu: cards ~ maxChars (default 28000 bytes of card JSON budget → use characters), posts 3500
 * characters; uses splitMarkdown. Returns Markdown source parts (render each with toCardMarkdown), each of
 * which stays within maxChars once rendered, escapes included.
 */
export function splitForCard(markdown: string, maxChars: number = CARD_MAX_CHARS): string[] {
  return splitRendered(markdown, maxChars, toCardMarkdown);
}

/** As splitForCard, for `post` messages (render each part with toPostMd). */
export function splitForPost(markdown: string, maxChars: number = POST_MAX_CHARS): string[] {
  return splitRendered(markdown, maxChars, toPostMd);
}

function splitRendered(markdown: string, maxChars: number, render: (md: string) => string): string[] {
  const out: string[] = [];
  const add = (source: string): void => {
    const size = render(source).length;
    if (size <= maxChars || source.length <= 1) {
      out.push(source);
      return;
    }
    // Escapes (`<` → `&#60;`) and re-serialization can grow a part past the budget: cut it finer.
    const smaller = Math.floor((source.length * maxChars * 0.9) / size);
    for (const piece of splitMarkdown(source, Math.max(1, Math.min(smaller, source.length - 1)))) add(piece);
  };
  for (const part of splitMarkdown(markdown, maxChars)) add(part);
  return out;
}

// --- serializer -------------------------------------------------------------------------------------

class Writer {
  private readonly target: Target;
  private tables = 0;

  constructor(target: Target) {
    this.target = target;
  }

  document(markdown: string): string {
    // Fresh options each time: marked's global defaults are shared mutable state.
    const tokens = Lexer.lex(markdown, { ...getDefaults(), gfm: true, breaks: false });
    return this.blocks(tokens, false, '\n\n').trim();
  }

  private blocks(tokens: Token[], inQuote: boolean, sep: string): string {
    const out: string[] = [];
    for (const token of tokens) {
      const text = this.block(token, inQuote);
      if (text !== '') out.push(text);
    }
    return out.join(sep);
  }

  private block(token: Token, inQuote: boolean): string {
    switch (token.type) {
      case 'paragraph':
        return this.inline((token as Tokens.Paragraph).tokens);
      case 'text': {
        const text = token as Tokens.Text;
        return text.tokens ? this.inline(text.tokens) : this.text(text.raw);
      }
      case 'heading': {
        const heading = token as Tokens.Heading;
        const inner = this.inline(heading.tokens, { bold: this.target === 'post' });
        if (inner === '') return '';
        return this.target === 'card' ? `${'#'.repeat(heading.depth)} ${inner}` : `**${inner}**`;
      }
      case 'code': {
        const code = token as Tokens.Code;
        return fenced(code.text, feishuLanguage(code.lang));
      }
      case 'table':
        return this.table(token as Tokens.Table);
      case 'hr':
        // The card doc recommends <hr>; post md documents `---` on its own line.
        return this.target === 'card' ? '<hr>' : '---';
      case 'blockquote': {
        const quote = token as Tokens.Blockquote;
        const inner = this.blocks(quote.tokens, true, '\n\n');
        if (inner === '' || (inQuote && this.target === 'post')) return inner;
        return inner
          .split('\n')
          .map((line) => (line === '' ? '>' : `> ${line}`))
          .join('\n');
      }
      case 'list':
        return this.list(token as Tokens.List, inQuote);
      case 'html':
        return this.text(token.raw.replace(/\n+$/, ''));
      case 'space':
      case 'def':
        return '';
      default:
        return 'raw' in token && typeof token.raw === 'string' ? this.text(token.raw.trim()) : '';
    }
  }

  private list(list: Tokens.List, inQuote: boolean): string {
    const start = typeof list.start === 'number' ? list.start : 1;
    const items = list.items.map((item, index) => {
      const bullet = list.ordered ? `${start + index}.` : '-';
      const task = item.task ? `${item.checked ? TASK_DONE : TASK_OPEN} ` : '';
      const body = this.blocks(
        item.tokens.filter((t) => t.type !== 'checkbox'),
        inQuote,
        list.loose ? '\n\n' : '\n',
      );
      const lines = body.split('\n').map((line, n) => (n === 0 || line === '' ? line : INDENT + line));
      return `${bullet} ${task}${lines.join('\n')}`.trimEnd();
    });
    return items.join(list.loose ? '\n\n' : '\n');
  }

  private table(table: Tokens.Table): string {
    this.tables++;
    if (this.target === 'post' || this.tables > CARD_TABLE_LIMIT) {
      const text = alignTable(
        table.header.map((cell) => plainInline(cell.tokens)),
        table.rows.map((row) => row.map((cell) => plainInline(cell.tokens))),
        table.align,
      );
      return fenced(text, '');
    }
    const row = (cells: Tokens.TableCell[]): string =>
      `| ${cells.map((cell) => this.inline(cell.tokens).replace(/\|/g, '\\|')).join(' | ')} |`;
    const rule = `|${table.align
      .map((a) => (a === 'left' ? ':---' : a === 'right' ? '---:' : a === 'center' ? ':---:' : '---'))
      .join('|')}|`;
    return [row(table.header), rule, ...table.rows.map(row)].join('\n');
  }

  private inline(tokens: Token[], marks: { bold?: boolean; link?: boolean } = {}): string {
    let out = '';
    for (const token of tokens) out += this.inlineToken(token, marks);
    return out;
  }

  private inlineToken(token: Token, marks: { bold?: boolean; link?: boolean }): string {
    switch (token.type) {
      case 'text': {
        const text = token as Tokens.Text;
        return text.tokens ? this.inline(text.tokens, marks) : this.text(text.raw);
      }
      case 'escape': {
        const ch = (token as Tokens.Escape).text;
        if (ch === '<' || ch === '>') return this.text(ch);
        return this.target === 'card' ? token.raw : ch;
      }
      case 'strong': {
        const inner = this.inline((token as Tokens.Strong).tokens, { ...marks, bold: true });
        // A bold heading in a post already wraps this; `****` confuses both renderers.
        return marks.bold || inner === '' ? inner : `**${inner}**`;
      }
      case 'em': {
        const inner = this.inline((token as Tokens.Em).tokens, marks);
        return inner === '' ? '' : `*${inner}*`;
      }
      case 'del': {
        const inner = this.inline((token as Tokens.Del).tokens, marks);
        return inner === '' ? '' : `~~${inner}~~`;
      }
      case 'codespan':
        return token.raw;
      case 'br':
        return this.target === 'card' ? token.raw.replace(/[ \t]+\n$/, '  \n') : '\n';
      case 'link': {
        const link = token as Tokens.Link;
        const inner = this.inline(link.tokens, { ...marks, link: true });
        return this.link(inner, link.href, marks);
      }
      case 'image': {
        const image = token as Tokens.Image;
        return this.link(this.text(image.text), image.href, marks);
      }
      case 'html':
        return this.text(token.raw);
      case 'checkbox':
        return '';
      default:
        return 'raw' in token && typeof token.raw === 'string' ? this.text(token.raw) : '';
    }
  }

  private link(label: string, href: string, marks: { link?: boolean }): string {
    const url = marks.link ? null : httpUrl(href);
    if (!url) return label;
    return `[${label === '' ? this.text(url) : label}](${url})`;
  }

  /** Literal text, made safe for the target. */
  private text(text: string): string {
    if (this.target === 'card') {
      return text
        .replace(/[<>]/g, (c) => (c === '<' ? '&#60;' : '&#62;'))
        .replace(/:(?=[A-Za-z][A-Za-z0-9_]*:)/g, '&#58;');
    }
    // Every `<`, not only tag-like ones: the next character may sit in the following token.
    return text.replace(/</g, `<${ZWSP}`);
  }
}

/** A fence longer than any backtick run inside, so code containing ``` stays one block. */
function fenced(code: string, lang: string): string {
  let longest = 0;
  for (const run of code.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${lang}\n${code}\n${fence}`;
}

function feishuLanguage(lang: string | undefined): string {
  const word = (lang ?? '').trim().split(/\s+/)[0]!.toLowerCase();
  if (LANGUAGES.has(word)) return word;
  return LANGUAGE_ALIASES[word] ?? '';
}

/** http(s) only (the card ignores other schemes); spaces and parentheses encoded so the link stays one token. */
function httpUrl(href: string): string | null {
  let url: URL;
  try {
    url = new URL(href.trim());
  } catch {
    return null;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return null;
  return url.href.replace(/[()<> ]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
