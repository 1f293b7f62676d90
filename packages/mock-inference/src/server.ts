import { createHash } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { embedText, float32ToBase64, inputTexts } from './embeddings.ts';
import { completionId, errorBody, reasoningField, systemFingerprint, toolCallId } from './flavors.ts';
import { applyStop, estimateTokens, sampleFromSchema, scanMessages, splitTokens } from './text.ts';
import type {
  MockFlavor,
  MockOptions,
  MockServer,
  MockStats,
  RecordedRequest,
  ReplyScript,
  ScriptRule,
} from './types.ts';
import { FLAVORS } from './types.ts';

const MAX_RECORDED = 1000;
const OLLAMA_VERSION = '0.12.0';
const OLLAMA_DEFAULT_CTX = 4096;
const OLLAMA_DEFAULT_KEEP_ALIVE_MS = 5 * 60_000;
const JSON_TYPE = 'application/json';

type Kind = 'chat' | 'embed';

interface Frame {
  /** Complete SSE event or NDJSON line; a function is built when sent (for timings). */
  text: string | (() => string);
  /** A generated token: paced by tokenRate. */
  tok: boolean;
}

interface ToolCallPlan {
  id: string;
  name: string;
  args: Record<string, unknown>;
  argsJson: string;
}

interface Plan {
  promptTokens: number;
  reasoning: string[];
  content: string[];
  /** Tool calls without scripted text: message content is null. */
  contentNull: boolean;
  toolCalls: ToolCallPlan[];
  finish: string;
  completionTokens: number;
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  rec: RecordedRequest;
  kind: Kind;
  native: boolean;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire JSON
  body: any;
  model: string;
  stream: boolean;
  script: ReplyScript | undefined;
  timer: NodeJS.Timeout | undefined;
  closed: boolean;
  /** The server destroyed the socket on purpose (script, setDown): not a client abort. */
  killed: boolean;
  hasSlot: boolean;
  queued: boolean;
  loadWaitMs: number;
  // Streaming state.
  frames: Frame[];
  i: number;
  buf: string;
  waited: boolean;
  tokSent: boolean;
  due: number;
  firstDelay: number;
  interval: number;
  noise: number;
  genStart: number;
}

interface Waiter {
  pred: (r: RecordedRequest) => boolean;
  resolve: (r: RecordedRequest) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface LoadedModel {
  numCtx: number;
  expiresAt: number;
}

function noop(): void {}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Ollama keep_alive: seconds as a number, or a Go duration string ('5m', '30s', '1h'); negative = forever. */
function keepAliveMs(v: unknown): number {
  if (typeof v === 'number') return v < 0 ? Number.POSITIVE_INFINITY : v * 1000;
  if (typeof v !== 'string' || v === '') return OLLAMA_DEFAULT_KEEP_ALIVE_MS;
  const m = /^(-?\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) return OLLAMA_DEFAULT_KEEP_ALIVE_MS;
  const n = Number(m[1]);
  if (n < 0) return Number.POSITIVE_INFINITY;
  const unit = m[2] ?? 's';
  return n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
}

function digestOf(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

class Mock implements MockServer {
  readonly flavor: MockFlavor;
  readonly requests: RecordedRequest[] = [];
  url = '';
  port = 0;

  private readonly opts: MockOptions;
  private readonly server: Server;
  private readonly modelSet: Set<string> | undefined;
  private readonly dims: number;
  private readonly contextLength: number;
  private readonly startedAt = Date.now();
  private readonly rules: { rule: ScriptRule; used: number }[] = [];
  private readonly queue: Ctx[] = [];
  private readonly inflight = new Set<Ctx>();
  private readonly waiters = new Set<Waiter>();
  private readonly loaded = new Map<string, LoadedModel>();
  private loadingUntil: number;
  private down = false;
  private seq = 0;
  private health = 0;
  private running = 0;
  private peak = 0;

  constructor(opts: MockOptions) {
    const flavor = opts.flavor ?? 'openai';
    if (!FLAVORS.includes(flavor)) throw new Error(`unknown mock flavor '${flavor}'`);
    this.flavor = flavor;
    this.opts = opts;
    this.modelSet = opts.models && opts.models.length > 0 ? new Set(opts.models) : undefined;
    this.dims = opts.embeddingDims ?? 64;
    this.contextLength = opts.contextLength ?? 32768;
    this.loadingUntil = opts.loadingMs ? this.startedAt + opts.loadingMs : 0;
    this.initLoaded();
    this.server = createServer({ noDelay: true, keepAliveTimeout: 65_000 }, this.onRequest);
  }

  get healthChecks(): number {
    return this.health;
  }
  get active(): number {
    return this.running;
  }
  get maxActive(): number {
    return this.peak;
  }
  get queued(): number {
    return this.queue.length;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        if (addr === null || typeof addr === 'string') return reject(new Error('unexpected server address'));
        this.port = addr.port;
        const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
        this.url = `http://${host}:${addr.port}`;
        resolve();
      });
    });
  }

  // ---------------------------------------------------------------- public API

  script(rule: ScriptRule): void {
    if (!isObject(rule) || !isObject(rule.reply)) throw new TypeError('script rule needs a reply object');
    this.rules.push({ rule, used: 0 });
  }

  reset(): void {
    this.rules.length = 0;
    this.requests.length = 0;
    this.seq = 0;
    this.health = 0;
    this.peak = this.running;
    // A fresh state for the next test: not down, not loading.
    this.down = false;
    this.loadingUntil = 0;
    this.initLoaded();
  }

  setLoading(ms: number): void {
    this.loadingUntil = ms > 0 ? Date.now() + ms : 0;
  }

  setDown(down: boolean): void {
    this.down = down;
    if (!down) return;
    // A dead node also drops what it was serving and its idle keep-alive connections.
    for (const ctx of this.inflight) this.kill(ctx, false);
    this.server.closeIdleConnections();
  }

  stats(): MockStats {
    return {
      active: this.running,
      maxActive: this.peak,
      queued: this.queue.length,
      requests: this.requests.length,
      healthChecks: this.health,
    };
  }

  waitFor(pred: (r: RecordedRequest) => boolean, timeoutMs = 5000): Promise<RecordedRequest> {
    for (const r of this.requests) if (pred(r)) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        pred,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          reject(new Error(`mock waitFor timed out after ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  close(): Promise<void> {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new Error('mock server closed'));
    }
    this.waiters.clear();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---------------------------------------------------------------- bookkeeping

  private initLoaded() {
    this.loaded.clear();
    // The configured first model is what the server loaded at start (what /api/ps shows).
    const first = this.opts.models?.[0];
    if (first) this.loaded.set(first, { numCtx: OLLAMA_DEFAULT_CTX, expiresAt: Number.POSITIVE_INFINITY });
  }

  private isLoading(): boolean {
    return this.loadingUntil !== 0 && Date.now() < this.loadingUntil;
  }

  private notify(rec: RecordedRequest) {
    if (this.waiters.size === 0) return;
    for (const w of this.waiters) {
      let ok: boolean;
      try {
        ok = w.pred(rec);
      } catch {
        ok = false;
      }
      if (ok) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.resolve(rec);
      }
    }
  }

  private knownModel(model: string): boolean {
    const set = this.modelSet;
    if (!set || set.has(model)) return true;
    if (this.flavor !== 'ollama') return false;
    // Ollama treats a missing tag as ':latest'.
    if (model.endsWith(':latest')) return set.has(model.slice(0, -7));
    return !model.includes(':') && set.has(model + ':latest');
  }

  private matchScript(ctx: Ctx, text: string): ReplyScript | undefined {
    for (const entry of this.rules) {
      const { rule } = entry;
      if (rule.times !== undefined && entry.used >= rule.times) continue;
      const m = rule.match;
      if (m) {
        if (m.model !== undefined && m.model !== ctx.model) continue;
        if (m.path !== undefined && m.path !== ctx.rec.path) continue;
        if (m.contains !== undefined && !text.includes(m.contains)) continue;
      }
      entry.used++;
      return rule.reply;
    }
    return undefined;
  }

  // ---------------------------------------------------------------- routing

  private onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    if (path.startsWith('/_mock/')) return this.control(req, res, path, method);
    if (this.down) {
      req.socket.destroy();
      return;
    }
    const ollama = this.flavor === 'ollama';
    switch (path) {
      case '/v1/chat/completions':
        if (method === 'POST') return this.readBody(req, res, path, 'chat', false);
        return this.methodNotAllowed(res);
      case '/v1/embeddings':
        if (method === 'POST') return this.readBody(req, res, path, 'embed', false);
        return this.methodNotAllowed(res);
      case '/v1/models':
        if (method === 'GET') return this.listModels(res, undefined);
        return this.methodNotAllowed(res);
      case '/health':
      case '/health_generate':
        if (ollama || (path === '/health_generate' && this.flavor !== 'sglang')) break;
        return this.healthCheck(res);
      case '/metrics':
        if (this.flavor === 'vllm') return this.metrics(res);
        break;
      case '/':
        if (!ollama) break;
        this.health++;
        return this.sendText(res, 200, 'Ollama is running', method === 'HEAD');
      case '/api/version':
        if (!ollama) break;
        this.health++;
        return this.sendJson(res, 200, { version: OLLAMA_VERSION });
      case '/api/chat':
        if (!ollama) break;
        if (method === 'POST') return this.readBody(req, res, path, 'chat', true);
        return this.methodNotAllowed(res);
      case '/api/embed':
        if (!ollama) break;
        if (method === 'POST') return this.readBody(req, res, path, 'embed', true);
        return this.methodNotAllowed(res);
      case '/api/tags':
        if (!ollama) break;
        return this.sendJson(res, 200, { models: this.ollamaModels(false) });
      case '/api/ps':
        if (!ollama) break;
        return this.sendJson(res, 200, { models: this.ollamaModels(true) });
    }
    if (method === 'GET' && path.startsWith('/v1/models/')) {
      return this.listModels(res, decodeURIComponent(path.slice('/v1/models/'.length)));
    }
    this.notFound(res, method, path);
  };

  private readBody(req: IncomingMessage, res: ServerResponse, path: string, kind: Kind, native: boolean) {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', noop);
    req.on('end', () => {
      const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      this.startCall(req, res, path, kind, native, buf);
    });
  }

  // ---------------------------------------------------------------- response helpers

  private sendJson(res: ServerResponse, status: number, obj: unknown) {
    const s = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(s) });
    res.end(s);
  }

  private sendText(res: ServerResponse, status: number, text: string, head = false) {
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(head ? undefined : text);
  }

  private methodNotAllowed(res: ServerResponse) {
    if (this.flavor === 'vllm' || this.flavor === 'sglang') {
      return this.sendJson(res, 405, { detail: 'Method Not Allowed' });
    }
    if (this.flavor === 'ollama') return this.sendText(res, 405, '405 method not allowed');
    this.sendJson(res, 405, errorBody(this.flavor, 405, 'Method not allowed'));
  }

  private notFound(res: ServerResponse, method: string, path: string) {
    if (this.flavor === 'vllm' || this.flavor === 'sglang')
      return this.sendJson(res, 404, { detail: 'Not Found' });
    if (this.flavor === 'ollama') return this.sendText(res, 404, '404 page not found');
    this.sendJson(res, 404, errorBody(this.flavor, 404, `Invalid URL (${method} ${path})`));
  }

  /** Error for a recorded call, in the flavor's (or Ollama native) shape. */
  private fail(ctx: Ctx, status: number, message: string, code?: string) {
    if (ctx.closed) return;
    ctx.rec.status = status;
    const body = ctx.native ? { error: message } : errorBody(this.flavor, status, message, code);
    this.sendJson(ctx.res, status, body);
  }

  /** Destroy the connection on purpose; with flushFirst, what was generated so far reaches the client first. */
  private kill(ctx: Ctx, flushFirst: boolean) {
    ctx.killed = true;
    if (ctx.timer) clearTimeout(ctx.timer);
    ctx.timer = undefined;
    const socket = ctx.res.socket;
    if (!socket) return;
    if (!flushFirst) {
      socket.destroy();
      return;
    }
    const buf = ctx.buf;
    ctx.buf = '';
    // http corks the socket until the next tick, so destroy only once the write went out.
    ctx.res.write(buf, () => socket.destroy());
  }

  // ---------------------------------------------------------------- health, discovery, control

  private healthCheck(res: ServerResponse) {
    this.health++;
    if (this.isLoading()) return this.sendJson(res, 503, errorBody(this.flavor, 503, 'Loading model'));
    if (this.flavor === 'vllm' || this.flavor === 'sglang') {
      res.writeHead(200, { 'content-length': 0 });
      res.end();
      return;
    }
    this.sendJson(res, 200, { status: 'ok' });
  }

  private metrics(res: ServerResponse) {
    const label = `{model_name="${this.opts.models?.[0] ?? 'mock'}"}`;
    const text =
      `# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running${label} ${this.running}\n` +
      `# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting${label} ${this.queue.length}\n` +
      `# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc${label} 0\n`;
    this.sendText(res, 200, text);
  }

  private modelIds(): string[] {
    return this.opts.models && this.opts.models.length > 0 ? this.opts.models : ['mock'];
  }

  private modelObject(id: string): Record<string, unknown> {
    const created = Math.floor(this.startedAt / 1000);
    switch (this.flavor) {
      case 'vllm':
        return {
          id,
          object: 'model',
          created,
          owned_by: 'vllm',
          root: id,
          parent: null,
          max_model_len: this.contextLength,
          permission: [],
        };
      case 'ollama':
        return { id, object: 'model', created, owned_by: 'library' };
      default:
        return { id, object: 'model', created, owned_by: this.flavor === 'openai' ? 'system' : this.flavor };
    }
  }

  private listModels(res: ServerResponse, one: string | undefined) {
    if (one !== undefined) {
      if (!this.knownModel(one)) {
        return this.sendJson(
          res,
          404,
          errorBody(this.flavor, 404, `model '${one}' not found`, 'model_not_found'),
        );
      }
      return this.sendJson(res, 200, this.modelObject(one));
    }
    this.sendJson(res, 200, { object: 'list', data: this.modelIds().map((id) => this.modelObject(id)) });
  }

  private ollamaModels(loadedOnly: boolean): Record<string, unknown>[] {
    const details = {
      parent_model: '',
      format: 'gguf',
      family: 'llama',
      families: ['llama'],
      parameter_size: '8.0B',
      quantization_level: 'Q4_K_M',
    };
    const size = 4_920_753_328;
    if (!loadedOnly) {
      const modified = new Date(this.startedAt).toISOString();
      return this.modelIds().map((name) => ({
        name,
        model: name,
        modified_at: modified,
        size,
        digest: digestOf(name),
        details,
      }));
    }
    if (this.isLoading()) return [];
    const now = Date.now();
    const out: Record<string, unknown>[] = [];
    for (const [name, m] of this.loaded) {
      if (m.expiresAt <= now) {
        this.loaded.delete(name);
        continue;
      }
      out.push({
        name,
        model: name,
        size,
        digest: digestOf(name),
        details,
        // Go's zero-ish far future for "never unload", like keep_alive -1.
        expires_at: new Date(Number.isFinite(m.expiresAt) ? m.expiresAt : Date.UTC(2318, 0, 1)).toISOString(),
        size_vram: size,
        context_length: m.numCtx,
      });
    }
    return out;
  }

  private control(req: IncomingMessage, res: ServerResponse, path: string, method: string) {
    if (method === 'GET') {
      if (path === '/_mock/stats') return this.sendJson(res, 200, this.stats());
      if (path === '/_mock/requests') {
        return this.sendJson(
          res,
          200,
          this.requests.map(({ headers: _h, ...rest }) => rest),
        );
      }
      return this.sendJson(res, 404, { error: `unknown control endpoint ${method} ${path}` });
    }
    if (method !== 'POST') return this.sendJson(res, 405, { error: 'method not allowed' });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', noop);
    req.on('end', () => {
      let body: unknown;
      const text = Buffer.concat(chunks).toString();
      if (text.trim() !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          return this.sendJson(res, 400, { error: 'body must be JSON' });
        }
      }
      const b = isObject(body) ? body : {};
      try {
        switch (path) {
          case '/_mock/script':
            this.script(b as unknown as ScriptRule);
            break;
          case '/_mock/reset':
            this.reset();
            break;
          case '/_mock/loading':
            this.setLoading(num(b['ms']) ?? 0);
            break;
          case '/_mock/down':
            this.setDown(b['down'] !== false);
            break;
          default:
            return this.sendJson(res, 404, { error: `unknown control endpoint ${method} ${path}` });
        }
      } catch (e) {
        return this.sendJson(res, 400, { error: (e as Error).message });
      }
      this.sendJson(res, 200, { ok: true });
    });
  }

  // ---------------------------------------------------------------- recorded calls

  private startCall(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    kind: Kind,
    native: boolean,
    buf: Buffer,
  ) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire JSON
    let body: any;
    let bad = buf.length === 0;
    if (!bad) {
      try {
        body = JSON.parse(buf.toString());
      } catch {
        bad = true;
      }
    }
    const rec: RecordedRequest = {
      seq: ++this.seq,
      method: req.method ?? 'POST',
      path,
      headers: req.headers,
      body,
      startedAt: Date.now(),
      aborted: false,
      chunksSent: 0,
    };
    if (this.requests.length >= MAX_RECORDED) this.requests.shift();
    this.requests.push(rec);
    const ctx: Ctx = {
      req,
      res,
      rec,
      kind,
      native,
      body,
      model: '',
      stream: false,
      script: undefined,
      timer: undefined,
      closed: false,
      killed: false,
      hasSlot: false,
      queued: false,
      loadWaitMs: 0,
      frames: [],
      i: 0,
      buf: '',
      waited: false,
      tokSent: false,
      due: 0,
      firstDelay: 0,
      interval: 0,
      noise: 0,
      genStart: 0,
    };
    this.inflight.add(ctx);
    res.on('close', () => this.onClose(ctx));
    this.notify(rec);

    if (bad || !isObject(body)) {
      return this.fail(
        ctx,
        400,
        native
          ? 'invalid request: body must be a JSON object'
          : 'We could not parse the JSON body of your request.',
      );
    }
    const model = body['model'];
    if (typeof model !== 'string' || model === '') {
      return this.fail(ctx, 400, native ? 'model is required' : 'you must provide a model parameter');
    }
    ctx.model = model;
    if (!this.knownModel(model)) {
      const msg =
        this.flavor === 'ollama' && !native
          ? `model "${model}" not found, try pulling it first`
          : `model '${model}' not found`;
      return this.fail(ctx, 404, msg, 'model_not_found');
    }
    if (kind === 'chat') {
      const messages = body['messages'];
      if (native) {
        if (messages !== undefined && messages !== null && !Array.isArray(messages)) {
          return this.fail(ctx, 400, 'messages must be an array');
        }
      } else if (!Array.isArray(messages) || messages.length === 0) {
        return this.fail(ctx, 400, "'messages' must be a non-empty array");
      }
      ctx.stream = native ? body['stream'] !== false : body['stream'] === true;
    } else if (!native) {
      if (inputTexts(body['input']) === undefined) {
        return this.fail(ctx, 400, "'input' must be a non-empty string or array of strings");
      }
      const d = body['dimensions'];
      if (d !== undefined && d !== null && !(typeof d === 'number' && Number.isInteger(d) && d > 0)) {
        return this.fail(ctx, 400, "'dimensions' must be a positive integer");
      }
    }
    this.afterLoading(ctx);
  }

  private afterLoading = (ctx: Ctx) => {
    ctx.timer = undefined;
    if (ctx.closed) return;
    if (this.loadingUntil !== 0) {
      const wait = this.loadingUntil - Date.now();
      if (wait > 0) {
        if (this.flavor !== 'ollama') return this.fail(ctx, 503, 'Loading model');
        // Ollama holds the request until the model is in memory.
        ctx.loadWaitMs += wait;
        ctx.timer = setTimeout(this.afterLoading, wait, ctx);
        return;
      }
    }
    const body = ctx.body;
    let text = '';
    if (this.rules.length > 0) {
      if (ctx.kind === 'chat')
        text = Array.isArray(body.messages) ? scanMessages(body.messages).lastUser : '';
      else {
        const input = body.input;
        text = typeof input === 'string' ? input : Array.isArray(input) ? input.join('\n') : '';
      }
    }
    ctx.script = this.rules.length > 0 ? this.matchScript(ctx, text) : undefined;
    this.acquire(ctx);
  };

  private acquire(ctx: Ctx) {
    const max = this.opts.maxParallel;
    if (max === undefined || max <= 0 || this.running < max) {
      this.grant(ctx);
      return this.run(ctx);
    }
    if (this.opts.maxQueue !== undefined && this.queue.length >= this.opts.maxQueue) {
      return this.fail(ctx, 503, 'server busy, please try again.  maximum pending requests exceeded');
    }
    ctx.queued = true;
    this.queue.push(ctx);
  }

  private grant(ctx: Ctx) {
    ctx.hasSlot = true;
    if (++this.running > this.peak) this.peak = this.running;
  }

  private release(ctx: Ctx) {
    if (!ctx.hasSlot) return;
    ctx.hasSlot = false;
    this.running--;
    const next = this.queue.shift();
    if (next) {
      next.queued = false;
      this.grant(next);
      this.run(next);
    }
  }

  private onClose(ctx: Ctx) {
    ctx.closed = true;
    if (ctx.timer) clearTimeout(ctx.timer);
    ctx.timer = undefined;
    this.inflight.delete(ctx);
    if (ctx.queued) {
      ctx.queued = false;
      const i = this.queue.indexOf(ctx);
      if (i >= 0) this.queue.splice(i, 1);
    }
    const rec = ctx.rec;
    if (!ctx.res.writableFinished && !ctx.killed) rec.aborted = true;
    rec.finishedAt = Date.now();
    this.release(ctx);
    this.notify(rec);
  }

  private run(ctx: Ctx) {
    const delay = ctx.script?.delayMs ?? 0;
    if (delay > 0) ctx.timer = setTimeout(this.respond, delay, ctx);
    else this.respond(ctx);
  }

  private respond = (ctx: Ctx) => {
    ctx.timer = undefined;
    if (ctx.closed) return;
    const s = ctx.script;
    if (s?.status !== undefined && s.status >= 400) {
      return this.fail(ctx, s.status, s.errorMessage ?? `Mock error ${s.status}`);
    }
    if (!ctx.stream && s?.disconnectAfterChunks !== undefined) return this.kill(ctx, false);
    if (this.flavor === 'ollama') this.touchModel(ctx);
    if (ctx.kind === 'embed') return ctx.native ? this.ollamaEmbed(ctx) : this.openaiEmbed(ctx);
    if (ctx.native) return this.ollamaChat(ctx);
    this.openaiChat(ctx);
  };

  private touchModel(ctx: Ctx) {
    const body = ctx.body;
    const ka = body.keep_alive;
    if (ka === 0 || ka === '0' || ka === '0s') {
      this.loaded.delete(ctx.model);
      return;
    }
    const numCtx = num(body.options?.num_ctx) ?? this.loaded.get(ctx.model)?.numCtx ?? OLLAMA_DEFAULT_CTX;
    this.loaded.set(ctx.model, { numCtx, expiresAt: Date.now() + keepAliveMs(ka) });
  }

  // ---------------------------------------------------------------- generation plan

  private plan(ctx: Ctx): Plan {
    const body = ctx.body;
    const s = ctx.script;
    const messages = Array.isArray(body.messages) ? body.messages : [];
    const { lastUser, chars } = scanMessages(messages);
    const promptTokens = Math.max(1, estimateTokens(chars));

    let text = s?.content;
    if (text === undefined && !(s?.toolCalls && s.toolCalls.length > 0)) {
      const schema = ctx.native ? jsonSchemaNative(body.format) : jsonSchemaOpenAI(body.response_format);
      if (schema === true) text = JSON.stringify({ reply: 'Mock reply', echo: lastUser.slice(0, 40) });
      else if (schema !== undefined) text = JSON.stringify(sampleFromSchema(schema));
      else text = 'Mock reply: ' + lastUser;
    }
    text = applyStop(text ?? '', ctx.native ? body.options?.stop : body.stop);

    const limitRaw = ctx.native
      ? num(body.options?.num_predict)
      : num(body.max_completion_tokens ?? body.max_tokens);
    const limit = limitRaw !== undefined && limitRaw >= 0 ? Math.floor(limitRaw) : undefined;
    let reasoning = s?.reasoning ? splitTokens(s.reasoning) : [];
    let content = splitTokens(text);
    let toolCalls: ToolCallPlan[] = (s?.toolCalls ?? []).map((t) => ({
      id: toolCallId(this.flavor),
      name: t.name,
      args: t.arguments ?? {},
      argsJson: JSON.stringify(t.arguments ?? {}),
    }));
    let finish = toolCalls.length > 0 ? 'tool_calls' : 'stop';
    if (limit !== undefined && limit < reasoning.length + content.length) {
      reasoning = reasoning.slice(0, limit);
      content = content.slice(0, Math.max(0, limit - reasoning.length));
      toolCalls = [];
      finish = 'length';
    }
    let completionTokens = reasoning.length + content.length;
    for (const t of toolCalls) completionTokens += estimateTokens(t.name.length + t.argsJson.length);
    return {
      promptTokens,
      reasoning,
      content,
      contentNull: toolCalls.length > 0 && s?.content === undefined,
      toolCalls,
      finish: s?.finishReason ?? finish,
      completionTokens,
    };
  }

  private usage(plan: Plan): Record<string, unknown> {
    const u: Record<string, unknown> = {
      prompt_tokens: plan.promptTokens,
      completion_tokens: plan.completionTokens,
      total_tokens: plan.promptTokens + plan.completionTokens,
    };
    switch (this.flavor) {
      case 'openai':
        u['prompt_tokens_details'] = { cached_tokens: 0, audio_tokens: 0 };
        u['completion_tokens_details'] = {
          reasoning_tokens: plan.reasoning.length,
          audio_tokens: 0,
          accepted_prediction_tokens: 0,
          rejected_prediction_tokens: 0,
        };
        break;
      case 'vllm':
        u['prompt_tokens_details'] = null;
        break;
      case 'sglang':
        u['prompt_tokens_details'] = { cached_tokens: 0 };
        u['reasoning_tokens'] = plan.reasoning.length;
        break;
    }
    return u;
  }

  private timings(ctx: Ctx, plan: Plan): string {
    const predictedMs = Math.max(0.001, Date.now() - (ctx.genStart || ctx.rec.startedAt));
    const promptMs = plan.promptTokens * 0.05;
    return JSON.stringify({
      prompt_n: plan.promptTokens,
      prompt_ms: promptMs,
      prompt_per_token_ms: promptMs / plan.promptTokens,
      prompt_per_second: (plan.promptTokens * 1000) / promptMs,
      predicted_n: plan.completionTokens,
      predicted_ms: predictedMs,
      predicted_per_token_ms: plan.completionTokens ? predictedMs / plan.completionTokens : 0,
      predicted_per_second: (plan.completionTokens * 1000) / predictedMs,
    });
  }

  /** Sets pacing for the request from script and server options. */
  private pacing(ctx: Ctx, plan: Plan) {
    const s = ctx.script;
    const rate = s?.tokenRate ?? this.opts.tokenRate ?? 0;
    ctx.interval = rate > 0 ? 1000 / rate : 0;
    ctx.firstDelay = s?.firstTokenDelayMs ?? this.opts.firstTokenDelayMs ?? 0;
    // OpenAI hides reasoning but its tokens still take time before the first visible token.
    if (this.flavor === 'openai' && !ctx.native) ctx.firstDelay += plan.reasoning.length * ctx.interval;
  }

  // ---------------------------------------------------------------- OpenAI-compatible chat

  private openaiChat(ctx: Ctx) {
    const plan = this.plan(ctx);
    this.pacing(ctx, plan);
    ctx.genStart = Date.now();
    if (ctx.stream) return this.startStream(ctx, this.sseFrames(ctx, plan), true);
    const total =
      ctx.firstDelay + Math.max(0, plan.reasoning.length + plan.content.length - 1) * ctx.interval;
    if (total > 0) {
      ctx.timer = setTimeout(this.finishNonStream, total, ctx, plan);
      return;
    }
    this.finishNonStream(ctx, plan);
  }

  private finishNonStream = (ctx: Ctx, plan: Plan) => {
    ctx.timer = undefined;
    if (ctx.closed) return;
    if (ctx.native) return this.ollamaChatNonStream(ctx, plan);
    const flavor = this.flavor;
    const message: Record<string, unknown> = {
      role: 'assistant',
      content: plan.contentNull ? null : plan.content.join(''),
    };
    const rf = reasoningField(flavor);
    if (rf !== undefined) {
      if (plan.reasoning.length > 0) message[rf] = plan.reasoning.join('');
      else if (flavor === 'vllm' || flavor === 'sglang') message[rf] = null;
    }
    if (plan.toolCalls.length > 0) {
      message['tool_calls'] = plan.toolCalls.map((t, index) => {
        const call: Record<string, unknown> = {
          id: t.id,
          type: 'function',
          function: { name: t.name, arguments: t.argsJson },
        };
        if (flavor === 'ollama') call['index'] = index;
        return call;
      });
    } else if (flavor === 'vllm') message['tool_calls'] = [];
    else if (flavor === 'sglang') message['tool_calls'] = null;
    if (flavor === 'openai') {
      message['refusal'] = null;
      message['annotations'] = [];
    }
    const choice: Record<string, unknown> = { index: 0, message, logprobs: null, finish_reason: plan.finish };
    if (flavor === 'vllm') choice['stop_reason'] = null;
    if (flavor === 'sglang') choice['matched_stop'] = null;
    const out: Record<string, unknown> = {
      id: completionId(flavor),
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: ctx.model,
      choices: [choice],
    };
    if (!ctx.script?.omitUsage) out['usage'] = this.usage(plan);
    const fp = systemFingerprint(flavor);
    if (fp !== undefined) out['system_fingerprint'] = fp;
    let json = JSON.stringify(out);
    if (flavor === 'llamacpp') json = json.slice(0, -1) + ',"timings":' + this.timings(ctx, plan) + '}';
    ctx.rec.status = 200;
    ctx.res.writeHead(200, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(json) });
    ctx.res.end(json);
  };

  private sseFrames(ctx: Ctx, plan: Plan): Frame[] {
    const flavor = this.flavor;
    const body = ctx.body;
    const so = isObject(body.stream_options) ? body.stream_options : undefined;
    const wantUsage = so?.['include_usage'] === true && !ctx.script?.omitUsage;
    const continuous = flavor === 'vllm' && wantUsage && so?.['continuous_usage_stats'] === true;
    const base: Record<string, unknown> = {
      id: completionId(flavor),
      object: 'chat.completion.chunk',
      created: Math.floor(Date.now() / 1000),
      model: ctx.model,
    };
    const fp = systemFingerprint(flavor);
    if (fp !== undefined) base['system_fingerprint'] = fp;
    const head = 'data: ' + JSON.stringify(base).slice(0, -1);
    // OpenAI sends "usage": null on every chunk but the last when usage was requested.
    const tail = flavor === 'openai' && wantUsage ? ',"usage":null}\n\n' : '}\n\n';
    const extraChoice =
      flavor === 'vllm' ? ',"stop_reason":null' : flavor === 'sglang' ? ',"matched_stop":null' : '';
    let generated = 0;
    const chunk = (delta: unknown, finish: string | null): string => {
      let s =
        head +
        ',"choices":[{"index":0,"delta":' +
        JSON.stringify(delta) +
        ',"logprobs":null,"finish_reason":' +
        (finish === null ? 'null' : JSON.stringify(finish)) +
        extraChoice +
        '}]';
      if (continuous) {
        s +=
          ',"usage":' +
          JSON.stringify({
            prompt_tokens: plan.promptTokens,
            completion_tokens: generated,
            total_tokens: plan.promptTokens + generated,
          }) +
          '}\n\n';
        return s;
      }
      return s + tail;
    };
    const sg = flavor === 'sglang';
    const ol = flavor === 'ollama';
    const wrap = (d: Record<string, unknown>): Record<string, unknown> =>
      sg ? { role: null, content: null, reasoning_content: null, tool_calls: null, ...d } : d;
    const frames: Frame[] = [];

    // Role chunk: Ollama puts the role on every chunk instead.
    if (!ol) {
      const role =
        flavor === 'openai'
          ? { role: 'assistant', content: '', refusal: null }
          : flavor === 'llamacpp'
            ? { role: 'assistant', content: null }
            : wrap({ role: 'assistant', content: '' });
      frames.push({ text: chunk(role, null), tok: false });
    }
    const rf = reasoningField(flavor);
    if (rf !== undefined) {
      for (const piece of plan.reasoning) {
        generated++;
        const d = ol ? { role: 'assistant', content: '', reasoning: piece } : wrap({ [rf]: piece });
        frames.push({ text: chunk(d, null), tok: true });
      }
    }
    // SGLang's known bug (#18335): one all-null delta in the middle of the content.
    const bugAt = sg ? Math.floor(plan.content.length / 2) : -1;
    if (bugAt === 0) frames.push({ text: chunk({ role: null, content: null }, null), tok: false });
    for (let i = 0; i < plan.content.length; i++) {
      generated++;
      const piece = plan.content[i]!;
      const d = ol ? { role: 'assistant', content: piece } : wrap({ content: piece });
      frames.push({ text: chunk(d, null), tok: true });
      if (i + 1 === bugAt) frames.push({ text: chunk({ role: null, content: null }, null), tok: false });
    }
    let finishSent = false;
    if (plan.toolCalls.length > 0) {
      if (ol) {
        // Ollama: every tool call whole, in one delta that also finishes the choice.
        const calls = plan.toolCalls.map((t, index) => ({
          id: t.id,
          index,
          type: 'function',
          function: { name: t.name, arguments: t.argsJson },
        }));
        frames.push({
          text: chunk({ role: 'assistant', content: '', tool_calls: calls }, plan.finish),
          tok: true,
        });
        finishSent = true;
      } else {
        plan.toolCalls.forEach((t, index) => {
          const first = { index, id: t.id, type: 'function', function: { name: t.name, arguments: '' } };
          frames.push({ text: chunk(wrap({ tool_calls: [first] }), null), tok: true });
          for (const piece of splitTokens(t.argsJson)) {
            frames.push({
              text: chunk(wrap({ tool_calls: [{ index, function: { arguments: piece } }] }), null),
              tok: true,
            });
          }
        });
      }
    }
    generated = plan.completionTokens;
    const usageChunk = (): string => {
      let s = head + ',"choices":[],"usage":' + JSON.stringify(this.usage(plan));
      if (flavor === 'llamacpp') s += ',"timings":' + this.timings(ctx, plan);
      return s + '}\n\n';
    };
    if (!finishSent) {
      const d =
        flavor === 'openai' || flavor === 'llamacpp'
          ? {}
          : ol
            ? { role: 'assistant', content: '' }
            : wrap({ content: '' });
      const text = chunk(d, plan.finish);
      if (flavor === 'llamacpp' && !wantUsage) {
        // llama-server hangs its non-standard timings on the last chunk.
        const stripped = text.slice(0, -3);
        frames.push({ text: () => stripped + ',"timings":' + this.timings(ctx, plan) + '}\n\n', tok: false });
      } else frames.push({ text, tok: false });
    }
    if (wantUsage) frames.push({ text: usageChunk, tok: false });
    return frames;
  }

  // ---------------------------------------------------------------- streaming engine

  private startStream(ctx: Ctx, frames: Frame[], sse: boolean) {
    ctx.rec.status = 200;
    ctx.res.writeHead(
      200,
      sse
        ? { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }
        : { 'content-type': 'application/x-ndjson' },
    );
    ctx.frames = frames;
    ctx.i = 0;
    // SGLang (and any flavor with sseNoise) opens the stream with an SSE comment.
    ctx.buf = sse && (this.flavor === 'sglang' || this.opts.sseNoise) ? ': ping\n\n' : '';
    ctx.due = Date.now();
    this.pump(ctx);
  }

  private onTick = (ctx: Ctx) => {
    ctx.timer = undefined;
    if (!ctx.closed) this.pump(ctx);
  };

  private flush(ctx: Ctx) {
    if (ctx.buf) {
      ctx.res.write(ctx.buf);
      ctx.buf = '';
    } else if (ctx.rec.chunksSent === 0) ctx.res.flushHeaders();
  }

  private pump(ctx: Ctx) {
    const frames = ctx.frames;
    const s = ctx.script;
    const disc = s?.disconnectAfterChunks;
    const hang = s?.hangAfterChunks;
    const rec = ctx.rec;
    const noise = this.opts.sseNoise === true && !ctx.native;
    while (ctx.i < frames.length) {
      if (rec.chunksSent === disc) return this.kill(ctx, true);
      if (rec.chunksSent === hang) return this.flush(ctx);
      const f = frames[ctx.i]!;
      if (!ctx.waited) {
        const wait = ctx.i === 0 ? ctx.firstDelay : f.tok && ctx.tokSent ? ctx.interval : 0;
        if (wait > 0) {
          this.flush(ctx);
          ctx.waited = true;
          // Absolute deadlines: timer lateness does not accumulate over a long stream.
          ctx.due += wait;
          ctx.timer = setTimeout(this.onTick, Math.max(0, ctx.due - Date.now()), ctx);
          return;
        }
      }
      ctx.waited = false;
      if (f.tok) ctx.tokSent = true;
      if (noise) {
        const n = ++ctx.noise;
        if (n % 4 === 2) ctx.buf += ': ping\n\n';
        if (n % 3 === 1) ctx.buf += 'event: completion\n';
      }
      ctx.buf += typeof f.text === 'string' ? f.text : f.text();
      rec.chunksSent++;
      ctx.i++;
      if (this.waiters.size > 0) this.notify(rec);
    }
    if (rec.chunksSent === disc) return this.kill(ctx, true);
    if (rec.chunksSent === hang) return this.flush(ctx);
    if (!ctx.native) ctx.buf += 'data: [DONE]\n\n';
    const buf = ctx.buf;
    ctx.buf = '';
    ctx.res.end(buf);
  }

  // ---------------------------------------------------------------- Ollama native

  private ollamaChat(ctx: Ctx) {
    const body = ctx.body;
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      // Ollama answers an empty chat by loading the model.
      ctx.rec.status = 200;
      return this.sendJson(ctx.res, 200, {
        model: ctx.model,
        created_at: new Date().toISOString(),
        message: { role: 'assistant', content: '' },
        done_reason: 'load',
        done: true,
      });
    }
    const plan = this.plan(ctx);
    this.pacing(ctx, plan);
    ctx.genStart = Date.now();
    if (!ctx.stream) {
      const total =
        ctx.firstDelay + Math.max(0, plan.reasoning.length + plan.content.length - 1) * ctx.interval;
      if (total > 0) {
        ctx.timer = setTimeout(this.finishNonStream, total, ctx, plan);
        return;
      }
      return this.ollamaChatNonStream(ctx, plan);
    }
    const head = '{"model":' + JSON.stringify(ctx.model) + ',"created_at":"' + new Date().toISOString() + '"';
    const line = (message: unknown): string =>
      head + ',"message":' + JSON.stringify(message) + ',"done":false}\n';
    const frames: Frame[] = [];
    for (const piece of plan.reasoning) {
      frames.push({ text: line({ role: 'assistant', content: '', thinking: piece }), tok: true });
    }
    for (const piece of plan.content)
      frames.push({ text: line({ role: 'assistant', content: piece }), tok: true });
    if (plan.toolCalls.length > 0) {
      const calls = plan.toolCalls.map((t) => ({ function: { name: t.name, arguments: t.args } }));
      frames.push({ text: line({ role: 'assistant', content: '', tool_calls: calls }), tok: true });
    }
    frames.push({
      text: () =>
        JSON.stringify({
          model: ctx.model,
          created_at: new Date().toISOString(),
          message: { role: 'assistant', content: '' },
          ...this.ollamaStats(ctx, plan),
        }) + '\n',
      tok: false,
    });
    this.startStream(ctx, frames, false);
  }

  private ollamaStats(ctx: Ctx, plan: Plan): Record<string, unknown> {
    const now = Date.now();
    const evalNs = Math.max(1, now - ctx.genStart) * 1e6;
    const loadNs = Math.max(ctx.loadWaitMs, 1) * 1e6;
    const promptNs = plan.promptTokens * 50_000;
    const finish = plan.finish === 'length' ? 'length' : plan.finish === 'tool_calls' ? 'stop' : plan.finish;
    return {
      done: true,
      done_reason: finish,
      total_duration: Math.max(1, now - ctx.rec.startedAt) * 1e6 + promptNs,
      load_duration: loadNs,
      prompt_eval_count: plan.promptTokens,
      prompt_eval_duration: promptNs,
      eval_count: plan.completionTokens,
      eval_duration: evalNs,
    };
  }

  private ollamaChatNonStream(ctx: Ctx, plan: Plan) {
    const message: Record<string, unknown> = { role: 'assistant', content: plan.content.join('') };
    if (plan.reasoning.length > 0) message['thinking'] = plan.reasoning.join('');
    if (plan.toolCalls.length > 0) {
      message['tool_calls'] = plan.toolCalls.map((t) => ({ function: { name: t.name, arguments: t.args } }));
    }
    ctx.rec.status = 200;
    this.sendJson(ctx.res, 200, {
      model: ctx.model,
      created_at: new Date().toISOString(),
      message,
      ...this.ollamaStats(ctx, plan),
    });
  }

  // ---------------------------------------------------------------- embeddings

  private embed(ctx: Ctx, texts: string[]): { vectors: Float32Array[]; tokens: number } {
    const d = ctx.body.dimensions;
    const dims = Number.isInteger(d) && d > 0 ? (d as number) : this.dims;
    let chars = 0;
    const vectors = texts.map((t) => {
      chars += t.length;
      return embedText(t, dims);
    });
    return { vectors, tokens: Math.max(texts.length, estimateTokens(chars)) };
  }

  private openaiEmbed(ctx: Ctx) {
    const texts = inputTexts(ctx.body.input) ?? [];
    const { vectors, tokens } = this.embed(ctx, texts);
    const b64 = ctx.body.encoding_format === 'base64';
    ctx.rec.status = 200;
    this.sendJson(ctx.res, 200, {
      object: 'list',
      data: vectors.map((v, index) => ({
        object: 'embedding',
        index,
        embedding: b64 ? float32ToBase64(v) : Array.from(v),
      })),
      model: ctx.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }

  private ollamaEmbed(ctx: Ctx) {
    const input = ctx.body.input;
    const texts =
      typeof input === 'string'
        ? [input]
        : Array.isArray(input)
          ? input.filter((x: unknown): x is string => typeof x === 'string')
          : [];
    const started = ctx.rec.startedAt;
    const { vectors, tokens } = this.embed(ctx, texts);
    ctx.rec.status = 200;
    this.sendJson(ctx.res, 200, {
      model: ctx.model,
      embeddings: vectors.map((v) => Array.from(v)),
      total_duration: Math.max(1, Date.now() - started) * 1e6,
      load_duration: Math.max(ctx.loadWaitMs, 1) * 1e6,
      prompt_eval_count: tokens,
    });
  }
}

/** true = free-form JSON mode, an object = JSON schema, undefined = plain text. */
function jsonSchemaOpenAI(rf: unknown): unknown {
  if (!isObject(rf)) return undefined;
  if (rf['type'] === 'json_object') return true;
  if (rf['type'] === 'json_schema') {
    const js = rf['json_schema'];
    return isObject(js) && isObject(js['schema']) ? js['schema'] : true;
  }
  return undefined;
}

function jsonSchemaNative(format: unknown): unknown {
  if (format === 'json') return true;
  return isObject(format) ? format : undefined;
}

export async function startMockServer(opts: MockOptions = {}): Promise<MockServer> {
  const mock = new Mock(opts);
  await mock.listen();
  return mock;
}
