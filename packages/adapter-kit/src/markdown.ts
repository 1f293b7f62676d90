import type { Token, Tokens } from 'marked';

/**
 * Inline Markdown tokens (marked's lexer) as plain text: formatting dropped, link and image text kept.
 * Table cells use it on both platforms (tables are shown as aligned monospace text). `text` maps the
 * source of plain text runs (Telegram decodes HTML entities there; Feishu keeps them).
 */
export function plainInline(tokens: Token[], text: (raw: string) => string = (raw) => raw): string {
  let out = '';
  for (const token of tokens) {
    switch (token.type) {
      case 'text':
        out += (token as Tokens.Text).tokens
          ? plainInline((token as Tokens.Text).tokens!, text)
          : text(token.raw);
        break;
      case 'escape':
      case 'codespan':
        out += (token as Tokens.Escape | Tokens.Codespan).text;
        break;
      case 'image':
        out += (token as Tokens.Image).text;
        break;
      case 'br':
        out += ' ';
        break;
      case 'strong':
      case 'em':
      case 'del':
      case 'link':
        out += plainInline((token as Tokens.Strong).tokens, text);
        break;
      default:
        out += 'raw' in token && typeof token.raw === 'string' ? token.raw : '';
    }
  }
  return out;
}
