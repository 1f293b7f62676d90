// The HTTP front of the emulator: /bot<token>/<method> like api.telegram.org, /file/bot<token>/<path>
// for downloads, /_emulator/ for control. Records every call and applies injected faults.

import { randomInt } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { handleControl } from './control.ts';
import { Engine } from './engine.ts';
import { ApiError, notFound, tooManyRequests, unauthorized } from './errors.ts';
import { Faults } from './faults.ts';
import type { CallContext } from './methods.ts';
import { Described, findMethod } from './methods.ts';
import type { Params } from './params.ts';
import { normalizeParams, recordableParams } from './params.ts';
import type { CallRecord, EmulatorState, Fault, TelegramEmulator, TelegramEmulatorOptions } from './types.ts';
import { readParams, sendJson } from './wire.ts';
import { randomToken } from './world.ts';

const DEFAULT_RETRY_DELAYS_MS = [200, 500, 1000, 2000, 5000];
// Methods the server refuses to run when they come back in a webhook answer.
const NOT_IN_WEBHOOK_REPLY = /^(get|setwebhook$|deletewebhook$|close$|logout$)/i;

function botIdentity(opts: TelegramEmulatorOptions): { token: string; id: number } {
  const prefix = opts.token ? Number(/^(\d+):/.exec(opts.token)?.[1]) : undefined;
  const id =
    opts.bot?.id ??
    (prefix && Number.isSafeInteger(prefix) ? prefix : randomInt(6_000_000_000, 8_000_000_000));
  return { id, token: opts.token ?? `${id}:AA${randomToken(33)}` };
}

function describeFn(fn: unknown): string {
  const src = String(fn).replace(/\s+/g, ' ');
  return src.length > 160 ? `${src.slice(0, 157)}...` : src;
}

export async function startTelegramEmulator(opts: TelegramEmulatorOptions = {}): Promise<TelegramEmulator> {
  const host = opts.host ?? '127.0.0.1';
  const { token, id } = botIdentity(opts);
  const bot = {
    id,
    username: opts.bot?.username ?? 'pincer_test_bot',
    first_name: opts.bot?.first_name ?? 'Pincer Test Bot',
  };
  const maxCalls = opts.maxCallRecords ?? 100_000;
  const calls: CallRecord[] = [];
  let seq = 0;
  const hanging = new Set<Socket>();
  const faults = new Faults();

  const engine: Engine = new Engine({
    bot: { id: bot.id, is_bot: true, first_name: bot.first_name, username: bot.username },
    privacyMode: opts.privacyMode ?? true,
    flood: opts.flood ?? {},
    webhookRetryDelaysMs: opts.webhookRetryDelaysMs?.length
      ? opts.webhookRetryDelaysMs
      : DEFAULT_RETRY_DELAYS_MS,
    webhookTimeoutMs: opts.webhookTimeoutMs ?? 60_000,
    onWebhookReply: (call) => void runWebhookReply(call),
  });

  function record(rec: Omit<CallRecord, 'seq'>): void {
    calls.push({ seq: seq++, ...rec });
    if (calls.length > maxCalls) calls.splice(0, calls.length - maxCalls);
    engine.changed();
  }

  async function execute(
    method: { name: string; fn: (e: Engine, p: Params, ctx: CallContext) => unknown },
    params: Params,
    ctx: CallContext,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    try {
      const result = await method.fn(engine, params, ctx);
      if (result instanceof Described)
        return { status: 200, body: { ok: true, result: result.result, description: result.description } };
      return { status: 200, body: { ok: true, result } };
    } catch (err) {
      if (err instanceof ApiError) return { status: err.code, body: err.body() };
      process.stderr.write(
        `telegram-emulator: ${method.name} failed: ${err instanceof Error ? err.stack : String(err)}\n`,
      );
      return { status: 500, body: { ok: false, error_code: 500, description: 'Internal Server Error' } };
    }
  }

  const outcome = (body: Record<string, unknown>): Pick<CallRecord, 'ok' | 'error_code' | 'description'> =>
    body['ok'] === true
      ? { ok: true }
      : { ok: false, error_code: body['error_code'] as number, description: body['description'] as string };

  async function runWebhookReply(call: Record<string, unknown>): Promise<void> {
    const { method: name, ...rest } = call;
    const method = findMethod(String(name));
    if (!method || NOT_IN_WEBHOOK_REPLY.test(method.name)) return;
    const params = normalizeParams(rest);
    const at = Date.now();
    const { body } = await execute(method, params, { onAbandon: () => undefined });
    record({
      method: method.name,
      params: recordableParams(params),
      at,
      ...outcome(body),
      via: 'webhook_reply',
    });
  }

  async function api(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    callToken: string,
    name: string,
  ): Promise<void> {
    const at = Date.now();
    let params: Params;
    try {
      params = normalizeParams(await readParams(req, url));
    } catch (err) {
      if (!(err instanceof ApiError)) return; // the client went away mid-body
      record({ method: name, params: {}, at, ...outcome(err.body()), via: 'http' });
      res.setHeader('Connection', 'close');
      sendJson(res, err.code, err.body());
      return;
    }
    const base = { params: recordableParams(params), at, via: 'http' as const };
    const refuse = (method: string, err: ApiError): void => {
      record({ method, ...base, ...outcome(err.body()) });
      sendJson(res, err.code, err.body());
    };
    if (callToken !== token) return refuse(name, unauthorized());
    const method = findMethod(name);
    if (!method) return refuse(name, notFound());

    const fault = faults.take(method.name, params);
    if (fault?.kind === 'drop_connection') {
      record({
        method: method.name,
        ...base,
        ok: false,
        description: 'connection dropped (injected fault)',
        fault: fault.kind,
      });
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'server_error') {
      const status = fault.status ?? 500;
      const body = {
        ok: false,
        error_code: status,
        description: status === 502 ? 'Bad Gateway' : 'Internal Server Error',
      };
      record({ method: method.name, ...base, ...outcome(body), fault: fault.kind });
      sendJson(res, status, body);
      return;
    }
    if (fault?.kind === 'flood') {
      const err = tooManyRequests(fault.retryAfter ?? 5);
      record({ method: method.name, ...base, ...outcome(err.body()), fault: fault.kind });
      sendJson(res, err.code, err.body());
      return;
    }

    const ctx: CallContext = {
      onAbandon: (stop) =>
        res.on('close', () => {
          if (!res.writableEnded) stop();
        }),
    };
    const { status, body } = await execute(method, params, ctx);
    if (fault?.kind === 'timeout_after_commit') {
      // The work is done; the answer never comes. The socket stays open until the client gives up.
      const socket = req.socket;
      hanging.add(socket);
      socket.once('close', () => hanging.delete(socket));
      record({ method: method.name, ...base, ...outcome(body), fault: fault.kind });
      return;
    }
    if (res.destroyed) {
      record({
        method: method.name,
        ...base,
        ok: false,
        description: 'client closed the connection before the answer',
      });
      return;
    }
    record({ method: method.name, ...base, ...outcome(body) });
    sendJson(res, status, body);
  }

  function download(res: ServerResponse, callToken: string, path: string): void {
    const file =
      callToken === token ? [...engine.world.files.values()].find((f) => f.file_path === path) : undefined;
    if (!file) {
      sendJson(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      return;
    }
    const data = file.data ?? Buffer.alloc(Math.min(file.file_size, 20 * 1024 * 1024), 0x2a);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length });
    res.end(data);
  }

  const state = (): EmulatorState => {
    const cfg = engine.pusher.config;
    const out: EmulatorState = {
      url: emulator.url,
      bot: { ...bot },
      pending_updates: engine.queue.pending.length,
      next_update_id: engine.queue.nextUpdateId,
      long_poll_waiting: engine.queue.isPollWaiting,
      chats: engine.world.chats.size,
      calls: seq,
      faults: faults.list(),
    };
    if (cfg) {
      out.webhook = {
        url: cfg.url,
        max_connections: cfg.max_connections,
        in_flight: engine.pusher.inFlightCount,
        delivered: engine.pusher.delivered,
      };
      if (cfg.secret_token) out.webhook.secret_token = cfg.secret_token;
      if (cfg.allowed_updates) out.webhook.allowed_updates = cfg.allowed_updates;
      if (engine.pusher.lastErrorDate !== undefined) {
        out.webhook.last_error_date = engine.pusher.lastErrorDate;
        out.webhook.last_error_message = engine.pusher.lastErrorMessage as string;
      }
    }
    return out;
  };

  const server = createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://emulator');
    } catch {
      sendJson(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      return;
    }
    const path = url.pathname;
    if (path === '/_emulator' || path.startsWith('/_emulator/')) {
      void handleControl(req, res, url, { engine, faults, calls: () => calls, state });
      return;
    }
    const file = /^\/file\/bot([^/]+)\/(.+)$/.exec(path);
    if (file)
      return download(res, decodeURIComponent(file[1] as string), decodeURIComponent(file[2] as string));
    const call = /^\/bot([^/]*)\/([^/]*)$/.exec(path);
    if (!call) {
      req.resume();
      sendJson(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      return;
    }
    void api(req, res, url, decodeURIComponent(call[1] as string), decodeURIComponent(call[2] as string));
  });
  // Long polls and hanging faults outlive Node's default request timeout.
  server.requestTimeout = 0;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost =
    host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  let closed = false;

  const emulator: TelegramEmulator = {
    url: `http://${shownHost}:${port}`,
    token,
    bot,
    calls,
    userSend: (input) => engine.userSend(input),
    userEdit: (chatId, messageId, text) => engine.userEdit(chatId, messageId, text),
    userPress: (chatId, messageId, data, from) => engine.userPress(chatId, messageId, data, from),
    addBotToGroup: (chat, by) => engine.addBotToGroup(chat, by),
    blockBot: (userId) => engine.blockBot(userId),
    migrateGroup: (chatId) => engine.migrateGroup(chatId),
    chat: (chatId) => engine.world.view(chatId),
    inject: (fault: Fault) => faults.add(fault),
    clearFaults: () => faults.clear(),
    pendingUpdates: () => engine.queue.pending.length,
    webhook: () => {
      const cfg = engine.pusher.config;
      if (!cfg) return undefined;
      return cfg.secret_token ? { url: cfg.url, secret_token: cfg.secret_token } : { url: cfg.url };
    },
    state,
    waitFor<T>(fn: () => T | undefined | null | false, timeoutMs = 10_000, what?: string): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        let done = false;
        const finish = (): void => {
          done = true;
          clearInterval(interval);
          clearTimeout(timer);
          off();
        };
        const check = (): void => {
          if (done) return;
          let value: T | undefined | null | false;
          try {
            value = fn();
          } catch (err) {
            finish();
            reject(err instanceof Error ? err : new Error(String(err)));
            return;
          }
          if (value) {
            finish();
            resolve(value);
          }
        };
        const off = engine.onChange(check);
        const interval = setInterval(check, 20);
        const timer = setTimeout(() => {
          if (done) return;
          finish();
          reject(
            new Error(
              `telegram emulator: gave up after ${timeoutMs} ms waiting for ${what ?? describeFn(fn)}`,
            ),
          );
        }, timeoutMs);
        check();
      });
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      engine.close();
      faults.clear();
      for (const s of hanging) s.destroy();
      hanging.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return emulator;
}
