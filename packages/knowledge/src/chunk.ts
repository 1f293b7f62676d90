// Chunking that follows the document: Markdown blocks from marked's lexer, a new chunk at each heading
// (tiny sections are merged into the next rather than left as scraps), paragraphs packed up to the
// token budget, long paragraphs cut at sentence ends (Intl.Segmenter knows 。！？ as well as .!?), and
// the tail of a chunk repeated at the start of the next one in the same section.
import { estimateTokens } from '@pincer/shared';
import { Lexer, type Token } from 'marked';

export interface Chunk {
  index: number;
  text: string;
  /** Headings above the chunk, outermost first. */
  heading_path: string[];
  /** Offsets in the text given to chunkDocument: `text === source.slice(start, end)`. */
  start: number;
  end: number;
  tokens: number;
}

export interface ChunkOptions {
  maxTokens: number;
  overlapTokens: number;
}

interface Unit {
  start: number;
  end: number;
  heading: boolean;
  path: string[];
}

const sentences = new Intl.Segmenter('und', { granularity: 'sentence' });

export function chunkDocument(text: string, opts: ChunkOptions): Chunk[] {
  const { maxTokens, overlapTokens } = opts;
  if (!(maxTokens >= 16)) throw new RangeError('maxTokens must be at least 16');
  if (!(overlapTokens >= 0 && overlapTokens <= maxTokens / 2)) {
    throw new RangeError('overlapTokens must be between 0 and maxTokens / 2');
  }
  const tokensOf = (start: number, end: number): number => estimateTokens(text.slice(start, end));
  // Room for a unit next to the overlap it may follow (the 2 covers the blank line between them).
  const unitBudget = maxTokens - overlapTokens - 2;
  const tiny = Math.max(8, Math.floor(maxTokens / 4));

  const units: Unit[] = [];
  for (const block of blocks(text)) {
    if (block.heading) units.push(block);
    else for (const u of split(text, block, unitBudget)) units.push(u);
  }

  const chunks: Chunk[] = [];
  let cur: Unit[] = [];
  let curStart = 0;
  const emit = (): void => {
    if (cur.length === 0) return;
    const end = cur.at(-1)!.end;
    const body = cur.filter((u) => !u.heading);
    chunks.push({
      index: chunks.length,
      text: text.slice(curStart, end),
      heading_path: commonPrefix((body.length > 0 ? body : cur).map((u) => u.path)),
      start: curStart,
      end,
      tokens: tokensOf(curStart, end),
    });
    cur = [];
  };

  for (const unit of units) {
    if (cur.length === 0) {
      cur = [unit];
      curStart = unit.start;
      continue;
    }
    const hasBody = cur.some((u) => !u.heading);
    const fits = tokensOf(curStart, unit.end) <= maxTokens;
    if (unit.heading) {
      // A section starts: close the chunk unless what it holds is too small to stand alone.
      if (!hasBody || (fits && tokensOf(curStart, cur.at(-1)!.end) < tiny)) {
        if (fits) {
          cur.push(unit);
          continue;
        }
      }
      emit();
      cur = [unit];
      curStart = unit.start;
      continue;
    }
    if (fits) {
      cur.push(unit);
      continue;
    }
    const prev = cur;
    const prevStart = curStart;
    emit();
    // Same section: carry the previous chunk's last sentences over, as far as the budget allows.
    let start = overlapTokens > 0 ? overlapStart(text, prev, prevStart, overlapTokens) : unit.start;
    while (start < unit.start && tokensOf(start, unit.end) > maxTokens) {
      start = nextSentenceStart(text, start, unit.start);
    }
    cur = [unit];
    curStart = start;
  }
  emit();
  return chunks;
}

interface Block extends Unit {
  kind: string;
}

/** Top-level Markdown blocks with their offsets and the headings above them. */
function blocks(text: string): Block[] {
  const out: Block[] = [];
  const path: Array<{ depth: number; title: string }> = [];
  let pos = 0;
  for (const token of new Lexer().lex(text) as Token[]) {
    const raw = token.raw;
    let at = text.startsWith(raw, pos) ? pos : text.indexOf(raw.trim(), pos);
    if (at < 0) at = pos;
    pos = at + raw.length;
    if (token.type === 'space' || token.type === 'def' || !raw.trim()) continue;
    const lead = raw.length - raw.trimStart().length;
    const start = at + lead;
    const end = Math.min(text.length, at + raw.trimEnd().length);
    if (token.type === 'heading') {
      const depth = (token as { depth: number }).depth;
      while (path.length > 0 && path.at(-1)!.depth >= depth) path.pop();
      path.push({ depth, title: plain((token as { text: string }).text) });
      out.push({ kind: 'heading', start, end, heading: true, path: path.map((h) => h.title) });
    } else {
      out.push({ kind: token.type, start, end, heading: false, path: path.map((h) => h.title) });
    }
  }
  return out;
}

function plain(inline: string): string {
  return inline
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[*_`~]+/g, '')
    .trim();
}

/** A block as units within the budget: whole if it fits, else by lines (lists, code, tables) or sentences. */
function split(text: string, block: Block, budget: number): Unit[] {
  if (estimateTokens(text.slice(block.start, block.end)) <= budget) return [block];
  const byLine = block.kind === 'code' || block.kind === 'list' || block.kind === 'table';
  const pieces = byLine
    ? lineSpans(text, block.start, block.end)
    : sentenceSpans(text, block.start, block.end);
  const units: Unit[] = [];
  // Neighbouring pieces are regrouped so that units stay as large as the budget allows.
  let gStart = -1;
  let gEnd = -1;
  const push = (): void => {
    if (gStart >= 0) units.push({ start: gStart, end: gEnd, heading: false, path: block.path });
    gStart = -1;
  };
  for (const [s, e] of pieces) {
    if (estimateTokens(text.slice(s, e)) > budget) {
      push();
      for (const [hs, he] of hardSpans(text, s, e, budget)) {
        units.push({ start: hs, end: he, heading: false, path: block.path });
      }
      continue;
    }
    if (gStart >= 0 && estimateTokens(text.slice(gStart, e)) > budget) push();
    if (gStart < 0) gStart = s;
    gEnd = e;
  }
  push();
  return units;
}

function trimSpan(text: string, s: number, e: number): [number, number] | null {
  while (s < e && /\s/.test(text[s]!)) s++;
  while (e > s && /\s/.test(text[e - 1]!)) e--;
  return s < e ? [s, e] : null;
}

function lineSpans(text: string, start: number, end: number): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  let s = start;
  for (let i = start; i <= end; i++) {
    if (i === end || text[i] === '\n') {
      const span = trimSpan(text, s, i);
      if (span) spans.push(span);
      s = i + 1;
    }
  }
  return spans;
}

function sentenceSpans(text: string, start: number, end: number): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  for (const seg of sentences.segment(text.slice(start, end))) {
    const span = trimSpan(text, start + seg.index, start + seg.index + seg.segment.length);
    if (span) spans.push(span);
  }
  return spans;
}

/** A sentence longer than the budget: cut at the last space or comma that keeps each piece within it. */
function hardSpans(text: string, start: number, end: number, budget: number): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  let s = start;
  while (s < end) {
    // The longest prefix within the budget, by binary search on its length.
    let lo = s + 1;
    let hi = end;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (estimateTokens(text.slice(s, mid)) <= budget) lo = mid;
      else hi = mid - 1;
    }
    let cut = lo;
    if (cut < end) {
      const window = text.slice(s, cut);
      const m = /[\s，、,;；:：](?=[^\s，、,;；:：]*$)/u.exec(window);
      if (m && m.index > window.length / 2) cut = s + m.index + 1;
    }
    const span = trimSpan(text, s, cut);
    if (span) spans.push(span);
    s = cut;
  }
  return spans;
}

/** Where the overlap copied from the end of a chunk begins: whole trailing sentences within the budget. */
function overlapStart(text: string, units: Unit[], chunkStart: number, budget: number): number {
  const end = units.at(-1)!.end;
  const body = units.filter((u) => !u.heading);
  const from = Math.max(chunkStart + 1, (body.at(-2) ?? body.at(-1) ?? units.at(-1)!).start);
  let best = end;
  const spans = sentenceSpans(text, from, end);
  for (let i = spans.length - 1; i >= 0; i--) {
    const s = spans[i]![0];
    if (estimateTokens(text.slice(s, end)) > budget) break;
    best = s;
  }
  if (best === end) {
    // Even the last sentence is too long: take its tail from a clause start, else a word boundary.
    let s = end;
    while (s > from && estimateTokens(text.slice(s - 1, end)) <= budget) s--;
    const clause = /[，、,;；:：]/u.exec(text.slice(s, end));
    if (clause && s + clause.index + 1 < end) s += clause.index + 1;
    else while (s < end && /[\p{L}\p{N}]/u.test(text[s - 1] ?? '') && /[a-z0-9]/i.test(text[s]!)) s++;
    best = trimSpan(text, s, end)?.[0] ?? end;
  }
  return best;
}

function nextSentenceStart(text: string, from: number, limit: number): number {
  const spans = sentenceSpans(text, from, limit);
  return spans[1]?.[0] ?? limit;
}

function commonPrefix(paths: string[][]): string[] {
  const first = paths[0] ?? [];
  let n = first.length;
  for (const p of paths) {
    let i = 0;
    while (i < n && i < p.length && p[i] === first[i]) i++;
    n = i;
  }
  return first.slice(0, n);
}
