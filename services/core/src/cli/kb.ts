/** `pincer kb ingest|list`: the knowledge base, through core's API. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ApiClient, ApiError, connect } from './client.ts';
import { type Command, type Context, intOption, writeList } from './command.ts';

interface KbDocument {
  id: number;
  title: string;
  filename: string | null;
  format: string;
  bytes: number;
  status: 'queued' | 'extracting' | 'embedding' | 'ready' | 'failed';
  error: string | null;
  progress: { chunks_total: number; chunks_done: number; percent: number };
  chunk_count: number;
  updated_at: string;
}

const SETTLED = new Set(['ready', 'failed']);
const BAR = 20;

/** One redrawn progress line (TTY): bar, percent, state, file. */
export function progressLine(name: string, d: Pick<KbDocument, 'status' | 'progress' | 'error'>): string {
  const pct = Math.max(0, Math.min(100, Math.floor(d.progress.percent)));
  const filled = Math.round((pct / 100) * BAR);
  const state = d.status === 'failed' ? `failed: ${d.error ?? 'unknown error'}` : d.status;
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${String(pct).padStart(3)}% ${name}  ${state}`;
}

/** A state-change line (no TTY: logs and pipes get one line per change, never a redraw). */
function stateLine(name: string, d: Pick<KbDocument, 'status' | 'progress' | 'error' | 'chunk_count'>) {
  if (d.status === 'ready') return `${name}: ready (${d.chunk_count} chunk${d.chunk_count === 1 ? '' : 's'})`;
  if (d.status === 'failed') return `${name}: failed: ${d.error ?? 'unknown error'}`;
  return `${name}: ${d.status}${d.status === 'embedding' ? ` ${Math.floor(d.progress.percent)}%` : ''}`;
}

/** Uploads one file and follows its ingestion to ready or failed; the last document state comes back. */
async function ingestOne(
  ctx: Context,
  api: ApiClient,
  file: string,
  timeoutMs: number,
): Promise<KbDocument | undefined> {
  const name = path.basename(file);
  const tty = !!ctx.stdout.isTTY;
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    ctx.stderr.write(
      `pincer: ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}\n`,
    );
    return undefined;
  }
  const form = new FormData();
  form.set('file', new Blob([new Uint8Array(data)]), name);
  let doc: KbDocument;
  try {
    doc = await api.request<KbDocument>('POST', '/api/v1/knowledge/files', { form });
  } catch (err) {
    // core refused this file (type, size): say so and go on; core unreachable stops everything
    if (!(err instanceof ApiError)) throw err;
    ctx.stderr.write(`pincer: ${name}: ${err.message}\n`);
    return undefined;
  }
  let shown = '';
  const show = (d: KbDocument) => {
    if (tty) {
      const line = progressLine(name, d);
      if (line !== shown) ctx.stdout.write(`\r\x1b[2K${line}`);
      shown = line;
    } else {
      const line = stateLine(name, d);
      if (line.replace(/ \d+%$/, '') !== shown.replace(/ \d+%$/, '')) ctx.stdout.write(`${line}\n`);
      shown = line;
    }
  };
  show(doc);
  const deadline = Date.now() + timeoutMs;
  while (!SETTLED.has(doc.status)) {
    if (Date.now() > deadline) {
      if (tty) ctx.stdout.write('\n');
      ctx.stderr.write(
        `pincer: ${name}: still ${doc.status} after ${timeoutMs / 1000} s; follow it with pincer kb list (document ${doc.id})\n`,
      );
      return doc;
    }
    await sleep(250);
    doc = await api.request<KbDocument>('GET', `/api/v1/knowledge/documents/${doc.id}`);
    show(doc);
  }
  if (tty) ctx.stdout.write('\n');
  if (doc.status === 'failed')
    ctx.stderr.write(`pincer: ${name}: ingestion failed: ${doc.error ?? 'unknown error'}\n`);
  return doc;
}

export const kbCommands: Command[] = [
  {
    path: ['kb', 'ingest'],
    args: '<files...> [--timeout SECONDS]',
    summary: 'Upload files to the knowledge base and follow each to ready',
    details: `Supported: .md, .txt, .html, .pdf, .docx. Files are uploaded one after the other; each is
followed until it is ready or failed (--timeout, default 600 s per file). On a terminal a progress
line is redrawn; otherwise one line is printed per state change. Exit 1 if any file was refused or
failed (the others are still ingested).`,
    options: { timeout: { type: 'string' } },
    async run(ctx) {
      if (!ctx.positionals.length) return ctx.usage('give at least one file');
      const timeoutMs = intOption(ctx, 'timeout', 600) * 1000;
      const api = connect(ctx);
      let failed = 0;
      for (const file of ctx.positionals) {
        const doc = await ingestOne(ctx, api, file, timeoutMs);
        if (doc?.status !== 'ready') failed++;
      }
      const total = ctx.positionals.length;
      if (total > 1) ctx.stdout.write(`${total - failed} of ${total} files ready\n`);
      return failed ? 1 : 0;
    },
  },
  {
    path: ['kb', 'list'],
    args: '[--status STATUS] [--search TEXT] [--limit N] [--json]',
    summary: 'List knowledge-base documents, newest first',
    details:
      '--status: queued, extracting, embedding, ready or failed. --search: part of a title or file name.',
    options: {
      status: { type: 'string' },
      search: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
    },
    async run(ctx) {
      if (ctx.positionals.length) return ctx.usage(`unexpected argument "${ctx.positionals[0]}"`);
      const limit = intOption(ctx, 'limit', 100);
      const { data } = await connect(ctx).request<{ data: KbDocument[] }>(
        'GET',
        '/api/v1/knowledge/documents',
        {
          query: {
            status: ctx.values.status as string | undefined,
            q: ctx.values.search as string | undefined,
            limit,
          },
        },
      );
      writeList(ctx, data, 'no documents', ['ID', 'STATUS', 'CHUNKS', 'BYTES', 'UPDATED', 'TITLE'], (d) => [
        String(d.id),
        SETTLED.has(d.status) ? d.status : `${d.status} ${d.progress.percent}%`,
        String(d.chunk_count),
        String(d.bytes),
        d.updated_at,
        d.title,
      ]);
    },
  },
];
