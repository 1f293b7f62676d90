// The long connection ("persistent connection" event mode): endpoint discovery over HTTP, then a
// WebSocket speaking pbbp2 frames. Clients ping; we pong with the ClientConfig. Events go out as data
// frames (fragmented above a size), and the client acks each with the frame echoed back and {"code":200}.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { ApiError, ERR } from './errors.ts';
import { decodeFrame, encodeFrame, header, METHOD_CONTROL, METHOD_DATA } from './frame.ts';
import type { Frame } from './frame.ts';
import { hex } from './ids.ts';
import type { EventConnection } from './pusher.ts';
import type { WsClientConfig } from './types.ts';

const MAX_CONNECTIONS = 50;
// A client is sent events once it has pinged (the SDK pings as soon as the socket opens, before it
// listens for frames a moment later), or after this long for clients that do not ping at once.
const READY_WITHOUT_PING_MS = 500;
const TICKET_TTL_MS = 5 * 60 * 1000;

interface Ticket {
  deviceId: string;
  serviceId: number;
  expiresAt: number;
}

interface PendingAck {
  resolve: (ack: { code: number; error?: string }) => void;
  timer: NodeJS.Timeout;
}

export class Connection implements EventConnection {
  readonly id: string;
  readonly deviceId: string;
  readonly serviceId: number;
  private readonly socket: WebSocket;
  private readonly clientConfig: () => WsClientConfig;
  private readonly fragmentBytes: number;
  private readonly pending = new Map<string, PendingAck>();
  private seq = 0;
  private readonly onReady: () => void;
  private readyTimer: NodeJS.Timeout | undefined;
  ready = false;
  pings = 0;

  constructor(
    socket: WebSocket,
    ticket: Ticket,
    clientConfig: () => WsClientConfig,
    fragmentBytes: number,
    onReady: (conn: Connection) => void,
  ) {
    this.id = hex(8);
    this.socket = socket;
    this.deviceId = ticket.deviceId;
    this.serviceId = ticket.serviceId;
    this.clientConfig = clientConfig;
    this.fragmentBytes = fragmentBytes;
    this.onReady = () => onReady(this);
    this.readyTimer = setTimeout(() => this.markReady(), READY_WITHOUT_PING_MS);
    socket.on('message', (data: Buffer) => this.onFrame(data));
    socket.on('close', () => {
      clearTimeout(this.readyTimer);
      this.failAll('connection closed before the ack');
    });
  }

  private markReady(): void {
    clearTimeout(this.readyTimer);
    if (this.ready || !this.open) return;
    this.ready = true;
    this.onReady();
  }

  get open(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  private send(frame: Frame): void {
    if (this.open) this.socket.send(encodeFrame(frame));
  }

  private onFrame(data: Buffer): void {
    let frame: Frame;
    try {
      frame = decodeFrame(data);
    } catch {
      return; // the platform ignores frames it cannot decode
    }
    const type = header(frame, 'type');
    if (frame.method === METHOD_CONTROL && type === 'ping') {
      this.pings++;
      this.send({
        SeqID: 0,
        LogID: 0,
        service: this.serviceId,
        method: METHOD_CONTROL,
        headers: [{ key: 'type', value: 'pong' }],
        payload: Buffer.from(JSON.stringify(this.clientConfig())),
      });
      this.markReady();
      return;
    }
    if (frame.method === METHOD_DATA) {
      const messageId = header(frame, 'message_id');
      const pending = messageId ? this.pending.get(messageId) : undefined;
      if (!messageId || !pending) return; // a late or unknown ack
      this.pending.delete(messageId);
      clearTimeout(pending.timer);
      let code = 0;
      let error: string | undefined;
      try {
        const body = JSON.parse(Buffer.from(frame.payload ?? []).toString('utf8')) as { code?: unknown };
        code = typeof body.code === 'number' ? body.code : 0;
        if (code !== 200) error = `ack code ${code}`;
      } catch {
        error = 'ack payload is not JSON';
      }
      pending.resolve(error ? { code, error } : { code });
    }
  }

  deliver(payload: Buffer, ackTimeoutMs: number): Promise<{ code: number; error?: string }> {
    if (!this.open) return Promise.resolve({ code: 0, error: 'connection closed' });
    const messageId = hex(16);
    const traceId = hex(16);
    const size = Math.max(1, this.fragmentBytes);
    const sum = Math.max(1, Math.ceil(payload.length / size));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(messageId);
        resolve({ code: 0, error: `no ack within ${ackTimeoutMs} ms` });
      }, ackTimeoutMs);
      this.pending.set(messageId, { resolve, timer });
      const seqId = ++this.seq;
      for (let i = 0; i < sum; i++) {
        this.send({
          SeqID: seqId,
          LogID: seqId,
          service: this.serviceId,
          method: METHOD_DATA,
          headers: [
            { key: 'type', value: 'event' },
            { key: 'message_id', value: messageId },
            { key: 'sum', value: String(sum) },
            { key: 'seq', value: String(i) },
            { key: 'trace_id', value: traceId },
          ],
          payload: payload.subarray(i * size, (i + 1) * size),
        });
      }
    });
  }

  private failAll(error: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ code: 0, error });
      this.pending.delete(id);
    }
  }

  terminate(): void {
    this.socket.terminate();
  }
}

export interface LongConnectionOptions {
  appId: string;
  appSecret: string;
  clientConfig: WsClientConfig;
  fragmentBytes: number;
  /** The public base URL (ws:// is derived from it). */
  baseUrl: () => string;
  onOpen: (conn: Connection) => void;
  onChange: () => void;
}

export class LongConnectionServer {
  private readonly opts: LongConnectionOptions;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly tickets = new Map<string, Ticket>();
  private readonly conns = new Set<Connection>();

  constructor(opts: LongConnectionOptions) {
    this.opts = opts;
    this.wss.on('headers', (headers) => headers.push('handshake-status: 200', 'handshake-msg: success'));
  }

  connections(): Connection[] {
    return [...this.conns].filter((c) => c.open && c.ready);
  }

  /** POST /callback/ws/endpoint {AppID, AppSecret}. */
  endpoint(body: Record<string, unknown>): Record<string, unknown> {
    if (body.AppID !== this.opts.appId || body.AppSecret !== this.opts.appSecret)
      throw new ApiError(ERR.wsBadCredentials);
    if ([...this.conns].filter((c) => c.open).length >= MAX_CONNECTIONS)
      throw new ApiError(ERR.wsTooManyConnections);
    const ticket = hex(16);
    const deviceId = String(Date.now()) + String(Math.floor(Math.random() * 1e6));
    const serviceId = 30000 + Math.floor(Math.random() * 1000);
    this.tickets.set(ticket, { deviceId, serviceId, expiresAt: Date.now() + TICKET_TTL_MS });
    const base = this.opts.baseUrl().replace(/^http/, 'ws');
    // The SDK reads device_id and service_id with qs.parse on the whole URL, so neither may come first.
    const url = `${base}/ws/v2?fpid=493&aid=552564&device_id=${deviceId}&access_key=${hex(16)}&service_id=${serviceId}&ticket=${ticket}`;
    return { URL: url, ClientConfig: this.opts.clientConfig };
  }

  /** HTTP upgrade on /ws/v2: a ticket from the endpoint, used once. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const ticketId = url.searchParams.get('ticket') ?? '';
    const ticket = this.tickets.get(ticketId);
    if (url.pathname !== '/ws/v2' || !ticket || ticket.expiresAt < Date.now()) {
      socket.end(
        'HTTP/1.1 403 Forbidden\r\nhandshake-status: 403\r\nhandshake-msg: invalid ticket\r\n' +
          'handshake-autherrcode: 514\r\nconnection: close\r\ncontent-length: 0\r\n\r\n',
      );
      return;
    }
    this.tickets.delete(ticketId);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new Connection(
        ws,
        ticket,
        () => this.opts.clientConfig,
        this.opts.fragmentBytes,
        (c) => {
          this.opts.onOpen(c);
          this.opts.onChange();
        },
      );
      this.conns.add(conn);
      ws.on('close', () => {
        this.conns.delete(conn);
        this.opts.onChange();
      });
    });
  }

  drop(): void {
    for (const c of this.conns) c.terminate();
  }

  close(): void {
    this.drop();
    this.wss.close();
  }
}
