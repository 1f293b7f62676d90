import { estimateTokens } from '@pincer/shared';
import type { Json } from '../repositories/upstream-client.ts';

export { estimateTokens };

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
