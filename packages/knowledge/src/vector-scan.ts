// Nearest neighbours by cosine without pgvector: every embedding kept in memory as int8 (a quarter of
// float32, so a scan of 100k × 768 reads 77 MB instead of 307 MB) and scanned in full by a small
// WebAssembly SIMD kernel, with a plain-JS scan giving the same numbers where SIMD is missing.
//
// Quantisation, per vector: v / |v| scaled so its largest |component| becomes 127, rounded to int8, and
// the factor back kept as the row's scale. The query gets the same treatment at int16 precision (as large
// as the int32 dot product can hold without overflow), so its own rounding error all but disappears.
// Approximate cosine = Σ row_i8 · query_i16 × rowScale × queryScale. The order it gives is close to the
// exact one (see the test and bench/vector-scan.ts for recall); callers wanting exact scores re-rank the
// candidates with `cosine`.

export interface VectorMatch {
  id: number;
  score: number;
}

/** 'wasm': the SIMD kernel; 'js': a plain loop with identical results, some 20 times slower. */
export type ScanEngine = 'wasm' | 'js';

export interface VectorScanOptions {
  /** Defaults to 'wasm' where this runtime validates the SIMD module, else 'js'. */
  engine?: ScanEngine;
}

const ROW_MAX = 127;
/** The query's int16 range shrinks as dims grow (the dot product must fit int32); here it is still ±258. */
const MAX_DIMS = 65536;
const PAGE = 65536;
const GROWTH = 1.25;

/**
 * Exact cosine similarity in float64 (0 when either vector is all zeros), for re-ranking candidates.
 */
export function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) {
    throw new RangeError(`cosine of vectors of different lengths (${a.length} and ${b.length})`);
  }
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

/**
 * Every vector in memory, scanned in full per search (int8, padded to 16 dimensions). Row storage lives
 * in the kernel's memory: [query as int16 | rows | the int32 dot product of each row, written per scan].
 */
export class VectorScanIndex {
  readonly dims: number;
  readonly engine: ScanEngine;
  readonly #padded: number;
  readonly #rowsAt: number;
  readonly #queryMax: number;
  readonly #slots = new Map<number, number>(); // id → row
  #kernel!: Kernel;
  #bytes!: Int8Array; // the kernel's memory; replaced when it grows
  #query!: Int16Array;
  #ids!: Float64Array; // row → id
  #scales!: Float64Array; // row → scale
  #capacity = 0;
  #size = 0;

  constructor(dims: number, options: VectorScanOptions = {}) {
    if (!Number.isInteger(dims) || dims < 1 || dims > MAX_DIMS) {
      throw new RangeError(`dims must be an integer from 1 to ${MAX_DIMS}, got ${dims}`);
    }
    const module = scanModule();
    const engine = options.engine ?? (module ? 'wasm' : 'js');
    if (engine === 'wasm' && !module) throw new Error('WebAssembly SIMD is not available in this runtime');
    this.dims = dims;
    this.engine = engine;
    this.#padded = Math.ceil(dims / 16) * 16;
    this.#rowsAt = this.#padded * 2;
    // the int16 query as fine as it can be while |Σ row × query| ≤ padded × 127 × queryMax stays int32
    this.#queryMax = Math.min(32767, Math.floor(0x7fffffff / (this.#padded * ROW_MAX)));
    this.#reset();
  }

  get size(): number {
    return this.#size;
  }

  /** What the index holds in memory: the scan memory plus the per-row ids and scales (not the id map). */
  get bytesUsed(): number {
    return this.#kernel.buffer.byteLength + this.#ids.byteLength + this.#scales.byteLength;
  }

  has(id: number): boolean {
    return this.#slots.has(id);
  }

  /** Adds the vector under `id`, replacing the one stored under it before. */
  add(id: number, vector: Float32Array): void {
    if (!Number.isSafeInteger(id)) throw new RangeError(`id must be a safe integer, got ${id}`);
    const { norm, maxAbs } = this.#measure(vector, 'vector');
    let row = this.#slots.get(id);
    if (row === undefined) {
      this.#reserve(this.#size + 1);
      row = this.#size++;
      this.#slots.set(id, row);
      this.#ids[row] = id;
    }
    const at = this.#rowsAt + row * this.#padded;
    this.#scales[row] = quantise(vector, norm, maxAbs, this.#bytes, at, ROW_MAX);
  }

  /** Removes `id` by moving the last row into its place; false when it was not there. */
  remove(id: number): boolean {
    const row = this.#slots.get(id);
    if (row === undefined) return false;
    this.#slots.delete(id);
    const last = --this.#size;
    if (row !== last) {
      const from = this.#rowsAt + last * this.#padded;
      this.#bytes.copyWithin(this.#rowsAt + row * this.#padded, from, from + this.#padded);
      const moved = this.#ids[last]!;
      this.#ids[row] = moved;
      this.#scales[row] = this.#scales[last]!;
      this.#slots.set(moved, row);
    }
    return true;
  }

  /** Removes everything and gives the memory back. */
  clear(): void {
    this.#slots.clear();
    this.#reset();
  }

  /**
   * The `k` rows most similar to `query` by approximate cosine, best first, equal scores by id; rows
   * scoring `minScore` or less are left out (by default those with no similarity at all).
   */
  search(query: Float32Array, k: number, minScore = 0): VectorMatch[] {
    const { norm, maxAbs } = this.#measure(query, 'query');
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`k must be a non-negative integer, got ${k}`);
    const n = this.#size;
    if (n === 0 || k === 0) return [];
    const queryScale = quantise(query, norm, maxAbs, this.#query, 0, this.#queryMax);
    const outAt = this.#rowsAt + n * this.#padded;
    this.#kernel.scan(this.#rowsAt, n, this.dims, this.#padded, 0, outAt);
    return this.#top(new Int32Array(this.#kernel.buffer, outAt, n), queryScale, Math.min(k, n), minScore);
  }

  // A bounded min-heap of the best k so far (worst at the root): one comparison for most rows.
  #top(dots: Int32Array, queryScale: number, k: number, minScore: number): VectorMatch[] {
    const ids = this.#ids;
    const scales = this.#scales;
    const heapScore = new Float64Array(k);
    const heapRow = new Int32Array(k);
    let size = 0;
    // a ranks below b: lower score, or the same score and a larger id
    const below = (sa: number, ra: number, sb: number, rb: number) =>
      sa < sb || (sa === sb && ids[ra]! > ids[rb]!);
    for (let row = 0; row < dots.length; row++) {
      const score = dots[row]! * scales[row]! * queryScale;
      if (!(score > minScore)) continue;
      let i: number;
      if (size < k) {
        // sift up from the new leaf
        i = size++;
        while (i > 0) {
          const parent = (i - 1) >> 1;
          if (!below(score, row, heapScore[parent]!, heapRow[parent]!)) break;
          heapScore[i] = heapScore[parent]!;
          heapRow[i] = heapRow[parent]!;
          i = parent;
        }
      } else {
        if (score < heapScore[0]! || !below(heapScore[0]!, heapRow[0]!, score, row)) continue;
        // replace the root and sift down
        i = 0;
        for (;;) {
          let child = 2 * i + 1;
          if (child >= size) break;
          const right = child + 1;
          if (right < size && below(heapScore[right]!, heapRow[right]!, heapScore[child]!, heapRow[child]!)) {
            child = right;
          }
          if (!below(heapScore[child]!, heapRow[child]!, score, row)) break;
          heapScore[i] = heapScore[child]!;
          heapRow[i] = heapRow[child]!;
          i = child;
        }
      }
      heapScore[i] = score;
      heapRow[i] = row;
    }
    const matches: VectorMatch[] = [];
    for (let i = 0; i < size; i++) matches.push({ id: ids[heapRow[i]!]!, score: heapScore[i]! });
    return matches.sort((a, b) => b.score - a.score || a.id - b.id);
  }

  #measure(vector: Float32Array, what: string): { norm: number; maxAbs: number } {
    if (vector.length !== this.dims) {
      throw new RangeError(`${what} has ${vector.length} dimensions, the index has ${this.dims}`);
    }
    let sum = 0;
    let maxAbs = 0;
    for (let i = 0; i < vector.length; i++) {
      const x = vector[i]!;
      sum += x * x;
      if (Math.abs(x) > maxAbs) maxAbs = Math.abs(x);
    }
    const norm = Math.sqrt(sum);
    if (!Number.isFinite(norm)) throw new RangeError(`${what} has a component that is not a finite number`);
    return { norm, maxAbs };
  }

  /** Room for `rows` rows (and their dot products), growing by a quarter at a time. */
  #reserve(rows: number): void {
    if (rows <= this.#capacity) return;
    const want = Math.max(rows, Math.ceil(this.#capacity * GROWTH));
    this.#kernel.reserve(this.#rowsAt + want * (this.#padded + 4));
    this.#mapMemory();
  }

  #reset(): void {
    const module = this.engine === 'wasm' ? scanModule() : undefined;
    this.#kernel = module ? new WasmKernel(module) : new JsKernel();
    this.#kernel.reserve(this.#rowsAt);
    this.#capacity = 0;
    this.#size = 0;
    this.#ids = new Float64Array(0);
    this.#scales = new Float64Array(0);
    this.#mapMemory();
  }

  // After the memory is (re)allocated: fresh views, and whatever whole rows fit become capacity.
  #mapMemory(): void {
    const buffer = this.#kernel.buffer;
    this.#bytes = new Int8Array(buffer);
    this.#query = new Int16Array(buffer, 0, this.#padded);
    this.#capacity = Math.floor((buffer.byteLength - this.#rowsAt) / (this.#padded + 4));
    if (this.#ids.length < this.#capacity) {
      const ids = new Float64Array(this.#capacity);
      ids.set(this.#ids.subarray(0, this.#size));
      const scales = new Float64Array(this.#capacity);
      scales.set(this.#scales.subarray(0, this.#size));
      this.#ids = ids;
      this.#scales = scales;
    }
  }
}

/** Writes round(v · top / max|v|) at `at` and returns the scale back to unit length (0 for a zero vector). */
function quantise(
  v: Float32Array,
  norm: number,
  maxAbs: number,
  out: Int8Array | Int16Array,
  at: number,
  top: number,
): number {
  if (norm === 0) {
    out.fill(0, at, at + v.length);
    return 0;
  }
  const f = top / maxAbs;
  for (let i = 0; i < v.length; i++) out[at + i] = Math.round(v[i]! * f);
  return maxAbs / (norm * top);
}

// ---------------------------------------------------------------------------------------------------
// The two scans. Both write, for each of n rows, the exact int32 dot product of the row with the query;
// the scores are made from those in one place, so the engines agree to the last bit.

interface Kernel {
  /** The current memory: the layout in VectorScanIndex, replaced when it grows. */
  readonly buffer: ArrayBuffer;
  reserve(bytes: number): void;
  scan(rowsAt: number, n: number, dims: number, padded: number, queryAt: number, outAt: number): void;
}

class JsKernel implements Kernel {
  buffer = new ArrayBuffer(PAGE);

  reserve(bytes: number): void {
    if (bytes <= this.buffer.byteLength) return;
    const grown = new ArrayBuffer(Math.ceil(bytes / PAGE) * PAGE);
    new Uint8Array(grown).set(new Uint8Array(this.buffer));
    this.buffer = grown;
  }

  scan(rowsAt: number, n: number, dims: number, padded: number, queryAt: number, outAt: number): void {
    const rows = new Int8Array(this.buffer, rowsAt, n * padded);
    const query = new Int16Array(this.buffer, queryAt, dims);
    const out = new Int32Array(this.buffer, outAt, n);
    for (let r = 0, base = 0; r < n; r++, base += padded) {
      let sum = 0; // exact: |sum| < 2^31, far inside float64's integers
      for (let i = 0; i < dims; i++) sum += rows[base + i]! * query[i]!;
      out[r] = sum;
    }
  }
}

// Only what is used of the WebAssembly JS API (TypeScript's es2024 lib does not declare it).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}
type ScanExport = (rowsAt: number, n: number, chunks: number, queryAt: number, outAt: number) => void;
const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

class WasmKernel implements Kernel {
  readonly #memory: WasmMemory;
  readonly #scan: ScanExport;

  constructor(module: object) {
    const { exports } = new wasm!.Instance(module);
    this.#memory = exports.memory as WasmMemory;
    this.#scan = exports.scan as ScanExport;
  }

  get buffer(): ArrayBuffer {
    return this.#memory.buffer;
  }

  reserve(bytes: number): void {
    const have = this.#memory.buffer.byteLength;
    if (bytes > have) this.#memory.grow(Math.ceil((bytes - have) / PAGE));
  }

  scan(rowsAt: number, n: number, _dims: number, padded: number, queryAt: number, outAt: number): void {
    this.#scan(rowsAt, n, padded / 16, queryAt, outAt);
  }
}

let compiled: object | null | undefined;

/** The compiled SIMD kernel, or null where this runtime has no WebAssembly or no SIMD. */
function scanModule(): object | null {
  if (compiled === undefined) {
    const bytes = scanModuleBytes();
    compiled = wasm?.validate(bytes) ? new wasm.Module(bytes) : null;
  }
  return compiled;
}

/** Whether the default engine is 'wasm' here. */
export function wasmSimdAvailable(): boolean {
  return scanModule() !== null;
}

// ---------------------------------------------------------------------------------------------------
// The kernel's WebAssembly, encoded by hand (a few hundred bytes; no toolchain, no binary in the repo).
// In the text format:
//
// (module
//   (memory (export "memory") 1)
//   (func (export "scan")
//     ;; $row: the first row (int8, 16 × $chunks each), $query: int16 × 16 × $chunks, $out: int32 per row
//     (param $row i32) (param $n i32) (param $chunks i32) (param $query i32) (param $out i32)
//     (local $q i32) (local $qEnd i32) (local $outEnd i32) (local $acc v128) (local $v v128)
//     (local.set $qEnd (i32.add (local.get $query) (i32.shl (local.get $chunks) (i32.const 5))))
//     (local.set $outEnd (i32.add (local.get $out) (i32.shl (local.get $n) (i32.const 2))))
//     (block $empty
//       (br_if $empty (i32.eq (local.get $out) (local.get $outEnd)))
//       (loop $rows
//         (local.set $acc (v128.const i32x4 0 0 0 0))
//         (local.set $q (local.get $query))
//         (loop $dims  ;; 16 dimensions a turn
//           (local.set $v (v128.load (local.get $row)))
//           (local.set $acc (i32x4.add (i32x4.add (local.get $acc)
//             (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $v)) (v128.load (local.get $q))))
//             (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $v)) (v128.load offset=16 (local.get $q)))))
//           (local.set $row (i32.add (local.get $row) (i32.const 16)))
//           (local.set $q (i32.add (local.get $q) (i32.const 32)))
//           (br_if $dims (i32.ne (local.get $q) (local.get $qEnd))))
//         (i32.store (local.get $out) (i32.add (i32.add (i32.add
//           (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
//           (i32x4.extract_lane 2 (local.get $acc))) (i32x4.extract_lane 3 (local.get $acc))))
//         (local.set $out (i32.add (local.get $out) (i32.const 4)))
//         (br_if $rows (i32.ne (local.get $out) (local.get $outEnd)))))))
//
// One row at a time is as fast as it gets here: the scan runs at memory bandwidth (unrolling over four
// rows to share the query loads measured 3× slower; v128.load8x8_s instead of load + extend, the same).

const I32 = 0x7f;
const V128 = 0x7b;
const VOID = 0x40;

const op = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  i32Store: 0x36,
  i32Const: 0x41,
  i32Eq: 0x46,
  i32Ne: 0x47,
  i32Add: 0x6a,
  i32Shl: 0x74,
} as const;

// after the 0xfd prefix, as LEB128
const simdOp = {
  v128Load: 0x00,
  v128Const: 0x0c,
  i32x4ExtractLane: 0x1b,
  i16x8ExtendLowI8x16S: 0x87,
  i16x8ExtendHighI8x16S: 0x88,
  i32x4Add: 0xae,
  i32x4DotI16x8S: 0xba,
} as const;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => vec([...new TextEncoder().encode(s)].map((b) => [b]));

const get = (local: number) => [op.localGet, ...uleb(local)];
const set = (local: number) => [op.localSet, ...uleb(local)];
const i32 = (value: number) => [op.i32Const, ...sleb(value)];
const simd = (code: number, ...immediates: number[]) => [0xfd, ...uleb(code), ...immediates];
/** memarg: log2 of the alignment, then the constant offset. */
const mem = (alignLog2: number, offset: number) => [...uleb(alignLog2), ...uleb(offset)];

function scanModuleBytes(): Uint8Array {
  const [row, n, chunks, query, out] = [0, 1, 2, 3, 4]; // params
  const [q, qEnd, outEnd, acc, v] = [5, 6, 7, 8, 9]; // locals
  // prettier-ignore
  const code = [
    ...get(query), ...get(chunks), ...i32(5), op.i32Shl, op.i32Add, ...set(qEnd),
    ...get(out), ...get(n), ...i32(2), op.i32Shl, op.i32Add, ...set(outEnd),
    op.block, VOID,
      ...get(out), ...get(outEnd), op.i32Eq, op.brIf, 0,
      op.loop, VOID, // $rows
        ...simd(simdOp.v128Const, ...new Array<number>(16).fill(0)), ...set(acc),
        ...get(query), ...set(q),
        op.loop, VOID, // $dims
          ...get(row), ...simd(simdOp.v128Load, ...mem(4, 0)), ...set(v),
          ...get(acc),
          ...get(v), ...simd(simdOp.i16x8ExtendLowI8x16S),
          ...get(q), ...simd(simdOp.v128Load, ...mem(4, 0)),
          ...simd(simdOp.i32x4DotI16x8S), ...simd(simdOp.i32x4Add),
          ...get(v), ...simd(simdOp.i16x8ExtendHighI8x16S),
          ...get(q), ...simd(simdOp.v128Load, ...mem(4, 16)),
          ...simd(simdOp.i32x4DotI16x8S), ...simd(simdOp.i32x4Add),
          ...set(acc),
          ...get(row), ...i32(16), op.i32Add, ...set(row),
          ...get(q), ...i32(32), op.i32Add, ...set(q),
          ...get(q), ...get(qEnd), op.i32Ne, op.brIf, 0,
        op.end,
        ...get(out),
        ...get(acc), ...simd(simdOp.i32x4ExtractLane, 0),
        ...get(acc), ...simd(simdOp.i32x4ExtractLane, 1), op.i32Add,
        ...get(acc), ...simd(simdOp.i32x4ExtractLane, 2), op.i32Add,
        ...get(acc), ...simd(simdOp.i32x4ExtractLane, 3), op.i32Add,
        op.i32Store, ...mem(2, 0),
        ...get(out), ...i32(4), op.i32Add, ...set(out),
        ...get(out), ...get(outEnd), op.i32Ne, op.brIf, 0,
      op.end,
    op.end,
    op.end,
  ];
  const body = [
    ...vec([
      [...uleb(3), I32],
      [...uleb(2), V128],
    ]),
    ...code,
  ];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32], [I32]]), ...vec([])]])), // types
    ...section(3, vec([uleb(0)])), // functions: scan has type 0
    ...section(5, vec([[0x00, ...uleb(1)]])), // memory: 1 page to start, no maximum
    ...section(
      7,
      vec([
        [...name('memory'), 0x02, 0],
        [...name('scan'), 0x00, 0],
      ]),
    ), // exports
    ...section(10, vec([[...uleb(body.length), ...body]])), // code
  ]);
}
