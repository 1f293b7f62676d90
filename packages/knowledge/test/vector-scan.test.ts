import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { cosine, type ScanEngine, VectorScanIndex, wasmSimdAvailable } from '../src/index.ts';

/** A seeded source of roughly normal numbers (sum of uniforms), so every run sees the same vectors. */
function normals(seed: number): () => number {
  let s = seed;
  const uniform = () => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return s / 0x7fffffff - 0.5;
  };
  return () => (uniform() + uniform() + uniform() + uniform() + uniform() + uniform()) * Math.SQRT2;
}

const randomVector = (dims: number, next: () => number) => Float32Array.from({ length: dims }, next);
const near = (v: Float32Array, spread: number, next: () => number) =>
  Float32Array.from(v, (x) => x + spread * next());

/** n vectors in `clusters` groups: a random centre plus `spread` × noise per dimension. */
function clustered(dims: number, n: number, clusters: number, spread: number, next: () => number) {
  const centres = Array.from({ length: clusters }, () => randomVector(dims, next));
  return Array.from({ length: n }, (_, i) => near(centres[i % clusters]!, spread, next));
}

function exactTop(vectors: Float32Array[], query: Float32Array, k: number): number[] {
  return vectors
    .map((v, id) => ({ id, score: cosine(query, v) }))
    .sort((a, b) => b.score - a.score || a.id - b.id)
    .slice(0, k)
    .map((m) => m.id);
}

function indexOf(vectors: Float32Array[], engine?: ScanEngine): VectorScanIndex {
  const index = new VectorScanIndex(vectors[0]!.length, engine ? { engine } : {});
  vectors.forEach((v, id) => index.add(id, v));
  return index;
}

/**
 * Mean recall@10 of the index against the exact ranking. The best match must be the exact best, or a
 * near-tie with it: int8 rounding moves a score by ~0.01/√dims (one standard deviation), so two rows
 * closer than that may swap (about 1 query in 80 on random data); 6σ is allowed.
 */
function recallAt10(vectors: Float32Array[], queries: Float32Array[]): number {
  const index = indexOf(vectors);
  const tie = 0.06 / Math.sqrt(vectors[0]!.length);
  let found = 0;
  for (const query of queries) {
    const exact = exactTop(vectors, query, 10);
    const got = index.search(query, 10).map((m) => m.id);
    const best = cosine(query, vectors[exact[0]!]!);
    const ours = cosine(query, vectors[got[0]!]!);
    assert.ok(
      got[0] === exact[0] || best - ours < tie,
      `best match ${got[0]} (${ours}), exact ${exact[0]} (${best})`,
    );
    found += exact.filter((id) => got.includes(id)).length;
  }
  return found / (10 * queries.length);
}

test('the WebAssembly SIMD kernel validates and is the default here', () => {
  assert.equal(wasmSimdAvailable(), true);
  assert.equal(new VectorScanIndex(8).engine, 'wasm');
  assert.equal(new VectorScanIndex(8, { engine: 'js' }).engine, 'js');
});

test('without SIMD the JS scan is chosen on its own', () => {
  // a runtime whose WebAssembly rejects the module, as one without SIMD does
  const script = `
    WebAssembly.validate = () => false;
    const { VectorScanIndex, wasmSimdAvailable } = await import(${JSON.stringify(import.meta.resolve('../src/vector-scan.ts'))});
    const index = new VectorScanIndex(3);
    index.add(7, new Float32Array([1, 2, 3]));
    console.log(JSON.stringify([wasmSimdAvailable(), index.engine, index.search(new Float32Array([1, 2, 3]), 1)[0].id]));
    try { new VectorScanIndex(3, { engine: 'wasm' }); } catch (e) { console.log(e.message); }
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(run.stderr, '');
  assert.deepEqual(run.stdout.trim().split('\n'), [
    '[false,"js",7]',
    'WebAssembly SIMD is not available in this runtime',
  ]);
});

for (const dims of [768, 64]) {
  test(`${dims} dims, random vectors: the ranking of exact cosine (recall@10 ≥ 0.98, top 1)`, () => {
    const next = normals(dims);
    const vectors = Array.from({ length: 2000 }, () => randomVector(dims, next));
    const queries = Array.from({ length: 30 }, () => randomVector(dims, next));
    assert.ok(recallAt10(vectors, queries) >= 0.98);
  });

  test(`${dims} dims, clustered vectors, queries near a document: recall@10 ≥ 0.98, top 1`, () => {
    const next = normals(dims + 1);
    const vectors = clustered(dims, 2000, 40, 2, next);
    const queries = Array.from({ length: 30 }, (_, i) => near(vectors[i * 61]!, 0.3, next));
    assert.ok(recallAt10(vectors, queries) >= 0.98);
  });

  test(`${dims} dims, tight clusters: re-ranking the top 50 with cosine gives the exact top 10`, () => {
    // Members of a tight cluster differ in cosine by less than int8 rounding moves it (~0.0003 at 768
    // dims), so near-ties may swap; the exact top 10 is still among the 50 candidates.
    const next = normals(dims + 2);
    const vectors = clustered(dims, 2000, 20, 0.5, next);
    const index = indexOf(vectors);
    for (let i = 0; i < 30; i++) {
      const query = near(vectors[i * 61]!, 0.5, next);
      const reranked = index
        .search(query, 50)
        .map((m) => ({ id: m.id, score: cosine(query, vectors[m.id]!) }))
        .sort((a, b) => b.score - a.score || a.id - b.id)
        .slice(0, 10)
        .map((m) => m.id);
      assert.deepEqual(reranked, exactTop(vectors, query, 10));
    }
  });
}

test('the WebAssembly and JS scans agree exactly', () => {
  for (const dims of [768, 100, 3]) {
    const next = normals(dims + 3);
    const vectors = clustered(dims, 700, 7, 1, next);
    const wasm = indexOf(vectors, 'wasm');
    const js = indexOf(vectors, 'js');
    wasm.remove(5);
    js.remove(5);
    for (let i = 0; i < 10; i++) {
      const query = randomVector(dims, next);
      assert.deepEqual(wasm.search(query, 50, -1), js.search(query, 50, -1));
    }
  }
});

test('scores approximate cosine; equal scores come in id order', () => {
  const index = new VectorScanIndex(4);
  index.add(3, new Float32Array([1, 0, 0, 0]));
  index.add(1, new Float32Array([2, 0, 0, 0])); // the same direction: the same score
  index.add(2, new Float32Array([1, 1, 0, 0]));
  const matches = index.search(new Float32Array([1, 0, 0, 0]), 10);
  assert.deepEqual(
    matches.map((m) => m.id),
    [1, 3, 2],
  );
  assert.ok(Math.abs(matches[0]!.score - 1) < 1e-3);
  assert.ok(Math.abs(matches[2]!.score - Math.SQRT1_2) < 1e-3);
  assert.equal(matches[0]!.score, matches[1]!.score);
  // the heap keeps the smaller id when a tie falls on the cut
  assert.deepEqual(
    index.search(new Float32Array([1, 0, 0, 0]), 1).map((m) => m.id),
    [1],
  );
});

test('add replaces an id, remove moves the last row into the gap, clear empties', () => {
  for (const engine of ['wasm', 'js'] as const) {
    const index = new VectorScanIndex(3, { engine });
    const x = new Float32Array([1, 0, 0]);
    const y = new Float32Array([0, 1, 0]);
    const z = new Float32Array([0, 0, 1]);
    index.add(10, x);
    index.add(20, y);
    index.add(30, z);
    assert.equal(index.size, 3);

    index.add(10, z); // replaced, not added
    assert.equal(index.size, 3);
    assert.deepEqual(
      index.search(z, 5).map((m) => m.id),
      [10, 30],
    );
    assert.deepEqual(index.search(x, 5), []);

    assert.equal(index.remove(10), true);
    assert.equal(index.remove(10), false);
    assert.equal(index.has(10), false);
    assert.equal(index.size, 2);
    // 30 was moved into 10's row and is still found under its own id
    assert.deepEqual(
      index.search(z, 5).map((m) => m.id),
      [30],
    );
    assert.deepEqual(
      index.search(y, 5).map((m) => m.id),
      [20],
    );
    assert.equal(index.remove(30), true); // the last row: nothing to move
    assert.deepEqual(
      index.search(new Float32Array([0, 1, 1]), 5).map((m) => m.id),
      [20],
    );

    index.add(40, x);
    index.clear();
    assert.equal(index.size, 0);
    assert.equal(index.has(20), false);
    assert.deepEqual(index.search(x, 5), []);
    index.add(50, x);
    assert.deepEqual(
      index.search(x, 5).map((m) => m.id),
      [50],
    );
  }
});

test('minScore leaves out rows at or below it; the default leaves out those with no similarity', () => {
  const index = new VectorScanIndex(2);
  index.add(1, new Float32Array([1, 0]));
  index.add(2, new Float32Array([1, 1]));
  index.add(3, new Float32Array([0, 1])); // orthogonal: score 0
  index.add(4, new Float32Array([-1, 0]));
  const q = new Float32Array([1, 0]);
  assert.deepEqual(
    index.search(q, 10).map((m) => m.id),
    [1, 2],
  );
  assert.deepEqual(
    index.search(q, 10, 0.8).map((m) => m.id),
    [1],
  );
  assert.deepEqual(
    index.search(q, 10, -2).map((m) => m.id),
    [1, 2, 3, 4],
  );
  assert.deepEqual(
    index.search(q, 2, -2).map((m) => m.id),
    [1, 2],
  );
  assert.deepEqual(index.search(q, 0), []);
});

test('dims that are not a multiple of 16 are padded without changing scores', () => {
  for (const dims of [1, 15, 17, 33, 100]) {
    const next = normals(dims + 4);
    const vectors = Array.from({ length: 50 }, () => randomVector(dims, next));
    const index = indexOf(vectors);
    const query = randomVector(dims, next);
    const top = index.search(query, 5, -1);
    assert.equal(top[0]!.id, exactTop(vectors, query, 1)[0]);
    for (const m of top) assert.ok(Math.abs(m.score - cosine(query, vectors[m.id]!)) < 0.02, `${dims}`);
  }
});

test('a zero vector matches nothing and a zero query finds nothing', () => {
  const index = new VectorScanIndex(20);
  index.add(1, new Float32Array(20));
  const one = new Float32Array(20).fill(0.5);
  index.add(2, one);
  assert.deepEqual(
    index.search(one, 5).map((m) => m.id),
    [2],
  );
  assert.deepEqual(index.search(new Float32Array(20), 5), []);
  assert.deepEqual(index.search(new Float32Array(20), 5, -1), [
    { id: 1, score: 0 },
    { id: 2, score: 0 },
  ]);
  assert.equal(cosine(new Float32Array(3), new Float32Array([1, 2, 3])), 0);
});

test('wrong input throws a RangeError that says what is wrong', () => {
  const index = new VectorScanIndex(8);
  assert.throws(() => index.add(1, new Float32Array(7)), {
    name: 'RangeError',
    message: 'vector has 7 dimensions, the index has 8',
  });
  assert.throws(() => index.search(new Float32Array(9), 5), {
    name: 'RangeError',
    message: 'query has 9 dimensions, the index has 8',
  });
  assert.throws(() => index.add(1, new Float32Array(8).fill(Number.NaN)), RangeError);
  assert.throws(() => index.add(1.5, new Float32Array(8)), RangeError);
  assert.throws(() => index.search(new Float32Array(8), -1), RangeError);
  assert.throws(() => new VectorScanIndex(0), RangeError);
  assert.throws(() => cosine(new Float32Array(2), new Float32Array(3)), RangeError);
  assert.equal(index.size, 0, 'nothing half-added');
});

test('the memory grows past its first page as rows are added, and rows survive it', () => {
  for (const engine of ['wasm', 'js'] as const) {
    const dims = 768;
    const next = normals(5);
    const index = new VectorScanIndex(dims, { engine });
    const first = index.bytesUsed;
    const vectors = Array.from({ length: 1000 }, () => randomVector(dims, next));
    vectors.forEach((v, id) => index.add(id, v));
    assert.ok(index.bytesUsed > 1000 * dims && first < 100_000, `${engine}: ${first} → ${index.bytesUsed}`);
    for (const id of [0, 1, 499, 998, 999]) {
      assert.equal(index.search(vectors[id]!, 1)[0]!.id, id);
    }
    index.clear();
    assert.equal(index.bytesUsed, first, 'clear gives the memory back');
  }
});

test('cosine is exact', () => {
  assert.equal(cosine(new Float32Array([3, 4]), new Float32Array([3, 4])), 1);
  assert.equal(cosine(new Float32Array([1, 0]), new Float32Array([0, 2])), 0);
  assert.ok(Math.abs(cosine(new Float32Array([1, 2]), new Float32Array([2, 1])) - 0.8) < 1e-12);
});
