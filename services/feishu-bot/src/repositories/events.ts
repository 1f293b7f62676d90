import { createHash } from 'node:crypto';
import * as lark from '@larksuiteoapi/node-sdk';
import { sameSecret } from '@pincer/adapter-kit';
import type { Logger } from '@pincer/shared';
import type { RequestHandler } from 'express';
import { sdkLogger } from './feishu.ts';
import { ClaimHeld } from './ledger.ts';

/** The event types the bot subscribes to. */
export const EVENT_TYPES = ['im.message.receive_v1', 'im.chat.member.bot.added_v1'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** What the SDK hands a handler: the 2.0 header fields flattened with the event body. */
export type FeishuEvent = Record<string, unknown> & {
  event_id?: string;
  event_type?: string;
  token?: string;
};

/** Resolves once the event is safe (queued or knowingly dropped); rejects to have Feishu deliver it again. */
export type EventHandler = (type: EventType, event: FeishuEvent) => Promise<void>;

function dispatcher(
  log: Logger,
  handle: EventHandler,
  keys: { encryptKey?: string; verificationToken?: string },
) {
  const handlers: Record<string, (data: FeishuEvent) => Promise<void>> = {};
  for (const type of EVENT_TYPES) handlers[type] = (data) => handle(type, data);
  return new lark.EventDispatcher({
    ...(keys.encryptKey ? { encryptKey: keys.encryptKey } : {}),
    ...(keys.verificationToken ? { verificationToken: keys.verificationToken } : {}),
    logger: sdkLogger(log),
  }).register(handlers);
}

/** The long connection: the SDK's WSClient, with its state for /healthz. */
export class LongConnection {
  private readonly ws: lark.WSClient;
  private readonly events: lark.EventDispatcher;
  connectedAt = 0;
  disconnects = 0;

  constructor(o: {
    appId: string;
    appSecret: string;
    domain: string;
    log: Logger;
    handle: EventHandler;
    onState: (up: boolean) => void;
  }) {
    this.events = dispatcher(o.log, o.handle, {});
    this.ws = new lark.WSClient({
      appId: o.appId,
      appSecret: o.appSecret,
      domain: o.domain,
      logger: sdkLogger(o.log),
      autoReconnect: true,
      handshakeTimeoutMs: 10_000,
      onReady: () => {
        this.connectedAt = Date.now();
        o.log.info('long connection to Feishu established');
        o.onState(true);
      },
      onReconnecting: () => {
        this.disconnects++;
        o.log.warn('long connection to Feishu lost; reconnecting');
        o.onState(false);
      },
      onReconnected: () => {
        this.connectedAt = Date.now();
        o.log.info('long connection to Feishu re-established');
        o.onState(true);
      },
      onError: (err: Error) => {
        o.log.error('long connection to Feishu failed for good', { error: err.message });
        o.onState(false);
      },
    });
  }

  start(): void {
    void this.ws.start({ eventDispatcher: this.events });
  }

  status(): {
    state: string;
    connected_at: number | null;
    reconnects: number;
    last_connect_attempt_at: number | null;
  } {
    const s = this.ws.getConnectionStatus();
    return {
      state: s.state,
      connected_at: this.connectedAt || null,
      reconnects: this.disconnects,
      last_connect_attempt_at: s.lastConnectTime ?? null,
    };
  }

  close(): void {
    this.ws.close({ force: true });
  }
}

export type WebhookRejection = 'signature' | 'token' | 'timestamp' | 'malformed';

/**
 * Webhook pushes at /webhook/feishu: our checks first (the request's age, X-Lark-Signature over the
 * exact bytes, the verification token, which the SDK does not check on 2.0 events), then the SDK's
 * express adapter (url_verification, decryption, dispatch). The body must arrive as a raw Buffer.
 */
export function webhookHandlers(o: {
  encryptKey: string | undefined;
  verificationToken: string;
  maxClockSkewS: number;
  log: Logger;
  handle: EventHandler;
  reject: (reason: WebhookRejection) => void;
}): RequestHandler[] {
  const events = dispatcher(o.log, o.handle, {
    ...(o.encryptKey ? { encryptKey: o.encryptKey } : {}),
    verificationToken: o.verificationToken,
  });
  const cipher = o.encryptKey ? new lark.AESCipher(o.encryptKey) : undefined;
  const refuse = (res: Parameters<RequestHandler>[1], reason: WebhookRejection, status: number) => {
    o.reject(reason);
    o.log.warn('webhook request refused', { reason });
    res.status(status).json({ code: status, msg: `refused: ${reason}` });
  };
  const check: RequestHandler = (req, res, next) => {
    const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
      if (!body || typeof body !== 'object') throw new Error('not an object');
    } catch {
      return refuse(res, 'malformed', 400);
    }
    let plain = body;
    if (typeof body.encrypt === 'string') {
      if (!cipher) return refuse(res, 'malformed', 400); // encrypted, but no FEISHU_ENCRYPT_KEY to read it
      try {
        plain = JSON.parse(cipher.decrypt(body.encrypt)) as Record<string, unknown>;
        if (!plain || typeof plain !== 'object') throw new Error('not an object');
      } catch {
        return refuse(res, 'malformed', 400);
      }
    }
    const challenge = plain.type === 'url_verification';
    // events are signed (only when an Encrypt Key is set); the url_verification request is not
    if (o.encryptKey && !challenge) {
      const ts = req.get('x-lark-request-timestamp') ?? '';
      const nonce = req.get('x-lark-request-nonce') ?? '';
      const sig = req.get('x-lark-signature') ?? '';
      const expected = createHash('sha256')
        .update(ts + nonce + o.encryptKey + raw)
        .digest('hex');
      if (!sameSecret(sig, expected)) return refuse(res, 'signature', 401);
      const age = Math.abs(Date.now() / 1000 - Number(ts));
      if (!Number.isFinite(age) || age > o.maxClockSkewS) return refuse(res, 'timestamp', 401);
    }
    const header = (plain.header ?? {}) as Record<string, unknown>;
    // only a string can be the token (String() of an object may throw, or read as the token)
    if (!sameSecret(header.token ?? plain.token, o.verificationToken)) return refuse(res, 'token', 401);
    if (challenge) {
      res.json({ challenge: plain.challenge });
      return;
    }
    res.locals.feishuBody = body;
    next();
  };
  // checked above on the exact bytes received; the SDK's own check (over a re-serialised body) would
  // answer 200 and drop the event silently if the two ever disagreed, so it is not run a second time
  const deliver: RequestHandler = (_req, res) => {
    events.invoke(res.locals.feishuBody, { needCheck: false }).then(
      () => res.json({ code: 0 }),
      (err: Error) => {
        // not acknowledged: Feishu pushes it again
        if (err instanceof ClaimHeld) {
          // expected when a redelivery meets the claim of an intake that is busy or died (the intake logs it)
          res.status(503).json({ code: 503, msg: 'being taken in, retry' });
          return;
        }
        o.log.error('webhook event not accepted', { error: err.message });
        res.status(500).json({ code: 500, msg: 'not accepted, retry' });
      },
    );
  };
  return [check, deliver];
}
