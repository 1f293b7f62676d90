// The pgvector path of the knowledge repository (migration 0002, HNSW expression partial indexes,
// insertChunks with vec, pgvectorCandidates) against a real pgvector: PGlite, Postgres compiled to
// WASM, with the pgvector build it ships. No server is needed, so this runs wherever the tests run.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { ftsDocument, type PreparedChunk } from '@pincer/knowledge';
import type { Db, Queryable } from '../src/repositories/db.ts';
import {
  activateVersion,
  bumpVersion,
  deleteDocument,
  ensureHnswIndex,
  float32ToBytes,
  hasPgvector,
  insertChunks,
  insertDocument,
  pgvectorCandidates,
  vectorLiteral,
} from '../src/repositories/knowledge.ts';

const MIGRATIONS = new URL('../migrations/', import.meta.url);
const MODEL = 'embed-model';
const OTHER_MODEL = 'other-embed-model';
const DIMS = 64;

// ---------------------------------------------------------------------------------------------------
// PGlite behind the two shapes the repository takes: a Queryable, and a Pool for activateVersion

interface Query {
  text: string;
  values: unknown[];
}

interface Adapter {
  query(q: string | { name?: string; text: string; values?: unknown[] }, values?: unknown[]): Promise<any>;
  connect(): Promise<{ query: Adapter['query']; release(): void }>;
  /** Every statement run, for EXPLAIN of exactly what the repository sent. */
  log: Query[];
}

function adapter(pg: PGlite): Adapter {
  const log: Query[] = [];
  const query: Adapter['query'] = async (q, values) => {
    const text = typeof q === 'string' ? q : q.text;
    const params = (typeof q === 'string' ? values : (q.values ?? values)) ?? [];
    log.push({ text, values: params });
    const r = await pg.query(text, params);
    // pg's rowCount: rows returned by a SELECT, rows changed by anything else
    return { rows: r.rows, rowCount: r.command === 'SELECT' ? r.rows.length : (r.affectedRows ?? 0) };
  };
  return { query, connect: async () => ({ query, release() {} }), log };
}

// ---------------------------------------------------------------------------------------------------
// Deterministic data: unit vectors around a few centres, as embeddings of related texts are

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function unit(v: number[]): Float32Array {
  const n = Math.hypot(...v);
  return Float32Array.from(v, (x) => x / n);
}

function randomUnit(rand: () => number, dims: number): Float32Array {
  return unit(Array.from({ length: dims }, () => gaussian(rand)));
}

/** A unit vector near `centre` (noise is the spread per dimension relative to the centre's). */
function near(rand: () => number, centre: Float32Array, noise: number): Float32Array {
  const scale = noise / Math.sqrt(centre.length);
  return unit(Array.from(centre, (x) => x + scale * gaussian(rand)));
}

/** Exact cosine on the float32 values pgvector stores. */
function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

function chunk(position: number, text: string): PreparedChunk {
  return {
    position,
    heading: `Section ${Math.floor(position / 10)}`,
    content: text,
    indexable: text,
    fts: ftsDocument(text),
    tokens: text.split(' ').length,
  };
}

/** pgvector's text output, back to float32. */
function parseVector(text: string): Float32Array {
  return Float32Array.from(JSON.parse(text) as number[]);
}

// ---------------------------------------------------------------------------------------------------

interface Stored {
  id: number;
  documentId: number;
  version: number;
  model: string;
  vec: Float32Array;
}

describe('knowledge repository on pgvector (PGlite)', () => {
  let pg: PGlite;
  let a: Adapter;
  let db: Queryable;
  let pool: Db;
  const rand = rng(20240611);
  const centres = Array.from({ length: 40 }, () => randomUnit(rand, DIMS));
  /** Every chunk this test stored, with the vector it sent; the truth the index is compared with. */
  const stored: Stored[] = [];
  /** The version each document's queries should see. */
  const active = new Map<number, number>();
  const docIds: number[] = [];

  async function addDocument(title: string): Promise<number> {
    const original = Buffer.from(title);
    const doc = await insertDocument(db, {
      title,
      source: 'text',
      filename: null,
      mime: 'text/plain',
      format: 'text',
      metadata: {},
      original,
      sha256: createHash('sha256').update(original).digest('hex'),
      createdBy: 'test',
    });
    return doc.id;
  }

  /** Stores one version's chunks in batches (as ingestion does) and returns their rows. */
  async function store(
    documentId: number,
    version: number,
    model: string,
    vectors: Float32Array[],
  ): Promise<Stored[]> {
    for (let i = 0; i < vectors.length; i += 100) {
      const part = vectors.slice(i, i + 100).map((embedding, j) => ({
        chunk: chunk(i + j, `document ${documentId} version ${version} chunk ${i + j}`),
        embedding,
      }));
      await insertChunks(db, documentId, version, model, part, true);
    }
    const { rows } = await db.query<{ id: number; position: number }>(
      'SELECT id, position FROM kb_chunks WHERE document_id = $1 AND version = $2 ORDER BY position',
      [documentId, version],
    );
    assert.equal(rows.length, vectors.length);
    const out = rows.map((r) => ({
      id: Number(r.id),
      documentId,
      version,
      model,
      vec: vectors[r.position]!,
    }));
    stored.push(...out);
    return out;
  }

  async function activate(documentId: number, version: number, model: string, chunks: number) {
    const ok = await activateVersion(pool, documentId, version, {
      chunkCount: chunks,
      characters: chunks * 30,
      model,
      format: 'text',
    });
    assert.equal(ok, true);
    active.set(documentId, version);
  }

  /** The exact nearest active chunks of a model and size, best first. */
  function exact(query: Float32Array, model: string, k: number, minSimilarity = -2) {
    return stored
      .filter(
        (s) => active.get(s.documentId) === s.version && s.model === model && s.vec.length === query.length,
      )
      .map((s) => ({ id: s.id, score: cosine(query, s.vec) }))
      .filter((s) => s.score > minSimilarity)
      .sort((x, y) => y.score - x.score || x.id - y.id)
      .slice(0, k);
  }

  /** Checks a pgvectorCandidates answer against the exact one; returns its recall. */
  function compare(query: Float32Array, got: Array<{ id: number; score: number }>, want: typeof got): number {
    const byId = new Map(stored.map((s) => [s.id, s]));
    for (let i = 0; i < got.length; i++) {
      const s = byId.get(Number(got[i]!.id));
      assert.ok(s, `unknown chunk ${got[i]!.id}`);
      assert.equal(active.get(s.documentId), s.version, `chunk ${s.id} is not of an active version`);
      assert.ok(
        Math.abs(got[i]!.score - cosine(query, s.vec)) < 1e-5,
        `score ${got[i]!.score} vs ${cosine(query, s.vec)}`,
      );
      if (i > 0) assert.ok(got[i - 1]!.score >= got[i]!.score, 'ordered by score');
    }
    const wanted = new Set(want.map((w) => w.id));
    return got.filter((g) => wanted.has(Number(g.id))).length / Math.max(1, want.length);
  }

  /** The plan of the last statement the repository ran. */
  async function planOfLast(prefix: string): Promise<string> {
    const last = a.log.findLast((q) => q.text.trimStart().startsWith(prefix));
    assert.ok(last, `no statement starting with ${prefix}`);
    const { rows } = await pg.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${last.text}`, last.values);
    // the query vector's literal makes a plan unreadable
    return rows.map((r) => r['QUERY PLAN'].replace(/'\[[^\]]*\]'/g, "'[…]'")).join('\n');
  }

  before(async () => {
    const started = performance.now();
    // bigint as numbers, as core's pg setup does
    pg = await PGlite.create({ extensions: { vector }, parsers: { 20: (v: string) => Number(v) } });
    for (const file of ['0001_core.sql', '0002_knowledge_memory.sql'])
      await pg.exec(readFileSync(new URL(file, MIGRATIONS), 'utf8'));
    a = adapter(pg);
    db = a as unknown as Queryable;
    pool = a as unknown as Db;
    const { rows } = await pg.query<{ pg: string; vector: string }>(
      `SELECT current_setting('server_version') AS pg,
         (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS vector`,
    );
    console.log(
      `# PGlite: Postgres ${rows[0]!.pg}, pgvector ${rows[0]!.vector}, ready in ${Math.round(performance.now() - started)} ms`,
    );
  });

  after(async () => {
    await pg?.close();
  });

  it('migration 0002 installs pgvector and adds a dimensionless vec column', async () => {
    assert.equal(await hasPgvector(db), true);
    const { rows } = await pg.query<{ type: string }>(
      `SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
       WHERE attrelid = 'kb_chunks'::regclass AND attname = 'vec'`,
    );
    assert.equal(rows[0]?.type, 'vector');
  });

  it('ensureHnswIndex creates one expression partial index per size, and again is a no-op', async () => {
    await ensureHnswIndex(db, DIMS);
    await ensureHnswIndex(db, DIMS);
    const { rows } = await pg.query<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'kb_chunks' AND indexdef LIKE '%hnsw%'`,
    );
    assert.deepEqual(
      rows.map((r) => r.indexname),
      ['kb_chunks_vec_64'],
    );
    assert.match(
      rows[0]!.indexdef,
      /USING hnsw \(\(\(vec\)::vector\(64\)\) vector_cosine_ops\) WHERE \(dims = 64\)/,
    );
    for (const bad of [0, -1, 1.5, 16001, Number.NaN])
      await assert.rejects(ensureHnswIndex(db, bad), RangeError);
  });

  it('insertChunks stores vec equal to the embedding (and a re-run overwrites it)', async () => {
    const started = performance.now();
    // 2,000 chunks in 4 documents, each chunk near one of the centres
    for (let d = 0; d < 4; d++) {
      const id = await addDocument(`doc ${d}`);
      docIds.push(id);
      const vectors = Array.from({ length: 500 }, () =>
        near(rand, centres[Math.floor(rand() * centres.length)]!, 0.8),
      );
      await store(id, 1, MODEL, vectors);
      await activate(id, 1, MODEL, vectors.length);
    }
    console.log(`# stored and indexed 2,000 chunks in ${Math.round(performance.now() - started)} ms`);

    const sample = stored[1234]!;
    const { rows } = await pg.query<{
      vec: string;
      embedding: Uint8Array;
      dims: number;
      embedding_model: string;
    }>('SELECT vec::text AS vec, embedding, dims, embedding_model FROM kb_chunks WHERE id = $1', [sample.id]);
    assert.deepEqual(parseVector(rows[0]!.vec), sample.vec);
    assert.deepEqual(Buffer.from(rows[0]!.embedding), float32ToBytes(sample.vec));
    assert.equal(rows[0]!.dims, DIMS);
    assert.equal(rows[0]!.embedding_model, MODEL);
    // every stored vec equals its embedding bytes
    const { rows: mismatched } = await pg.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM kb_chunks WHERE vec IS NULL OR vector_dims(vec) <> dims`,
    );
    assert.equal(mismatched[0]!.n, 0);

    // a chunk without an embedding has no vec; a re-run of the job with one fills it in
    const scratch = await addDocument('scratch');
    await insertChunks(db, scratch, 1, MODEL, [{ chunk: chunk(0, 'no vector yet'), embedding: null }], true);
    const { rows: empty } = await pg.query<{ vec: string | null; dims: number | null }>(
      'SELECT vec::text AS vec, dims FROM kb_chunks WHERE document_id = $1',
      [scratch],
    );
    assert.deepEqual(empty, [{ vec: null, dims: null }]);
    const v = randomUnit(rand, DIMS);
    await insertChunks(db, scratch, 1, MODEL, [{ chunk: chunk(0, 'now with one'), embedding: v }], true);
    const { rows: filled } = await pg.query<{ vec: string; dims: number; content: string }>(
      'SELECT vec::text AS vec, dims, content FROM kb_chunks WHERE document_id = $1',
      [scratch],
    );
    assert.equal(filled.length, 1);
    assert.deepEqual(parseVector(filled[0]!.vec), v);
    assert.equal(filled[0]!.dims, DIMS);
    assert.equal(filled[0]!.content, 'now with one');
    assert.equal(await deleteDocument(pool, scratch), true);
  });

  it('pgvectorCandidates finds the exact top 10 of the active chunks, ordered by score', async (t) => {
    const recalls: number[] = [];
    for (let q = 0; q < 30; q++) {
      const query = near(rand, centres[q % centres.length]!, 1);
      const got = await pgvectorCandidates(pool, query, MODEL, 10, -1);
      assert.equal(got.length, 10);
      recalls.push(compare(query, got, exact(query, MODEL, 10)));
    }
    // also a query equal to a stored vector: that chunk comes first with a score of 1
    const target = stored[777]!;
    const got = await pgvectorCandidates(pool, target.vec, MODEL, 10, -1);
    assert.equal(Number(got[0]!.id), target.id);
    assert.ok(Math.abs(got[0]!.score - 1) < 1e-6);
    const mean = recalls.reduce((x, y) => x + y, 0) / recalls.length;
    t.diagnostic(
      `recall@10 over ${recalls.length} queries: mean ${mean.toFixed(3)}, min ${Math.min(...recalls)}`,
    );
    assert.ok(mean >= 0.9, `recall@10 ${mean}`);
  });

  it('respects minSimilarity', async () => {
    const query = near(rand, centres[3]!, 1);
    const want = exact(query, MODEL, 10);
    const threshold = (want[4]!.score + want[5]!.score) / 2;
    const got = await pgvectorCandidates(pool, query, MODEL, 10, threshold);
    assert.ok(got.length > 0 && got.length <= 5);
    for (const g of got) assert.ok(g.score > threshold);
    assert.deepEqual(
      got.map((g) => Number(g.id)),
      want.filter((w) => w.score > threshold).map((w) => w.id),
    );
    assert.deepEqual(await pgvectorCandidates(pool, query, MODEL, 10, 0.9999), []);
  });

  it('the vector query uses the kb_chunks_vec_64 index', async (t) => {
    await pgvectorCandidates(pool, near(rand, centres[0]!, 1), MODEL, 50, 0);
    const chosen = await planOfLast('SELECT n.id');
    t.diagnostic(`plan with the planner's own choice:\n${chosen}`);
    await pg.exec('SET enable_seqscan = off');
    try {
      const plan = await planOfLast('SELECT n.id');
      t.diagnostic(`plan with enable_seqscan = off:\n${plan}`);
      assert.match(plan, /Index Scan using kb_chunks_vec_64 on kb_chunks/);
    } finally {
      await pg.exec('RESET enable_seqscan');
    }
  });

  it('a version being built is never seen; activating it replaces the old one', async () => {
    const doc = docIds[0]!;
    const bumped = await bumpVersion(db, doc);
    assert.equal(bumped?.version, 2);
    const old = stored.filter((s) => s.documentId === doc && s.version === 1);
    // the new version's vectors sit right where queries will look
    const fresh = await store(
      doc,
      2,
      MODEL,
      Array.from({ length: 300 }, (_, i) => near(rand, centres[i % 10]!, 0.8)),
    );
    const freshIds = new Set(fresh.map((s) => s.id));
    for (let q = 0; q < 20; q++) {
      const query = near(rand, centres[q % 10]!, 1);
      const got = await pgvectorCandidates(pool, query, MODEL, 10, -1);
      assert.equal(got.length, 10);
      for (const g of got) assert.ok(!freshIds.has(Number(g.id)), `chunk ${g.id} of the unactivated version`);
      compare(query, got, exact(query, MODEL, 10));
    }
    // even asked for exactly one of its vectors
    const exactly = await pgvectorCandidates(pool, fresh[5]!.vec, MODEL, 10, -1);
    assert.equal(exactly.length, 10);
    for (const g of exactly) assert.ok(!freshIds.has(Number(g.id)));

    await activate(doc, 2, MODEL, fresh.length);
    const { rows } = await pg.query<{ version: number; n: number }>(
      'SELECT version, count(*)::int AS n FROM kb_chunks WHERE document_id = $1 GROUP BY version',
      [doc],
    );
    assert.deepEqual(rows, [{ version: 2, n: 300 }]);
    const oldIds = new Set(old.map((s) => s.id));
    const recalls: number[] = [];
    let seenFresh = 0;
    for (let q = 0; q < 20; q++) {
      const query = near(rand, centres[q % 10]!, 1);
      const got = await pgvectorCandidates(pool, query, MODEL, 10, -1);
      assert.equal(got.length, 10);
      for (const g of got) {
        assert.ok(!oldIds.has(Number(g.id)), `chunk ${g.id} of the replaced version`);
        if (freshIds.has(Number(g.id))) seenFresh++;
      }
      recalls.push(compare(query, got, exact(query, MODEL, 10)));
    }
    assert.ok(seenFresh > 0);
    assert.ok(recalls.reduce((x, y) => x + y, 0) / recalls.length >= 0.9);
    const top = await pgvectorCandidates(pool, fresh[5]!.vec, MODEL, 10, -1);
    assert.equal(Number(top[0]!.id), fresh[5]!.id);
  });

  it('filters by embedding model', async () => {
    // a document embedded by another model of the same size: its chunks share the index
    const doc = await addDocument('other model');
    const others = await store(
      doc,
      1,
      OTHER_MODEL,
      Array.from({ length: 100 }, () => near(rand, centres[0]!, 0.8)),
    );
    await activate(doc, 1, OTHER_MODEL, others.length);
    const otherIds = new Set(others.map((s) => s.id));
    const query = near(rand, centres[0]!, 1);
    const mine = await pgvectorCandidates(pool, query, MODEL, 10, -1);
    assert.ok(mine.length > 0);
    for (const g of mine) assert.ok(!otherIds.has(Number(g.id)));
    compare(query, mine, exact(query, MODEL, 10));
    const theirs = await pgvectorCandidates(pool, query, OTHER_MODEL, 10, -1);
    assert.equal(theirs.length, 10);
    for (const g of theirs) assert.ok(otherIds.has(Number(g.id)));
    assert.ok(compare(query, theirs, exact(query, OTHER_MODEL, 10)) >= 0.9);
  });

  it('another size gets its own index, and sizes never mix', async (t) => {
    await ensureHnswIndex(db, 32);
    const doc = await addDocument('small vectors');
    const small = await store(
      doc,
      1,
      MODEL,
      Array.from({ length: 200 }, () => randomUnit(rand, 32)),
    );
    await activate(doc, 1, MODEL, small.length);
    const { rows } = await pg.query<{ indexname: string }>(
      `SELECT indexname FROM pg_indexes WHERE tablename = 'kb_chunks' AND indexdef LIKE '%hnsw%' ORDER BY 1`,
    );
    assert.deepEqual(
      rows.map((r) => r.indexname),
      ['kb_chunks_vec_32', 'kb_chunks_vec_64'],
    );
    const smallIds = new Set(small.map((s) => s.id));
    const query32 = small[17]!.vec;
    const got32 = await pgvectorCandidates(pool, query32, MODEL, 10, -1);
    assert.equal(got32.length, 10);
    assert.equal(Number(got32[0]!.id), small[17]!.id);
    for (const g of got32) assert.ok(smallIds.has(Number(g.id)));
    compare(query32, got32, exact(query32, MODEL, 10));
    await pg.exec('SET enable_seqscan = off');
    try {
      const plan = await planOfLast('SELECT n.id');
      t.diagnostic(`32-dim plan:\n${plan}`);
      assert.match(plan, /Index Scan using kb_chunks_vec_32 on kb_chunks/);
    } finally {
      await pg.exec('RESET enable_seqscan');
    }
    const got64 = await pgvectorCandidates(pool, near(rand, centres[1]!, 1), MODEL, 50, -1);
    assert.ok(got64.length > 0);
    for (const g of got64) assert.ok(!smallIds.has(Number(g.id)));
  });

  it('an HNSW scan returns at most hnsw.ef_search rows (40 by default), dead ones included', async (t) => {
    const query = near(rand, centres[2]!, 1);
    // pgvectorCandidates' inner query, without the model filter
    const scan = async () => {
      const { rows } = await pg.query(
        `SELECT id FROM kb_chunks WHERE dims = ${DIMS}
         ORDER BY vec::vector(${DIMS}) <=> $1::vector(${DIMS}) LIMIT 50`,
        [vectorLiteral(query)],
      );
      return rows.length;
    };
    const { rows } = await pg.query<{ ef: string }>(`SELECT current_setting('hnsw.ef_search') AS ef`);
    assert.equal(rows[0]!.ef, '40');
    await pg.exec('SET enable_seqscan = off');
    try {
      // the replaced version's rows are deleted but still in the index until VACUUM
      const before = await scan();
      t.diagnostic(`LIMIT 50, hnsw.ef_search = 40, before VACUUM: ${before} rows`);
      const candidates = await pgvectorCandidates(pool, query, MODEL, 50, -1);
      t.diagnostic(`pgvectorCandidates(limit 50) at the session defaults: ${candidates.length} rows`);
      assert.ok(before <= 40);
      // core's query is not cut short by either
      assert.equal(candidates.length, 50);
      await pg.exec('VACUUM kb_chunks');
      assert.equal(await scan(), 40);
      await pg.exec('SET hnsw.ef_search = 100');
      assert.equal(await scan(), 50);
      await pg.exec('RESET hnsw.ef_search');
      // or (pgvector >= 0.8) the scan goes on as long as rows are wanted
      await pg.exec('SET hnsw.iterative_scan = strict_order');
      assert.equal(await scan(), 50);
    } finally {
      await pg.exec('RESET enable_seqscan; RESET hnsw.ef_search; RESET hnsw.iterative_scan');
    }
  });

  // The index hands out at most hnsw.ef_search rows (40 by default) and rows are filtered after it
  // (another model's, deleted ones not yet vacuumed, versions not active): pgvectorCandidates raises
  // ef_search to the limit and turns on the iterative scan, so a search is never cut short by them.

  it('returns `limit` candidates at the session defaults', async () => {
    const query = near(rand, centres[2]!, 1);
    assert.equal((await pgvectorCandidates(pool, query, MODEL, 50, -1)).length, 50);
  });

  it('chunks of a version being built do not take the active chunks’ places', async () => {
    const doc = docIds[1]!;
    const bumped = await bumpVersion(db, doc);
    const fresh = await store(
      doc,
      bumped!.version,
      MODEL,
      Array.from({ length: 50 }, () => near(rand, centres[5]!, 0.3)),
    );
    try {
      const query = near(rand, centres[5]!, 0.3);
      const got = await pgvectorCandidates(pool, query, MODEL, 10, -1);
      assert.equal(got.length, 10, `only ${got.length} of 10: the unactivated chunks took the places`);
      compare(query, got, exact(query, MODEL, 10));
    } finally {
      await pg.query('DELETE FROM kb_chunks WHERE id = ANY($1::bigint[])', [fresh.map((s) => s.id)]);
    }
  });

  it('chunks of another model of the same size do not take the places either', async () => {
    const doc = await addDocument('crowd of another model');
    const crowd = await store(
      doc,
      1,
      OTHER_MODEL,
      Array.from({ length: 60 }, () => near(rand, centres[6]!, 0.3)),
    );
    await activate(doc, 1, OTHER_MODEL, crowd.length);
    const query = near(rand, centres[6]!, 0.3);
    const got = await pgvectorCandidates(pool, query, MODEL, 10, -1);
    assert.equal(got.length, 10, `only ${got.length} of 10`);
  });

  it('rows deleted since the last VACUUM do not take the places either', async () => {
    const doc = await addDocument('deleted soon');
    const gone = await store(
      doc,
      1,
      MODEL,
      Array.from({ length: 60 }, () => near(rand, centres[7]!, 0.3)),
    );
    await activate(doc, 1, MODEL, gone.length);
    assert.equal(await deleteDocument(pool, doc), true);
    active.delete(doc);
    const query = near(rand, centres[7]!, 0.3);
    const got = await pgvectorCandidates(pool, query, MODEL, 10, -1);
    assert.equal(got.length, 10, `only ${got.length} of 10`);
  });
});
