import { AppError } from '@pincer/shared';
import { z } from 'zod';
import { knowledgeStats, listDocuments, type KbDocument } from '../../repositories/knowledge.ts';
import { writeAudit } from '../../repositories/audit.ts';
import { type Route, route } from '../route.ts';
import { IdParam, limitParam, StoredText, Timestamp } from '../schemas.ts';
import type { Caller, HttpDeps } from '../types.ts';

const EDITORS = ['operator'] as const;
const STATUSES = ['queued', 'extracting', 'embedding', 'ready', 'failed'] as const;

const Metadata = z
  .record(z.string().max(100), z.unknown())
  .refine((m) => JSON.stringify(m).length <= 16_384, 'metadata must be at most 16 KB as JSON')
  .refine((m) => !JSON.stringify(m).includes('\\u0000'), 'metadata must not contain NUL characters')
  .describe('Free-form JSON object kept with the document (source URL, owner, tags).');

const DocumentBody = z.object({
  id: z.number().int(),
  title: z.string(),
  source: z.enum(['text', 'file']),
  filename: z.string().nullable(),
  mime: z.string().nullable(),
  format: z.string().describe('md, txt, html, pdf or docx.'),
  metadata: z.record(z.string(), z.unknown()),
  bytes: z.number().int(),
  sha256: z.string(),
  status: z.enum(STATUSES),
  error: z.string().nullable().describe('Why ingestion failed (or is being retried).'),
  version: z.number().int().describe('The ingestion being built or last built.'),
  active_version: z
    .number()
    .int()
    .nullable()
    .describe('The ingestion queries see (null until one is ready).'),
  progress: z.object({
    chunks_total: z.number().int(),
    chunks_done: z.number().int(),
    percent: z.number(),
  }),
  chunk_count: z.number().int(),
  characters: z.number().int(),
  embedding_model: z.string().nullable(),
  created_by: z.string().nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
  ingested_at: Timestamp.nullable(),
});

function present(d: KbDocument) {
  const { chunks_total, chunks_done, ...rest } = d;
  const percent =
    d.status === 'ready' ? 100 : chunks_total > 0 ? Math.floor((chunks_done / chunks_total) * 100) : 0;
  return { ...rest, progress: { chunks_total, chunks_done, percent } };
}

const IdPath = z.object({ id: IdParam });

const Hit = z.object({
  chunk_id: z.number().int(),
  document: z.object({ id: z.number().int(), title: z.string(), filename: z.string().nullable() }),
  position: z.number().int().describe('0-based position of the chunk in its document.'),
  heading: z.string(),
  content: z.string(),
  score: z.number().describe('Fused rank score (reciprocal rank fusion): compare within one answer only.'),
  similarity: z.number().nullable().describe('Cosine similarity, when the vector half found the chunk.'),
  ranks: z.object({ vector: z.number().int().nullable(), text: z.number().int().nullable() }),
});

async function audit(
  deps: HttpDeps,
  caller: Caller,
  kind: string,
  documentId: number,
  detail: Record<string, unknown>,
) {
  await writeAudit(deps.db, {
    kind,
    actor: caller.name,
    outcome: 'ok',
    detail: { document_id: documentId, ...detail },
  });
}

async function found(deps: HttpDeps, id: number): Promise<KbDocument> {
  const d = await deps.knowledge.get(id);
  if (!d) throw new AppError(404, 'not_found', `No document ${id}.`);
  return d;
}

export const knowledgeRoutes: Route[] = [
  route({
    method: 'post',
    path: '/api/v1/knowledge/documents',
    operationId: 'addDocument',
    tag: 'knowledge',
    summary: 'Add a document from text (Markdown or plain text)',
    description:
      'The document is stored and its ingestion queued; follow its status and progress with GET. Files (PDF, Word, HTML…) go to /api/v1/knowledge/files.',
    roles: EDITORS,
    maxBodyBytes: (deps) => deps.config.knowledge.max_document_bytes + 64 * 1024,
    body: z.object({
      title: StoredText.pipe(z.string().trim().min(1).max(500)),
      content: StoredText.pipe(z.string().min(1)),
      metadata: Metadata.optional(),
    }),
    response: { status: 202, description: 'The stored document, queued.', schema: DocumentBody },
    errors: { 413: 'The document is too large.' },
    async handler({ body, caller, deps }) {
      const doc = await deps.knowledge.add({ ...body, createdBy: caller.name });
      await audit(deps, caller, 'knowledge.add', doc.id, { title: doc.title, bytes: doc.bytes });
      return present(doc);
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/knowledge/files',
    operationId: 'uploadDocument',
    tag: 'knowledge',
    summary: 'Upload a document file (.md, .txt, .html, .pdf, .docx)',
    description:
      'multipart/form-data with the file in `file`, and optionally `title` and `metadata` (a JSON object as text). The type is checked at once (415 for other types); the content is read by the ingestion job, whose failure shows in the document status.',
    roles: EDITORS,
    upload: { field: 'file', maxBytes: (deps) => deps.config.knowledge.max_document_bytes },
    body: z.object({
      title: StoredText.pipe(z.string().trim().min(1).max(500)).optional(),
      metadata: z
        .string()
        .optional()
        .transform((s, ctx) => {
          if (s === undefined || s === '') return undefined;
          try {
            const v: unknown = JSON.parse(s);
            const r = Metadata.safeParse(v);
            if (r.success) return r.data;
          } catch {
            // reported below
          }
          ctx.addIssue({ code: 'custom', message: 'metadata must be a JSON object' });
          return z.NEVER;
        }),
    }),
    response: { status: 202, description: 'The stored document, queued.', schema: DocumentBody },
    errors: { 413: 'The file is too large.', 415: 'Not a supported file type.' },
    async handler({ body, caller, deps, req }) {
      const f = req.file!;
      // busboy hands names over as latin1; browsers send UTF-8
      const name = Buffer.from(f.originalname, 'latin1').toString('utf8');
      const doc = await deps.knowledge.add({
        title: body.title,
        metadata: body.metadata,
        file: { name, mime: f.mimetype, data: f.buffer },
        createdBy: caller.name,
      });
      await audit(deps, caller, 'knowledge.add', doc.id, {
        title: doc.title,
        filename: name,
        bytes: doc.bytes,
      });
      return present(doc);
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/knowledge/documents',
    operationId: 'listDocuments',
    tag: 'knowledge',
    summary: 'Documents in the knowledge base, newest first',
    roles: EDITORS,
    query: z.object({
      status: z.enum(STATUSES).optional(),
      q: z.string().min(1).max(200).optional().describe('Part of the title or file name.'),
      limit: limitParam(500, 100),
      before: IdParam.optional().describe('next_before of the previous page.'),
    }),
    response: {
      description: 'Documents, with totals.',
      schema: z.object({
        data: z.array(DocumentBody),
        next_before: z.number().int().nullable(),
        totals: z.object({
          documents: z.number().int(),
          chunks: z.number().int(),
          by_status: z.record(z.string(), z.number().int()),
        }),
      }),
    },
    async handler({ query, deps }) {
      const [docs, totals] = await Promise.all([
        listDocuments(deps.db, {
          status: query.status,
          search: query.q,
          limit: query.limit,
          before: query.before,
        }),
        knowledgeStats(deps.db),
      ]);
      return {
        data: docs.map(present),
        next_before: docs.length === query.limit ? docs[docs.length - 1]!.id : null,
        totals,
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/knowledge/documents/:id',
    operationId: 'getDocument',
    tag: 'knowledge',
    summary: 'One document, with its ingestion status and progress',
    roles: EDITORS,
    params: IdPath,
    response: { description: 'The document.', schema: DocumentBody },
    async handler({ params, deps }) {
      return present(await found(deps, params.id));
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/knowledge/documents/:id/reingest',
    operationId: 'reingestDocument',
    tag: 'knowledge',
    summary: 'Ingest a document again (new chunking or embedding model); its old chunks are replaced',
    description: 'Queries keep seeing the old chunks until the new ingestion is ready.',
    roles: EDITORS,
    params: IdPath,
    response: { status: 202, description: 'The document, queued again.', schema: DocumentBody },
    async handler({ params, caller, deps }) {
      const doc = await deps.knowledge.reingest(params.id);
      if (!doc) throw new AppError(404, 'not_found', `No document ${params.id}.`);
      await audit(deps, caller, 'knowledge.reingest', doc.id, { version: doc.version });
      return present(doc);
    },
  }),
  route({
    method: 'delete',
    path: '/api/v1/knowledge/documents/:id',
    operationId: 'deleteDocument',
    tag: 'knowledge',
    summary: 'Delete a document and its chunks',
    roles: EDITORS,
    params: IdPath,
    response: { status: 204, description: 'Deleted.' },
    async handler({ params, caller, deps }) {
      const doc = await found(deps, params.id);
      if (!(await deps.knowledge.remove(params.id)))
        throw new AppError(404, 'not_found', `No document ${params.id}.`);
      await audit(deps, caller, 'knowledge.delete', doc.id, { title: doc.title });
      return undefined;
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/knowledge/query',
    operationId: 'queryKnowledge',
    tag: 'knowledge',
    summary: 'Search the knowledge base (hybrid: vectors and full text, fused)',
    roles: EDITORS,
    body: z.object({
      query: StoredText.pipe(z.string().trim().min(1).max(4000)),
      top_k: z.number().int().min(1).max(50).default(5),
      mode: z.enum(['hybrid', 'vector', 'text']).default('hybrid'),
    }),
    response: {
      description: 'The best chunks, best first.',
      schema: z.object({
        data: z.array(Hit),
        vector: z
          .enum(['ok', 'skipped', 'unavailable'])
          .describe('unavailable: the embedding model failed and only full text answered.'),
        took_ms: z.number(),
      }),
    },
    async handler({ body, deps }) {
      const r = await deps.knowledge.search(body.query, { topK: body.top_k, mode: body.mode });
      return {
        data: r.hits.map((h) => ({
          chunk_id: h.id,
          document: { id: h.document_id, title: h.title, filename: h.filename },
          position: h.position,
          heading: h.heading,
          content: h.content,
          score: h.score,
          similarity: h.similarity,
          ranks: h.ranks,
        })),
        vector: r.vector,
        took_ms: r.ms,
      };
    },
  }),
];
