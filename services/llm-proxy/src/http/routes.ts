import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  AppError,
  type Logger,
  metricsHandler,
  openAIErrorBody,
  requestIdFrom,
  toAppError,
} from '@pincer/shared';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ApiKey } from '../config.ts';
import type { KeyRing } from '../services/auth.ts';
import { type CallContext, type ChatService, excludedMs, type StreamSink } from '../services/chat.ts';
import type { EmbeddingsService } from '../services/embeddings.ts';
import type { ProxyMetrics } from '../services/metrics.ts';
import type { Registry } from '../services/registry.ts';
import { readJsonBody } from './body.ts';
import { validateChat, validateEmbeddings } from './validation.ts';

export interface HttpDeps {
  keys: KeyRing;
  chat: ChatService;
  embeddings: EmbeddingsService;
  registry: Registry;
  metrics: ProxyMetrics;
  maxBodyBytes: number;
  log: Logger;
  readiness: () => Promise<{ ready: boolean; detail: Record<string, unknown> }>;
  status: () => unknown;
}

const OVERHEAD = 'x-pincer-overhead-ms';

function sendError(
  res: ServerResponse,
  err: AppError,
  ctx: { requestId: string; startedAt: number } & Partial<CallContext>,
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const overhead = performance.now() - ctx.startedAt - (ctx.attempts ? excludedMs(ctx as CallContext) : 0);
  res.writeHead(err.status, {
    'content-type': 'application/json',
    'x-request-id': ctx.requestId,
    [OVERHEAD]: overhead.toFixed(3),
    ...err.headers,
  });
  res.end(JSON.stringify(openAIErrorBody(err)));
}

/** A sink over the HTTP response whose writes wait for the client to keep up (and never hang if it leaves). */
function responseSink(res: ServerResponse): StreamSink {
  let waiting: Promise<void> | undefined;
  return {
    start(headers) {
      res.writeHead(200, headers);
      res.flushHeaders();
    },
    write(text) {
      if (res.destroyed || res.writableEnded) return;
      if (res.write(text)) return;
      waiting ??= new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          waiting = undefined;
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
      return waiting;
    },
    end() {
      if (!res.writableEnded) res.end();
    },
  };
}

/**
 * The request handler: the two hot POST routes are dispatched directly (express's routing and
 * request decoration cost more than the proxying itself); everything else goes through express.
 */
export function createHandler(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { app, chat, embeddings } = createApp(deps);
  return (req, res) => {
    if (req.method === 'POST') {
      if (req.url === '/v1/chat/completions') return void chat(req, res);
      if (req.url === '/v1/embeddings') return void embeddings(req, res);
    }
    app(req as Request, res as Response);
  };
}

/** Express app: the OpenAI API under /v1, plus health, readiness, status and metrics. */
function createApp(deps: HttpDeps) {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const r = await deps.readiness();
    res.status(r.ready ? 200 : 503).json({ status: r.ready ? 'ready' : 'not_ready', ...r.detail });
  });
  app.get('/metrics', metricsHandler(deps.metrics.registry));

  // Authentication comes before the body is read: an unauthenticated client costs us nothing.
  const authed = (
    handler: (req: IncomingMessage, res: ServerResponse, key: ApiKey, ctx: CallContext) => Promise<void>,
  ) => {
    return async (req: IncomingMessage, res: ServerResponse) => {
      const startedAt = performance.now();
      const requestId = requestIdFrom(req.headers['x-request-id'], randomUUID);
      const controller = new AbortController();
      const ctx: CallContext = {
        requestId,
        startedAt,
        signal: controller.signal,
        key: undefined as unknown as ApiKey,
      };
      res.on('close', () => {
        if (!res.writableFinished)
          controller.abort(new AppError(499, 'client_closed', 'client closed the connection'));
      });
      try {
        const apiKeyHeader = req.headers['api-key'];
        ctx.key = deps.keys.authenticate(
          req.headers.authorization,
          typeof apiKeyHeader === 'string' ? apiKeyHeader : undefined,
        );
        await handler(req, res, ctx.key, ctx);
      } catch (err) {
        if (controller.signal.aborted) {
          if (!res.writableEnded) res.destroy();
          return;
        }
        const appErr = toAppError(err);
        if (appErr.status >= 500)
          deps.log.error('request failed', {
            requestId,
            path: req.url,
            code: appErr.code,
            error: (err as Error)?.message,
          });
        else
          deps.log.debug('request refused', {
            requestId,
            path: req.url,
            code: appErr.code,
            status: appErr.status,
          });
        sendError(res, appErr, ctx);
      }
    };
  };

  const sendJson = (
    res: ServerResponse,
    ctx: CallContext,
    status: number,
    headers: Record<string, string>,
    body: unknown,
    endpoint: string,
  ) => {
    const json = JSON.stringify(body);
    const overhead = performance.now() - ctx.startedAt - excludedMs(ctx);
    res.writeHead(status, {
      'content-type': 'application/json',
      ...headers,
      [OVERHEAD]: overhead.toFixed(3),
    });
    res.end(json);
    deps.metrics.overhead.observe({ endpoint }, overhead / 1000);
  };

  const chat = authed(async (req, res, _key, ctx) => {
    const body = validateChat(await readJsonBody(req, deps.maxBodyBytes));
    const result = await deps.chat.complete(body, ctx, body.stream ? responseSink(res) : undefined);
    if (result) sendJson(res, ctx, result.status, result.headers, result.body, 'chat');
  });
  const embeddings = authed(async (req, res, _key, ctx) => {
    const body = validateEmbeddings(await readJsonBody(req, deps.maxBodyBytes));
    const result = await deps.embeddings.embed(body, ctx);
    sendJson(res, ctx, result.status, result.headers, result.body, 'embeddings');
  });
  app.post('/v1/chat/completions', chat);
  app.post('/v1/embeddings', embeddings);

  app.get(
    '/v1/models',
    authed(async (_req, res, key, ctx) => {
      const created = 0;
      const data = deps.registry
        .list()
        .filter((m) => !key.models || key.models.has(m.id) || m.aliases.some((a) => key.models!.has(a)))
        .map((m) => ({
          id: m.id,
          object: 'model',
          created,
          owned_by: m.provider,
          name: m.name ?? m.id,
          context_window: m.context_window,
          max_tokens: m.max_tokens,
          capabilities: m.capabilities,
          aliases: m.aliases,
          priority: m.priority,
          default: m === deps.registry.defaultModel,
        }));
      sendJson(res, ctx, 200, { 'x-request-id': ctx.requestId }, { object: 'list', data }, 'models');
    }),
  );

  app.get(
    '/status',
    authed(async (_req, res, key, ctx) => {
      if (!key.admin) throw new AppError(403, 'admin_only', 'This key may not read the proxy status.');
      sendJson(res, ctx, 200, { 'x-request-id': ctx.requestId }, deps.status(), 'status');
    }),
  );

  app.use((req: Request, res: Response) => {
    sendError(res, new AppError(404, 'unknown_url', `Invalid URL (${req.method} ${req.path})`), {
      requestId: requestIdFrom(undefined, randomUUID),
      startedAt: performance.now(),
    });
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const appErr = toAppError(err);
    if (appErr.status >= 500)
      deps.log.error('unhandled error', { path: req.path, error: (err as Error)?.message });
    sendError(res, appErr, {
      requestId: requestIdFrom(req.headers['x-request-id'], randomUUID),
      startedAt: performance.now(),
    });
  });
  return { app, chat, embeddings };
}
