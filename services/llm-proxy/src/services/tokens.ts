import type { Json } from '../repositories/upstream-client.ts';

// CJK, kana, hangul: roughly one token per character; other scripts roughly four characters per token
const WIDE = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]/g;

/** A quick, deliberately generous token estimate for text (used only when the upstream reports none). */
export function estimateTokens(text: string): number {
  if (!text) return 0;
  const wide = text.match(WIDE)?.length ?? 0;
  return wide + Math.ceil((text.length - wide) / 3.5);
}

function contentLength(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let s = '';
  for (const p of content as Json[]) if (typeof p?.text === 'string') s += p.text;
  return s;
}

/** Estimated prompt tokens of a chat request: message text, tool calls, tool definitions, plus framing. */
export function estimatePromptTokens(body: Json): number {
  let n = 3;
  for (const m of body.messages as Json[]) {
    n += 4 + estimateTokens(contentLength(m.content));
    if (Array.isArray(m.tool_calls)) n += estimateTokens(JSON.stringify(m.tool_calls));
    // a picture costs a few hundred tokens in most vision models
    if (Array.isArray(m.content)) for (const p of m.content as Json[]) if (p?.type === 'image_url') n += 512;
  }
  if (Array.isArray(body.tools)) n += estimateTokens(JSON.stringify(body.tools));
  return n;
}
