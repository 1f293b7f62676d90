/**
 * The mock model and a real llm-proxy in this process, serving an embedding model: what the
 * knowledge-base benchmarks need to ingest and search through the real /v1/embeddings path.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type MockServer, startMockServer } from '@pincer/mock-inference';
import { createLogger } from '@pincer/shared';
import { stringify } from 'yaml';
import { loadConfig as loadProxyConfig } from '../services/llm-proxy/src/config.ts';
import { startProxy } from '../services/llm-proxy/src/proxy.ts';

export interface EmbeddingBackend {
  mock: MockServer;
  /** llm-proxy's base URL (without /v1). */
  url: string;
  close(): Promise<void>;
}

export async function startEmbeddingBackend(o: {
  dims: number;
  /** The registry id of the embedding model. */
  model: string;
  apiKey: string;
}): Promise<EmbeddingBackend> {
  const mock = await startMockServer({ flavor: 'vllm', embeddingDims: o.dims });
  const dir = mkdtempSync(path.join(tmpdir(), 'pincer-bench-proxy-'));
  writeFileSync(path.join(dir, 'config.yaml'), stringify({ llm_proxy: { active_health_checks: false } }));
  writeFileSync(
    path.join(dir, 'models.yml'),
    stringify({
      providers: {
        p: {
          type: 'openai',
          nodes: [{ url: `${mock.url}/v1`, max_concurrency: 64 }],
          retries: { attempts: 0, backoff_ms: 1 },
        },
      },
      models: {
        small: { provider: 'p', model_id: 'small-model', context_window: 8192, max_tokens: 512 },
        [o.model]: {
          provider: 'p',
          model_id: 'embed-model',
          context_window: 8192,
          max_tokens: 1,
          capabilities: ['embeddings'],
        },
      },
      routing: { default_model: 'small' },
    }),
  );
  const proxy = await startProxy(
    loadProxyConfig({ PINCER_CONFIG_DIR: dir, LLM_PROXY_API_KEY: o.apiKey }),
    createLogger({ service: 'llm-proxy', level: 'error' }),
    { host: '127.0.0.1', port: 0 },
  );
  rmSync(dir, { recursive: true, force: true }); // read once, at start
  return {
    mock,
    url: proxy.url,
    async close() {
      await proxy.shutdown(500);
      await mock.close();
    },
  };
}
