import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { evaluateRetrieval, loadEvalSet } from '@pincer/knowledge';
import { buildDocx, buildPdf } from '../../../packages/knowledge/test/fixtures.ts';
import { createLogger } from '@pincer/shared';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.ts';
import { LlmClient } from '../src/repositories/llm.ts';
import { KnowledgeBase } from '../src/services/knowledge.ts';
import { PreparePool } from '../src/services/prepare-pool.ts';
import { ADMIN_TOKEN, api, embeddingModels, REDIS_URL, type Stack, startStack } from './stack.ts';

// the mock's embeddings at the evaluation's size (hashed words, Chinese bigrams and subword trigrams)
const DIMS = 256;

const models = (mockUrl: string) => embeddingModels(mockUrl);

async function upload(
  s: Stack,
  name: string,
  data: Uint8Array | string,
  fields: Record<string, string> = {},
  token = ADMIN_TOKEN,
) {
  const form = new FormData();
  form.set('file', new Blob([typeof data === 'string' ? data : new Uint8Array(data)]), name);
  for (const [k, v] of Object.entries(fields)) form.set(k, v);
  const res = await fetch(`${s.core.url}/api/v1/knowledge/files`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, text };
}

/** Polls a document until its ingestion ends (ready or failed). */
async function settled(s: Stack, id: number, timeoutMs = 20_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api(s, 'GET', `/api/v1/knowledge/documents/${id}`);
    assert.equal(r.status, 200, r.text);
    if (r.json.status === 'ready' || r.json.status === 'failed') return r.json;
    if (Date.now() > deadline) throw new Error(`document ${id} still ${r.json.status}`);
    await sleep(50);
  }
}

async function query(s: Stack, q: string, extra: Record<string, unknown> = {}) {
  const r = await api(s, 'POST', '/api/v1/knowledge/query', { query: q, ...extra });
  assert.equal(r.status, 200, r.text);
  return r.json as { data: any[]; vector: string; took_ms: number };
}

async function chunkRows(s: Stack, documentId: number) {
  const { rows } = await s.t.db.query<{ id: number; version: number }>(
    'SELECT id, version FROM kb_chunks WHERE document_id = $1 ORDER BY id',
    [documentId],
  );
  return rows;
}

describe('knowledge base (real Postgres, llm-proxy and the mock model)', () => {
  let s: Stack;
  let operatorKey: string;
  let userKey: string;
  before(async () => {
    s = await startStack({
      mock: { embeddingDims: DIMS },
      models,
      config: {
        // the mock's hashed features collide a little: unrelated texts stay below 0.1
        knowledge: { embedding_model: 'embed', chunk_tokens: 200, overlap_tokens: 40, min_similarity: 0.1 },
      },
      routing: {
        routes: [
          { match: { command: 'kb' }, action: 'knowledge_base' },
          { match: { content: '^auto ' }, action: 'process_with_llm', knowledge: true },
          { default: { action: 'process_with_llm' } },
        ],
      },
    });
    const op = await api(s, 'POST', '/api/v1/keys', { name: 'kb-operator', role: 'operator' });
    const us = await api(s, 'POST', '/api/v1/keys', { name: 'kb-user', role: 'user' });
    operatorKey = op.json.key;
    userKey = us.json.key;
  });
  after(async () => {
    await s?.close();
  });

  it('ingests every file type through the API, with progress, and finds what each says', async () => {
    const files: Array<[string, Uint8Array | string, string]> = [
      ['guide.md', '# Kettle guide\n\nThe Zephyr kettle boils a litre in ninety seconds.', 'md'],
      ['notes.txt', 'The quokka enclosure opens at nine in the morning.', 'txt'],
      [
        'page.html',
        '<html><head><title>Garden</title></head><body><h1>Garden</h1><p>Water the marigolds every Tuesday.</p><script>x()</script></body></html>',
        'html',
      ],
      [
        'manual.pdf',
        buildPdf([
          { text: 'Lighthouse manual', size: 24, y: 700 },
          { text: 'Replace the lamp filament every eighteen months.', size: 11, y: 660 },
        ]),
        'pdf',
      ],
      [
        'handbook.docx',
        await buildDocx([
          { style: 'Heading1', text: 'Handbook' },
          { text: 'Badges are renewed by the concierge on the first floor.' },
        ]),
        'docx',
      ],
    ];
    const ids: number[] = [];
    for (const [name, data, format] of files) {
      const r = await upload(s, name, data, { metadata: JSON.stringify({ origin: 'test' }) }, operatorKey);
      assert.equal(r.status, 202, r.text);
      assert.equal(r.json.format, format);
      assert.equal(r.json.filename, name);
      assert.deepEqual(r.json.metadata, { origin: 'test' });
      assert.ok(['queued', 'extracting', 'embedding', 'ready'].includes(r.json.status));
      ids.push(r.json.id);
    }
    for (const id of ids) {
      const d = await settled(s, id);
      assert.equal(d.status, 'ready', `${d.filename}: ${d.error}`);
      assert.ok(d.chunk_count >= 1);
      assert.deepEqual(d.progress, { chunks_total: d.chunk_count, chunks_done: d.chunk_count, percent: 100 });
      assert.equal(d.embedding_model, 'embed');
    }
    const expectations: Array<[string, string]> = [
      ['how fast does the Zephyr kettle boil', 'guide.md'],
      ['when does the quokka enclosure open', 'notes.txt'],
      ['how often should I water the marigolds', 'page.html'],
      ['lamp filament replacement', 'manual.pdf'],
      ['who renews badges', 'handbook.docx'],
    ];
    for (const [q, file] of expectations) {
      const r = await query(s, q, { top_k: 3 });
      assert.equal(r.vector, 'ok');
      assert.equal(r.data[0]?.document.filename, file, `${q} → ${JSON.stringify(r.data[0])}`);
      assert.ok(r.data[0].ranks.vector && r.data[0].ranks.text, 'found by both halves');
      assert.equal(typeof r.data[0].position, 'number');
    }
    // the HTML script is not text
    const html = await query(s, 'x()', { mode: 'text' });
    assert.ok(!html.data.some((h: any) => h.content.includes('x()')));
    const list = await api(s, 'GET', '/api/v1/knowledge/documents?limit=2', undefined, operatorKey);
    assert.equal(list.json.data.length, 2);
    assert.ok(list.json.next_before);
    assert.ok(list.json.totals.documents >= 5);
  });

  it('refuses bad input clearly and changes nothing', async () => {
    const count = async () => Number((await s.t.db.query('SELECT count(*) FROM kb_documents')).rows[0].count);
    const before = await count();
    const bin = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]);
    assert.equal((await upload(s, 'tool.exe', bin)).status, 415);
    assert.equal((await upload(s, 'fake.pdf', 'not a pdf at all')).status, 422);
    assert.equal((await upload(s, 'empty.txt', '')).status, 400);
    assert.equal((await upload(s, 'a.md', '# x', { metadata: '[1,2' })).status, 400);
    assert.equal((await upload(s, 'a.md', '# x', {}, userKey)).status, 403, 'the user role may not add');
    assert.equal((await api(s, 'POST', '/api/v1/knowledge/query', { query: 'x' }, userKey)).status, 403);
    const noAuth = await fetch(`${s.core.url}/api/v1/knowledge/documents`, { method: 'GET' });
    assert.equal(noAuth.status, 401);
    assert.equal((await api(s, 'POST', '/api/v1/knowledge/documents', { title: 'x' })).status, 400);
    assert.equal(
      (await api(s, 'POST', '/api/v1/knowledge/documents', { title: '', content: 'x' })).status,
      400,
    );
    const raw = await fetch(`${s.core.url}/api/v1/knowledge/documents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: '{"title": "x", "content": ',
    });
    assert.equal(raw.status, 400);
    const json = await fetch(`${s.core.url}/api/v1/knowledge/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(json.status, 415);
    assert.equal((await api(s, 'POST', '/api/v1/knowledge/query', { query: '  ' })).status, 400);
    assert.equal((await api(s, 'POST', '/api/v1/knowledge/query', { query: 'x', top_k: 500 })).status, 400);
    assert.equal((await api(s, 'GET', '/api/v1/knowledge/documents/999999')).status, 404);
    assert.equal((await api(s, 'GET', '/api/v1/knowledge/documents/abc')).status, 400);
    assert.equal((await api(s, 'DELETE', '/api/v1/knowledge/documents/1%20OR%201=1')).status, 400);
    assert.equal((await api(s, 'GET', '/api/v1/knowledge/documents/99999999999999999999')).status, 400);
    assert.equal(
      (await api(s, 'GET', '/api/v1/knowledge/documents?before=99999999999999999999')).status,
      400,
    );
    assert.equal((await api(s, 'GET', '/api/v1/knowledge/documents?q=a%00b')).status, 400);
    for (const body of [
      { title: 'nul\u0000', content: 'x' },
      { title: 'x', content: 'a\u0000b' },
      { title: 'x', content: 'y', metadata: { k: 'v\u0000' } },
      { title: 'x', content: 'y', metadata: { big: 'z'.repeat(20_000) } },
      { title: 'x', content: 'y', metadata: [1, 2] },
    ])
      assert.equal(
        (await api(s, 'POST', '/api/v1/knowledge/documents', body)).status,
        400,
        JSON.stringify(body).slice(0, 80),
      );
    assert.equal((await upload(s, 'a.md', '# x', { title: 'a\u0000' })).status, 400);
    assert.equal((await api(s, 'POST', '/api/v1/knowledge/query', { query: 'a\u0000' })).status, 400);
    assert.equal(await count(), before);

    // a file that looks like a PDF but cannot be read fails in its job, with the reason shown
    const broken = await upload(s, 'broken.pdf', '%PDF-1.4\n1 0 obj garbage');
    assert.equal(broken.status, 202);
    const d = await settled(s, broken.json.id);
    assert.equal(d.status, 'failed');
    assert.match(d.error, /corrupt_file|empty_document/);
    assert.equal((await chunkRows(s, d.id)).length, 0);
  });

  it('re-ingest replaces the old chunks; delete removes the document and its chunks', async () => {
    const add = await api(
      s,
      'POST',
      '/api/v1/knowledge/documents',
      {
        title: 'Ferry timetable',
        content:
          '# Ferry\n\nThe ferry to Ilha Verde leaves at 07:40 and 16:10.\n\n## Fares\n\nA return ticket costs 12 euros.',
      },
      operatorKey,
    );
    assert.equal(add.status, 202, add.text);
    const first = await settled(s, add.json.id);
    assert.equal(first.active_version, 1);
    const v1 = await chunkRows(s, first.id);
    assert.equal(v1.length, first.chunk_count);

    const again = await api(
      s,
      'POST',
      `/api/v1/knowledge/documents/${first.id}/reingest`,
      undefined,
      operatorKey,
    );
    assert.equal(again.status, 202);
    assert.equal(again.json.version, 2);
    const second = await settled(s, first.id);
    assert.equal(second.active_version, 2);
    const v2 = await chunkRows(s, first.id);
    assert.equal(v2.length, second.chunk_count);
    assert.ok(
      v2.every((c) => c.version === 2),
      'only the new version is left',
    );
    assert.ok(
      v2.every((c) => !v1.some((o) => o.id === c.id)),
      'new chunks replaced the old ones',
    );
    const hit = await query(s, 'ferry to Ilha Verde');
    assert.equal(hit.data[0].document.id, first.id);
    assert.ok(v2.some((c) => c.id === hit.data[0].chunk_id));

    assert.equal(
      (await api(s, 'DELETE', `/api/v1/knowledge/documents/${first.id}`, undefined, operatorKey)).status,
      204,
    );
    assert.equal((await api(s, 'GET', `/api/v1/knowledge/documents/${first.id}`)).status, 404);
    assert.equal((await chunkRows(s, first.id)).length, 0);
    assert.ok(!(await query(s, 'ferry to Ilha Verde')).data.some((h: any) => h.document.id === first.id));
    assert.equal((await api(s, 'DELETE', `/api/v1/knowledge/documents/${first.id}`)).status, 404);
    const audit = await s.t.db.query(
      `SELECT kind FROM audit_log WHERE kind LIKE 'knowledge.%' AND detail->>'document_id' = $1 ORDER BY id`,
      [String(first.id)],
    );
    assert.deepEqual(
      audit.rows.map((r) => r.kind),
      ['knowledge.add', 'knowledge.reingest', 'knowledge.delete'],
    );
    // the lexeme counts the text search budgets with follow every activation and delete exactly
    const drift = await s.t.db.query(
      `SELECT count(*)::int AS n FROM
         (SELECT word, ndoc FROM ts_stat('SELECT c.fts FROM kb_chunks c JOIN kb_documents d
            ON d.id = c.document_id AND d.active_version = c.version')) s
         FULL JOIN (SELECT lexeme, chunks FROM kb_lexemes WHERE chunks > 0) l ON l.lexeme = s.word
       WHERE s.ndoc IS DISTINCT FROM l.chunks`,
    );
    assert.equal(drift.rows[0].n, 0);
  });

  it('another core process sees deletes and re-ingests (its vector copy follows the generation)', async () => {
    const config = loadConfig(s.env);
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const log = createLogger({ service: 'core', level: 'error' });
    log.silent = true;
    const prepare = new PreparePool();
    const other = new KnowledgeBase({
      db: s.core.db,
      llm: new LlmClient(config.llmProxyUrl, config.llmProxyKey),
      config,
      log,
      redis,
      prepare,
    });
    // a neighbour that stays: once the document nearer the question is deleted, the neighbour must be
    // the other process's nearest vector (rank 1), not second behind a stale copy of the deleted one
    const neighbour = await api(s, 'POST', '/api/v1/knowledge/documents', {
      title: 'Walrus habitat',
      content: '# Walrus habitat\n\nA walrus rests on the ice floe between dives.',
    });
    try {
      const add = await api(s, 'POST', '/api/v1/knowledge/documents', {
        title: 'Walrus facts',
        content: '# Walrus\n\nA walrus uses its tusks to haul itself onto the ice floe.',
      });
      await settled(s, neighbour.json.id);
      await settled(s, add.json.id);
      const search = async () =>
        (await other.search('walrus tusks ice floe', { mode: 'vector', topK: 3 })).hits;
      const find = async () => (await search()).filter((h) => h.document_id === add.json.id);
      const first = await find();
      assert.equal(first.length, 1, 'the other process loaded the new vectors');
      await api(s, 'POST', `/api/v1/knowledge/documents/${add.json.id}/reingest`);
      await settled(s, add.json.id);
      const again = await find();
      assert.equal(again.length, 1);
      assert.notEqual(again[0]!.id, first[0]!.id, 'the re-ingested chunk, not the old one');
      assert.equal(again[0]!.ranks.vector, 1, 'nearer the question than the neighbour');
      assert.equal((await api(s, 'DELETE', `/api/v1/knowledge/documents/${add.json.id}`)).status, 204);
      assert.deepEqual(await find(), [], 'the deleted document is gone from the other process too');
      const left = await search();
      assert.equal(left[0]?.document_id, neighbour.json.id);
      assert.equal(left[0]?.ranks.vector, 1, 'no stale vector of the deleted document ahead of it');
    } finally {
      await api(s, 'DELETE', `/api/v1/knowledge/documents/${neighbour.json.id}`);
      await other.close();
      await prepare.close();
      await redis.quit();
    }
  });

  it('on the evaluation set, hybrid retrieval beats vector search and full-text search alone', async (t) => {
    const set = await loadEvalSet();
    const docIds = new Map<number, string>();
    for (const doc of set.documents) {
      const r = await api(s, 'POST', '/api/v1/knowledge/documents', { title: doc.name, content: doc.text });
      assert.equal(r.status, 202, r.text);
      docIds.set(r.json.id, doc.name);
    }
    for (const id of docIds.keys()) assert.equal((await settled(s, id)).status, 'ready');
    const results: Record<string, { recall_at_5: number; mrr: number }> = {};
    for (const mode of ['vector', 'text', 'hybrid'] as const) {
      const r = await evaluateRetrieval(async (q, k) => {
        const found = await query(s, q, { top_k: k, mode });
        // only the evaluation documents count (other tests add their own)
        return found.data
          .filter((h: any) => docIds.has(h.document.id))
          .map((h: any) => ({ text: h.content, document: docIds.get(h.document.id)! }));
      }, set);
      results[mode] = { recall_at_5: r.recall_at_5, mrr: r.mrr };
    }
    const { vector, text, hybrid } = results as Record<string, { recall_at_5: number; mrr: number }>;
    const msg = JSON.stringify(results);
    t.diagnostic(`recall@5 / MRR through Postgres: ${msg}`);
    assert.ok(hybrid!.recall_at_5 >= 0.9, msg);
    assert.ok(hybrid!.recall_at_5 > vector!.recall_at_5, msg);
    assert.ok(hybrid!.recall_at_5 > text!.recall_at_5, msg);
  });

  it('/kb answers from the documents with numbered citations naming them', async () => {
    await api(s, 'POST', '/api/v1/knowledge/documents', {
      title: 'Orchard handbook',
      content: '# Pruning\n\nPrune the Bramley apple trees in late February, before the sap rises.',
    }).then((r) => settled(s, r.json.id));
    s.mock.script({
      match: { path: '/v1/chat/completions', contains: 'When should the Bramley apple trees be pruned' },
      times: 1,
      reply: { content: 'Prune them in late February, before the sap rises [1].' },
    });
    const before = s.mock.requests.length;
    await s.send({
      text: '/kb When should the Bramley apple trees be pruned?',
      chat: { id: '7001', type: 'direct' },
    });
    const reply = await s.finished((r) => r.chat === '7001');
    assert.equal(reply.status, 'complete');
    assert.match(
      reply.text,
      /late February, before the sap rises \[1\]\.\n\nSources:\n\[1\] Orchard handbook — Pruning/,
    );
    const req = s.mock.requests.slice(before).find((r) => r.path === '/v1/chat/completions')!;
    const system = req.body.messages[0].content as string;
    assert.match(system, /using ONLY the numbered sources/);
    assert.match(system, /\[1\] Orchard handbook — Pruning\n[\s\S]*Bramley apple trees in late February/);
    // the model is asked the question, not the command
    assert.equal(req.body.messages.at(-1).content, 'When should the Bramley apple trees be pruned?');
  });

  it('/kb says plainly when the documents hold nothing on the question, without asking the model', async () => {
    const before = s.mock.requests.filter((r) => r.path === '/v1/chat/completions').length;
    await s.send({ text: '/kb zyxwv qwrtp?', chat: { id: '7002', type: 'direct' } });
    const reply = await s.finished((r) => r.chat === '7002');
    assert.equal(reply.text, "I couldn't find anything about this in the documents.");
    assert.equal(s.mock.requests.filter((r) => r.path === '/v1/chat/completions').length, before);
    await s.send({ text: '/kb', chat: { id: '7003', type: 'direct' } });
    assert.match((await s.finished((r) => r.chat === '7003')).text, /\/kb <question>/);
    await s.send({ text: '/kb 犀牛骆驼鳄？', chat: { id: '7004', type: 'direct' } });
    assert.equal((await s.finished((r) => r.chat === '7004')).text, '文档中没有找到与此相关的内容。');
  });

  it('a route with knowledge: true gives the model what the documents say about every message', async () => {
    const before = s.mock.requests.length;
    await s.send({
      text: 'auto when do I prune the Bramley apple trees',
      chat: { id: '7005', type: 'direct' },
    });
    assert.equal((await s.finished((r) => r.chat === '7005')).status, 'complete');
    const req = s.mock.requests.slice(before).find((r) => r.path === '/v1/chat/completions')!;
    assert.match(req.body.messages[0].content, /may or may not be relevant[\s\S]*<sources>[\s\S]*Bramley/);
    // a plain message on the default route gets no sources
    const mid = s.mock.requests.length;
    await s.send({ text: 'when do I prune the Bramley apple trees', chat: { id: '7006', type: 'direct' } });
    await s.finished((r) => r.chat === '7006');
    const plain = s.mock.requests.slice(mid).find((r) => r.path === '/v1/chat/completions')!;
    assert.doesNotMatch(plain.body.messages[0].content, /<sources>/);
  });

  it('without the embedding model, search still answers from full text and says so', async () => {
    s.mock.script({ match: { path: '/v1/embeddings' }, times: 1, reply: { status: 503 } });
    const r = await query(s, 'Bramley apple trees');
    assert.equal(r.vector, 'unavailable');
    assert.equal(r.data[0].document.title, 'Orchard handbook');
    assert.equal(r.data[0].ranks.vector, null);
  });
});

describe('knowledge base: a restart in the middle of an ingestion', () => {
  let s: Stack;
  before(async () => {
    s = await startStack({
      mock: { embeddingDims: 64 },
      models,
      // two chunks per embedding call, each call slowed down: the ingestion is still running at the restart
      config: {
        knowledge: { embedding_model: 'embed', chunk_tokens: 64, overlap_tokens: 8, embedding_batch: 2 },
      },
    });
  });
  after(async () => {
    await s?.close();
  });

  it('hands the document back at shutdown; the next core process finishes it, once', async () => {
    s.mock.script({ match: { path: '/v1/embeddings' }, reply: { delayMs: 60 } });
    const sections = Array.from(
      { length: 30 },
      (_, i) =>
        `## Section ${i}\n\nParagraph ${i} says that lighthouse number ${i} is painted ${i % 2 ? 'red' : 'white'} and stands on rock ${i}.`,
    );
    const add = await api(s, 'POST', '/api/v1/knowledge/documents', {
      title: 'Lighthouses',
      content: `# Lighthouses\n\n${sections.join('\n\n')}`,
    });
    assert.equal(add.status, 202, add.text);
    const id = add.json.id;
    // wait until some batches are stored but not all
    for (;;) {
      const d = (await api(s, 'GET', `/api/v1/knowledge/documents/${id}`)).json;
      if (d.status === 'embedding' && d.progress.chunks_done > 0) {
        assert.ok(d.progress.chunks_done < d.progress.chunks_total, 'still ingesting at the restart');
        break;
      }
      assert.notEqual(d.status, 'ready', 'the ingestion ended before the restart');
      await sleep(20);
    }
    await s.restartCore();
    s.mock.script({ match: { path: '/v1/embeddings' }, reply: {} });
    const done = await settled(s, id, 30_000);
    assert.equal(done.status, 'ready', done.error);
    assert.equal(done.version, 1);
    const rows = await chunkRows(s, id);
    assert.equal(rows.length, done.chunk_count, 'every chunk once');
    assert.ok(done.chunk_count > 10);
    const hit = await query(s, 'which lighthouse stands on rock 17', { top_k: 3 });
    assert.equal(hit.data[0].document.id, id);
  });
});
