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
import { embeddingModels } from '../services/core/test/stack.ts';

export interface EmbeddingBackend {
  mock: MockServer;
  /** llm-proxy's base URL (without /v1). */
  url: string;
  close(): Promise<void>;
}

export async function startEmbeddingBackend(o: { dims: number; apiKey: string }): Promise<EmbeddingBackend> {
  const mock = await startMockServer({ flavor: 'vllm', embeddingDims: o.dims });
  const dir = mkdtempSync(path.join(tmpdir(), 'pincer-bench-proxy-'));
  writeFileSync(path.join(dir, 'config.yaml'), stringify({ llm_proxy: { active_health_checks: false } }));
  // the chat model `small` and the embedding model `embed`, as core's knowledge-base tests use
  writeFileSync(path.join(dir, 'models.yml'), stringify(embeddingModels(mock.url)));
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
