import { once } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Api } from 'node-telegram-bot-api';
import type { TransportOptions } from 'node-telegram-bot-api';
import type { TelegramEmulator, TelegramEmulatorOptions, UserInput } from '../src/index.ts';
import { startTelegramEmulator } from '../src/index.ts';

export const ann: UserInput = {
  id: 4201,
  first_name: 'Ann',
  last_name: 'Lee',
  username: 'ann_lee',
  language_code: 'en',
};
export const bob: UserInput = { id: 4202, first_name: 'Bob', username: 'bob' };

/** Runs fn against a fresh emulator on a free port and always closes it. */
export async function withEmulator(
  opts: TelegramEmulatorOptions,
  fn: (emu: TelegramEmulator) => Promise<void>,
): Promise<void> {
  const emu = await startTelegramEmulator({ flood: false, ...opts });
  try {
    await fn(emu);
  } finally {
    await emu.close();
  }
}

/** The real SDK pointed at the emulator; no retries unless asked, so errors surface as they are. */
export function sdk(emu: TelegramEmulator, opts: TransportOptions = {}): Api {
  return new Api(emu.token, { apiRoot: emu.url, maxRetries: 0, ...opts });
}

/** Raw call with fetch: JSON body unless a body is given. */
export async function raw(
  emu: TelegramEmulator,
  method: string,
  init: {
    body?: RequestInit['body'];
    json?: unknown;
    headers?: Record<string, string>;
    get?: string;
    token?: string;
  } = {},
): Promise<{ status: number; body: any }> {
  const token = init.token ?? emu.token;
  const url = `${emu.url}/bot${token}/${method}${init.get !== undefined ? `?${init.get}` : ''}`;
  const request: RequestInit =
    init.get !== undefined
      ? { method: 'GET' }
      : init.json !== undefined
        ? { method: 'POST', body: JSON.stringify(init.json), headers: { 'content-type': 'application/json' } }
        : { method: 'POST', body: init.body ?? '', headers: init.headers ?? {} };
  const res = await fetch(url, request);
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) };
}

export interface Received {
  headers: IncomingMessage['headers'];
  body: string;
  json: any;
  at: number;
}

/** A webhook receiver whose answer each test scripts. */
export class Receiver {
  readonly received: Received[] = [];
  respond: (r: Received, res: ServerResponse) => void | Promise<void> = (_r, res) => {
    res.writeHead(200).end();
  };
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const r: Received = { headers: req.headers, body, json: JSON.parse(body), at: Date.now() };
        this.received.push(r);
        void this.respond(r, res);
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/webhook/telegram`;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}
