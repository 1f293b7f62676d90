import type { PreparedChunk } from '@pincer/knowledge';
import { type Db, type Queryable, transaction } from './db.ts';

export type DocumentStatus = 'queued' | 'extracting' | 'embedding' | 'ready' | 'failed';

export interface KbDocument {
  id: number;
  title: string;
  source: 'text' | 'file';
  filename: string | null;
  mime: string | null;
  format: string;
  metadata: Record<string, unknown>;
  bytes: number;
  sha256: string;
  status: DocumentStatus;
  error: string | null;
  version: number;
  active_version: number | null;
  chunks_total: number;
  chunks_done: number;
  chunk_count: number;
  characters: number;
  embedding_model: string | null;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
  ingested_at: Date | null;
}

const DOC_COLUMNS = `id, title, source, filename, mime, format, metadata, bytes, sha256, status, error, version,
  active_version, chunks_total, chunks_done, chunk_count, characters, embedding_model, created_by, created_at,
  updated_at, ingested_at`;

export async function insertDocument(
  db: Queryable,
  d: Pick<KbDocument, 'title' | 'source' | 'filename' | 'mime' | 'format' | 'metadata' | 'sha256'> & {
    original: Buffer;
    createdBy: string;
  },
): Promise<KbDocument> {
  const { rows } = await db.query<KbDocument>(
    `INSERT INTO kb_documents (title, source, filename, mime, format, metadata, original, bytes, sha256, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${DOC_COLUMNS}`,
    [
      d.title,
      d.source,
      d.filename,
      d.mime,
      d.format,
      JSON.stringify(d.metadata),
      d.original,
      d.original.byteLength,
      d.sha256,
      d.createdBy,
    ],
  );
  return rows[0]!;
}

export async function getDocument(db: Queryable, id: number): Promise<KbDocument | undefined> {
  const { rows } = await db.query<KbDocument>(`SELECT ${DOC_COLUMNS} FROM kb_documents WHERE id = $1`, [id]);
  return rows[0];
}

export async function listDocuments(
  db: Queryable,
  q: { status?: DocumentStatus; search?: string; limit: number; before?: number },
): Promise<KbDocument[]> {
  const { rows } = await db.query<KbDocument>(
    `SELECT ${DOC_COLUMNS} FROM kb_documents
     WHERE ($1::text IS NULL OR status = $1)
       AND ($2::text IS NULL OR title ILIKE '%' || $2 || '%' OR filename ILIKE '%' || $2 || '%')
       AND ($3::bigint IS NULL OR id < $3)
     ORDER BY id DESC LIMIT $4`,
    [
      q.status ?? null,
      q.search ? q.search.replace(/[\\%_]/g, (c) => `\\${c}`) : null,
      q.before ?? null,
      q.limit,
    ],
  );
  return rows;
}

/** The stored original and what ingestion needs; undefined when the document is gone. */
export interface IngestSource extends Pick<KbDocument, 'version' | 'active_version' | 'filename' | 'mime'> {
  original: Buffer;
}

export async function documentForIngest(db: Queryable, id: number): Promise<IngestSource | undefined> {
  const { rows } = await db.query<IngestSource>(
    `SELECT version, active_version, original, filename, mime FROM kb_documents WHERE id = $1`,
    [id],
  );
  return rows[0];
}

/** Starts a new ingestion of a document (re-ingest): a new version, queued. Undefined if unknown. */
export async function bumpVersion(db: Queryable, id: number): Promise<KbDocument | undefined> {
  const { rows } = await db.query<KbDocument>(
    `UPDATE kb_documents SET version = version + 1, status = 'queued', error = NULL, chunks_total = 0,
       chunks_done = 0, updated_at = now()
     WHERE id = $1 RETURNING ${DOC_COLUMNS}`,
    [id],
  );
  return rows[0];
}

/** Progress of the version being built; false when that version is no longer wanted (re-ingested, deleted). */
export async function setProgress(
  db: Queryable,
  id: number,
  version: number,
  p: { status: DocumentStatus; chunksTotal?: number; chunksDone?: number; error?: string | null },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE kb_documents SET status = $3, chunks_total = COALESCE($4, chunks_total),
       chunks_done = COALESCE($5, chunks_done), error = $6, updated_at = now()
     WHERE id = $1 AND version = $2`,
    [id, version, p.status, p.chunksTotal ?? null, p.chunksDone ?? null, p.error ?? null],
  );
  return rowCount === 1;
}

export interface ChunkRow {
  chunk: PreparedChunk;
  embedding: Float32Array | null;
}

/** Stores a batch of chunks of a version being built (a re-run of the job overwrites them). */
export async function insertChunks(
  db: Queryable,
  documentId: number,
  version: number,
  model: string | null,
  rows: ChunkRow[],
  pgvector: boolean,
): Promise<void> {
  if (rows.length === 0) return;
  const vec = pgvector ? ', vec' : '';
  const vecSet = pgvector ? ', vec = EXCLUDED.vec' : '';
  const vecValue = pgvector ? ', CASE WHEN r.embedding IS NULL THEN NULL ELSE r.vec::vector END' : '';
  await db.query(
    `INSERT INTO kb_chunks (document_id, version, position, heading, content, tokens, fts, embedding_model, dims, embedding${vec})
     SELECT $1, $2, r.position, r.heading, r.content, r.tokens, to_tsvector('simple', r.fts), $3,
       CASE WHEN r.embedding IS NULL THEN NULL ELSE r.dims END, r.embedding${vecValue}
     FROM unnest($4::int[], $5::text[], $6::text[], $7::int[], $8::text[], $9::int[], $10::bytea[], $11::text[])
       AS r(position, heading, content, tokens, fts, dims, embedding, vec)
     ON CONFLICT (document_id, version, position) DO UPDATE SET heading = EXCLUDED.heading,
       content = EXCLUDED.content, tokens = EXCLUDED.tokens, fts = EXCLUDED.fts,
       embedding_model = EXCLUDED.embedding_model, dims = EXCLUDED.dims, embedding = EXCLUDED.embedding${vecSet}`,
    [
      documentId,
      version,
      model,
      rows.map((r) => r.chunk.position),
      rows.map((r) => r.chunk.heading),
      rows.map((r) => r.chunk.content),
      rows.map((r) => r.chunk.tokens),
      rows.map((r) => r.chunk.fts),
      rows.map((r) => r.embedding?.length ?? null),
      rows.map((r) => (r.embedding ? float32ToBytes(r.embedding) : null)),
      rows.map((r) => (r.embedding && pgvector ? vectorLiteral(r.embedding) : null)),
    ],
  );
}

/**
 * Makes a finished version the one queries see, drops every other version's chunks and bumps the
 * generation, in one transaction. False if the version was superseded or the document deleted.
 */
export async function activateVersion(
  db: Db,
  id: number,
  version: number,
  p: { chunkCount: number; characters: number; model: string | null; format: string },
): Promise<boolean> {
  return transaction(db, async (client) => {
    const { rows: current } = await client.query<{ active_version: number | null }>(
      'SELECT active_version FROM kb_documents WHERE id = $1 AND version = $2 FOR UPDATE',
      [id, version],
    );
    // superseded by a re-ingest, or deleted: nothing was changed
    if (!current[0]) return false;
    const previous = current[0].active_version;
    if (previous !== null && previous !== version) await countLexemes(client, id, previous, -1);
    await client.query(
      `UPDATE kb_documents SET active_version = version, status = 'ready', error = NULL, chunk_count = $3,
         chunks_done = $3, chunks_total = $3, characters = $4, embedding_model = $5, format = $6,
         ingested_at = now(), updated_at = now()
       WHERE id = $1 AND version = $2`,
      [id, version, p.chunkCount, p.characters, p.model, p.format],
    );
    await client.query(`DELETE FROM kb_chunks WHERE document_id = $1 AND (version <> $2 OR position >= $3)`, [
      id,
      version,
      p.chunkCount,
    ]);
    if (previous !== version) await countLexemes(client, id, version, 1);
    await client.query(`UPDATE kb_state SET generation = generation + 1`);
    return true;
  });
}

/** Deletes a document and its chunks; false if there was none. */
export async function deleteDocument(db: Db, id: number): Promise<boolean> {
  return transaction(db, async (client) => {
    const { rows } = await client.query<{ active_version: number | null }>(
      'SELECT active_version FROM kb_documents WHERE id = $1 FOR UPDATE',
      [id],
    );
    if (!rows[0]) return false;
    if (rows[0].active_version !== null) await countLexemes(client, id, rows[0].active_version, -1);
    await client.query('DELETE FROM kb_documents WHERE id = $1', [id]);
    await client.query('UPDATE kb_state SET generation = generation + 1');
    return true;
  });
}

/** Adds (1) or removes (-1) a document version's chunks to the lexeme counts. */
async function countLexemes(db: Queryable, id: number, version: number, sign: 1 | -1): Promise<void> {
  if (!Number.isSafeInteger(id) || !Number.isSafeInteger(version))
    throw new RangeError('bad document version');
  // ts_stat takes the query as text; both values are integers checked above
  const stat = `SELECT word, ndoc FROM ts_stat('SELECT fts FROM kb_chunks WHERE document_id = ${id} AND version = ${version}') ORDER BY word`;
  if (sign > 0)
    await db.query(
      `INSERT INTO kb_lexemes (lexeme, chunks) ${stat}
       ON CONFLICT (lexeme) DO UPDATE SET chunks = kb_lexemes.chunks + EXCLUDED.chunks`,
    );
  else
    await db.query(
      `UPDATE kb_lexemes l SET chunks = GREATEST(0, l.chunks - s.ndoc) FROM (${stat}) s WHERE l.lexeme = s.word`,
    );
}

/** Removes the chunks of versions that will never be activated (a failed ingestion). */
export async function dropInactiveChunks(db: Queryable, id: number, version: number): Promise<void> {
  await db.query(
    `DELETE FROM kb_chunks c USING kb_documents d
     WHERE c.document_id = $1 AND d.id = c.document_id AND c.version = $2
       AND c.version IS DISTINCT FROM d.active_version`,
    [id, version],
  );
}

/** Document versions still being ingested whose last change is older than `idleMs`. */
export async function unfinishedVersions(
  db: Queryable,
  idleMs: number,
): Promise<Array<{ id: number; version: number }>> {
  const { rows } = await db.query<{ id: number; version: number }>(
    `SELECT id, version FROM kb_documents
     WHERE status IN ('queued', 'extracting', 'embedding') AND updated_at < now() - make_interval(secs => $1)
     ORDER BY id LIMIT 1000`,
    [idleMs / 1000],
  );
  return rows;
}

export async function generation(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ generation: number }>({
    name: 'core.kb.generation',
    text: 'SELECT generation FROM kb_state',
  });
  return rows[0]?.generation ?? 0;
}

/** Active versions of every document, for the in-process vector index to compare with what it holds. */
export async function activeVersions(db: Queryable): Promise<Map<number, number>> {
  const { rows } = await db.query<{ id: number; active_version: number }>(
    'SELECT id, active_version FROM kb_documents WHERE active_version IS NOT NULL',
  );
  return new Map(rows.map((r) => [r.id, r.active_version]));
}

/** The embeddings of one model of the given document versions. */
export async function chunkVectors(
  db: Queryable,
  versions: Array<[documentId: number, version: number]>,
  model: string,
): Promise<Array<{ id: number; document_id: number; embedding: Buffer }>> {
  const { rows } = await db.query<{ id: number; document_id: number; embedding: Buffer }>(
    `SELECT c.id, c.document_id, c.embedding
     FROM unnest($1::bigint[], $2::int[]) AS v(document_id, version)
     JOIN kb_chunks c ON c.document_id = v.document_id AND c.version = v.version
     WHERE c.embedding_model = $3 AND c.embedding IS NOT NULL`,
    [versions.map((v) => v[0]), versions.map((v) => v[1]), model],
  );
  return rows;
}

/**
 * Matches Postgres ranks for one search at most, roughly: a query's most common terms are left out
 * beyond it (ts_rank reads every matching chunk's lexemes; a word in most chunks would make it rank
 * most of the knowledge base, and such a word tells little about what is asked anyway).
 */
const TEXT_MATCH_BUDGET = 3000;

/**
 * Full-text candidates among the active chunks, best first: the query's lexemes ORed, rarest first
 * within the match budget (see TEXT_MATCH_BUDGET); one-character Chinese prefixes only when no
 * other term of the query is in the knowledge base.
 */
export async function textCandidates(
  db: Queryable,
  query: { terms: string[]; prefixes: string[] },
  limit: number,
): Promise<Array<{ id: number; score: number }>> {
  let chosen: string[] = [];
  if (query.terms.length) {
    const { rows } = await db.query<{ lexeme: string; chunks: number }>({
      name: 'core.kb.lexemes',
      text: 'SELECT lexeme, chunks FROM kb_lexemes WHERE lexeme = ANY($1::text[]) AND chunks > 0',
      values: [query.terms],
    });
    rows.sort((a, b) => a.chunks - b.chunks || (a.lexeme < b.lexeme ? -1 : 1));
    let budget = TEXT_MATCH_BUDGET;
    for (const r of rows) {
      // the rarest term always counts; further ones while the budget lasts
      if (chosen.length > 0 && r.chunks > budget) break;
      chosen.push(r.lexeme);
      budget -= r.chunks;
    }
  }
  const prefixes = query.prefixes.map((p) => `${p}:*`);
  if (chosen.length === 0) chosen = prefixes;
  if (chosen.length === 0) return [];
  // chunks are matched by the chosen terms but ranked by the whole query: a common word still
  // counts for the chunks that have it
  const { rows } = await db.query<{ id: number; score: number }>({
    name: 'core.kb.text',
    text: `SELECT c.id, ts_rank(c.fts, whole, 1) AS score
     FROM to_tsquery('simple', $1) q, to_tsquery('simple', $2) whole, kb_chunks c
     JOIN kb_documents d ON d.id = c.document_id AND d.active_version = c.version
     WHERE c.fts @@ q
     ORDER BY score DESC, c.id LIMIT $3`,
    values: [chosen.join(' | '), [...query.terms, ...prefixes].join(' | '), limit],
  });
  return rows;
}

/**
 * Nearest active chunks by cosine through pgvector's HNSW index for this size. An HNSW scan yields at
 * most hnsw.ef_search rows and filters apply after it: the search list is widened to the limit, and
 * the iterative scan (pgvector 0.8) keeps going while rows are filtered out (other models, versions
 * being built, deleted rows not yet vacuumed), so the limit is met whenever enough rows match.
 */
export async function pgvectorCandidates(
  db: Db,
  query: Float32Array,
  model: string,
  limit: number,
  minSimilarity: number,
): Promise<Array<{ id: number; score: number }>> {
  const dims = query.length;
  return transaction(db, async (client) => {
    await client.query(
      `SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'strict_order', true)`,
      [String(Math.min(1000, Math.max(40, Math.trunc(limit))))],
    );
    const { rows } = await client.query<{ id: number; score: number }>(
      `SELECT n.id, n.score FROM (
         SELECT c.id, 1 - (c.vec::vector(${dims}) <=> $1::vector(${dims})) AS score
         FROM kb_chunks c
         WHERE c.dims = ${dims} AND c.embedding_model = $2
           AND EXISTS (SELECT 1 FROM kb_documents d WHERE d.id = c.document_id AND d.active_version = c.version)
         ORDER BY c.vec::vector(${dims}) <=> $1::vector(${dims}) LIMIT $3
       ) n WHERE n.score > $4
       ORDER BY n.score DESC, n.id`,
      [vectorLiteral(query), model, limit, minSimilarity],
    );
    return rows;
  });
}

/** Whether pgvector is installed and the chunks table has its column. */
export async function hasPgvector(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM information_schema.columns
       WHERE table_schema = current_schema() AND table_name = 'kb_chunks' AND column_name = 'vec') AS ok`,
  );
  return rows[0]!.ok;
}

/** The HNSW index for one embedding size (an expression index: the column itself has no fixed size). */
export async function ensureHnswIndex(db: Queryable, dims: number): Promise<void> {
  if (!Number.isInteger(dims) || dims < 1 || dims > 16000) throw new RangeError(`bad embedding size ${dims}`);
  try {
    await db.query(
      `CREATE INDEX IF NOT EXISTS kb_chunks_vec_${dims} ON kb_chunks
       USING hnsw ((vec::vector(${dims})) vector_cosine_ops) WHERE dims = ${dims}`,
    );
  } catch (err) {
    // another process created it at the same moment
    if ((err as { code?: string }).code !== '23505' && (err as { code?: string }).code !== '42P07') throw err;
  }
}

export interface ChunkHit {
  id: number;
  document_id: number;
  title: string;
  filename: string | null;
  metadata: Record<string, unknown>;
  position: number;
  heading: string;
  content: string;
  tokens: number;
}

export async function chunksByIds(db: Queryable, ids: number[]): Promise<Map<number, ChunkHit>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<ChunkHit>({
    name: 'core.kb.chunks',
    text: `SELECT c.id, c.document_id, d.title, d.filename, d.metadata, c.position, c.heading, c.content, c.tokens
     FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id AND d.active_version = c.version
     WHERE c.id = ANY($1::bigint[])`,
    values: [ids],
  });
  return new Map(rows.map((r) => [r.id, r]));
}

export async function knowledgeStats(
  db: Queryable,
): Promise<{ documents: number; chunks: number; by_status: Record<string, number> }> {
  const { rows } = await db.query<{ status: string; n: number; chunks: number }>(
    `SELECT status, count(*)::int AS n, COALESCE(sum(chunk_count), 0)::int AS chunks FROM kb_documents GROUP BY status`,
  );
  const by_status: Record<string, number> = {};
  let documents = 0;
  let chunks = 0;
  for (const r of rows) {
    by_status[r.status] = r.n;
    documents += r.n;
    chunks += r.chunks;
  }
  return { documents, chunks, by_status };
}

export function float32ToBytes(v: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) out.writeFloatLE(v[i]!, i * 4);
  return out;
}

export function bytesToFloat32(b: Buffer): Float32Array {
  // one copy into an aligned buffer (x86 and ARM are little-endian, as the stored bytes)
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** pgvector's text form: [1,2,3]. */
export function vectorLiteral(v: Float32Array): string {
  let s = '[';
  for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + (Number.isFinite(v[i]) ? v[i] : 0);
  return s + ']';
}
