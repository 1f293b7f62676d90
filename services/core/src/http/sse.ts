import type { Response } from 'express';

/**
 * A server-sent event stream over a response. Headers go out with the first event, so a request
 * that fails before producing anything still gets a plain JSON error with its status; a model that
 * is slow to start gets comment lines that keep proxies from timing the stream out.
 */
export class EventStream {
  readonly #res: Response;
  #started = false;
  #lastWrite = Date.now();
  readonly #keepAlive: NodeJS.Timeout;

  constructor(res: Response, keepAliveMs = 15_000) {
    this.#res = res;
    this.#keepAlive = setInterval(() => {
      if (Date.now() - this.#lastWrite >= keepAliveMs) this.#write(': keep-alive\n\n');
    }, keepAliveMs);
    this.#keepAlive.unref();
  }

  get started(): boolean {
    return this.#started;
  }

  send(event: string, data: unknown): void {
    this.#write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    clearInterval(this.#keepAlive);
    if (this.#started && !this.#res.writableEnded) this.#res.end();
  }

  #write(text: string): void {
    const res = this.#res;
    if (res.destroyed || res.writableEnded) return;
    if (!this.#started) {
      this.#started = true;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
      });
    }
    this.#lastWrite = Date.now();
    res.write(text);
  }
}
