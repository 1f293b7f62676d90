import { AppError } from '@pincer/shared';
import type { Json } from '../repositories/upstream-client.ts';
import { UpstreamError } from '../repositories/upstream-errors.ts';
import { type CallContext, type ChatResult, type ModelCaller, newAttempts } from './chat.ts';
import { estimateTokens } from './tokens.ts';

function inputTokens(input: unknown): number {
  if (typeof input === 'string') return estimateTokens(input);
  if (Array.isArray(input))
    return input.reduce(
      (n: number, x) => n + (typeof x === 'string' ? estimateTokens(x) : Array.isArray(x) ? x.length : 1),
      0,
    );
  return 0;
}

function toBase64(v: number[]): string {
  const f = new Float32Array(v);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

/** /v1/embeddings through the registry; vectors are fetched as floats and encoded here when base64 is asked. */
export class EmbeddingsService {
  private readonly caller: ModelCaller;

  constructor(caller: ModelCaller) {
    this.caller = caller;
  }

  async embed(body: Json, ctx: CallContext): Promise<ChatResult> {
    const caller = this.caller;
    const primary = caller.resolve(body.model, ctx, 'embeddings');
    const estimate = inputTokens(body.input);
    const limitHeaders = await caller.limits.charge(ctx.key, estimate);
    const state = newAttempts();
    ctx.attempts = state;
    const upstreamBody: Json = { ...body, encoding_format: 'float' };
    let served: { model: string; node: string } | undefined;
    let status = 200;
    let usage: Json | undefined;
    try {
      const result = await caller.attempt(primary, ctx, state, async (model, node) => {
        const ac = new AbortController();
        const onAbort = () => ac.abort(ctx.signal.reason);
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        const timer = setTimeout(
          () =>
            ac.abort(
              new UpstreamError('timeout', 'upstream total timeout', { retryable: true, nodeFault: true }),
            ),
          model.providerConfig.timeouts.total_ms,
        );
        const t = performance.now();
        try {
          const r = await caller
            .api(model)
            .embeddings(caller.target(model, node), { ...upstreamBody, model: model.model_id }, ac.signal);
          if (!Array.isArray(r.data))
            throw new UpstreamError('protocol', 'upstream sent no embedding data', {
              retryable: true,
              nodeFault: true,
            });
          state.upstreamMs = performance.now() - t;
          node.recordSuccess(state.upstreamMs);
          served = { model: model.id, node: node.id };
          return r;
        } catch (err) {
          throw ac.signal.reason instanceof UpstreamError ? ac.signal.reason : err;
        } finally {
          clearTimeout(timer);
          ctx.signal.removeEventListener('abort', onAbort);
        }
      });
      if (body.encoding_format === 'base64')
        for (const d of result.data) if (Array.isArray(d.embedding)) d.embedding = toBase64(d.embedding);
      result.object = 'list';
      result.model = served!.model;
      result.usage ??= { prompt_tokens: estimate, total_tokens: estimate };
      usage = result.usage;
      return {
        status: 200,
        headers: {
          ...limitHeaders,
          'x-request-id': ctx.requestId,
          'x-pincer-model': served!.model,
          'x-pincer-upstream': served!.node,
        },
        body: result,
      };
    } catch (err) {
      status = ctx.signal.aborted ? 499 : err instanceof AppError ? err.status : 500;
      throw err;
    } finally {
      const model = served?.model ?? primary.id;
      if (status >= 500) caller.metrics.errors.inc({ kind: status >= 502 ? 'upstream' : 'internal' });
      caller.metrics.requests.inc({ model, node: served?.node ?? 'none', status: String(status) });
      caller.metrics.duration.observe(
        { model, node: served?.node ?? 'none' },
        (performance.now() - ctx.startedAt) / 1000,
      );
      if (usage)
        caller.metrics.tokens.inc({ model, direction: 'in', source: 'reported' }, usage.prompt_tokens ?? 0);
      caller.limits.settle(ctx.key, estimate, usage);
    }
  }
}
