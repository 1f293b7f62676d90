import { createHash } from 'node:crypto';
import {
  detectFormat,
  ExtractionError,
  ftsQueryTerms,
  fuseRankings,
  VectorScanIndex,
} from '@pincer/knowledge';
import { AppError, type Logger, QueueName } from '@pincer/shared';
import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { CoreConfig } from '../config.ts';
import type { Db } from '../repositories/db.ts';
import {
  activateVersion,
  activeVersions,
  bumpVersion,
  bytesToFloat32,
  type ChunkHit,
  chunksByIds,
  chunkVectors,
  deleteDocument,
  documentForIngest,
  dropInactiveChunks,
  ensureHnswIndex,
  generation,
  getDocument,
  hasPgvector,
  insertChunks,
  insertDocument,
  type KbDocument,
  pgvectorCandidates,
  setProgress,
  textCandidates,
  unfinishedVersions,
} from '../repositories/knowledge.ts';
import { type LlmClient, ModelError } from '../repositories/llm.ts';
import type { CoreMetrics } from './metrics.ts';
import type { PreparePool } from './prepare-pool.ts';

export type SearchMode = 'hybrid' | 'vector' | 'text';

export interface KnowledgeHit extends ChunkHit {
  /** Fused score (reciprocal rank fusion): only the order means something. */
  score: number;
  /** Cosine similarity when the vector half found the chunk. */
  similarity: number | null;
  /** 1-based rank in each half, null where that half did not find it. */
  ranks: { vector: number | null; text: number | null };
}

export interface SearchResult {
  hits: KnowledgeHit[];
  /** ok, or why the vector half was left out (the text half still answered). */
  vector: 'ok' | 'skipped' | 'unavailable';
  ms: number;
}

interface KnowledgeDeps {
  db: Db;
  llm: LlmClient;
  config: CoreConfig;
  log: Logger;
  redis: Redis;
  prepare: PreparePool;
  metrics?: CoreMetrics;
}

// BullMQ job ids may not contain ':'
const jobIdOf = (documentId: number, version: number) => `doc-${documentId}-v${version}`;

interface IngestJob {
  documentId: number;
  version: number;
}

/**
 * The knowledge base: documents in, chunks with embeddings and full-text lexemes out, hybrid search.
 * Ingestion runs as queued jobs (one per document version), its CPU-bound part in a worker thread;
 * vectors are searched by pgvector's HNSW index where Postgres has it, else by a full scan of
 * int8-quantised vectors held by each core process and refreshed when the knowledge base changes.
 */
export class KnowledgeBase {
  private readonly cfg: CoreConfig['knowledge'];
  private readonly queue: Queue<IngestJob>;
  private worker: Worker<IngestJob> | undefined;
  private pgvector: boolean | undefined;
  private closing = false;
  private readonly hnswReady = new Set<number>();
  private readonly scan: ScanStore;

  private readonly d: KnowledgeDeps;

  constructor(d: KnowledgeDeps) {
    this.d = d;
    this.cfg = d.config.knowledge;
    this.queue = new Queue<IngestJob>(QueueName.Knowledge, {
      connection: d.redis,
      prefix: d.config.redisPrefix,
      defaultJobOptions: {
        attempts: 6,
        backoff: { type: 'exponential', delay: 5_000 },
        removeOnComplete: { count: 1000 },
        removeOnFail: { count: 1000 },
      },
    });
    this.scan = new ScanStore(d.db, this.cfg.embedding_model);
  }

  async usesPgvector(): Promise<boolean> {
    return (this.pgvector ??= await hasPgvector(this.d.db));
  }

  /** Starts ingesting in this process (BullMQ gives the worker a blocking connection of its own). */
  startWorker(): void {
    this.worker = new Worker<IngestJob>(QueueName.Knowledge, (job, token) => this.ingest(job, token), {
      connection: this.d.redis,
      prefix: this.d.config.redisPrefix,
      concurrency: this.cfg.ingest_concurrency,
      // embedding a large document takes a while; the lock is renewed as long as the process lives
      lockDuration: 60_000,
    });
    this.worker.on('error', (err) => this.d.log.error('knowledge worker error', { error: err.message }));
    // the last attempt failed outside the job's own handling (stalled twice, a database error):
    // the document must not stay "embedding" for ever
    this.worker.on('failed', (job, err) => {
      if (!job || err.name === 'DelayedError' || job.attemptsMade < (job.opts.attempts ?? 1)) return;
      const { documentId, version } = job.data;
      setProgress(this.d.db, documentId, version, { status: 'failed', error: err.message })
        .then((changed) => changed && this.d.metrics?.knowledgeDocuments.inc({ outcome: 'failed' }))
        .catch(() => {});
    });
  }

  /**
   * Queues again every ingestion that is not finished and has no job (Redis lost it, or the queueing
   * failed after the document was stored). Job ids are per version, so a version with a job is left
   * alone. Run at start and hourly.
   */
  async requeueUnfinished(): Promise<number> {
    const pending = await unfinishedVersions(this.d.db, 60_000);
    let queued = 0;
    for (const p of pending) {
      const existing = await this.queue.getJob(jobIdOf(p.id, p.version));
      const state = existing ? await existing.getState() : undefined;
      if (state && state !== 'completed' && state !== 'failed' && state !== 'unknown') continue;
      if (existing) await existing.remove().catch(() => {});
      await this.enqueue(p.id, p.version);
      queued++;
    }
    if (queued) this.d.log.info('re-queued unfinished document ingestions', { queued });
    return queued;
  }

  /** Stores a document and queues its ingestion; the file type is checked here, its content by the job. */
  async add(input: {
    title?: string;
    content?: string;
    file?: { name: string; mime?: string; data: Buffer };
    metadata?: Record<string, unknown>;
    createdBy: string;
  }): Promise<KbDocument> {
    const max = this.cfg.max_document_bytes;
    let original: Buffer;
    let filename: string | null = null;
    let mime: string | null = null;
    let format: string;
    if (input.file) {
      original = input.file.data;
      filename = input.file.name;
      mime = input.file.mime ?? null;
      if (original.byteLength === 0) throw new AppError(400, 'empty_document', 'The file is empty.');
      format = detectFormat({ name: filename, mime: mime ?? undefined, data: original });
    } else {
      original = Buffer.from(input.content ?? '', 'utf8');
      format = 'md';
      if (!input.content?.trim()) throw new AppError(400, 'empty_document', 'The document has no content.');
    }
    if (original.byteLength > max)
      throw new AppError(413, 'document_too_large', `The document is larger than ${max} bytes.`);
    const title = (input.title?.trim() || filename?.replace(/\.[^.]+$/, '') || 'Untitled').slice(0, 500);
    const doc = await insertDocument(this.d.db, {
      title,
      source: input.file ? 'file' : 'text',
      filename,
      mime,
      format,
      metadata: input.metadata ?? {},
      original,
      sha256: createHash('sha256').update(original).digest('hex'),
      createdBy: input.createdBy,
    });
    await this.enqueue(doc.id, doc.version);
    return doc;
  }

  /** Re-ingests a document: a new version is built; queries keep seeing the old one until it is ready. */
  async reingest(id: number): Promise<KbDocument | undefined> {
    const doc = await bumpVersion(this.d.db, id);
    if (doc) await this.enqueue(doc.id, doc.version);
    return doc;
  }

  async remove(id: number): Promise<boolean> {
    const ok = await deleteDocument(this.d.db, id);
    if (ok) this.scan.forget(id);
    return ok;
  }

  get(id: number): Promise<KbDocument | undefined> {
    return getDocument(this.d.db, id);
  }

  private async enqueue(documentId: number, version: number): Promise<void> {
    await this.queue.add('ingest', { documentId, version }, { jobId: jobIdOf(documentId, version) });
  }

  /** The ingestion job: prepare in the worker thread, embed in batches, store, then activate. */
  private async ingest(job: Job<IngestJob>, token?: string): Promise<unknown> {
    const { documentId, version } = job.data;
    const { db, llm, log } = this.d;
    const src = await documentForIngest(db, documentId);
    if (!src || src.version !== version) return { skipped: 'superseded' };
    // a re-run after this version was activated (the process died before the job was marked done)
    if (src.active_version === version) return { skipped: 'already ingested' };
    const started = performance.now();
    await setProgress(db, documentId, version, { status: 'extracting' });
    let prepared;
    try {
      prepared = await this.d.prepare.prepare({
        name: src.filename ?? 'document.md',
        mime: src.mime ?? undefined,
        data: new Uint8Array(src.original),
        maxBytes: this.cfg.max_document_bytes,
        chunking: { maxTokens: this.cfg.chunk_tokens, overlapTokens: this.cfg.overlap_tokens },
      });
    } catch (err) {
      // the preparer stopped (shutdown, a crash, a timeout): try again, as for any other failure
      if (!(err instanceof ExtractionError)) throw err;
      // a file that cannot be read will not become readable by retrying
      const message = `${err.code}: ${err.message}`;
      await setProgress(db, documentId, version, { status: 'failed', error: message });
      this.d.metrics?.knowledgeDocuments.inc({ outcome: 'failed' });
      log.warn('document could not be read', { documentId, error: message });
      return { failed: message };
    }
    const chunks = prepared.chunks;
    if (
      !(await setProgress(db, documentId, version, {
        status: 'embedding',
        chunksTotal: chunks.length,
        chunksDone: 0,
      }))
    )
      return { skipped: 'superseded' };
    const model = this.cfg.embedding_model;
    const pgvector = await this.usesPgvector();
    const batch = this.cfg.embedding_batch;
    try {
      for (let i = 0; i < chunks.length; i += batch) {
        // shutting down: hand the document back (the next run continues; stored batches are kept)
        if (this.closing && token) {
          await job.moveToDelayed(Date.now() + 1_000, token);
          throw new DelayedError();
        }
        const part = chunks.slice(i, i + batch);
        const vectors = await llm.embed(
          model,
          part.map((c) => c.indexable),
        );
        if (pgvector && !this.hnswReady.has(vectors[0]!.length)) {
          await ensureHnswIndex(db, vectors[0]!.length);
          this.hnswReady.add(vectors[0]!.length);
        }
        await insertChunks(
          db,
          documentId,
          version,
          model,
          part.map((chunk, j) => ({ chunk, embedding: vectors[j]! })),
          pgvector,
        );
        // the progress the API shows lives with the document, not in the job
        const done = Math.min(chunks.length, i + batch);
        if (!(await setProgress(db, documentId, version, { status: 'embedding', chunksDone: done })))
          return { skipped: 'superseded' };
      }
    } catch (err) {
      const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const message =
        err instanceof ModelError
          ? `the embedding model ${model} failed (${err.failure}): ${err.message}`
          : (err as Error).message;
      log.warn('document embedding failed', {
        documentId,
        attempt: job.attemptsMade + 1,
        last,
        error: message,
      });
      if (last) {
        await setProgress(db, documentId, version, { status: 'failed', error: message });
        await dropInactiveChunks(db, documentId, version);
        this.d.metrics?.knowledgeDocuments.inc({ outcome: 'failed' });
        return { failed: message };
      }
      // keep the progress visible as queued for the retry
      await setProgress(db, documentId, version, { status: 'queued', error: `retrying: ${message}` });
      throw err;
    }
    const ok = await activateVersion(db, documentId, version, {
      chunkCount: chunks.length,
      characters: prepared.characters,
      model,
      format: prepared.format,
    });
    const ms = Math.round(performance.now() - started);
    this.d.metrics?.knowledgeDocuments.inc({ outcome: ok ? 'ready' : 'superseded' });
    if (ok) this.d.metrics?.knowledgeChunks.inc(chunks.length);
    if (ok) log.info('document ingested', { documentId, version, chunks: chunks.length, ms });
    return ok ? { chunks: chunks.length, ms } : { skipped: 'superseded' };
  }

  /** Hybrid search: nearest vectors and full-text matches, fused by reciprocal rank. */
  async search(query: string, opts: { topK?: number; mode?: SearchMode } = {}): Promise<SearchResult> {
    const started = performance.now();
    const topK = opts.topK ?? this.cfg.top_k;
    const mode = opts.mode ?? 'hybrid';
    const depth = Math.max(this.cfg.candidates, topK);
    const terms = ftsQueryTerms(query);
    let vectorState: SearchResult['vector'] = mode === 'text' ? 'skipped' : 'ok';
    const [vector, text] = await Promise.all([
      mode === 'text'
        ? Promise.resolve([] as Array<{ id: number; score: number }>)
        : this.vectorCandidates(query, depth).catch((err: Error) => {
            vectorState = 'unavailable';
            this.d.log.warn('vector search unavailable; answering from full text only', {
              error: err.message,
            });
            return [] as Array<{ id: number; score: number }>;
          }),
      mode === 'vector' ? Promise.resolve([]) : textCandidates(this.d.db, terms, depth),
    ]);
    const fused = fuseRankings([
      vector.map((v) => ({ id: String(v.id), score: v.score })),
      text.map((t) => ({ id: String(t.id), score: t.score })),
    ]).slice(0, topK);
    const details = await chunksByIds(
      this.d.db,
      fused.map((f) => Number(f.id)),
    );
    const similarity = new Map(vector.map((v) => [v.id, v.score]));
    const hits: KnowledgeHit[] = [];
    for (const f of fused) {
      const c = details.get(Number(f.id));
      if (!c) continue; // deleted between the two queries
      hits.push({
        ...c,
        score: Number(f.score.toFixed(6)),
        similarity: similarity.has(c.id) ? Number(similarity.get(c.id)!.toFixed(4)) : null,
        ranks: { vector: f.ranks[0] || null, text: f.ranks[1] || null },
      });
    }
    const ms = performance.now() - started;
    this.d.metrics?.knowledgeSearch.observe({ mode }, ms / 1000);
    return { hits, vector: vectorState, ms: Math.round(ms * 10) / 10 };
  }

  private async vectorCandidates(
    query: string,
    depth: number,
  ): Promise<Array<{ id: number; score: number }>> {
    const [embedding] = await this.d.llm.embed(this.cfg.embedding_model, [query]);
    if (await this.usesPgvector())
      return pgvectorCandidates(
        this.d.db,
        embedding!,
        this.cfg.embedding_model,
        depth,
        this.cfg.min_similarity,
      );
    return this.scan.search(embedding!, depth, this.cfg.min_similarity);
  }

  /** Without pgvector: loads every process's vector copy at start rather than on the first question. */
  async warm(): Promise<void> {
    if (!(await this.usesPgvector())) await this.scan.warm();
  }

  /** Stops ingesting: a document being embedded is handed back after its current batch. */
  async close(): Promise<void> {
    this.closing = true;
    await this.worker?.close();
    await this.queue.close();
  }
}

/**
 * Each core process's copy of the active chunks' vectors for the configured model, for Postgres
 * without pgvector. A search first compares the knowledge base's generation (one tiny query); when it
 * moved, only documents whose active version changed are (re)loaded.
 */
class ScanStore {
  private index: VectorScanIndex | undefined;
  private loadedGeneration = -1;
  /** document id → [active version, chunk ids held] */
  private readonly docs = new Map<number, { version: number; ids: number[] }>();
  private syncing: Promise<void> | undefined;

  private readonly db: Db;
  private readonly model: string;

  constructor(db: Db, model: string) {
    this.db = db;
    this.model = model;
  }

  forget(documentId: number): void {
    const held = this.docs.get(documentId);
    if (!held) return;
    for (const id of held.ids) this.index?.remove(id);
    this.docs.delete(documentId);
  }

  async search(
    query: Float32Array,
    k: number,
    minScore: number,
  ): Promise<Array<{ id: number; score: number }>> {
    await this.sync();
    if (!this.index) return [];
    // vectors stored by another model size than the query's: the documents need a re-ingest
    if (this.index.dims !== query.length)
      throw new Error(
        `the stored vectors have ${this.index.dims} dimensions, the embedding model now gives ${query.length}: re-ingest the documents`,
      );
    return this.index.search(query, k, minScore);
  }

  /** Loads the vectors ahead of the first question (at start), so no chat waits for it. */
  warm(): Promise<void> {
    return this.sync();
  }

  private sync(): Promise<void> {
    // concurrent searches share one refresh
    return (this.syncing ??= this.refresh().finally(() => {
      this.syncing = undefined;
    }));
  }

  private async refresh(): Promise<void> {
    const gen = await generation(this.db);
    if (gen === this.loadedGeneration) return;
    const active = await activeVersions(this.db);
    for (const [id, held] of this.docs) if (active.get(id) !== held.version) this.forget(id);
    const wanted = [...active].filter(([id]) => !this.docs.has(id));
    // documents in batches: one query per hundred documents, not one per document
    for (let i = 0; i < wanted.length; i += 100) {
      const part = wanted.slice(i, i + 100);
      const rows = await chunkVectors(this.db, part, this.model);
      const held = new Map(part.map(([id, version]) => [id, { version, ids: [] as number[] }]));
      for (const r of rows) {
        const v = bytesToFloat32(r.embedding);
        this.index ??= new VectorScanIndex(v.length);
        // one model gives one size; the most common size wins (the rest predates a model change)
        if (v.length !== this.index.dims) continue;
        try {
          this.index.add(r.id, v);
        } catch {
          continue; // a vector with NaN or infinite components is left out, not fatal
        }
        held.get(r.document_id)!.ids.push(r.id);
      }
      for (const [id, h] of held) this.docs.set(id, h);
      // long loads yield to the chats between batches
      await new Promise((r) => setImmediate(r));
    }
    this.loadedGeneration = gen;
  }
}
