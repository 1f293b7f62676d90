// CLI: node src/main.ts --port 11434 --flavor ollama --token-rate 50 (MOCK_* env vars as fallback).
import { parseArgs } from 'node:util';
import { startMockServer } from './server.ts';
import type { MockFlavor, MockOptions } from './types.ts';
import { FLAVORS } from './types.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    flavor: { type: 'string' },
    'token-rate': { type: 'string' },
    'first-token-ms': { type: 'string' },
    'loading-ms': { type: 'string' },
    models: { type: 'string' },
    'max-parallel': { type: 'string' },
    'max-queue': { type: 'string' },
    'embedding-dims': { type: 'string' },
    'context-length': { type: 'string' },
    'sse-noise': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(
    'usage: node src/main.ts [--port N] [--host H] [--flavor openai|ollama|vllm|sglang|llamacpp]\n' +
      '  [--token-rate N] [--first-token-ms N] [--loading-ms N] [--models a,b] [--max-parallel N]\n' +
      '  [--max-queue N] [--embedding-dims N] [--context-length N] [--sse-noise]\n' +
      'env fallbacks: MOCK_PORT MOCK_HOST MOCK_FLAVOR MOCK_TOKEN_RATE MOCK_FIRST_TOKEN_MS MOCK_LOADING_MS\n' +
      '  MOCK_MODELS MOCK_MAX_PARALLEL MOCK_MAX_QUEUE MOCK_EMBEDDING_DIMS MOCK_CONTEXT_LENGTH MOCK_SSE_NOISE\n',
  );
  process.exit(0);
}

function pick(flag: string | undefined, env: string): string | undefined {
  const v = flag ?? process.env[env];
  return v === undefined || v === '' ? undefined : v;
}

function numberOpt(flag: string | undefined, env: string): number | undefined {
  const v = pick(flag, env);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`mock-inference: invalid number for ${env}: ${v}\n`);
    process.exit(2);
  }
  return n;
}

const flavor = (pick(values.flavor, 'MOCK_FLAVOR') ?? 'openai') as MockFlavor;
if (!FLAVORS.includes(flavor)) {
  process.stderr.write(`mock-inference: unknown flavor '${flavor}' (expected ${FLAVORS.join(', ')})\n`);
  process.exit(2);
}
const models = pick(values.models, 'MOCK_MODELS')
  ?.split(',')
  .map((m) => m.trim())
  .filter(Boolean);
const noiseEnv = process.env['MOCK_SSE_NOISE'];

const opts: MockOptions = {
  port: numberOpt(values.port, 'MOCK_PORT') ?? 0,
  host: pick(values.host, 'MOCK_HOST') ?? '127.0.0.1',
  flavor,
  tokenRate: numberOpt(values['token-rate'], 'MOCK_TOKEN_RATE'),
  firstTokenDelayMs: numberOpt(values['first-token-ms'], 'MOCK_FIRST_TOKEN_MS'),
  loadingMs: numberOpt(values['loading-ms'], 'MOCK_LOADING_MS'),
  maxParallel: numberOpt(values['max-parallel'], 'MOCK_MAX_PARALLEL'),
  maxQueue: numberOpt(values['max-queue'], 'MOCK_MAX_QUEUE'),
  embeddingDims: numberOpt(values['embedding-dims'], 'MOCK_EMBEDDING_DIMS'),
  contextLength: numberOpt(values['context-length'], 'MOCK_CONTEXT_LENGTH'),
  sseNoise: values['sse-noise'] ?? (noiseEnv === '1' || noiseEnv === 'true'),
};
if (models && models.length > 0) opts.models = models;

const server = await startMockServer(opts);
process.stdout.write(`mock-inference listening on ${server.url} flavor=${flavor}\n`);

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
