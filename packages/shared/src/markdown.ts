/**
 * Platform-neutral Markdown helpers shared by the chat adapters: cutting a long answer into messages
 * without breaking code blocks, and laying out a table as monospace text. No parser here on purpose
 * (this package stays dependency-free); the adapters parse with `marked`.
 */

interface Fence {
  /** Leading whitespace of the opening line (fences inside list items are indented). */
  indent: string;
  /** The run of backticks or tildes that opened the block; the closing run must be at least as long. */
  marker: string;
  /** Everything after the marker on the opening line, e.g. `python`. */
  info: string;
}

type BreakKind = 'paragraph' | 'line' | 'space' | 'punct' | 'code';

interface Break {
  /** Content of the part ends here (exclusive). */
  end: number;
  /** The next part starts here. */
  next: number;
  /** Whether the next part starts at the beginning of a source line. */
  nextAtLineStart: boolean;
  /** Code fence open at the cut: closed at the end of this part and reopened in the next. */
  fence: Fence | null;
}

// A break only counts as "preferred" when it leaves the part at least this full; otherwise a good break
// near the start of the window would produce a string of tiny messages.
const MIN_FILL = 0.5;
const BREAK_ORDER: readonly BreakKind[] = ['paragraph', 'line', 'space', 'punct', 'code'];
// CJK text has no spaces; sentence and clause punctuation is the next best place to cut.
const CUT_AFTER = new Set(['。', '！', '？', '；', '，', '、', '：', '）', '」', '』', '】', '》']);

/**
 * Splits Markdown into parts of at most `maxChars` characters (UTF-16 length), preferring paragraph breaks,
 * then line breaks, then spaces, hard-cutting only a single over-long word; a fenced code block cut across
 * parts is closed at the end of one part and reopened (same fence and info string, e.g. ```python) at the
 * start of the next. Never returns empty parts; joining the parts' content (without the added fences) gives
 * back the input modulo whitespace at the cuts.
 */
export function splitMarkdown(text: string, maxChars: number): string[] {
  if (!Number.isInteger(maxChars) || maxChars < 1)
    throw new RangeError('maxChars must be a positive integer');
  if (isBlank(text, 0, text.length)) return [];
  if (text.length <= maxChars) return [text];

  const parts: string[] = [];
  // Reopening costs the fence line now and a closing line later; a fence too long for that is cut like
  // plain text (its state is still tracked, so its closing line is not mistaken for an opening one).
  const carried = (fence: Fence | null): fence is Fence =>
    fence !== null && openingLine(fence).length + closingLine(fence).length + 2 < maxChars;
  let pos = 0;
  let atLineStart = true;
  let fence: Fence | null = null;
  while (pos < text.length) {
    // A code line cut mid-way continues at the fence's indentation (a list item's code stays in the item).
    const reopen = carried(fence) ? openingLine(fence) + '\n' + (atLineStart ? '' : fence.indent) : '';
    const budget = Math.max(1, maxChars - reopen.length);
    if (text.length - pos <= budget) {
      if (!isBlank(text, pos, text.length)) parts.push(reopen + text.slice(pos));
      break;
    }
    const cut = chooseBreak(text, pos, budget, atLineStart, fence, carried);
    const content = text.slice(pos, cut.end).trimEnd();
    if (content.trim() !== '') {
      parts.push(reopen + content + (carried(cut.fence) ? '\n' + closingLine(cut.fence) : ''));
    }
    pos = cut.next;
    atLineStart = cut.nextAtLineStart;
    fence = cut.fence;
  }
  return parts;
}

function chooseBreak(
  text: string,
  pos: number,
  budget: number,
  atLineStart: boolean,
  startFence: Fence | null,
  carried: (fence: Fence | null) => fence is Fence,
): Break {
  const limit = pos + budget;
  const best = new Map<BreakKind, Break>();
  const preferred = new Map<BreakKind, Break>();
  const offer = (kind: BreakKind, brk: Break): void => {
    const closing = carried(brk.fence) ? closingLine(brk.fence).length + 1 : 0;
    const used = brk.end - pos + closing;
    if (brk.end <= pos || used > budget) return;
    // Inside code a line break anywhere beats cutting a code line in two.
    const rank = brk.fence && (kind === 'space' || kind === 'punct') ? 'code' : kind;
    best.set(rank, brk);
    if (used >= budget * MIN_FILL && rank !== 'code') preferred.set(rank, brk);
  };

  // One pass over the window, line by line, tracking whether each position is inside a code fence.
  let fence = startFence;
  let lineStart = pos;
  let isLineStart = atLineStart;
  while (lineStart < limit) {
    let fenceLine = false;
    let openedHere = false;
    const marker = isLineStart ? fenceMarkerAt(text, lineStart) : null;
    if (marker && fence && closesFence(text, marker, fence)) {
      fence = null;
      fenceLine = true;
    } else if (marker && !fence) {
      fence = openFence(text, marker);
      fenceLine = openedHere = fence !== null;
    }
    let newline = -1;
    for (let i = lineStart; i < limit; i++) {
      const code = text.charCodeAt(i);
      if (code === 10) {
        newline = i;
        break;
      }
      if (fenceLine) continue; // a fence line must stay whole
      if (code === 32 || code === 9) {
        let next = i + 1;
        while (next < text.length && (text[next] === ' ' || text[next] === '\t')) next++;
        if (next < text.length && text[next] !== '\n') {
          offer('space', { end: i, next, nextAtLineStart: false, fence });
        }
        i = next - 1;
      } else if (CUT_AFTER.has(text[i]!) && i + 1 < text.length && text[i + 1] !== '\n') {
        offer('punct', { end: i + 1, next: i + 1, nextAtLineStart: false, fence });
      }
    }
    if (newline === -1) break;
    // At a line end: cut before the newline, the next part starts at the next non-blank line.
    let next = newline + 1;
    let blankLines = 0;
    for (;;) {
      let k = next;
      while (k < text.length && (text[k] === ' ' || text[k] === '\t')) k++;
      if (k >= text.length || text[k] !== '\n') break;
      next = k + 1;
      blankLines++;
    }
    // Not right after an opening fence, nor right before a closing one: either would leave a part holding
    // an empty code block.
    const closesNext = fence !== null && nextLineCloses(text, newline + 1, fence);
    if (!openedHere && !closesNext) {
      const blank = isBlank(text, lineStart, newline);
      offer(blankLines > 0 || blank ? 'paragraph' : 'line', {
        end: newline,
        next,
        nextAtLineStart: true,
        fence,
      });
    }
    lineStart = newline + 1;
    isLineStart = true;
  }

  for (const kind of BREAK_ORDER) {
    const brk = preferred.get(kind);
    if (brk) return brk;
  }
  for (const kind of BREAK_ORDER) {
    const brk = best.get(kind);
    if (brk) return brk;
  }
  // A single word longer than the budget: hard cut, never between the halves of a surrogate pair. The cut
  // lands in the last line scanned, so the fence state is the one in force on that line.
  const reserve = carried(fence) ? closingLine(fence).length + 1 : 0;
  let end = pos + Math.max(1, budget - reserve);
  if (isLowSurrogate(text.charCodeAt(end)) && end - 1 > pos) end--;
  return { end, next: end, nextAtLineStart: false, fence };
}

function nextLineCloses(text: string, lineStart: number, fence: Fence): boolean {
  const marker = fenceMarkerAt(text, lineStart);
  return marker !== null && closesFence(text, marker, fence);
}

/** Backtick or tilde run (3 or more) after optional indentation, or null. */
function fenceMarkerAt(text: string, lineStart: number): { indentEnd: number; end: number } | null {
  let i = lineStart;
  while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
  const ch = text[i];
  if (ch !== '`' && ch !== '~') return null;
  let end = i;
  while (end < text.length && text[end] === ch) end++;
  return end - i >= 3 ? { indentEnd: i, end } : null;
}

function closesFence(text: string, marker: { indentEnd: number; end: number }, fence: Fence): boolean {
  if (text[marker.indentEnd] !== fence.marker[0]) return false;
  if (marker.end - marker.indentEnd < fence.marker.length) return false;
  let i = marker.end;
  while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
  return i >= text.length || text[i] === '\n';
}

function openFence(text: string, marker: { indentEnd: number; end: number }): Fence | null {
  const newline = text.indexOf('\n', marker.end);
  const markerText = text.slice(marker.indentEnd, marker.end);
  const info = text.slice(marker.end, newline === -1 ? text.length : newline).trim();
  // CommonMark: a backtick fence's info string cannot contain backticks (that is inline code instead).
  if (markerText[0] === '`' && info.includes('`')) return null;
  let indentStart = marker.indentEnd;
  while (indentStart > 0 && (text[indentStart - 1] === ' ' || text[indentStart - 1] === '\t')) indentStart--;
  return { indent: text.slice(indentStart, marker.indentEnd), marker: markerText, info };
}

function openingLine(fence: Fence): string {
  return fence.indent + fence.marker + fence.info;
}

function closingLine(fence: Fence): string {
  return fence.indent + fence.marker;
}

function isBlank(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return false;
  }
  return true;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

export type ColumnAlign = 'left' | 'right' | 'center' | null;

/**
 * Lays out a table as monospace text: columns padded to the widest cell, a rule under the header.
 * Widths count East Asian wide characters and emoji as two columns so CJK tables line up.
 */
export function alignTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly ColumnAlign[] = [],
): string {
  const columns = Math.max(header.length, ...rows.map((r) => r.length));
  const clean = (cell: string | undefined): string => (cell ?? '').replace(/\s+/g, ' ').trim();
  const all = [header, ...rows].map((r) => Array.from({ length: columns }, (_, c) => clean(r[c])));
  const widths = Array.from({ length: columns }, (_, c) =>
    Math.max(1, ...all.map((r) => displayWidth(r[c]!))),
  );
  const line = (cells: string[]): string =>
    cells
      .map((cell, c) => pad(cell, widths[c]!, align[c] ?? null))
      .join(' | ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('-+-');
  const [head, ...body] = all;
  return [line(head!), rule, ...body.map(line)].join('\n');
}

function pad(cell: string, width: number, align: ColumnAlign): string {
  const gap = width - displayWidth(cell);
  if (gap <= 0) return cell;
  if (align === 'right') return ' '.repeat(gap) + cell;
  if (align === 'center') {
    const left = Math.floor(gap / 2);
    return ' '.repeat(left) + cell + ' '.repeat(gap - left);
  }
  return cell + ' '.repeat(gap);
}

/** Terminal-style column width: wide (CJK, fullwidth, emoji) = 2, combining and zero-width = 0. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (isZeroWidth(cp)) continue;
    width += isWide(cp) ? 2 : 1;
  }
  return width;
}

function isZeroWidth(cp: number): boolean {
  return (
    (cp >= 0x0300 && cp <= 0x036f) ||
    (cp >= 0x200b && cp <= 0x200f) ||
    cp === 0x2060 ||
    (cp >= 0xfe00 && cp <= 0xfe0f) ||
    cp === 0xfeff ||
    (cp >= 0x1f3fb && cp <= 0x1f3ff) ||
    (cp >= 0xe0100 && cp <= 0xe01ef)
  );
}

// Emoji with default emoji presentation in the BMP (East Asian Width "W"), e.g. ⌚ ✅ ❌ ⭐.
const WIDE_BMP_SYMBOLS = new Set([
  0x231a, 0x231b, 0x2329, 0x232a, 0x23e9, 0x23ea, 0x23eb, 0x23ec, 0x23f0, 0x23f3, 0x25fd, 0x25fe, 0x2614,
  0x2615, 0x267f, 0x2693, 0x26a1, 0x26aa, 0x26ab, 0x26bd, 0x26be, 0x26c4, 0x26c5, 0x26ce, 0x26d4, 0x26ea,
  0x26f2, 0x26f3, 0x26f5, 0x26fa, 0x26fd, 0x2705, 0x270a, 0x270b, 0x2728, 0x274c, 0x274e, 0x2753, 0x2754,
  0x2755, 0x2757, 0x2795, 0x2796, 0x2797, 0x27b0, 0x27bf, 0x2b1b, 0x2b1c, 0x2b50, 0x2b55,
]);

function isWide(cp: number): boolean {
  if (cp < 0x1100) return false;
  if (WIDE_BMP_SYMBOLS.has(cp)) return true;
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2648 && cp <= 0x2653) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f004 && cp <= 0x1f0cf) ||
    (cp >= 0x1f18e && cp <= 0x1f19a) ||
    (cp >= 0x1f200 && cp <= 0x1f2ff) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f680 && cp <= 0x1f6ff) ||
    (cp >= 0x1f7e0 && cp <= 0x1f7eb) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x1fa70 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}
