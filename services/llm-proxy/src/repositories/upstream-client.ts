import { randomBytes } from 'node:crypto';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Pool } from 'undici';
import type { ProviderConfig } from '../config.ts';
import { statusError, transportError, UpstreamError } from './upstream-errors.ts';

// OpenAI request/response bodies are open-ended JSON that we pass through mostly untouched.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire JSON
export type Json = Record<string, any>;

/** What a model call needs to know about where it goes. */
export interface Target {
  nodeId: string;
  url: string;
  provider: ProviderConfig;
  modelId: string;
  contextWindow: number;
}

/** A stream of OpenAI `chat.completion.chunk` objects, a network read's worth at a time. */
export interface ChunkStream {
  /** The next chunks; null at the end. Throws UpstreamError on an error event or a broken stream. */
  next(): Promise<Json[] | null>;
  /** Stops reading and closes the upstream request (the server stops generating). */
  cancel(): void;
}

export interface UpstreamApi {
  chat(target: Target, body: Json, signal: AbortSignal): Promise<Json>;
  chatStream(target: Target, body: Json, signal: AbortSignal): Promise<ChunkStream>;
  embeddings(target: Target, body: Json, signal: AbortSignal): Promise<Json>;
  probe(target: Target, signal: AbortSignal): Promise<{ up: boolean; detail: string }>;
}

const MAX_ERROR_BODY = 64 * 1024;

/** Keep-alive connection pools, one per upstream origin. */
export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();

  private readonly byUrl = new Map<string, { pool: Pool; base: string }>();

  get(url: string, provider: ProviderConfig): { pool: Pool; base: string } {
    const known = this.byUrl.get(url);
    if (known) return known;
    const u = new URL(url);
    let pool = this.pools.get(u.origin);
    if (!pool) {
      const connections = provider.nodes.reduce((n, node) => Math.max(n, node.max_concurrency), 1) + 8;
      pool = new Pool(u.origin, {
        connections,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connect: { timeout: provider.timeouts.connect_ms },
        // our own timers handle first-token, idle and total limits (see ChatService)
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.pools.set(u.origin, pool);
    }
    const entry = { pool, base: u.pathname.replace(/\/+$/, '') };
    this.byUrl.set(url, entry);
    return entry;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => p.destroy())));
    this.pools.clear();
    this.byUrl.clear();
  }
}

async function readLimited(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  let out = '';
  for await (const chunk of body) {
    if (out.length < limit) out += chunk.toString('utf8');
  }
  return out.slice(0, limit);
}

/** POSTs JSON for a streamed answer; returns the response on 2xx, throws a classified UpstreamError otherwise. */
async function postStream(
  pools: UpstreamPools,
  target: Target,
  path: string,
  payload: Json,
  signal: AbortSignal,
  extraHeaders: Record<string, string>,
) {
  const { pool, base } = pools.get(target.url, target.provider);
  let res: Awaited<ReturnType<Pool['request']>>;
  try {
    res = await pool.request({
      method: 'POST',
      path: base + path,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...target.provider.headers,
        ...extraHeaders,
      },
      body: JSON.stringify(payload),
      signal,
    });
  } catch (err) {
    throw transportError(signal.aborted ? (signal.reason ?? err) : err);
  }
  if (res.statusCode >= 200 && res.statusCode < 300) return res;
  let text = '';
  try {
    text = await readLimited(res.body, MAX_ERROR_BODY);
  } catch {
    // the status alone is enough to classify
  }
  throw statusError(res.statusCode, text);
}

function parseJsonObject(text: string): Json {
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed;
  } catch {
    // fall through
  }
  throw new UpstreamError('protocol', 'upstream sent a body that is not a JSON object', {
    retryable: true,
    nodeFault: true,
  });
}

/**
 * POSTs JSON and reads a JSON object back. Uses undici's dispatch() with a small handler: no
 * Readable stream and no async resource per response, which request() costs on every call.
 */
function postJson(
  pools: UpstreamPools,
  target: Target,
  path: string,
  payload: Json,
  signal: AbortSignal,
  extraHeaders: Record<string, string>,
): Promise<Json> {
  const { pool, base } = pools.get(target.url, target.provider);
  return new Promise<Json>((resolve, reject) => {
    if (signal.aborted) return reject(transportError(signal.reason));
    let status = 0;
    let size = 0;
    const parts: Buffer[] = [];
    let controller: { abort(reason: Error): void } | undefined;
    const onAbort = () => controller?.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = () => signal.removeEventListener('abort', onAbort);
    pool.dispatch(
      {
        method: 'POST',
        path: base + path,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...target.provider.headers,
          ...extraHeaders,
        },
        body: JSON.stringify(payload),
      },
      {
        onRequestStart(c) {
          controller = c;
          if (signal.aborted) c.abort(signal.reason);
        },
        onResponseStart(_c, statusCode) {
          status = statusCode;
        },
        onResponseData(_c, chunk) {
          // error bodies are only read far enough to classify them
          if (status < 300 || size < MAX_ERROR_BODY) {
            parts.push(chunk);
            size += chunk.length;
          }
        },
        onResponseEnd() {
          settle();
          const text =
            parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8');
          if (status >= 200 && status < 300) {
            try {
              resolve(parseJsonObject(text));
            } catch (err) {
              reject(err);
            }
          } else reject(statusError(status, text.slice(0, MAX_ERROR_BODY)));
        },
        onResponseError(_c, err) {
          settle();
          reject(transportError(signal.aborted ? (signal.reason ?? err) : err));
        },
      },
    );
  });
}

/** Pulls chunks from an upstream body through a line parser, a read at a time. */
function chunkStream(
  body: AsyncIterable<Buffer> & { destroy(err?: Error): unknown },
  signal: AbortSignal,
  feed: (text: string, out: Json[]) => boolean,
): ChunkStream {
  const it = body[Symbol.asyncIterator]();
  const decoder = new TextDecoder();
  let done = false;
  const cancel = () => {
    done = true;
    // frees the connection and tells the upstream to stop generating
    body.destroy();
  };
  return {
    cancel,
    async next() {
      if (done) return null;
      const out: Json[] = [];
      while (out.length === 0) {
        let r: IteratorResult<Buffer>;
        try {
          r = await it.next();
        } catch (err) {
          cancel();
          throw transportError(signal.aborted ? (signal.reason ?? err) : err);
        }
        try {
          if (r.done) {
            done = true;
            feed(decoder.decode(), out);
            return out.length ? out : null;
          }
          if (feed(decoder.decode(r.value, { stream: true }), out)) {
            done = true;
            return out;
          }
        } catch (err) {
          cancel();
          throw err;
        }
      }
      return out;
    },
  };
}

function streamErrorFrom(obj: Json): UpstreamError {
  const e = typeof obj.error === 'object' && obj.error ? obj.error : obj;
  const message =
    typeof e.message === 'string'
      ? e.message
      : typeof obj.error === 'string'
        ? obj.error
        : 'error in upstream stream';
  return new UpstreamError('stream_error', `upstream stream error: ${message}`, {
    retryable: true,
    nodeFault: true,
  });
}

/** OpenAI-compatible servers: vLLM, SGLang/KTransformers, llama.cpp, LM Studio, Ollama's /v1, cloud APIs. */
export class OpenAIUpstream implements UpstreamApi {
  private readonly pools: UpstreamPools;
  private readonly healthPaths = new Map<string, string>();

  constructor(pools: UpstreamPools) {
    this.pools = pools;
  }

  private auth(target: Target): Record<string, string> {
    const key = target.provider.api_key;
    return key ? { authorization: `Bearer ${key}` } : {};
  }

  async chat(target: Target, body: Json, signal: AbortSignal): Promise<Json> {
    return postJson(this.pools, target, '/chat/completions', body, signal, this.auth(target));
  }

  async chatStream(target: Target, body: Json, signal: AbortSignal): Promise<ChunkStream> {
    const res = await postStream(this.pools, target, '/chat/completions', body, signal, this.auth(target));
    const contentType = String(res.headers['content-type'] ?? '');
    if (!contentType.includes('text/event-stream')) {
      // some servers answer an error as JSON with status 200 when streaming
      let text: string;
      try {
        text = await readLimited(res.body, MAX_ERROR_BODY);
      } catch (err) {
        throw transportError(signal.aborted ? (signal.reason ?? err) : err);
      }
      const json = parseJsonObject(text);
      if (json.error || json.object === 'error') throw streamErrorFrom(json);
      throw new UpstreamError('protocol', `upstream did not stream (content-type ${contentType || 'none'})`, {
        retryable: true,
        nodeFault: true,
      });
    }
    let batch: Json[] = [];
    let finished = false;
    let failure: UpstreamError | undefined;
    const parser = createParser({
      onEvent(ev: EventSourceMessage) {
        if (finished || failure) return;
        const data = ev.data;
        if (data === '[DONE]') {
          finished = true;
          return;
        }
        if (!data) return;
        let obj: Json;
        try {
          obj = JSON.parse(data);
        } catch {
          failure = new UpstreamError('protocol', 'upstream sent a stream event that is not JSON', {
            retryable: true,
            nodeFault: true,
          });
          return;
        }
        if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
          failure = new UpstreamError('protocol', 'upstream sent a stream event that is not a JSON object', {
            retryable: true,
            nodeFault: true,
          });
          return;
        }
        if (ev.event === 'error' || obj.error !== undefined || obj.object === 'error')
          failure = streamErrorFrom(obj);
        else batch.push(obj);
      },
    });
    return chunkStream(res.body, signal, (text, out) => {
      batch = out;
      parser.feed(text);
      if (failure) throw failure;
      return finished;
    });
  }

  async embeddings(target: Target, body: Json, signal: AbortSignal): Promise<Json> {
    return postJson(this.pools, target, '/embeddings', body, signal, this.auth(target));
  }

  async probe(target: Target, signal: AbortSignal): Promise<{ up: boolean; detail: string }> {
    const { pool, base } = this.pools.get(target.url, target.provider);
    const candidates = target.provider.health.path
      ? [target.provider.health.path]
      : ['/health', `${base}/models`];
    const known = this.healthPaths.get(target.url);
    for (const path of known ? [known] : candidates) {
      try {
        const res = await pool.request({ method: 'GET', path, headers: this.auth(target), signal });
        const text = await readLimited(res.body, 4096);
        if (res.statusCode === 404 && !known && path !== candidates.at(-1)) continue;
        this.healthPaths.set(target.url, path);
        if (res.statusCode >= 200 && res.statusCode < 300)
          return { up: true, detail: `${path} ${res.statusCode}` };
        // llama.cpp and vLLM answer 503 while the model loads: reachable, not ready
        const why =
          res.statusCode === 503 && /loading/i.test(text) ? 'model loading' : `HTTP ${res.statusCode}`;
        return { up: false, detail: `${path} ${why}` };
      } catch (err) {
        return { up: false, detail: transportError(err).message };
      }
    }
    return { up: false, detail: 'no health endpoint answered' };
  }
}

const FINISH: Record<string, string> = { stop: 'stop', length: 'length', load: 'stop', unload: 'stop' };

const ID_PREFIX = randomBytes(6).toString('base64url');
let idCounter = 0;

/** Unique ids without a syscall per call: a per-process random prefix and a counter. */
export function uniqueId(kind: string): string {
  return `${kind}${ID_PREFIX}${(idCounter++).toString(36).padStart(6, '0')}`;
}

function callId(): string {
  return uniqueId('call_');
}

function textOf(content: unknown): { text: string; images: string[] } {
  if (typeof content === 'string') return { text: content, images: [] };
  if (!Array.isArray(content)) return { text: '', images: [] };
  const texts: string[] = [];
  const images: string[] = [];
  for (const part of content as Json[]) {
    if (part?.type === 'text' && typeof part.text === 'string') texts.push(part.text);
    else if (part?.type === 'image_url') {
      const url: unknown = typeof part.image_url === 'string' ? part.image_url : part.image_url?.url;
      const m = typeof url === 'string' ? /^data:image\/[\w.+-]+;base64,(.*)$/s.exec(url) : null;
      if (!m)
        throw new UpstreamError('status', 'Ollama takes images only as base64 data: URLs', {
          status: 400,
          retryable: false,
          nodeFault: false,
          clientError: {
            message: 'Ollama takes images only as base64 data: URLs',
            type: 'invalid_request_error',
            param: 'messages',
            code: 'unsupported_image_url',
          },
        });
      images.push(m[1]!);
    }
  }
  return { text: texts.join('\n'), images };
}

function parseArgs(args: unknown): unknown {
  if (typeof args !== 'string') return args ?? {};
  try {
    return JSON.parse(args);
  } catch {
    return {};
  }
}

/** An OpenAI chat request in Ollama's native /api/chat form, so num_ctx and keep_alive can be set. */
export function toOllamaChat(body: Json, target: Target, stream: boolean): Json {
  const toolNames = new Map<string, string>();
  const messages = (body.messages as Json[]).map((m) => {
    const { text, images } = textOf(m.content);
    const out: Json = { role: m.role === 'developer' ? 'system' : m.role, content: text };
    if (images.length) out.images = images;
    if (typeof m.reasoning_content === 'string') out.thinking = m.reasoning_content;
    if (Array.isArray(m.tool_calls)) {
      out.tool_calls = m.tool_calls.map((tc: Json) => {
        if (tc.id) toolNames.set(tc.id, tc.function?.name);
        return { function: { name: tc.function?.name, arguments: parseArgs(tc.function?.arguments) } };
      });
    }
    if (m.role === 'tool') {
      const name = m.name ?? toolNames.get(m.tool_call_id);
      if (name) out.tool_name = name;
    }
    return out;
  });
  const options: Json = { num_ctx: target.contextWindow };
  const max = body.max_completion_tokens ?? body.max_tokens;
  if (max != null) options.num_predict = max;
  for (const k of ['temperature', 'top_p', 'seed', 'frequency_penalty', 'presence_penalty'] as const)
    if (body[k] != null) options[k] = body[k];
  if (body.stop != null) options.stop = Array.isArray(body.stop) ? body.stop : [body.stop];
  const req: Json = {
    model: target.modelId,
    messages,
    stream,
    keep_alive: target.provider.keep_alive,
    options,
  };
  if (Array.isArray(body.tools) && body.tools.length) req.tools = body.tools;
  const rf = body.response_format;
  if (rf?.type === 'json_object') req.format = 'json';
  else if (rf?.type === 'json_schema' && rf.json_schema?.schema) req.format = rf.json_schema.schema;
  if (body.reasoning_effort != null)
    req.think = body.reasoning_effort === 'none' ? false : body.reasoning_effort;
  return req;
}

function ollamaUsage(r: Json): Json | undefined {
  if (r.prompt_eval_count == null && r.eval_count == null) return undefined;
  const prompt = r.prompt_eval_count ?? 0;
  const completion = r.eval_count ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function ollamaToolCalls(calls: Json[] | undefined, firstIndex = 0): Json[] | undefined {
  if (!Array.isArray(calls) || calls.length === 0) return undefined;
  return calls.map((c, i) => ({
    index: firstIndex + i,
    id: c.id ?? callId(),
    type: 'function',
    function: { name: c.function?.name, arguments: JSON.stringify(c.function?.arguments ?? {}) },
  }));
}

/** Ollama through its native API: /api/chat and /api/embed. */
export class OllamaUpstream implements UpstreamApi {
  private readonly pools: UpstreamPools;

  constructor(pools: UpstreamPools) {
    this.pools = pools;
  }

  async chat(target: Target, body: Json, signal: AbortSignal): Promise<Json> {
    const r = await postJson(this.pools, target, '/api/chat', toOllamaChat(body, target, false), signal, {});
    if (typeof r.error === 'string') throw streamErrorFrom(r);
    const toolCalls = ollamaToolCalls(r.message?.tool_calls);
    const message: Json = { role: 'assistant', content: r.message?.content ?? '' };
    if (r.message?.thinking) message.reasoning_content = r.message.thinking;
    if (toolCalls) message.tool_calls = toolCalls.map(({ index: _i, ...tc }) => tc);
    return {
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      choices: [
        { index: 0, message, finish_reason: toolCalls ? 'tool_calls' : (FINISH[r.done_reason] ?? 'stop') },
      ],
      usage: ollamaUsage(r),
    };
  }

  async chatStream(target: Target, body: Json, signal: AbortSignal): Promise<ChunkStream> {
    const res = await postStream(
      this.pools,
      target,
      '/api/chat',
      toOllamaChat(body, target, true),
      signal,
      {},
    );
    let rest = '';
    // Ollama sends parallel tool calls in separate lines; OpenAI clients merge deltas by index
    let toolIndex = 0;
    const translate = (line: string, out: Json[]): boolean => {
      let r: Json;
      try {
        r = JSON.parse(line);
      } catch {
        throw new UpstreamError('protocol', 'Ollama sent a line that is not JSON', {
          retryable: true,
          nodeFault: true,
        });
      }
      if (!r || typeof r !== 'object' || Array.isArray(r)) {
        throw new UpstreamError('protocol', 'Ollama sent a line that is not a JSON object', {
          retryable: true,
          nodeFault: true,
        });
      }
      if (typeof r.error === 'string') throw streamErrorFrom(r);
      const delta: Json = {};
      const msg = r.message;
      if (msg?.content) delta.content = msg.content;
      if (msg?.thinking) delta.reasoning_content = msg.thinking;
      const toolCalls = ollamaToolCalls(msg?.tool_calls, toolIndex);
      if (toolCalls) {
        delta.tool_calls = toolCalls;
        toolIndex += toolCalls.length;
      }
      if (!r.done) {
        if (delta.content !== undefined || delta.reasoning_content !== undefined || toolCalls)
          out.push({ choices: [{ index: 0, delta, finish_reason: null }] });
        return false;
      }
      out.push({
        choices: [
          {
            index: 0,
            delta,
            finish_reason: toolIndex > 0 ? 'tool_calls' : (FINISH[r.done_reason] ?? 'stop'),
          },
        ],
      });
      const usage = ollamaUsage(r);
      if (usage) out.push({ choices: [], usage });
      return true;
    };
    return chunkStream(res.body, signal, (text, out) => {
      rest += text;
      let nl = rest.indexOf('\n');
      let start = 0;
      while (nl >= 0) {
        const line = rest.slice(start, nl).trim();
        start = nl + 1;
        if (line && translate(line, out)) {
          rest = '';
          return true;
        }
        nl = rest.indexOf('\n', start);
      }
      rest = rest.slice(start);
      return false;
    });
  }

  async embeddings(target: Target, body: Json, signal: AbortSignal): Promise<Json> {
    const input = body.input;
    const texts = typeof input === 'string' ? [input] : input;
    if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) {
      throw new UpstreamError('status', 'Ollama embeds text only, not token arrays', {
        status: 400,
        retryable: false,
        nodeFault: false,
        clientError: {
          message: 'this model embeds text only: input must be a string or an array of strings',
          type: 'invalid_request_error',
          param: 'input',
          code: 'invalid_input',
        },
      });
    }
    const req: Json = {
      model: target.modelId,
      input: texts,
      keep_alive: target.provider.keep_alive,
      truncate: true,
      options: { num_ctx: target.contextWindow },
    };
    if (body.dimensions != null) req.dimensions = body.dimensions;
    const r = await postJson(this.pools, target, '/api/embed', req, signal, {});
    if (!Array.isArray(r.embeddings))
      throw new UpstreamError('protocol', 'Ollama sent no embeddings', { retryable: true, nodeFault: true });
    const tokens = r.prompt_eval_count ?? 0;
    return {
      object: 'list',
      data: r.embeddings.map((embedding: number[], index: number) => ({
        object: 'embedding',
        index,
        embedding,
      })),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  }

  async probe(target: Target, signal: AbortSignal): Promise<{ up: boolean; detail: string }> {
    const { pool } = this.pools.get(target.url, target.provider);
    const path = target.provider.health.path ?? '/api/version';
    try {
      const res = await pool.request({ method: 'GET', path, signal });
      await readLimited(res.body, 4096);
      return res.statusCode >= 200 && res.statusCode < 300
        ? { up: true, detail: `${path} ${res.statusCode}` }
        : { up: false, detail: `${path} HTTP ${res.statusCode}` };
    } catch (err) {
      return { up: false, detail: transportError(err).message };
    }
  }
}
