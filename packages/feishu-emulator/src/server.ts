// The emulator's HTTP face: the open API under /open-apis (auth, limits and injected faults in front of
// every endpoint, every call recorded), the long-connection endpoint and WebSocket, and /_emulator/.
import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TokenStore } from './auth.ts';
import { handleControl } from './control.ts';
import type { ControlledEmulator } from './control.ts';
import { ApiError, ERR } from './errors.ts';
import { FaultBook } from './faults.ts';
import { readBody, sendJson } from './http.ts';
import { hex, newAppId, newLogId, newOpenId, newTenantKey } from './ids.ts';
import { makeLimits } from './limits.ts';
import { LongConnectionServer } from './longconn.ts';
import { Platform } from './platform.ts';
import { EventPusher } from './pusher.ts';
import type {
  CallRecord,
  DeliveryRecord,
  EventEnvelope,
  EventTarget,
  FeishuEmulator,
  FeishuEmulatorOptions,
  UserMessageInput,
  WsClientConfig,
} from './types.ts';
import { waitForCondition } from './wait.ts';
import { buildWebhookRequest } from './webhook.ts';

type Json = Record<string, unknown>;

interface RequestContext {
  params: string[];
  query: Record<string, string>;
  body: Json;
}

/** What a handler returns: the JSON body of a 200 answer. */
type Handler = (ctx: RequestContext) => Json;

interface Route {
  method: string;
  pattern: RegExp;
  api: string;
  /** Business APIs need a tenant token and pass through limits and faults. */
  business: boolean;
  handler: Handler;
}

const ok = (data: unknown): Json => ({ code: 0, msg: 'success', data });

export async function startFeishuEmulator(options: FeishuEmulatorOptions = {}): Promise<FeishuEmulator> {
  const appId = options.appId ?? newAppId();
  const appSecret = options.appSecret ?? hex(16);
  const verificationToken = options.verificationToken ?? hex(16);
  const encryptKey = options.encryptKey;
  const tenantKey = newTenantKey();
  const bot = { open_id: options.bot?.open_id ?? newOpenId(), app_name: options.bot?.app_name ?? 'Pincer' };
  const limits = makeLimits(options.limits);
  const ackTimeoutMs = options.ackTimeoutMs ?? 3000;
  const clientConfig: WsClientConfig = {
    PingInterval: 120,
    ReconnectCount: -1,
    ReconnectInterval: 1,
    ReconnectNonce: 0.2,
    ...options.wsClientConfig,
  };

  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  const changed = () => changes.emit('change');
  const calls: CallRecord[] = [];
  const deliveries: DeliveryRecord[] = [];
  const faults = new FaultBook();
  let baseUrl = '';

  const tokens = new TokenStore(appId, appSecret, options.tokenTtlSec ?? 7200);
  const platform = new Platform({
    appId,
    tenantKey,
    verificationToken,
    botOpenId: bot.open_id,
    limits,
    streamingTimeoutMs: options.streamingTimeoutMs ?? 10 * 60 * 1000,
    groupMessages: options.groupMessages ?? 'all',
  });
  const longConn = new LongConnectionServer({
    appId,
    appSecret,
    clientConfig,
    fragmentBytes: options.wsFragmentBytes ?? 4096,
    baseUrl: () => baseUrl,
    onOpen: () => pusher.releaseHeld(),
    onChange: changed,
  });
  const pusher = new EventPusher({
    ackTimeoutMs,
    redeliveryDelaysMs: options.redeliveryDelaysMs ?? [300, 1000, 2000, 4000],
    keys: { encryptKey, verificationToken },
    records: deliveries,
    connections: () => longConn.connections(),
    onChange: changed,
  });

  const cardSlot = (cardId: string): void => {
    if (limits && !limits.card.take(cardId).ok)
      throw new ApiError(ERR.rateLimited, undefined, undefined, {
        'x-ogw-ratelimit-limit': String(limits.card.perSecond),
        'x-ogw-ratelimit-reset': '1',
      });
  };

  const routes: Route[] = [];
  const route = (method: string, path: string, api: string, business: boolean, handler: Handler) => {
    const pattern = new RegExp(`^${path.replace(/:[a-z_]+/g, '([^/]+)')}/?$`);
    routes.push({ method, pattern, api, business, handler });
  };
  const param = (ctx: RequestContext, i: number) => decodeURIComponent(ctx.params[i] as string);

  route('POST', '/open-apis/auth/v3/tenant_access_token/internal', 'token', false, (ctx) => ({
    code: 0,
    msg: 'ok',
    ...tokens.issue(ctx.body),
  }));
  route('POST', '/callback/ws/endpoint', 'ws.endpoint', false, (ctx) => ({
    code: 0,
    msg: 'ok',
    data: longConn.endpoint(ctx.body),
  }));
  route('GET', '/open-apis/bot/v3/info', 'bot.info', true, () => ({
    code: 0,
    msg: 'ok',
    bot: {
      activate_status: 2,
      app_name: bot.app_name,
      avatar_url: '',
      ip_white_list: [],
      open_id: bot.open_id,
    },
  }));
  route('POST', '/open-apis/im/v1/messages', 'message.create', true, (ctx) =>
    ok(platform.createMessage(ctx.query, ctx.body)),
  );
  route('GET', '/open-apis/im/v1/messages/:id', 'message.get', true, (ctx) =>
    ok(platform.getMessage(param(ctx, 0))),
  );
  route('POST', '/open-apis/im/v1/messages/:id/reply', 'message.reply', true, (ctx) =>
    ok(platform.replyMessage(param(ctx, 0), ctx.body)),
  );
  route('PATCH', '/open-apis/im/v1/messages/:id', 'message.patch', true, (ctx) => {
    platform.patchMessage(param(ctx, 0), ctx.body);
    return ok({});
  });
  route('PUT', '/open-apis/im/v1/messages/:id', 'message.update', true, (ctx) =>
    ok(platform.updateMessage(param(ctx, 0), ctx.body)),
  );
  route('DELETE', '/open-apis/im/v1/messages/:id', 'message.delete', true, (ctx) => {
    platform.recallMessage(param(ctx, 0));
    return ok({});
  });
  route('POST', '/open-apis/im/v1/messages/:id/reactions', 'reaction.create', true, (ctx) =>
    ok(platform.createReaction(param(ctx, 0), ctx.body)),
  );
  route('DELETE', '/open-apis/im/v1/messages/:id/reactions/:rid', 'reaction.delete', true, (ctx) =>
    ok(platform.deleteReaction(param(ctx, 0), param(ctx, 1))),
  );
  route('POST', '/open-apis/cardkit/v1/cards', 'card.create', true, (ctx) =>
    ok({ card_id: platform.cards.create(ctx.body) }),
  );
  route(
    'PUT',
    '/open-apis/cardkit/v1/cards/:cid/elements/:eid/content',
    'card.element.content',
    true,
    (ctx) => {
      cardSlot(param(ctx, 0));
      platform.cards.content(param(ctx, 0), param(ctx, 1), ctx.body);
      return ok({});
    },
  );
  route('PATCH', '/open-apis/cardkit/v1/cards/:cid/settings', 'card.settings', true, (ctx) => {
    cardSlot(param(ctx, 0));
    platform.cards.settings(param(ctx, 0), ctx.body);
    return ok({});
  });
  route('PUT', '/open-apis/cardkit/v1/cards/:cid', 'card.update', true, (ctx) => {
    cardSlot(param(ctx, 0));
    platform.cards.update(param(ctx, 0), ctx.body);
    return ok({});
  });

  const sendError = (res: ServerResponse, e: ApiError, logId: string, api: string): void => {
    const error: Json = {
      log_id: logId,
      troubleshooter: `https://open.feishu.cn/search?from=openapi&log_id=${logId}&code=${e.code}`,
    };
    if (e.extra) Object.assign(error, e.extra);
    // The token and long-connection endpoints answer HTTP 200 with data:{} and a non-zero code.
    const body: Json =
      api === 'token' || api === 'ws.endpoint'
        ? { code: e.code, data: {}, msg: e.message }
        : { code: e.code, msg: e.message, error };
    sendJson(res, e.status, body, { 'x-tt-logid': logId, ...e.headers });
  };

  const handleApi = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const started = Date.now();
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const query = Object.fromEntries(url.searchParams);
    const raw = await readBody(req);
    let body: unknown = {};
    let status = 200;
    let code = 0;
    let api = 'unknown';
    let data: unknown;
    const logId = newLogId();
    try {
      let params: string[] | undefined;
      const found = routes.find((r) => {
        if (r.method !== method) return false;
        const m = r.pattern.exec(path);
        if (m) params = m.slice(1);
        return m !== null;
      });
      if (!found || !params) {
        // The gateway answers unknown paths and wrong methods in plain text, not with a JSON code.
        status = 404;
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('404 page not found');
        return;
      }
      api = found.api;
      if (raw.trim() !== '') {
        try {
          body = JSON.parse(raw);
        } catch {
          throw new ApiError(ERR.badRequest, 'request body is not valid JSON');
        }
      }
      const json: Json =
        typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Json) : {};
      if (found.business) tokens.check(req.headers.authorization);
      const injected = faults.take(api, found.business, limits?.app.perSecond ?? 50);
      if (injected) throw injected;
      if (found.business && limits) {
        const slot = limits.app.take(api);
        if (!slot.ok)
          throw new ApiError(ERR.rateLimited, undefined, undefined, {
            'x-ogw-ratelimit-limit': String(limits.app.perSecond),
            'x-ogw-ratelimit-reset': String(Math.max(1, Math.ceil(slot.retryInMs / 1000))),
          });
      }
      const result = found.handler({ params, query, body: json });
      data = result.data;
      sendJson(res, 200, result, { 'x-tt-logid': logId });
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(ERR.internal, (e as Error).message);
      status = err.status;
      code = err.code;
      sendError(res, err, logId, api);
    } finally {
      calls.push({
        method,
        path,
        query,
        api,
        body,
        data,
        at: started,
        status,
        code,
        ms: Date.now() - started,
      });
      changed();
    }
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const work = url.pathname.startsWith('/_emulator/')
      ? handleControl(emulator, req, res, url)
      : handleApi(req, res, url);
    work.catch((e: Error) => {
      if (!res.headersSent) sendJson(res, 500, { code: ERR.internal.code, msg: e.message });
      else res.end();
    });
  });
  server.on('upgrade', (req, socket, head) => longConn.upgrade(req, socket, head));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  baseUrl = `http://${host}:${address.port}`;

  const push = (envelope: EventEnvelope): void => {
    pusher.push(envelope);
    changed();
  };

  const emulator: ControlledEmulator = {
    url: baseUrl,
    appId,
    appSecret,
    verificationToken,
    ...(encryptKey !== undefined ? { encryptKey } : {}),
    tenantKey,
    bot,
    calls,
    deliveries,
    setEventTarget(target: EventTarget) {
      if ('webhook' in target) new URL(target.webhook);
      pusher.target = target;
      pusher.releaseHeld();
      changed();
    },
    userSend(input: UserMessageInput) {
      const sent = platform.userSend(input);
      if (sent.push) push(sent.envelope);
      else changed();
      return { event_id: sent.envelope.header.event_id, message_id: sent.message_id, chat_id: sent.chat_id };
    },
    botAddedToGroup(chat, operator) {
      const envelope = platform.botAddedToGroup(chat, operator);
      push(envelope);
      return { event_id: envelope.header.event_id };
    },
    duplicate(eventId, opts) {
      const envelope = platform.duplicate(eventId, opts?.newEventId === true);
      push(envelope);
      return { event_id: envelope.header.event_id };
    },
    recall(messageId) {
      platform.setRecalled(messageId);
      changed();
    },
    delete(messageId) {
      platform.setDeleted(messageId);
      changed();
    },
    expireTokens() {
      tokens.expireAll();
      changed();
    },
    dropConnections() {
      longConn.drop();
    },
    wsConnections: () => longConn.connections().length,
    chat: (chatId) => platform.chatView(chatId),
    inject: (fault) => faults.inject(fault),
    clearFaults: () => faults.clear(),
    waitFor: (fn, timeoutMs = 5000, what = 'condition') => waitForCondition(changes, fn, timeoutMs, what),
    messageEnvelope: (input) => platform.messageEnvelope(input),
    buildWebhookRequest: (envelope, opts) =>
      buildWebhookRequest(envelope, { encryptKey, verificationToken }, opts?.tamper),
    async verifyUrl(url: string): Promise<boolean> {
      const challenge = hex(16);
      const plain = { challenge, token: verificationToken, type: 'url_verification' };
      // The challenge is encrypted like events but not signed.
      const { body } = buildWebhookRequest(plain, { encryptKey });
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=utf-8' },
          body,
          signal: AbortSignal.timeout(Math.max(1000, ackTimeoutMs)),
        });
        if (res.status !== 200) return false;
        const answer = (await res.json()) as { challenge?: unknown };
        return answer.challenge === challenge;
      } catch {
        return false;
      }
    },
    controlState() {
      return {
        url: baseUrl,
        appId,
        bot,
        tenantKey,
        eventTarget: pusher.target,
        wsConnections: longConn.connections().length,
        pendingDeliveries: pusher.pending(),
        calls: calls.length,
        deliveries: deliveries.length,
        faults: faults.list(),
        chats: platform.summary(),
      };
    },
    async close() {
      pusher.close();
      longConn.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return emulator;
}
