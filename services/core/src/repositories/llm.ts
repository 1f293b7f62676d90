import OpenAI from 'openai';

export interface ModelInfo {
  id: string;
  name: string;
  context_window: number;
  max_tokens: number;
  default: boolean;
  /** What the registry says the model can do (chat, tools, vision, …). */
  capabilities: readonly string[];
}

/** A message of a chat completion request, tool calls and their results included. */
export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: ToolCallRequest[] }
  | { role: 'tool'; tool_call_id: string; content: string };

/** A function call as the OpenAI API carries it (arguments are a JSON string written by the model). */
export interface ToolCallRequest {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A tool offered to the model (the OpenAI `tools` field). */
export interface ToolOffer {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export interface StreamEvents {
  onText(delta: string): void;
}

export interface ChatOutcome {
  model: string | null;
  usage: { prompt_tokens: number; completion_tokens: number } | null;
  finishReason: string | null;
  /** The calls the model asked for (empty when it answered in words). */
  toolCalls: ToolCallRequest[];
}

/** Why a model call failed, in terms core answers users with. */
export type ModelFailure = 'busy' | 'unavailable' | 'timeout' | 'rejected' | 'failed';

export class ModelError extends Error {
  readonly failure: ModelFailure;
  /**
   * The connection broke rather than the model refusing: llm-proxy was unreachable or restarted, or the
   * node it streamed from died mid-answer. Asking again a moment later reaches a live proxy and node.
   */
  readonly retryable: boolean;
  constructor(failure: ModelFailure, message: string, retryable = false) {
    super(message);
    this.name = 'ModelError';
    this.failure = failure;
    this.retryable = retryable;
  }
}

function classify(err: unknown): ModelError {
  if (err instanceof ModelError) return err;
  const e = err as {
    status?: number;
    message?: string;
    name?: string;
    code?: string;
    cause?: { code?: string };
  };
  const status = e?.status;
  if (status === 429) return new ModelError('busy', e.message ?? 'busy');
  if (status === 503 || status === 502) return new ModelError('unavailable', e.message ?? 'unavailable');
  // the SDK's error classes all carry name "Error": told apart by class
  if (status === 504 || err instanceof OpenAI.APIConnectionTimeoutError)
    return new ModelError('timeout', e.message ?? 'timeout');
  if (status !== undefined && status >= 400 && status < 500)
    return new ModelError('rejected', e.message ?? 'rejected');
  if (err instanceof OpenAI.APIConnectionError)
    return new ModelError('unavailable', e.message ?? 'connection failed', true);
  // llm-proxy's own word that its upstream node broke off mid-answer (another node may answer)
  if (e?.code === 'upstream_error') return new ModelError('failed', e.message ?? 'upstream failed', true);
  // the response body was cut: llm-proxy went away mid-stream
  if (
    (e?.name === 'TypeError' && e.message === 'terminated') ||
    ['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'].includes(e?.cause?.code ?? '')
  )
    return new ModelError('unavailable', e.message ?? 'connection lost', true);
  return new ModelError('failed', e?.message ?? String(err));
}

function decodeFloat32(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** llm-proxy through the official openai SDK: core never talks to an inference server directly. */
export class LlmClient {
  private readonly client: OpenAI;
  private models: { at: number; list: ModelInfo[] } | undefined;

  constructor(baseURL: string, apiKey: string) {
    // llm-proxy retries and falls back itself; retrying here too would multiply the load
    this.client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30 * 60_000 });
  }

  /** The registry's models (cached for a minute). */
  async listModels(fresh = false): Promise<ModelInfo[]> {
    if (!fresh && this.models && Date.now() - this.models.at < 60_000) return this.models.list;
    try {
      // short: a hung llm-proxy must not hold a chat's turn for the SDK's default timeout
      const page = await this.client.models.list({ timeout: 5_000 });
      const list = (page.data as unknown as ModelInfo[]).map((m) => ({
        id: m.id,
        name: m.name ?? m.id,
        context_window: m.context_window,
        max_tokens: m.max_tokens,
        default: !!m.default,
        capabilities: Array.isArray(m.capabilities) ? m.capabilities : ['chat'],
      }));
      this.models = { at: Date.now(), list };
      return list;
    } catch (err) {
      if (this.models) return this.models.list;
      throw classify(err);
    }
  }

  /**
   * Embeds texts with a registry model (llm-proxy /v1/embeddings); one vector per text, in order.
   * Vectors travel as base64 float32, a quarter of the JSON number encoding.
   */
  async embed(model: string, texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    try {
      const res = await this.client.embeddings.create(
        { model, input: texts, encoding_format: 'base64' },
        { signal, timeout: 300_000 },
      );
      const out = new Array<Float32Array>(texts.length);
      for (const d of res.data) {
        const e = d.embedding as unknown;
        // the SDK decodes base64 to numbers; a server that ignored encoding_format sends numbers too
        out[d.index] = Float32Array.from(typeof e === 'string' ? decodeFloat32(e) : (e as number[]));
      }
      if (out.some((v) => !v || v.length === 0 || v.length !== out[0]!.length))
        throw new ModelError('failed', 'the embedding model answered with missing or uneven vectors');
      if (out.some((v) => v.some((x) => !Number.isFinite(x))))
        throw new ModelError('failed', 'the embedding model answered with vectors that are not numbers');
      return out;
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      throw classify(err);
    }
  }

  /**
   * Streams one chat completion; text deltas go to `events`, usage, the model that answered and the
   * tool calls it made come back (a call's streamed pieces are joined by index, as the API sends them).
   */
  async streamChat(
    req: {
      model: string | undefined;
      messages: ChatMessage[];
      requestId: string;
      tools?: ToolOffer[];
    },
    events: StreamEvents,
    signal: AbortSignal,
  ): Promise<ChatOutcome> {
    let model: string | null = null;
    let usage: ChatOutcome['usage'] = null;
    let finishReason: string | null = null;
    const calls: ToolCallRequest[] = [];
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: req.model ?? '',
          messages: req.messages,
          stream: true,
          stream_options: { include_usage: true },
          ...(req.tools?.length ? { tools: req.tools } : {}),
        },
        { signal, headers: { 'x-request-id': req.requestId } },
      );
      for await (const chunk of stream) {
        model ??= chunk.model ?? null;
        const choice = chunk.choices[0];
        if (choice?.delta?.content) events.onText(choice.delta.content);
        for (const d of choice?.delta?.tool_calls ?? []) {
          const call = (calls[d.index] ??= {
            id: '',
            type: 'function',
            function: { name: '', arguments: '' },
          });
          if (d.id) call.id = d.id;
          if (d.function?.name) call.function.name += d.function.name;
          if (d.function?.arguments) call.function.arguments += d.function.arguments;
        }
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.usage)
          usage = {
            prompt_tokens: chunk.usage.prompt_tokens,
            completion_tokens: chunk.usage.completion_tokens,
          };
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason ?? err;
      throw classify(err);
    }
    // a server that numbered calls sparsely leaves holes; one that sent no id gets one (the reply must cite it)
    const toolCalls = calls.filter(Boolean).map((c, i) => ({ ...c, id: c.id || `call_${i}` }));
    return { model, usage, finishReason, toolCalls };
  }
}
