import { sameSecret } from '@pincer/adapter-kit';
import { type Logger, metricsHandler, type prom } from '@pincer/shared';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { TgUpdate } from '../services/normalise.ts';

export interface AppDeps {
  log: Logger;
  registry: prom.Registry;
  health: () => Promise<{ ok: boolean; body: Record<string, unknown> }>;
  /** Webhook mode only: the secret Telegram presents, and what to do with an update (resolves once enqueued). */
  webhook?: { secret: string; maxBodyBytes: number; accept: (u: TgUpdate) => Promise<void> };
}

const WEBHOOK_PATH = '/webhook/telegram';

const isUpdate = (u: unknown): u is TgUpdate =>
  !!u && typeof u === 'object' && Number.isSafeInteger((u as TgUpdate).update_id);

/** /healthz, /metrics and, in webhook mode, Telegram's pushes at /webhook/telegram. */
export function createApp(d: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', async (_req, res) => {
    const h = await d.health().catch((err: Error) => ({ ok: false, body: { error: err.message } }));
    res.status(h.ok ? 200 : 503).json(h.body);
  });
  app.get('/metrics', metricsHandler(d.registry));

  const hook = d.webhook;
  if (hook) {
    app.post(
      WEBHOOK_PATH,
      (req, res, next) => {
        // the secret is the only thing that authenticates Telegram: checked before the body is read
        if (!sameSecret(req.get('x-telegram-bot-api-secret-token'), hook.secret)) {
          d.log.warn('webhook call with a wrong or missing secret token', { ip: req.ip });
          res.status(401).json({ ok: false, error: 'wrong secret token' });
          return;
        }
        next();
      },
      express.json({ limit: hook.maxBodyBytes, type: () => true }),
      async (req, res) => {
        if (!isUpdate(req.body)) {
          res.status(400).json({ ok: false, error: 'not a Telegram update (update_id missing)' });
          return;
        }
        try {
          await hook.accept(req.body);
          res.status(200).json({ ok: true });
        } catch (err) {
          // not confirmed: Telegram pushes it again
          d.log.error('webhook update not accepted', { error: (err as Error).message });
          res.status(503).json({ ok: false, error: 'not accepted, retry' });
        }
      },
    );
  }
  app.use((_req, res) => {
    res.status(404).json({ ok: false, error: 'not found' });
  });
  app.use(
    (err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
      const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
      const message =
        err.type === 'entity.too.large'
          ? 'body too large'
          : err.type === 'entity.parse.failed'
            ? 'malformed JSON'
            : status === 500
              ? 'internal error'
              : err.message;
      if (status === 500) d.log.error('request failed', { error: err.message });
      res.status(status).json({ ok: false, error: message });
    },
  );
  return app;
}
