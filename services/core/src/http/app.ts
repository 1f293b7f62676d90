import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { AppError, prom, requestIdFrom, toAppError } from '@pincer/shared';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import multer from 'multer';
import { authorize, createAuthenticator } from './auth.ts';
import { parsePart, RESPONDED, type Route } from './route.ts';
import { routes } from './routes/index.ts';
import type { Caller, HttpDeps } from './types.ts';

export type { Caller, HttpDeps, RestChat, RestChatRequest, RestChatResult } from './types.ts';
export { routes } from './routes/index.ts';

const MAX_BODY = '1mb';

/** Per-request state kept on res.locals. */
interface Locals {
  requestId: string;
  caller?: Caller;
}
const locals = (res: Response) => res.locals as Locals;

function httpMetrics(registry: prom.Registry) {
  const requests =
    (registry.getSingleMetric('pincer_http_requests_total') as
      prom.Counter<'method' | 'route' | 'status'> | undefined) ??
    new prom.Counter({
      name: 'pincer_http_requests_total',
      help: 'HTTP requests to core by route and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
  const duration =
    (registry.getSingleMetric('pincer_http_request_duration_seconds') as
      prom.Histogram<'method' | 'route'> | undefined) ??
    new prom.Histogram({
      name: 'pincer_http_request_duration_seconds',
      help: 'Time to answer HTTP requests to core (streams: until the stream ends).',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 300],
      registers: [registry],
    });
  return { requests, duration };
}

/** The HTTP API: health, metrics, the OpenAPI document and /api/v1, all from the route table. */
export function createApp(deps: HttpDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const auth = createAuthenticator(deps.db, deps.config.adminToken, deps.log);
  const metrics = httpMetrics(deps.metrics);
  const json = express.json({ limit: MAX_BODY });
  const jsonOf = (r: Route) => (r.maxBodyBytes ? express.json({ limit: r.maxBodyBytes(deps) }) : json);

  app.use((req, res, next) => {
    const requestId = requestIdFrom(req.headers['x-request-id'], randomUUID);
    res.locals.requestId = requestId;
    res.setHeader('x-request-id', requestId);
    const startedAt = performance.now();
    res.on('close', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      const seconds = (performance.now() - startedAt) / 1000;
      const status = res.writableFinished ? res.statusCode : 499;
      metrics.requests.inc({ method: req.method, route, status });
      metrics.duration.observe({ method: req.method, route }, seconds);
      const quiet = route === '/healthz' || route === '/metrics';
      deps.log.log(quiet ? 'debug' : 'info', 'http request', {
        requestId,
        method: req.method,
        route,
        status,
        ms: Math.round(seconds * 1000),
        caller: locals(res).caller?.name,
      });
    });
    next();
  });

  for (const r of routes) app[r.method](r.path, ...chain(r));
  app.use('/admin', consoleHandler(deps.consoleDir ?? CONSOLE_DIR));

  app.use((req: Request) => {
    throw new AppError(404, 'not_found', `No route for ${req.method} ${req.path}.`);
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = fromExpress(err);
    if (e.status >= 500)
      deps.log.error('request failed', {
        requestId: locals(res).requestId,
        route: req.path,
        error: (err as Error)?.message,
        stack: (err as Error)?.stack,
      });
    if (res.headersSent || res.destroyed) {
      if (!res.writableEnded) res.end();
      return;
    }
    res
      .status(e.status)
      .set(e.headers ?? {})
      .json({ error: { code: e.code, message: e.message } });
  });
  return app;

  /** Authentication (before the body is read: an unauthenticated client costs nothing), body, validation, handler. */
  function chain(r: Route): RequestHandler[] {
    const handlers: RequestHandler[] = [];
    if (r.roles !== 'public') {
      const roles = r.roles;
      handlers.push(async (req, res, next) => {
        const caller = await auth.authenticate(req.headers.authorization);
        locals(res).caller = caller;
        authorize(caller, roles);
        next();
      });
    }
    if (r.upload) {
      const { field } = r.upload;
      const maxBytes = r.upload.maxBytes(deps);
      const upload = multer({
        storage: multer.memoryStorage(),
        limits: { fileSize: maxBytes, files: 1, fields: 20, fieldSize: 64 * 1024, parts: 30 },
      }).single(field);
      handlers.push((req, res, next) => {
        if (!req.is('multipart/form-data'))
          throw new AppError(
            415,
            'unsupported_media_type',
            `Send the file as multipart/form-data in the field "${field}".`,
          );
        upload(req, res, (err: unknown) => {
          if (!err) {
            if (!req.file)
              return next(new AppError(400, 'invalid_request', `No file in the field "${field}".`));
            return next();
          }
          const code = (err as { code?: string }).code;
          if (code === 'LIMIT_FILE_SIZE')
            return next(new AppError(413, 'request_too_large', `The file is larger than ${maxBytes} bytes.`));
          if (code === 'LIMIT_UNEXPECTED_FILE')
            return next(
              new AppError(400, 'invalid_request', `Send exactly one file, in the field "${field}".`),
            );
          next(
            new AppError(400, 'invalid_request', `The upload could not be read: ${(err as Error).message}.`),
          );
        });
      });
    } else if (r.body) {
      handlers.push((req, _res, next) => {
        const hasBody =
          req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
        if (hasBody && !req.is('application/json'))
          throw new AppError(415, 'unsupported_media_type', 'Send the body as application/json.');
        next();
      }, jsonOf(r));
    }
    handlers.push(async (req, res) => {
      const out = await r.handler({
        params: r.params ? parsePart(r.params, req.params, 'path') : undefined,
        query: r.query ? parsePart(r.query, req.query, 'query') : undefined,
        body: r.body ? parsePart(r.body, req.body ?? {}, 'body') : undefined,
        caller: locals(res).caller,
        deps,
        req,
        res,
        requestId: locals(res).requestId,
      });
      if (out === RESPONDED || res.destroyed) return;
      const status = r.response.status ?? 200;
      if (status === 204) res.status(204).end();
      else res.status(status).json(out);
    });
    return handlers;
  }
}

/** The built web console (services/core/console/dist), next to src/ and dist/ alike. */
const CONSOLE_DIR = path.resolve(import.meta.dirname, '../../console/dist');

/** Same-origin everything; the console needs no inline script and talks only to this server. */
const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The web console: a static single-page app (hash routes, so only index.html and hashed assets).
 * Assets are cached for good, index.html never, so an upgrade is seen at the next load.
 */
function consoleHandler(dir: string): RequestHandler {
  const files = express.static(dir, {
    index: 'index.html',
    redirect: true,
    fallthrough: true,
    setHeaders(res, file) {
      res.setHeader('content-security-policy', CONSOLE_CSP);
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('referrer-policy', 'no-referrer');
      res.setHeader('x-frame-options', 'DENY');
      res.setHeader(
        'cache-control',
        path.relative(dir, file).startsWith(`assets${path.sep}`)
          ? 'public, max-age=31536000, immutable'
          : 'no-cache',
      );
    },
  });
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    // only a miss asks whether the console was built at all
    files(req, res, (err?: unknown) => {
      if (err || existsSync(path.join(dir, 'index.html'))) return next(err);
      next(
        new AppError(
          503,
          'console_not_built',
          'The web console is not built: run `npm run build` (the core image ships it built).',
        ),
      );
    });
  };
}

/** Body-parser failures as clear client errors; everything else through toAppError. */
function fromExpress(err: unknown): AppError {
  const type = (err as { type?: string } | undefined)?.type;
  if (type === 'entity.parse.failed')
    return new AppError(400, 'invalid_json', 'The request body is not valid JSON.');
  // the router's decoding of a path parameter (`%zz`, `%C0%AE`): its status is set, `expose` is not
  if (err instanceof URIError && (err as { status?: number }).status === 400)
    return new AppError(400, 'invalid_request', 'The URL is not correctly percent-encoded.');
  if (type === 'entity.too.large')
    return new AppError(
      413,
      'request_too_large',
      `The request body is larger than ${(err as { limit?: number }).limit ?? 1048576} bytes.`,
    );
  return toAppError(err);
}
