/**
 * VectorScanIndex benchmark: random unit vectors (10k and 100k, 768 and 256 dims) in the int8 index,
 * searched for the top 50 with the WebAssembly SIMD kernel and with the plain-JS scan. Prints build
 * time, memory, search p50/p99 over 200 queries and recall against an exact float32 scan (50 queries),
 * whose own time is shown as the reference. Seeded: every run sees the same vectors.
 *
 *   npm run bench:vectors        BENCH_QUICK=1 for 50 queries instead of 200
 */
import { type ScanEngine, VectorScanIndex } from '../packages/knowledge/src/vector-scan.ts';
import { fmt, pct } from './lib.ts';

const quick = process.env.BENCH_QUICK === '1';
const QUERIES = quick ? 50 : 200;
const RECALL_QUERIES = 50;
const K = 50;

/** xorshift32 → roughly normal (sum of four uniforms), then each vector scaled to unit length. */
function unitVectors(count: number, dims: number, seed: number): Float32Array {
  let s = seed;
  const uniform = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000 - 0.5;
  };
  const all = new Float32Array(count * dims);
  for (let r = 0; r < count; r++) {
    const v = all.subarray(r * dims, (r + 1) * dims);
    let norm = 0;
    for (let i = 0; i < dims; i++) {
      v[i] = uniform() + uniform() + uniform() + uniform();
      norm += v[i]! * v[i]!;
    }
    norm = Math.sqrt(norm);
    for (let i = 0; i < dims; i++) v[i] = v[i]! / norm;
  }
  return all;
}

/** The exact top k by a float32 dot product over every row (the vectors are unit length), timed. */
function exactTop(
  all: Float32Array,
  dims: number,
  q: Float32Array,
  k: number,
): { ids: number[]; ms: number } {
  const n = all.length / dims;
  const scores = new Float64Array(n);
  const start = performance.now();
  for (let r = 0, base = 0; r < n; r++, base += dims) {
    let s = 0;
    for (let i = 0; i < dims; i++) s += all[base + i]! * q[i]!;
    scores[r] = s;
  }
  const ms = performance.now() - start;
  const ids = Array.from(scores.keys())
    .sort((a, b) => scores[b]! - scores[a]! || a - b)
    .slice(0, k);
  return { ids, ms };
}

interface Row {
  what: string;
  vectors: number;
  dims: number;
  buildMs?: number;
  mb?: number;
  p50: number;
  p99: number;
  recall10?: number;
  in50?: number;
}

function main() {
  const rows: Row[] = [];
  for (const [count, dims] of [
    [10_000, 768],
    [100_000, 768],
    [10_000, 256],
    [100_000, 256],
  ] as const) {
    const all = unitVectors(count, dims, 0x9e3779b9 ^ (count + dims));
    const queries = unitVectors(QUERIES, dims, 12345 + dims);
    const query = (i: number) => queries.subarray(i * dims, (i + 1) * dims);

    // exact answers first: they are the reference row and the yardstick for recall
    const exact = Array.from({ length: RECALL_QUERIES }, (_, i) => exactTop(all, dims, query(i), 10));
    const exactMs = exact.map((e) => e.ms).sort((a, b) => a - b);
    rows.push({
      what: 'exact float32 (JS)',
      vectors: count,
      dims,
      p50: pct(exactMs, 50),
      p99: pct(exactMs, 99),
    });

    const results = new Map<ScanEngine, string>();
    for (const engine of ['wasm', 'js'] as const) {
      const index = new VectorScanIndex(dims, { engine });
      let start = performance.now();
      for (let r = 0; r < count; r++) index.add(r, all.subarray(r * dims, (r + 1) * dims));
      const buildMs = performance.now() - start;

      for (let i = 0; i < 5; i++) index.search(query(i), K); // warm-up (and WebAssembly tier-up)
      const times: number[] = [];
      const found: number[][] = [];
      for (let i = 0; i < QUERIES; i++) {
        start = performance.now();
        const matches = index.search(query(i), K);
        times.push(performance.now() - start);
        if (i < RECALL_QUERIES) found.push(matches.map((m) => m.id));
      }
      times.sort((a, b) => a - b);

      let top10 = 0;
      let in50 = 0;
      found.forEach((ids, i) => {
        const truth = exact[i]!.ids;
        top10 += truth.filter((id) => ids.slice(0, 10).includes(id)).length;
        in50 += truth.filter((id) => ids.includes(id)).length;
      });
      results.set(engine, JSON.stringify(found));
      rows.push({
        what: `int8 ${engine}`,
        vectors: count,
        dims,
        buildMs,
        mb: index.bytesUsed / 1e6,
        p50: pct(times, 50),
        p99: pct(times, 99),
        recall10: top10 / (10 * found.length),
        in50: in50 / (10 * found.length),
      });
    }
    if (results.get('wasm') !== results.get('js')) throw new Error('the wasm and js scans disagree');
  }

  const md = [
    `| scan | vectors | dims | build ms | MB | top-${K} p50 ms | p99 ms | recall@10 | exact top 10 in top ${K} |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) =>
      [
        r.what,
        r.vectors.toLocaleString('en'),
        r.dims,
        r.buildMs === undefined ? '' : fmt(r.buildMs, 0),
        r.mb === undefined ? '' : fmt(r.mb),
        fmt(r.p50, 2),
        fmt(r.p99, 2),
        r.recall10 === undefined ? '' : fmt(r.recall10, 3),
        r.in50 === undefined ? '' : fmt(r.in50, 3),
      ].join(' | '),
    ),
  ]
    .map((line) => (line.startsWith('|') ? line : `| ${line} |`))
    .join('\n');
  process.stdout.write(
    `\nvector scan benchmark (${QUERIES} queries for latency, ${RECALL_QUERIES} for recall; ` +
      `the exact row is its float32 dot-product loop alone)\n\n${md}\n`,
  );
}

main();
