// Deterministic embeddings from hashed lexical features, L2-normalised, so texts sharing words score
// higher. Like a real embedding model's tokenizer, the features see inside words: Latin words also
// give their character trigrams (so "configure" and "configuring" are close), and runs of Chinese or
// Japanese characters give character bigrams and single characters (a real model never reads
// "知识库管理" as one opaque token). Still lexical, not semantic: synonyms do not meet.

const TOKEN_RE = /([\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]+)|([\p{L}\p{N}]+)/gu;

function fnv1a(s: string, seed: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function addFeature(v: Float32Array, feature: string, weight: number): void {
  const dims = v.length;
  // two hashed slots per feature reduce collisions in small dimensions
  const h1 = fnv1a(feature, 0);
  const h2 = fnv1a(feature, 0x9e3779b9);
  v[h1 % dims]! += h1 & 0x80000000 ? -weight : weight;
  v[h2 % dims]! += h2 & 0x80000000 ? -weight / 2 : weight / 2;
}

export function embedText(text: string, dims: number): Float32Array {
  const v = new Float32Array(dims);
  for (const m of text.toLowerCase().normalize('NFKC').matchAll(TOKEN_RE)) {
    if (m[1] !== undefined) {
      const chars = [...m[1]];
      for (let i = 0; i < chars.length; i++) {
        addFeature(v, `c:${chars[i]}`, 0.35);
        if (i + 1 < chars.length) addFeature(v, `b:${chars[i]}${chars[i + 1]}`, 1);
      }
    } else {
      const w = m[2]!;
      addFeature(v, `w:${w}`, 1);
      const padded = `<${w}>`;
      if (w.length > 3)
        for (let i = 0; i + 3 <= padded.length; i++) addFeature(v, `t:${padded.slice(i, i + 3)}`, 0.25);
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
