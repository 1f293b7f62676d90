import { Worker } from 'node:worker_threads';
import {
  ExtractionError,
  type ExtractionErrorCode,
  type PreparedDocument,
  type PrepareInput,
} from '@pincer/knowledge';

type Pending = { resolve(d: PreparedDocument): void; reject(e: Error): void };

/**
 * One worker thread that prepares documents (extract, chunk, segment) off the main event loop. It is
 * started on first use and restarted if it dies; documents are prepared one at a time.
 */
export class PreparePool {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;

  /** Prepares one document; a document that takes longer than `timeoutMs` stops the thread and fails. */
  prepare(input: PrepareInput, timeoutMs = 300_000): Promise<PreparedDocument> {
    if (this.closed) return Promise.reject(new Error('the document preparer is closed'));
    const w = this.start();
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      // a parser stuck on a hostile file must not hold the ingestion (and its job lock) for ever
      const timer = setTimeout(() => {
        if (!this.pending.has(id)) return;
        this.pending.delete(id);
        reject(new Error(`reading the document took longer than ${Math.round(timeoutMs / 1000)} s`));
        if (this.worker === w) this.worker = undefined;
        void w.terminate();
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, {
        resolve: (d) => (clearTimeout(timer), resolve(d)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      w.postMessage({ id, input });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // the thread's file sits next to the jobs: .ts when running from source, .js when built
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    const w = new Worker(new URL(`../jobs/prepare-thread.${ext}`, import.meta.url));
    w.unref();
    w.on(
      'message',
      (msg: {
        id: number;
        result?: PreparedDocument;
        error?: { name: string; code?: string; message: string };
      }) => {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.result) p.resolve(msg.result);
        else if (msg.error?.name === 'ExtractionError')
          p.reject(new ExtractionError(msg.error.code as ExtractionErrorCode, msg.error.message));
        else p.reject(new Error(msg.error?.message ?? 'document preparation failed'));
      },
    );
    const fail = (err: Error) => {
      if (this.worker === w) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`the document preparer stopped (exit code ${code})`)));
    this.worker = w;
    return w;
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
