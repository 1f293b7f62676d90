// Deterministic embeddings: hashed word features, L2-normalised, so texts sharing words score higher.

const WORD_RE = /[\p{L}\p{N}]+/gu;

function fnv1a(s: string, seed: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function embedText(text: string, dims: number): Float32Array {
  const v = new Float32Array(dims);
  const words = text.toLowerCase().match(WORD_RE);
  if (words) {
    for (const w of words) {
      // Two hashed features per word reduce collisions in small dimensions.
      const h1 = fnv1a(w, 0);
      const h2 = fnv1a(w, 0x9e3779b9);
      v[h1 % dims]! += h1 & 0x80000000 ? -1 : 1;
      v[h2 % dims]! += h2 & 0x80000000 ? -0.5 : 0.5;
    }
  }
  let norm = 0;
  for (let i = 0; i < dims; i++) norm += v[i]! * v[i]!;
  if (norm === 0) {
    // Text without words still needs a unit vector (cosine of zero vectors is undefined).
    v[fnv1a(text, 1) % dims] = 1;
    return v;
  }
  norm = Math.sqrt(norm);
  for (let i = 0; i < dims; i++) v[i] = v[i]! / norm;
  return v;
}

/** Little-endian float32 base64, as OpenAI's encoding_format 'base64'. */
export function float32ToBase64(v: Float32Array): string {
  const buf = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i]!, i * 4);
  return buf.toString('base64');
}

export function inputTexts(input: unknown): string[] | undefined {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input) || input.length === 0) return undefined;
  // An array of token ids is a single input; an array of arrays is several.
  if (input.every((x) => typeof x === 'number')) return [input.join(' ')];
  const out: string[] = [];
  for (const x of input) {
    if (typeof x === 'string') out.push(x);
    else if (Array.isArray(x) && x.every((n) => typeof n === 'number')) out.push(x.join(' '));
    else return undefined;
  }
  return out;
}
