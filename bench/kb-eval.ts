/**
 * Retrieval evaluation against the real system: the evaluation documents (packages/knowledge/eval)
 * ingested through KnowledgeBase.add and its queued job (a worker thread prepares them, llm-proxy and
 * the mock model embed them) into a fresh Postgres database, then the questions asked through
 * KnowledgeBase.search in each mode. Prints recall@5, MRR and the questions missed, like
 * bench/kb-eval-memory.ts does for the in-memory reference retriever.
 *
 *   npm run kb:eval [-- --json --dims 256 --min-similarity 0]
 *
 * Everything it creates (database, Redis keys under its own prefix, servers) is removed at the end.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { evaluateRetrieval, loadEvalSet } from '@pincer/knowledge';
import { createLogger } from '@pincer/shared';
import { Redis } from 'ioredis';
import { EVAL_CHUNKING } from '../packages/knowledge/src/reference-retriever.ts';
import { loadConfig } from '../services/core/src/config.ts';
import { LlmClient } from '../services/core/src/repositories/llm.ts';
import { KnowledgeBase, type SearchMode } from '../services/core/src/services/knowledge.ts';
import { PreparePool } from '../services/core/src/services/prepare-pool.ts';
import { createTestDatabase, writeConfigDir } from '../services/core/test/db-harness.ts';
import { startEmbeddingBackend } from './embedding-backend.ts';
import { deleteRedisKeys, printRetrieval, REDIS_URL, retrievalRow } from './lib.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    dims: { type: 'string', default: '256' },
    // core's default: any positive similarity counts (the reference retriever does the same)
    'min-similarity': { type: 'string', default: '0' },
  },
});
const dims = Number(values.dims);
const minSimilarity = Number(values['min-similarity']);
if (!Number.isInteger(dims) || dims < 1 || !(minSimilarity >= 0 && minSimilarity <= 1)) {
  console.error('usage: kb-eval.ts [--json] [--dims 256] [--min-similarity 0]');
  process.exit(2);
}

const PROXY_KEY = 'kb-eval-proxy-key-0123456789abcdef';
/** The embedding model's registry id in embeddingModels (services/core/test/stack.ts). */
const MODEL = 'embed';
const MODES: SearchMode[] = ['vector', 'text', 'hybrid'];

const cleanups: Array<() => Promise<unknown>> = [];
async function cleanUp(): Promise<void> {
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup: ${(err as Error).message}`);
    }
  }
}

async function main() {
  const set = await loadEvalSet();
  const quiet = (service: string) => createLogger({ service, level: 'error' });

  const backend = await startEmbeddingBackend({ dims, apiKey: PROXY_KEY });
  cleanups.push(() => backend.close());

  // a database of its own, migrated, dropped at the end
  const t = await createTestDatabase({ prefix: 'pincer_kb_eval', poolMax: 4 });
  cleanups.push(() => t.drop());
  const db = t.db;

  const prefix = `pincer-kb-eval-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  cleanups.push(() => redis.quit());
  cleanups.push(() => deleteRedisKeys(redis, prefix));

  const configDir = writeConfigDir({
    system: { redis_prefix: prefix },
    knowledge: {
      embedding_model: MODEL,
      // the evaluation's chunking (as the reference retriever in packages/knowledge uses)
      chunk_tokens: EVAL_CHUNKING.maxTokens,
      overlap_tokens: EVAL_CHUNKING.overlapTokens,
      min_similarity: minSimilarity,
    },
  });
  const config = loadConfig({
    DATABASE_URL: t.url,
    REDIS_URL,
    LLM_PROXY_URL: `${backend.url}/v1`,
    LLM_PROXY_API_KEY: PROXY_KEY,
    PINCER_CONFIG_DIR: configDir,
  });
  rmSync(configDir, { recursive: true, force: true }); // read once, at load
  const prepare = new PreparePool();
  cleanups.push(() => prepare.close());
  const kb = new KnowledgeBase({
    db,
    llm: new LlmClient(config.llmProxyUrl, config.llmProxyKey),
    config,
    log: quiet('core'),
    redis,
    prepare,
  });
  cleanups.push(() => kb.close());
  kb.startWorker();

  // ingest every document as text, titled with its file name, and wait until each is ready
  const names = new Map<number, string>();
  for (const doc of set.documents) {
    const d = await kb.add({ title: doc.name, content: doc.text, createdBy: 'kb-eval' });
    names.set(d.id, doc.name);
  }
  const deadline = Date.now() + 120_000;
  for (const [id, name] of names) {
    for (;;) {
      const d = await kb.get(id);
      if (d?.status === 'ready') break;
      if (!d || d.status === 'failed') throw new Error(`${name} was not ingested: ${d?.error ?? 'gone'}`);
      if (Date.now() > deadline) throw new Error(`${name} still ${d.status} after 2 minutes`);
      await sleep(25);
    }
  }
  const { rows } = await db.query<{ chunks: number }>(
    `SELECT COALESCE(sum(chunk_count), 0)::int AS chunks FROM kb_documents`,
  );
  const chunks = rows[0]!.chunks;
  const vectorSearch = (await kb.usesPgvector()) ? 'pgvector' : 'in-process scan';

  const results = [];
  for (const mode of MODES) {
    const r = await evaluateRetrieval(async (q, k) => {
      const found = await kb.search(q, { topK: k, mode });
      if (found.vector === 'unavailable') throw new Error('the vector half of the search failed');
      return found.hits.map((h) => ({ text: h.content, document: names.get(h.document_id) ?? h.title }));
    }, set);
    results.push(retrievalRow(mode, r));
  }

  printRetrieval({
    json: values.json,
    facts: {
      documents: set.documents.length,
      questions: set.questions.length,
      chunks,
      dims,
      min_similarity: minSimilarity,
      vector_search: vectorSearch,
    },
    context:
      `${set.documents.length} documents, ${chunks} chunks, ${set.questions.length} questions; core's KnowledgeBase on Postgres ` +
      `(${vectorSearch}), mock embeddings (${dims} dims) through llm-proxy, min_similarity ${minSimilarity}`,
    rows: results,
  });
}

try {
  await main();
} catch (err) {
  console.error((err as Error).stack ?? err);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
