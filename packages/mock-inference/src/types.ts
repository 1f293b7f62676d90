export type MockFlavor = 'openai' | 'ollama' | 'vllm' | 'sglang' | 'llamacpp';

export const FLAVORS: readonly MockFlavor[] = ['openai', 'ollama', 'vllm', 'sglang', 'llamacpp'];

export interface MockOptions {
  /** 0 (default) = ephemeral port. */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 'openai'; decides the upstream quirks reproduced. */
  flavor?: MockFlavor;
  /** Served model ids; default: any model name accepted. Unknown model when a list is set: 404. */
  models?: string[];
  /** Output tokens per second when streaming; 0 (default) = no delay between chunks. */
  tokenRate?: number;
  /** Delay before the first token (default 0). */
  firstTokenDelayMs?: number;
  /** Model-loading phase from server start: ollama waits, the other flavors answer 503. Default 0. */
  loadingMs?: number;
  /** Default 64. */
  embeddingDims?: number;
  /** Requests beyond this many in flight wait in a FIFO (like OLLAMA_NUM_PARALLEL); default unlimited. */
  maxParallel?: number;
  /** With maxParallel: queued requests beyond this get 503 (like OLLAMA_MAX_QUEUE); default unlimited. */
  maxQueue?: number;
  /** Context window reported by vLLM's max_model_len and llama.cpp timings; default 32768. */
  contextLength?: number;
  /** Every flavor also emits `: ping` comments and `event: completion` lines in SSE streams. */
  sseNoise?: boolean;
}

export interface ToolCallScript {
  name: string;
  arguments: Record<string, unknown>;
}

export interface ReplyScript {
  /** Assistant text; default: 'Mock reply: ' + last user message text. */
  content?: string;
  /** Reasoning text, emitted in the flavor's field (hidden by the openai flavor, like OpenAI does). */
  reasoning?: string;
  toolCalls?: ToolCallScript[];
  /** Respond with this HTTP error status instead (error body in the flavor's shape). */
  status?: number;
  errorMessage?: string;
  /** Delay before response headers. */
  delayMs?: number;
  firstTokenDelayMs?: number;
  tokenRate?: number;
  /** Destroy the socket after N stream chunks; a non-stream request is destroyed without any response. */
  disconnectAfterChunks?: number;
  /** Stop sending (keep the socket open, never finish) after N chunks. */
  hangAfterChunks?: number;
  /** Never send usage, even if asked. */
  omitUsage?: boolean;
  finishReason?: string;
}

export interface ScriptMatch {
  /** Exact model id from the request body. */
  model?: string;
  /** Substring of the last user message text (chat) or of the joined input (embeddings). */
  contains?: string;
  /** Exact request path without query, e.g. '/v1/chat/completions' or '/api/chat'. */
  path?: string;
}

export interface ScriptRule {
  match?: ScriptMatch;
  /** How many requests this rule answers; default unlimited. */
  times?: number;
  reply: ReplyScript;
}

export interface RecordedRequest {
  seq: number;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body (or undefined when absent or not JSON). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire JSON
  body: any;
  startedAt: number;
  finishedAt?: number;
  /** The client closed the connection before the response finished. */
  aborted: boolean;
  chunksSent: number;
  /** HTTP status sent (undefined while pending or when the socket was destroyed before headers). */
  status?: number;
}

export interface MockStats {
  active: number;
  maxActive: number;
  queued: number;
  requests: number;
  healthChecks: number;
}

export interface MockServer {
  /** Origin, e.g. http://127.0.0.1:43123 (no trailing slash). */
  readonly url: string;
  readonly port: number;
  readonly flavor: MockFlavor;
  /** Completion/embedding/chat requests only; keeps the last 1000. */
  readonly requests: RecordedRequest[];
  readonly healthChecks: number;
  /** Requests holding a processing slot right now. */
  readonly active: number;
  readonly maxActive: number;
  /** Requests waiting for a slot (maxParallel). */
  readonly queued: number;
  script(rule: ScriptRule): void;
  reset(): void;
  setLoading(ms: number): void;
  setDown(down: boolean): void;
  waitFor(pred: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  stats(): MockStats;
  close(): Promise<void>;
}
