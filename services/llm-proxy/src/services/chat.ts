import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, type Logger } from '@pincer/shared';
import type { ApiKey } from '../config.ts';
import {
  type ChunkStream,
  type Json,
  type Target,
  type UpstreamApi,
  uniqueId,
} from '../repositories/upstream-client.ts';
import { UpstreamError } from '../repositories/upstream-errors.ts';
import type { Limits } from './limits.ts';
import type { ProxyMetrics } from './metrics.ts';
import type { Registry, RegistryModel } from './registry.ts';
import { estimatePromptTokens } from './tokens.ts';
import { NoNodeAvailable, type UpstreamNode, type UpstreamProvider } from './upstreams.ts';

/** Where a streamed answer goes; the HTTP layer implements it over the response. */
export interface StreamSink {
  /** Sends the status line and headers: the commit point after which no retry or fallback happens. */
  start(headers: Record<string, string>): void;
  /** Writes SSE text; resolves when the client can take more (backpressure). */
  write(text: string): void | Promise<void>;
  end(): void;
}

export interface CallContext {
  requestId: string;
  key: ApiKey;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  /** performance.now() when the request arrived. */
  startedAt: number;
  /** Filled in by the service: what the request waited for (not the proxy's own time). */
  attempts?: Attempts;
}

/** Milliseconds of a request spent waiting on queues, backoff and upstreams. */
export function excludedMs(ctx: CallContext): number {
  return ctx.attempts ? ctx.attempts.waitedMs + ctx.attempts.upstreamMs : 0;
}

export type Endpoint = 'chat' | 'embeddings';

/** Bookkeeping of one client request across attempts. */
export interface Attempts {
  /** Time spent waiting (queue, backoff, failed attempts): not the proxy's own overhead. */
  waitedMs: number;
  tried: Set<UpstreamNode>;
  lastError: UpstreamError | AppError | undefined;
  retries: number;
  /** Time the successful attempt spent waiting for its upstream. */
  upstreamMs: number;
}

export function newAttempts(): Attempts {
  return { waitedMs: 0, tried: new Set(), lastError: undefined, retries: 0, upstreamMs: 0 };
}

export interface ChatResult {
  status: number;
  headers: Record<string, string>;
  body: Json;
}

/** What the client sees when no attempt succeeded: the kind of failure, never node addresses. */
const NO_UPSTREAM = (model: string, cause?: UpstreamError | AppError): AppError => {
  if (cause instanceof AppError) return cause;
  const retry = { 'retry-after': '5' };
  switch (cause?.failure) {
    case 'timeout':
      return new AppError(504, 'upstream_timeout', `The model '${model}' did not answer in time.`, {
        type: 'server_error',
      });
    case 'connect':
      return new AppError(
        503,
        'upstream_unavailable',
        `The model '${model}' is unavailable: its server cannot be reached.`,
        { type: 'server_error', headers: retry },
      );
    case 'status':
      if (cause.status === 429)
        return new AppError(503, 'upstream_busy', `The model '${model}' is overloaded.`, {
          type: 'server_error',
          headers: retry,
        });
      return new AppError(
        502,
        'upstream_error',
        `The model '${model}' failed (upstream HTTP ${cause.status}).`,
        { type: 'server_error' },
      );
    case undefined:
      return new AppError(503, 'no_upstream_available', `No server can run the model '${model}' right now.`, {
        type: 'server_error',
        headers: retry,
      });
    default:
      return new AppError(502, 'upstream_error', `The model '${model}' sent an invalid response.`, {
        type: 'server_error',
      });
  }
};

export function completionId(): string {
  return uniqueId('chatcmpl-');
}

/** Runs one OpenAI request against the registry: node choice, retries, fallbacks, limits and accounting. */
export class ModelCaller {
  readonly registry: Registry;
  private readonly providers: ReadonlyMap<string, UpstreamProvider>;
  private readonly apis: Record<'openai' | 'ollama', UpstreamApi>;
  readonly metrics: ProxyMetrics;
  readonly limits: Limits;
  readonly log: Logger;

  constructor(deps: {
    registry: Registry;
    providers: ReadonlyMap<string, UpstreamProvider>;
    apis: Record<'openai' | 'ollama', UpstreamApi>;
    metrics: ProxyMetrics;
    limits: Limits;
    log: Logger;
  }) {
    this.registry = deps.registry;
    this.providers = deps.providers;
    this.apis = deps.apis;
    this.metrics = deps.metrics;
    this.limits = deps.limits;
    this.log = deps.log;
  }

  resolve(name: unknown, ctx: CallContext, capability: 'chat' | 'embeddings'): RegistryModel {
    if (name !== undefined && name !== null && typeof name !== 'string')
      throw new AppError(400, 'invalid_type', "'model' must be a string", { param: 'model' });
    const model = this.registry.resolve(name ?? undefined);
    if (!model) {
      if (!name)
        throw new AppError(
          400,
          'missing_required_parameter',
          "Missing required parameter: 'model' (no default model is configured).",
          { param: 'model' },
        );
      throw new AppError(404, 'model_not_found', `The model '${name}' does not exist.`, { param: 'model' });
    }
    if (
      ctx.key.models &&
      !ctx.key.models.has(model.id) &&
      !model.aliases.some((a) => ctx.key.models!.has(a))
    ) {
      throw new AppError(403, 'model_not_allowed', `This key may not use the model '${model.id}'.`, {
        param: 'model',
      });
    }
    if (capability === 'embeddings' && !model.capabilities.includes('embeddings')) {
      throw new AppError(400, 'model_not_supported', `The model '${model.id}' does not offer embeddings.`, {
        param: 'model',
      });
    }
    if (capability === 'chat' && model.capabilities.length === 1 && model.capabilities[0] === 'embeddings') {
      throw new AppError(400, 'model_not_supported', `The model '${model.id}' is an embedding model.`, {
        param: 'model',
      });
    }
    return model;
  }

  target(model: RegistryModel, node: UpstreamNode): Target {
    return {
      nodeId: node.id,
      url: node.url,
      provider: model.providerConfig,
      modelId: model.model_id,
      contextWindow: model.context_window,
    };
  }

  api(model: RegistryModel): UpstreamApi {
    return this.apis[model.providerConfig.type];
  }

  /**
   * Tries the model's chain: each model's nodes with retries, then the fallbacks, then as a last resort
   * the node that failed longest ago. `run` performs one attempt; an UpstreamError it throws before the
   * commit point moves on to the next attempt. Returns what `run` returned.
   */
  async attempt<T>(
    primary: RegistryModel,
    ctx: CallContext,
    state: Attempts,
    run: (model: RegistryModel, node: UpstreamNode) => Promise<T>,
    prepare?: (model: RegistryModel) => void,
  ): Promise<T> {
    const allowed = ctx.key.models;
    // a key limited to some models must not be served another one by fallback
    const chain = allowed
      ? this.registry
          .chain(primary)
          .filter((m) => m === primary || allowed.has(m.id) || m.aliases.some((a) => allowed.has(a)))
      : this.registry.chain(primary);
    // retries and fallbacks together never outlast the primary model's total time limit
    const deadline = ctx.startedAt + primary.providerConfig.timeouts.total_ms;
    let triedAny = false;
    for (const model of chain) {
      const provider = this.providers.get(model.provider)!;
      try {
        prepare?.(model);
      } catch (err) {
        // this model cannot take the request (context too small): a fallback may
        if (model === primary && chain.length === 1) throw err;
        state.lastError = err as AppError;
        continue;
      }
      const tries = provider.config.retries.attempts + 1;
      for (let i = 0; i < tries; i++) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        if (triedAny && performance.now() > deadline) break;
        // prefer a node not yet tried; allow a repeat when it is the only one left
        const exclude = provider.anyAvailable(Date.now(), state.tried) ? state.tried : undefined;
        let node: UpstreamNode;
        try {
          node = await this.acquire(provider, model, ctx, state, exclude);
        } catch (err) {
          if (err instanceof NoNodeAvailable) break;
          throw err;
        }
        triedAny = true;
        const result = await this.once(model, node, provider, ctx, state, run);
        if (result.ok) {
          if (model !== primary) this.metrics.fallbacks.inc({ from: primary.id, to: model.id });
          return result.value;
        }
        if (i + 1 < tries) {
          state.retries++;
          this.metrics.retries.inc({ model: model.id });
          const backoff = provider.config.retries.backoff_ms * 2 ** i * (0.5 + Math.random());
          const t = performance.now();
          await sleep(backoff, undefined, { signal: ctx.signal });
          state.waitedMs += performance.now() - t;
        }
      }
    }
    if (!triedAny) {
      // every node of every model is open or down: try the one that failed longest ago instead of refusing
      let last: { model: RegistryModel; node: UpstreamNode } | undefined;
      for (const model of chain) {
        const node = this.providers.get(model.provider)!.leastRecentlyFailed();
        if (node && (!last || node.lastFailureAt < last.node.lastFailureAt)) last = { model, node };
      }
      if (last) {
        const provider = this.providers.get(last.model.provider)!;
        try {
          prepare?.(last.model);
          const node = await this.acquire(provider, last.model, ctx, state, undefined, last.node);
          const result = await this.once(last.model, node, provider, ctx, state, run);
          if (result.ok) return result.value;
        } catch (err) {
          if (!(err instanceof NoNodeAvailable)) throw err;
        }
      }
    }
    const err = state.lastError;
    if (err instanceof UpstreamError && err.clientError) {
      throw new AppError(
        err.status ?? 400,
        err.clientError.code ?? 'upstream_rejected',
        err.clientError.message,
        { type: err.clientError.type, param: err.clientError.param },
      );
    }
    throw NO_UPSTREAM(primary.id, err);
  }

  private async acquire(
    provider: UpstreamProvider,
    model: RegistryModel,
    ctx: CallContext,
    state: Attempts,
    exclude?: Set<UpstreamNode>,
    force?: UpstreamNode,
  ): Promise<UpstreamNode> {
    const got = provider.acquire(model.priority, ctx.signal, exclude, force);
    if (!(got instanceof Promise)) {
      // a request that found a free slot waited 0 s: counted, so the quantiles are over every request
      this.metrics.queueWait.observe({ provider: provider.id }, 0);
      return got;
    }
    const t = performance.now();
    try {
      return await got;
    } finally {
      const waited = performance.now() - t;
      state.waitedMs += waited;
      this.metrics.queueWait.observe({ provider: provider.id }, waited / 1000);
    }
  }

  private async once<T>(
    model: RegistryModel,
    node: UpstreamNode,
    provider: UpstreamProvider,
    ctx: CallContext,
    state: Attempts,
    run: (model: RegistryModel, node: UpstreamNode) => Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false }> {
    state.tried.add(node);
    const t = performance.now();
    try {
      return { ok: true, value: await run(model, node) };
    } catch (err) {
      if (ctx.signal.aborted) {
        node.abandonTrial();
        throw ctx.signal.reason ?? err;
      }
      if (!(err instanceof UpstreamError)) {
        node.abandonTrial();
        throw err;
      }
      state.waitedMs += performance.now() - t;
      state.lastError = err;
      this.metrics.upstreamErrors.inc({ node: node.id, kind: err.failure });
      if (err.nodeFault) node.recordFailure(Date.now(), err.message);
      else node.abandonTrial();
      this.log.warn('upstream attempt failed', {
        requestId: ctx.requestId,
        model: model.id,
        node: node.id,
        failure: err.failure,
        status: err.status,
        error: err.message,
      });
      if (!err.retryable) {
        if (err.clientError)
          throw new AppError(
            err.status ?? 400,
            err.clientError.code ?? 'upstream_rejected',
            err.clientError.message,
            { type: err.clientError.type, param: err.clientError.param },
          );
        throw err;
      }
      return { ok: false };
    } finally {
      provider.release(node);
    }
  }
}

/**
 * Per-attempt time limits (connect is undici's): the total, plus for streams the first token and
 * then the idle gap between chunks. Any of them aborts the attempt's upstream request.
 */
class AttemptTimers {
  readonly controller = new AbortController();
  private gap: NodeJS.Timeout | undefined;
  private readonly total: NodeJS.Timeout;
  private readonly parent: AbortSignal;
  private readonly onParentAbort: () => void;
  private readonly idleMs: number;

  constructor(
    parent: AbortSignal,
    timeouts: { first_token_ms: number; idle_ms: number; total_ms: number },
    stream: boolean,
  ) {
    this.parent = parent;
    this.onParentAbort = () => this.controller.abort(parent.reason);
    parent.addEventListener('abort', this.onParentAbort, { once: true });
    this.idleMs = timeouts.idle_ms;
    if (stream) this.gap = setTimeout(() => this.fire('first token'), timeouts.first_token_ms);
    this.total = setTimeout(() => this.fire('total'), timeouts.total_ms);
  }

  private fire(which: string): void {
    this.controller.abort(
      new UpstreamError('timeout', `upstream ${which} timeout`, { retryable: true, nodeFault: true }),
    );
  }

  /** The first token arrived: from now on the idle gap applies. */
  firstToken(): void {
    clearTimeout(this.gap);
    this.gap = setTimeout(() => this.fire('idle'), this.idleMs);
  }

  /** Data arrived: restart the idle-gap timer (no allocation). */
  touch(): void {
    this.gap?.refresh();
  }

  /** While we wait for a slow client, the upstream's silence is not its fault. */
  pause(): void {
    clearTimeout(this.gap);
  }

  resume(): void {
    this.gap?.refresh();
  }

  /** The reason the attempt was aborted by one of our limits, if it was. */
  get timeout(): UpstreamError | undefined {
    const r: unknown = this.controller.signal.reason;
    return r instanceof UpstreamError ? r : undefined;
  }

  clear(): void {
    clearTimeout(this.gap);
    clearTimeout(this.total);
    this.parent.removeEventListener('abort', this.onParentAbort);
  }
}

function meaningful(c: Json): boolean {
  if (c.usage && !c.choices?.length) return true;
  const ch = c.choices?.[0];
  if (!ch) return false;
  const d = ch.delta;
  return (
    ch.finish_reason != null ||
    (d != null && (!!d.content || !!d.reasoning_content || !!d.reasoning || !!d.tool_calls?.length))
  );
}

interface StreamState {
  id: string;
  model: string;
  created: number;
  includeUsage: boolean;
  roleSent: boolean[];
  usage: Json | undefined;
  outChars: number;
  finish: string | null;
}

/**
 * Normalises one upstream chunk in place: our id and model, `role` in the first delta, reasoning under
 * both names, null-role/content chunks dropped, usage kept for accounting. Returns SSE text or ''.
 */
function normalizeChunk(c: Json, s: StreamState): string {
  if (c.usage) {
    s.usage = c.usage;
    if (!c.choices?.length) {
      if (!s.includeUsage) return '';
    } else if (!s.includeUsage) delete c.usage;
  }
  c.id = s.id;
  c.object = 'chat.completion.chunk';
  c.created = s.created;
  c.model = s.model;
  const choices = c.choices;
  if (choices?.length) {
    let keep = false;
    for (const ch of choices) {
      ch.delta ??= {};
      const d = ch.delta;
      if (d.role === null) delete d.role;
      if (d.content === null) delete d.content;
      if (d.reasoning_content === null) delete d.reasoning_content;
      if (d.reasoning === null) delete d.reasoning;
      if (d.tool_calls === null) delete d.tool_calls;
      const idx = ch.index ?? 0;
      if (!s.roleSent[idx]) {
        d.role = 'assistant';
        s.roleSent[idx] = true;
        keep = true;
      }
      if (d.reasoning_content != null) {
        if (d.reasoning == null) d.reasoning = d.reasoning_content;
      } else if (d.reasoning != null) d.reasoning_content = d.reasoning;
      if (d.content) {
        s.outChars += d.content.length;
        keep = true;
      }
      if (d.reasoning) {
        s.outChars += d.reasoning.length;
        keep = true;
      }
      if (d.tool_calls) {
        for (const tc of d.tool_calls)
          s.outChars += (tc.function?.arguments?.length ?? 0) + (tc.function?.name?.length ?? 0);
        keep = true;
      }
      if (ch.finish_reason != null) {
        s.finish = ch.finish_reason;
        keep = true;
      }
      if (ch.logprobs != null) keep = true;
    }
    if (!keep) return '';
  } else if (!c.usage) return '';
  return `data: ${JSON.stringify(c)}\n\n`;
}

function validatedMax(body: Json, model: RegistryModel, promptTokens: number): number {
  const room = model.context_window - promptTokens;
  const limit = Math.min(model.max_tokens, room);
  if (limit < 1) {
    throw new AppError(
      400,
      'context_length_exceeded',
      `This model's maximum context length is ${model.context_window} tokens; the messages take about ${promptTokens}.`,
      { param: 'messages' },
    );
  }
  const asked = body.max_completion_tokens ?? body.max_tokens;
  return typeof asked === 'number' ? Math.min(asked, limit) : limit;
}

/** Chat completions: defaults from the registry, the model chain, streaming with a commit point. */
export class ChatService {
  private readonly caller: ModelCaller;

  constructor(caller: ModelCaller) {
    this.caller = caller;
  }

  /** Applies the model's defaults and limits to a copy of the client's body. */
  private upstreamBody(body: Json, model: RegistryModel, promptTokens: number): Json {
    const out: Json = { ...body, model: model.model_id };
    const max = validatedMax(body, model, promptTokens);
    if (body.max_completion_tokens != null) out.max_completion_tokens = max;
    else out.max_tokens = max;
    if (out.temperature == null && model.temperature !== undefined) out.temperature = model.temperature;
    if (out.top_p == null && model.top_p !== undefined) out.top_p = model.top_p;
    if (body.stream) out.stream_options = { ...(body.stream_options ?? {}), include_usage: true };
    return out;
  }

  async complete(
    body: Json,
    ctx: CallContext,
    sink: StreamSink | undefined,
  ): Promise<ChatResult | undefined> {
    const caller = this.caller;
    const primary = caller.resolve(body.model, ctx, 'chat');
    const promptTokens = estimatePromptTokens(body);
    const limitHeaders = await caller.limits.charge(ctx.key, promptTokens);
    const state = newAttempts();
    ctx.attempts = state;
    const bodies = new Map<RegistryModel, Json>();
    const prepare = (m: RegistryModel) => {
      if (!bodies.has(m)) bodies.set(m, this.upstreamBody(body, m, promptTokens));
    };
    const id = completionId();
    let served: { model: RegistryModel; node: UpstreamNode } | undefined;
    let status = 200;
    let usage: Json | undefined;
    let estimated = false;
    try {
      if (!body.stream || !sink) {
        const result = await caller.attempt(
          primary,
          ctx,
          state,
          async (model, node) => {
            const timers = new AttemptTimers(ctx.signal, model.providerConfig.timeouts, false);
            const t = performance.now();
            try {
              const r = await caller
                .api(model)
                .chat(caller.target(model, node), bodies.get(model)!, timers.controller.signal);
              state.upstreamMs = performance.now() - t;
              node.recordSuccess(state.upstreamMs);
              served = { model, node };
              return r;
            } catch (err) {
              throw timers.timeout ?? err;
            } finally {
              timers.clear();
            }
          },
          prepare,
        );
        result.id = id;
        result.object = 'chat.completion';
        result.model = served!.model.id;
        result.created ??= Math.floor(Date.now() / 1000);
        let outChars = 0;
        for (const ch of result.choices ?? []) {
          const m = ch.message;
          if (!m) continue;
          if (m.reasoning_content != null && m.reasoning == null) m.reasoning = m.reasoning_content;
          else if (m.reasoning != null && m.reasoning_content == null) m.reasoning_content = m.reasoning;
          outChars +=
            (m.content?.length ?? 0) + (m.reasoning?.length ?? 0) + JSON.stringify(m.tool_calls ?? '').length;
        }
        if (!result.usage) {
          estimated = true;
          const completion = Math.ceil(outChars / 3.5);
          result.usage = {
            prompt_tokens: promptTokens,
            completion_tokens: completion,
            total_tokens: promptTokens + completion,
          };
        }
        usage = result.usage;
        return {
          status: 200,
          headers: { ...limitHeaders, ...this.servedHeaders(served!, ctx, state) },
          body: result,
        };
      }
      await caller.attempt(
        primary,
        ctx,
        state,
        (model, node) =>
          this.stream(
            model,
            node,
            bodies.get(model)!,
            body,
            promptTokens,
            ctx,
            state,
            sink,
            id,
            limitHeaders,
            (u, est) => {
              served = { model, node };
              usage = u;
              estimated = est;
            },
          ),
        prepare,
      );
      return undefined;
    } catch (err) {
      status = ctx.signal.aborted ? 499 : err instanceof AppError ? err.status : 500;
      if (ctx.signal.aborted) caller.metrics.clientAborts.inc({ model: primary.id });
      throw err;
    } finally {
      const model = served?.model.id ?? primary.id;
      if (status >= 500) caller.metrics.errors.inc({ kind: status >= 502 ? 'upstream' : 'internal' });
      caller.metrics.requests.inc({ model, node: served?.node.id ?? 'none', status: String(status) });
      caller.metrics.duration.observe(
        { model, node: served?.node.id ?? 'none' },
        (performance.now() - ctx.startedAt) / 1000,
      );
      if (usage) {
        const source = estimated ? 'estimated' : 'reported';
        caller.metrics.tokens.inc({ model, direction: 'in', source }, usage.prompt_tokens ?? 0);
        caller.metrics.tokens.inc({ model, direction: 'out', source }, usage.completion_tokens ?? 0);
      }
      caller.limits.settle(ctx.key, promptTokens, usage);
    }
  }

  servedHeaders(
    served: { model: RegistryModel; node: UpstreamNode },
    ctx: CallContext,
    state: Attempts,
  ): Record<string, string> {
    return {
      'x-request-id': ctx.requestId,
      'x-pincer-model': served.model.id,
      'x-pincer-upstream': served.node.id,
      ...(state.retries ? { 'x-pincer-retries': String(state.retries) } : {}),
    };
  }

  /** One streaming attempt. Errors before the first token propagate (retry/fallback); after it they end the stream. */
  private async stream(
    model: RegistryModel,
    node: UpstreamNode,
    upstreamBody: Json,
    clientBody: Json,
    promptTokens: number,
    ctx: CallContext,
    state: Attempts,
    sink: StreamSink,
    id: string,
    limitHeaders: Record<string, string>,
    done: (usage: Json, estimated: boolean) => void,
  ): Promise<void> {
    const caller = this.caller;
    const timers = new AttemptTimers(ctx.signal, model.providerConfig.timeouts, true);
    const signal = timers.controller.signal;
    const dispatchAt = performance.now();
    const s: StreamState = {
      id,
      model: model.id,
      created: Math.floor(Date.now() / 1000),
      includeUsage: clientBody.stream_options?.include_usage === true,
      roleSent: [],
      usage: undefined,
      outChars: 0,
      finish: null,
    };
    let upstream: ChunkStream | undefined;
    const pending: Json[] = [];
    try {
      upstream = await caller.api(model).chatStream(caller.target(model, node), upstreamBody, signal);
      // look ahead to the first real token: an error before it can still be retried elsewhere
      let first = false;
      while (!first) {
        const batch = await upstream.next();
        if (batch === null) break;
        timers.touch();
        for (const c of batch) {
          pending.push(c);
          if (!first && meaningful(c)) first = true;
        }
      }
      if (!first)
        throw new UpstreamError('protocol', 'upstream ended the stream without a token', {
          retryable: true,
          nodeFault: true,
        });
    } catch (err) {
      upstream?.cancel();
      timers.clear();
      throw timers.timeout ?? err;
    }

    // the commit point: from here on the client has bytes and the attempt is final
    const estimate = () => ({
      prompt_tokens: promptTokens,
      completion_tokens: Math.ceil(s.outChars / 3.5),
      total_tokens: promptTokens + Math.ceil(s.outChars / 3.5),
    });
    let failed: string | undefined;
    let chunks = 0;
    const firstAt = performance.now();
    try {
      timers.firstToken();
      node.recordSuccess(firstAt - dispatchAt);
      caller.metrics.ttft.observe(
        { model: model.id, node: node.id },
        (firstAt - ctx.startedAt - state.waitedMs) / 1000,
      );
      const overheadBefore = dispatchAt - ctx.startedAt - state.waitedMs;
      let out = '';
      for (const c of pending) out += normalizeChunk(c, s);
      sink.start({
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
        ...limitHeaders,
        ...this.servedHeaders({ model, node }, ctx, state),
        'x-pincer-overhead-ms': (overheadBefore + performance.now() - firstAt).toFixed(3),
      });
      if (out) await this.write(sink, out, timers);
      caller.metrics.overhead.observe(
        { endpoint: 'chat_stream' },
        (overheadBefore + performance.now() - firstAt) / 1000,
      );
      for (;;) {
        const batch = await upstream.next();
        if (batch === null) break;
        timers.touch();
        let text = '';
        for (const c of batch) text += normalizeChunk(c, s);
        chunks += batch.length;
        if (text) await this.write(sink, text, timers);
      }
    } catch (err) {
      upstream.cancel();
      if (ctx.signal.aborted) {
        timers.clear();
        // the client left: what was generated still counts
        done(s.usage ?? estimate(), !s.usage);
        throw ctx.signal.reason ?? err;
      }
      const reason = timers.timeout ?? err;
      failed = reason instanceof Error ? reason.message : String(reason);
      if (!(reason instanceof UpstreamError) || reason.nodeFault) node.recordFailure(Date.now(), failed);
      caller.metrics.upstreamErrors.inc({
        node: node.id,
        kind: reason instanceof UpstreamError ? reason.failure : 'protocol',
      });
      caller.log.warn('upstream failed mid-stream', {
        requestId: ctx.requestId,
        model: model.id,
        node: node.id,
        error: failed,
      });
    } finally {
      timers.clear();
    }
    if (chunks > 0)
      caller.metrics.interToken.observe({ model: model.id }, (performance.now() - firstAt) / chunks / 1000);
    const estimated = !s.usage;
    const usage = s.usage ?? estimate();
    done(usage, estimated);
    let tail = '';
    if (failed) {
      tail += `data: ${JSON.stringify({ error: { message: 'The model stopped before finishing its answer.', type: 'server_error', param: null, code: 'upstream_error' } })}\n\n`;
    } else {
      if (s.finish === null) {
        // the upstream ended without saying why; tell the client it is finished
        tail += `data: ${JSON.stringify({ id: s.id, object: 'chat.completion.chunk', created: s.created, model: s.model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`;
      }
      if (estimated && s.includeUsage) {
        tail += `data: ${JSON.stringify({ id: s.id, object: 'chat.completion.chunk', created: s.created, model: s.model, choices: [], usage })}\n\n`;
      }
      tail += 'data: [DONE]\n\n';
    }
    await sink.write(tail);
    sink.end();
  }

  /** Writes to the client; while it applies backpressure the idle timer does not run. */
  private async write(sink: StreamSink, text: string, timers: AttemptTimers): Promise<void> {
    const wait = sink.write(text);
    if (wait) {
      timers.pause();
      await wait;
      timers.resume();
    }
  }
}
