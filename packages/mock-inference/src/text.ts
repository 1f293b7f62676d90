// Deterministic text helpers: tokenisation, token estimates, message text, stop strings, JSON samples.

const TOKEN_RE = /\s*\S{1,8}/g;

/** Split text into tokens (a word with its leading space, long words cut every 8 chars); join() gives it back. */
export function splitTokens(text: string): string[] {
  if (text.length === 0) return [];
  const tokens: string[] = text.match(TOKEN_RE) ?? [];
  let len = 0;
  for (const t of tokens) len += t.length;
  if (len < text.length) {
    // Trailing whitespace belongs to the last token so nothing is lost.
    const rest = text.slice(len);
    if (tokens.length > 0) tokens[tokens.length - 1] += rest;
    else tokens.push(rest);
  }
  return tokens;
}

export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** Text of an OpenAI/Ollama message content: a string or an array of parts. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const part of content) {
    if (typeof part === 'string') out += part;
    else if (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string') {
      out += (out ? '\n' : '') + (part as { text: string }).text;
    }
  }
  return out;
}

interface MessageLike {
  role?: unknown;
  content?: unknown;
  tool_calls?: unknown;
}

/** Last user message text and total prompt characters (content plus tool-call payloads). */
export function scanMessages(messages: MessageLike[]): { lastUser: string; chars: number } {
  let lastUser = '';
  let chars = 0;
  for (const m of messages) {
    if (!m || typeof m !== 'object') continue;
    const text = contentText(m.content);
    chars += text.length + 4;
    if (m.role === 'user') lastUser = text;
    if (Array.isArray(m.tool_calls)) chars += JSON.stringify(m.tool_calls).length;
  }
  return { lastUser, chars };
}

/** Cut text at the first occurrence of any stop string. */
export function applyStop(text: string, stop: unknown): string {
  const list = typeof stop === 'string' ? [stop] : Array.isArray(stop) ? stop : undefined;
  if (!list) return text;
  let cut = text.length;
  for (const s of list) {
    if (typeof s !== 'string' || s.length === 0) continue;
    const i = text.indexOf(s);
    if (i >= 0 && i < cut) cut = i;
  }
  return cut < text.length ? text.slice(0, cut) : text;
}

/** A small value conforming to a JSON schema (enough for structured-output smoke tests). */
export function sampleFromSchema(schema: unknown, depth = 0): unknown {
  if (!schema || typeof schema !== 'object' || depth > 6) return null;
  const s = schema as Record<string, unknown>;
  if ('const' in s) return s['const'];
  if (Array.isArray(s['enum']) && s['enum'].length > 0) return s['enum'][0];
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const alts = s[key];
    if (Array.isArray(alts) && alts.length > 0) return sampleFromSchema(alts[0], depth + 1);
  }
  let type = s['type'];
  if (Array.isArray(type)) type = type.find((t) => t !== 'null') ?? type[0];
  if (type === undefined && s['properties']) type = 'object';
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const props = (s['properties'] ?? {}) as Record<string, unknown>;
      for (const [k, v] of Object.entries(props)) out[k] = sampleFromSchema(v, depth + 1);
      return out;
    }
    case 'array':
      return s['items'] ? [sampleFromSchema(s['items'], depth + 1)] : [];
    case 'string':
      return 'mock';
    case 'integer':
      return 1;
    case 'number':
      return 1.5;
    case 'boolean':
      return true;
    default:
      return null;
  }
}
