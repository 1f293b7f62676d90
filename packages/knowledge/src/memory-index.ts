// An in-memory reference retriever for the evaluation and tests, so retrieval quality can be measured
// without Postgres: exact cosine over embeddings, BM25 over ftsDocument lexemes, fused with RRF.
// It mirrors what the database does (pgvector cosine + to_tsvector('simple', ftsDocument(text))).
import { fuseRankings, type Ranked } from './fuse.ts';
import { ftsDocument, ftsQueryTerms } from './search-text.ts';

export interface IndexedChunk {
  id: string;
  document: string;
  text: string;
  embedding: Float32Array;
}

export interface Hit {
  id: string;
  document: string;
  text: string;
  score: number;
}

const K1 = 1.2;
const B = 0.75;

export class MemoryIndex {
  readonly #chunks: IndexedChunk[] = [];
  readonly #termFreqs: Array<Map<string, number>> = [];
  readonly #docFreq = new Map<string, number>();
  #totalLength = 0;

  add(chunk: IndexedChunk, searchText: string = chunk.text): void {
    const tf = new Map<string, number>();
    const terms = ftsDocument(searchText).split(' ').filter(Boolean);
    for (const t of terms) tf.set(t, (tf.get(t) ?? 0) + 1);
    for (const t of tf.keys()) this.#docFreq.set(t, (this.#docFreq.get(t) ?? 0) + 1);
    this.#chunks.push({ ...chunk, embedding: normalised(chunk.embedding) });
    this.#termFreqs.push(tf);
    this.#totalLength += terms.length;
  }

  get size(): number {
    return this.#chunks.length;
  }

  /** Nearest chunks by cosine; a chunk with no similarity at all (≤ 0) is not a match, only noise. */
  searchVector(query: Float32Array, k: number): Hit[] {
    const q = normalised(query);
    const scored = this.#chunks.map((c, i) => ({ i, score: dot(q, c.embedding) })).filter((s) => s.score > 0);
    return this.#top(scored, k);
  }

  searchText(query: string, k: number): Hit[] {
    const { terms, prefixes } = ftsQueryTerms(query);
    const n = this.#chunks.length;
    const avgLength = n > 0 ? this.#totalLength / n : 0;
    const scored: Array<{ i: number; score: number }> = [];
    // A one-character Han prefix matches every lexeme it starts, as `x:*` does in Postgres.
    const expanded = [...terms];
    for (const p of prefixes) for (const t of this.#docFreq.keys()) if (t.startsWith(p)) expanded.push(t);
    this.#termFreqs.forEach((tf, i) => {
      let length = 0;
      for (const c of tf.values()) length += c;
      let score = 0;
      for (const t of expanded) {
        const f = tf.get(t);
        if (!f) continue;
        const df = this.#docFreq.get(t) ?? 0;
        const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
        score += (idf * f * (K1 + 1)) / (f + K1 * (1 - B + (B * length) / (avgLength || 1)));
      }
      if (score > 0) scored.push({ i, score });
    });
    return this.#top(scored, k);
  }

  /** Both halves, `candidates` deep each, fused with reciprocal rank fusion. */
  searchHybrid(query: string, embedding: Float32Array, k: number, candidates = 50): Hit[] {
    const vector = this.searchVector(embedding, candidates);
    const text = this.searchText(query, candidates);
    const byId = new Map([...vector, ...text].map((h) => [h.id, h]));
    const toRanked = (hits: Hit[]): Ranked[] => hits.map((h) => ({ id: h.id, score: h.score }));
    return fuseRankings([toRanked(vector), toRanked(text)])
      .slice(0, k)
      .map((f) => ({ ...byId.get(f.id)!, score: f.score }));
  }

  #top(scored: Array<{ i: number; score: number }>, k: number): Hit[] {
    return scored
      .sort((a, b) => b.score - a.score || a.i - b.i)
      .slice(0, k)
      .map(({ i, score }) => {
        const c = this.#chunks[i]!;
        return { id: c.id, document: c.document, text: c.text, score };
      });
  }
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function normalised(v: Float32Array): Float32Array {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i]! * v[i]!;
  n = Math.sqrt(n);
  if (n === 0 || Math.abs(n - 1) < 1e-6) return v;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! / n;
  return out;
}
