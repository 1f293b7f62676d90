// Files to Markdown-ish text that keeps the structure chunking follows: `#` headings, paragraphs
// separated by blank lines, `- ` list items. Parsing is left to maintained libraries: htmlparser2,
// unpdf (pdf.js) and mammoth (DOCX to HTML, then the same HTML path).
import mammoth from 'mammoth';
import { ExtractionError } from './errors.ts';
import { htmlToText } from './html.ts';
import { pdfToText } from './pdf.ts';

export type DocumentFormat = 'md' | 'txt' | 'html' | 'pdf' | 'docx';

export interface SourceFile {
  name: string;
  mime?: string;
  data: Uint8Array;
}

export interface ExtractedText {
  text: string;
  format: DocumentFormat;
  title?: string;
}

export interface ExtractOptions {
  /** Files larger than this are refused before parsing (default 25 MiB). */
  maxBytes?: number;
}

export const DEFAULT_MAX_BYTES = 25 * 1024 * 1024;

const BY_EXTENSION: Record<string, DocumentFormat> = {
  md: 'md',
  markdown: 'md',
  mdown: 'md',
  txt: 'txt',
  text: 'txt',
  log: 'txt',
  csv: 'txt',
  html: 'html',
  htm: 'html',
  xhtml: 'html',
  pdf: 'pdf',
  docx: 'docx',
};

const BY_MIME: Record<string, DocumentFormat> = {
  'text/markdown': 'md',
  'text/x-markdown': 'md',
  'text/plain': 'txt',
  'text/csv': 'txt',
  'text/html': 'html',
  'application/xhtml+xml': 'html',
  'application/pdf': 'pdf',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
};

/** Formats recognised by name or type that cannot be read, so the error can say what to do instead. */
const KNOWN_UNSUPPORTED: Record<string, string> = {
  doc: 'Legacy .doc files are not supported; save the document as .docx.',
  'application/msword': 'Legacy .doc files are not supported; save the document as .docx.',
};

export async function extractText(file: SourceFile, opts: ExtractOptions = {}): Promise<ExtractedText> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  if (file.data.byteLength > maxBytes) {
    throw new ExtractionError(
      'file_too_large',
      `The file is ${file.data.byteLength} bytes; the limit is ${maxBytes} bytes.`,
    );
  }
  const format = detectFormat(file);
  let result: ExtractedText;
  switch (format) {
    case 'md': {
      const { text, title } = markdownText(decodeText(file.data));
      result = { text, format, title };
      break;
    }
    case 'txt':
      result = { text: decodeText(file.data), format };
      break;
    case 'html': {
      const { text, title } = htmlToText(decodeText(file.data));
      result = { text, format, title };
      break;
    }
    case 'pdf': {
      const { text, title } = await pdfToText(file.data);
      result = { text, format, title };
      break;
    }
    case 'docx':
      result = { text: await docxText(file.data), format };
      break;
  }
  result.text = normalise(result.text);
  if (!/[\p{L}\p{N}]/u.test(result.text)) {
    throw new ExtractionError('empty_document', `"${file.name}" contains no text.`);
  }
  if (result.title === undefined) {
    const h = /^#{1,2} +(.+)$/m.exec(result.text);
    if (h) result.title = h[1]!.trim();
  }
  if (result.title === undefined) delete result.title;
  return result;
}

export function detectFormat(file: SourceFile): DocumentFormat {
  const ext = /\.([a-z0-9]+)$/i.exec(file.name)?.[1]?.toLowerCase() ?? '';
  const mime = file.mime?.split(';')[0]?.trim().toLowerCase() ?? '';
  const head = file.data.subarray(0, 5);
  const isPdf = head.length >= 5 && String.fromCharCode(...head) === '%PDF-';
  const isZip = head[0] === 0x50 && head[1] === 0x4b;

  const named = BY_EXTENSION[ext] ?? BY_MIME[mime];
  // A name says what the file should be; the bytes win where they are unambiguous.
  if (isPdf && (named === undefined || named === 'pdf' || mime === 'application/octet-stream')) return 'pdf';
  if (named === 'pdf' && !isPdf) {
    throw new ExtractionError('corrupt_file', `"${file.name}" is named as a PDF but is not one.`);
  }
  if (named === 'docx' && !isZip) {
    throw new ExtractionError('corrupt_file', `"${file.name}" is named as a DOCX but is not one.`);
  }
  if (named) return named;

  const hint = KNOWN_UNSUPPORTED[ext] ?? KNOWN_UNSUPPORTED[mime];
  if (hint) throw new ExtractionError('unsupported_type', hint);
  const unsupported = new ExtractionError(
    'unsupported_type',
    `"${file.name}" is not a supported file type (.md, .txt, .html, .pdf, .docx).`,
  );
  // Without a usable name or type, sniff: a file that decodes as text is taken as text.
  if (ext && ext !== 'bin') throw unsupported;
  if (mime && mime !== 'application/octet-stream' && !mime.startsWith('text/')) throw unsupported;
  if (isZip || !looksLikeText(file.data)) throw unsupported;
  const start = new TextDecoder().decode(file.data.subarray(0, 512)).trimStart().toLowerCase();
  return start.startsWith('<!doctype html') || start.startsWith('<html') ? 'html' : 'txt';
}

function looksLikeText(data: Uint8Array): boolean {
  const sample = data.subarray(0, 8192);
  return !sample.includes(0) || hasUtf16Bom(sample);
}

function hasUtf16Bom(d: Uint8Array): boolean {
  return (d[0] === 0xff && d[1] === 0xfe) || (d[0] === 0xfe && d[1] === 0xff);
}

/** UTF-8 (or UTF-16 with a BOM); text that is not valid UTF-8 is read as GB18030, the usual legacy encoding of Chinese files. */
export function decodeText(data: Uint8Array): string {
  if (data[0] === 0xff && data[1] === 0xfe) return new TextDecoder('utf-16le').decode(data);
  if (data[0] === 0xfe && data[1] === 0xff) return new TextDecoder('utf-16be').decode(data);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    if (data.includes(0)) throw new ExtractionError('corrupt_file', 'The file is binary, not text.');
    try {
      return new TextDecoder('gb18030', { fatal: true }).decode(data);
    } catch (err) {
      throw new ExtractionError('corrupt_file', 'The text encoding could not be recognised.', { cause: err });
    }
  }
}

function markdownText(source: string): { text: string; title: string | undefined } {
  // YAML front matter is metadata, not content; its title is kept.
  const fm = /^---\r?\n([\s\S]*?)\r?\n---\r?\n/.exec(source);
  if (!fm) return { text: source, title: undefined };
  const t = /^title:\s*["']?(.+?)["']?\s*$/m.exec(fm[1]!);
  return { text: source.slice(fm[0].length), title: t?.[1] };
}

async function docxText(data: Uint8Array): Promise<string> {
  let html: string;
  try {
    const result = await mammoth.convertToHtml({
      buffer: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    });
    html = result.value;
  } catch (err) {
    throw new ExtractionError('corrupt_file', 'The file is not a readable DOCX document.', { cause: err });
  }
  return htmlToText(html).text;
}

function normalise(text: string): string {
  return (
    text
      .replace(/^\uFEFF/, '')
      .replace(/\r\n?/g, '\n')
      // Control characters other than tab and newline only confuse chunking and search.
      // eslint-disable-next-line no-control-regex -- removing control characters is the point
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '')
      .replace(/[ \t]+$/gm, '')
      .replace(/\n{3,}/g, '\n\n')
      .trim()
  );
}
