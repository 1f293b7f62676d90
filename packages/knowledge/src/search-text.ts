/**
 * Full-text search for Chinese and English in plain Postgres.
 *
 * Postgres's text-search parsers split on spaces and punctuation, so a run of Chinese characters
 * becomes one huge "word" and a question never matches it. Segmenting extensions (zhparser, pg_jieba)
 * are not in the compose image (pgvector/pgvector) and would tie deployments to a custom build. So text
 * is segmented here, in the application, and Postgres only stores and matches the result with the
 * `simple` configuration (lower-casing, no stemming, no stop words):
 *
 *   - Han characters and kana: overlapping character bigrams (知识库 → 知识 识库). Bigrams need no
 *     dictionary, never go stale on new words or names, and give high recall; precision comes from
 *     ranking (several bigrams of a phrase must match) and from fusion with the vector search.
 *     The last character of each run is also indexed on its own, so every character occurrence
 *     starts some lexeme: a one-character query `茶` becomes the prefix query `茶:*`.
 *   - Other scripts: words of letters and digits, NFKC-normalised (full-width ASCII → ASCII),
 *     lower-cased, accents removed, and plural/possessive "s" stripped (Harman's S-stemmer: light
 *     enough never to merge unrelated words, which a Porter stemmer applied to mixed text can).
 *
 * Store `to_tsvector('simple', ftsDocument(text))`; query with `to_tsquery('simple', ftsQuery(q))`,
 * which ORs the query's lexemes (an AND of bigrams would demand the exact wording), ranked with
 * ts_rank / ts_rank_cd. Question words and function words are dropped from queries only.
 */

const HAN = '\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}\\u30fc\\u3005';
const TOKEN_RE = new RegExp(`([${HAN}]+)|([\\p{L}\\p{N}]+)`, 'gu');
const MAX_WORD = 64;

const STOP_WORDS = new Set([
  // English function words and question words
  'a',
  'an',
  'and',
  'are',
  'as',
  'at',
  'be',
  'by',
  'can',
  'do',
  'doe',
  'did',
  'for',
  'from',
  'how',
  'i',
  'if',
  'in',
  'is',
  'it',
  'its',
  'me',
  'much',
  'many',
  'my',
  'of',
  'on',
  'or',
  'should',
  'that',
  'the',
  'their',
  'there',
  'thi',
  'this',
  'to',
  'wa',
  'was',
  'we',
  'what',
  'when',
  'where',
  'which',
  'who',
  'whom',
  'why',
  'will',
  'with',
  'would',
  'you',
  'your',
  'ha',
  'have',
  // Chinese question words and particles (as the lexemes the segmentation produces)
  '什么',
  '怎么',
  '怎样',
  '如何',
  '多少',
  '哪些',
  '哪个',
  '哪里',
  '为什',
  '么',
  '吗',
  '呢',
  '的',
  '了',
  '是',
  '请问',
  '是否',
  '可以',
  '需要',
  '应该',
  '有没',
  '没有',
]);

interface Lexemes {
  terms: string[];
  /** One-character Han runs, matched as prefixes. */
  prefixes: string[];
}

// Question phrases are cut out of a query's Chinese before bigrams are made: 是什么 would otherwise
// also give 是什, a bigram no document has, which looks like the query's most telling term.
const QUESTION_PHRASES =
  /为什么|是什么|什么|怎么样|怎么|怎样|如何|多少|哪些|哪个|哪里|哪儿|请问|是否|有没有|吗|呢/gu;

function segment(text: string, forQuery: boolean): Lexemes {
  const terms: string[] = [];
  const prefixes: string[] = [];
  const normalised = forQuery
    ? text.normalize('NFKC').replace(QUESTION_PHRASES, ' ')
    : text.normalize('NFKC');
  for (const m of normalised.matchAll(TOKEN_RE)) {
    if (m[1] !== undefined) {
      const chars = [...m[1]];
      if (chars.length === 1) {
        if (forQuery) prefixes.push(chars[0]!);
        else terms.push(chars[0]!);
        continue;
      }
      for (let i = 0; i + 1 < chars.length; i++) terms.push(chars[i]! + chars[i + 1]!);
      if (!forQuery) terms.push(chars.at(-1)!);
    } else {
      const word = stem(
        m[2]!
          .toLowerCase()
          .normalize('NFD')
          .replace(/\p{M}+/gu, ''),
      );
      if (word && word.length <= MAX_WORD) terms.push(word);
    }
  }
  return { terms, prefixes };
}

/** Harman's S-stemmer, plus possessives. */
export function stem(word: string): string {
  if (word.length <= 3 || !/^[a-z]+$/.test(word)) return word;
  if (word.endsWith('ies') && !word.endsWith('eies') && !word.endsWith('aies'))
    return word.slice(0, -3) + 'y';
  if (word.endsWith('es') && !/(aes|ees|oes)$/.test(word)) return word.slice(0, -1);
  if (word.endsWith('s') && !/(us|ss)$/.test(word)) return word.slice(0, -1);
  return word;
}

/** The text to store as `to_tsvector('simple', …)`: the segmented lexemes, space-separated. */
export function ftsDocument(text: string): string {
  return segment(text, false).terms.join(' ');
}

/** The query's lexemes (stop words dropped, deduplicated) and the one-character Han prefixes. */
export function ftsQueryTerms(query: string): Lexemes {
  const { terms, prefixes } = segment(query, true);
  const keep = (t: string): boolean => !STOP_WORDS.has(t);
  let kept = [...new Set(terms.filter(keep))];
  let keptPrefixes = [...new Set(prefixes.filter(keep))];
  // A query made only of stop words still means something: keep it whole rather than match nothing.
  if (kept.length === 0 && keptPrefixes.length === 0) {
    kept = [...new Set(terms)];
    keptPrefixes = [...new Set(prefixes)];
  }
  return { terms: kept, prefixes: keptPrefixes };
}

/** The string for `to_tsquery('simple', $1)`: lexemes ORed; '' when the query has no words (match nothing). */
export function ftsQuery(query: string): string {
  const { terms, prefixes } = ftsQueryTerms(query);
  return [...terms, ...prefixes.map((p) => `${p}:*`)].join(' | ');
}
