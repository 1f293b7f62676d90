// PDF to Markdown-ish text with unpdf (pdf.js built for servers, no native canvas needed for text).
// PDFs carry no structure we can rely on, so it is rebuilt from layout: lines from pdf.js's text items,
// paragraphs from vertical gaps, headings from lines set in a larger font than the body text.
import { extractTextItems, getDocumentProxy, getMeta, type StructuredTextItem } from 'unpdf';
import { ExtractionError } from './errors.ts';

interface Line {
  text: string;
  size: number;
  y: number;
  page: number;
}

const CJK_EDGE = /[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]/;

export interface PdfText {
  text: string;
  title: string | undefined;
}

export async function pdfToText(data: Uint8Array): Promise<PdfText> {
  let doc;
  try {
    // pdf.js takes ownership of the buffer it is given, so it gets a copy.
    doc = await getDocumentProxy(new Uint8Array(data), { verbosity: 0 });
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === 'PasswordException') {
      throw new ExtractionError('encrypted_file', 'The PDF is password-protected.', { cause: err });
    }
    throw new ExtractionError('corrupt_file', 'The file is not a readable PDF.', { cause: err });
  }
  try {
    const { items } = await extractTextItems(doc);
    const lines = items.flatMap((page, i) => toLines(page, i));
    let title: string | undefined;
    try {
      const meta = await getMeta(doc);
      const t = meta.info['Title'];
      if (typeof t === 'string' && t.trim()) title = t.trim();
    } catch {
      // Metadata is optional; the text is what matters.
    }
    return { text: layout(lines), title };
  } catch (err) {
    if (err instanceof ExtractionError) throw err;
    throw new ExtractionError('corrupt_file', 'The PDF could not be read.', { cause: err });
  } finally {
    // Frees pdf.js caches for this document.
    await doc.loadingTask.destroy();
  }
}

function toLines(items: StructuredTextItem[], page: number): Line[] {
  const lines: Line[] = [];
  let cur: Line | null = null;
  for (const item of items) {
    if (cur && Math.abs(item.y - cur.y) > Math.max(2, cur.size * 0.5)) {
      lines.push(cur);
      cur = null;
    }
    if (item.str) {
      if (!cur) cur = { text: '', size: 0, y: item.y, page };
      cur.text += item.str;
      if (item.str.trim()) cur.size = Math.max(cur.size, item.fontSize);
    }
    if (item.hasEOL && cur) {
      lines.push(cur);
      cur = null;
    }
  }
  if (cur) lines.push(cur);
  return lines.map((l) => ({ ...l, text: l.text.replace(/\s+/g, ' ').trim() })).filter((l) => l.text !== '');
}

function layout(lines: Line[]): string {
  if (lines.length === 0) return '';
  // Body size: the font size carrying the most characters.
  const weight = new Map<number, number>();
  for (const l of lines) {
    const s = Math.round(l.size * 2) / 2;
    weight.set(s, (weight.get(s) ?? 0) + l.text.length);
  }
  const body = [...weight].sort((a, b) => b[1] - a[1])[0]![0];
  // Larger sizes, largest first, map to heading levels 1..3.
  const headingSizes = [...weight.keys()].filter((s) => s >= body * 1.15).sort((a, b) => b - a);
  const level = (size: number): number => {
    const i = headingSizes.indexOf(Math.round(size * 2) / 2);
    return i < 0 ? 0 : Math.min(i + 1, 3);
  };

  const blocks: string[] = [];
  let para = '';
  let prev: Line | null = null;
  for (const l of lines) {
    const h = l.text.length <= 150 ? level(l.size) : 0;
    const gap = prev && prev.page === l.page ? prev.y - l.y : Infinity;
    const newPara = !prev || h > 0 || level(prev.size) > 0 || gap > Math.max(prev.size, l.size) * 1.6;
    if (newPara) {
      if (para) blocks.push(para);
      para = '';
    }
    if (h > 0) {
      blocks.push('#'.repeat(h) + ' ' + l.text);
    } else if (!para) {
      para = l.text;
    } else if (para.endsWith('-') && /^\p{Ll}/u.test(l.text)) {
      para = para.slice(0, -1) + l.text; // a word hyphenated across lines
    } else {
      // Chinese and Japanese lines wrap without a space between them.
      const joint = CJK_EDGE.test(para.at(-1)!) && CJK_EDGE.test(l.text[0]!) ? '' : ' ';
      para += joint + l.text;
    }
    prev = l;
  }
  if (para) blocks.push(para);
  return blocks.join('\n\n');
}
