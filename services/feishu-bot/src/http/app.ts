import { type Logger, metricsHandler, type prom } from '@pincer/shared';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

export interface AppDeps {
  log: Logger;
  registry: prom.Registry;
  health: () => Promise<{ ok: boolean; body: Record<string, unknown> }>;
  /** Webhook mode only: the handlers of Feishu's pushes (they read a raw body). */
  webhook?: { maxBodyBytes: number; handlers: RequestHandler[] };
}

export const WEBHOOK_PATH = '/webhook/feishu';

/** /healthz, /metrics and, in webhook mode, Feishu's pushes at /webhook/feishu. */
export function createApp(d: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', async (_req, res) => {
    const h = await d.health().catch((err: Error) => ({ ok: false, body: { error: err.message } }));
    res.status(h.ok ? 200 : 503).json(h.body);
  });
  app.get('/metrics', metricsHandler(d.registry));
  if (d.webhook) {
    // the signature covers the exact bytes: the body is read raw and parsed by the checks
    app.post(
      WEBHOOK_PATH,
      express.raw({ limit: d.webhook.maxBodyBytes, type: () => true }),
      ...d.webhook.handlers,
    );
  }
  app.use((_req, res) => {
    res.status(404).json({ code: 404, msg: 'not found' });
  });
  app.use(
    (err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
      const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
      const message =
        err.type === 'entity.too.large' ? 'body too large' : status === 500 ? 'internal error' : err.message;
      // a 500 makes Feishu push the event again: that is what an event we could not queue needs
      if (status === 500) d.log.error('request failed', { error: err.message });
      res.status(status).json({ code: status, msg: message });
    },
  );
  return app;
}
