/**
 * test-model: sends one real streaming request to a model through the registry (node choice,
 * fallbacks, Ollama translation: the same code as the proxy) and prints node, latency, time to first
 * token and tokens/s. Usage: test-model [model] [--prompt TEXT] [--max-tokens N] [--json]
 */
import { parseArgs } from 'node:util';
import { AppError, ConfigError, createLogger } from '@pincer/shared';
import { loadConfig } from '../config.ts';
import { buildCaller } from '../proxy.ts';
import { ChatService, type StreamSink } from '../services/chat.ts';

const USAGE = `usage: test-model [model] [--prompt TEXT] [--max-tokens N] [--json]

Sends one streaming chat request through llm-proxy's registry to the model (default: the
registry's default model) and reports the node that answered, time to first token, total
latency, output tokens and tokens/s. Exit status: 0 answered, 1 failed, 2 usage or config error.`;

function fail(code: number, message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

let args: ReturnType<typeof parseArgs>;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      prompt: { type: 'string', default: 'Reply with one short sentence: what are you?' },
      'max-tokens': { type: 'string', default: '64' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (err) {
  fail(2, `${(err as Error).message}\n\n${USAGE}`);
}
if (args.values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const maxTokens = Number(args.values['max-tokens']);
if (!Number.isInteger(maxTokens) || maxTokens < 1)
  fail(2, `--max-tokens must be a positive integer\n\n${USAGE}`);

let config: ReturnType<typeof loadConfig>;
try {
  // the proxy's own key is not needed to call upstreams directly
  config = loadConfig({ LLM_PROXY_API_KEY: 'test-model-local-only', ...process.env });
} catch (err) {
  if (err instanceof ConfigError) fail(2, `test-model: ${err.message}`);
  throw err;
}

const log = createLogger({ service: 'test-model', level: 'error', secrets: [...config.secrets] });
const { caller, prober, pools, registry } = buildCaller(config, log);
const modelName = args.positionals[0];
if (modelName && !registry.resolve(modelName)) {
  fail(2, `test-model: unknown model "${modelName}". Known: ${[...registry.models.keys()].join(', ')}`);
}
await prober.probeAll();

const started = performance.now();
let firstAt = 0;
let text = '';
let headers: Record<string, string> = {};
let streamError = '';
let usage: { completion_tokens?: number } | undefined;
const sink: StreamSink = {
  start(h) {
    headers = h;
  },
  write(chunk) {
    for (const line of chunk.split('\n')) {
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const c = JSON.parse(line.slice(6));
      if (c.error) streamError = c.error.message;
      const delta = c.choices?.[0]?.delta;
      const piece = (delta?.content ?? '') + (delta?.reasoning ?? '');
      if (piece && !firstAt) firstAt = performance.now();
      text += delta?.content ?? '';
      if (c.usage) usage = c.usage;
    }
  },
  end() {},
};

const controller = new AbortController();
process.once('SIGINT', () => controller.abort(new Error('interrupted')));
let exitCode = 0;
try {
  await new ChatService(caller).complete(
    {
      model: modelName,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: maxTokens,
      messages: [{ role: 'user', content: args.values.prompt }],
    },
    {
      requestId: `test-model-${Date.now()}`,
      key: { name: 'test-model', sha256: '' },
      signal: controller.signal,
      startedAt: started,
    },
    sink,
  );
  const total = performance.now() - started;
  const tokens = usage?.completion_tokens ?? 0;
  const genSeconds = firstAt ? (performance.now() - firstAt) / 1000 : 0;
  const requested = registry.resolve(modelName)?.id;
  const result = {
    requested,
    model: headers['x-pincer-model'],
    fallback: headers['x-pincer-model'] !== requested,
    node: headers['x-pincer-upstream'],
    ok: !streamError,
    error: streamError || undefined,
    time_to_first_token_ms: firstAt ? Math.round(firstAt - started) : null,
    total_ms: Math.round(total),
    output_tokens: tokens,
    tokens_per_second: genSeconds > 0 && tokens > 1 ? Number(((tokens - 1) / genSeconds).toFixed(1)) : null,
    reply: text,
  };
  if (streamError) exitCode = 1;
  if (args.values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(
      [
        `model            ${result.model}${result.fallback ? ` (fallback for ${requested})` : ''}`,
        `node             ${result.node}`,
        `time to first    ${result.time_to_first_token_ms ?? '-'} ms`,
        `total            ${result.total_ms} ms`,
        `output tokens    ${result.output_tokens}`,
        `tokens/s         ${result.tokens_per_second ?? '-'}`,
        `reply            ${text.replace(/\s+/g, ' ').trim().slice(0, 200)}`,
        ...(streamError ? [`error            ${streamError}`] : []),
      ].join('\n') + '\n',
    );
  }
} catch (err) {
  exitCode = 1;
  const message = err instanceof AppError ? `${err.code}: ${err.message}` : (err as Error).message;
  if (args.values.json) process.stdout.write(`${JSON.stringify({ ok: false, error: message })}\n`);
  else process.stderr.write(`test-model: ${message}\n`);
} finally {
  await pools.close();
}
process.exit(exitCode);
