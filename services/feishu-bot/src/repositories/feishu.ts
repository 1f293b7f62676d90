import * as lark from '@larksuiteoapi/node-sdk';
import type { Logger } from '@pincer/shared';
import type { Metrics } from '../services/metrics.ts';

/** Feishu codes the bot acts on. */
export const Code = {
  rateLimited: 99991400,
  tokenInvalid: 99991663,
  tokenMissing: 99991661,
  noPermission: 99991672,
  frequency: 230020,
  recalled: 230011,
  deleted: 230110,
  reactionMessageGone: 231003,
  cardFailed: 230099,
  messageTooLong: 230025,
  cardGenerateFailed: 200220,
  cardTooLarge: 200860,
  cardStreamingTimeout: 200850,
  cardStreamingClosed: 300309,
} as const;

/** A failed open platform call: the HTTP status (0 = no answer), Feishu's code and message. */
export class FeishuError extends Error {
  readonly api: string;
  readonly status: number;
  readonly code: number;
  /** From x-ogw-ratelimit-reset on a 429 (ms). */
  readonly retryAfterMs: number | undefined;
  constructor(api: string, status: number, code: number, msg: string, retryAfterMs?: number) {
    super(`${api}: ${status ? `HTTP ${status} ` : ''}code ${code}: ${msg}`);
    this.api = api;
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }

  get rateLimited(): boolean {
    return this.status === 429 || this.code === Code.rateLimited || this.code === Code.frequency;
  }

  /** The message the reply answers or edits was recalled or deleted. */
  get gone(): boolean {
    return (
      this.code === Code.recalled || this.code === Code.deleted || this.code === Code.reactionMessageGone
    );
  }

  /** No answer, or a server-side failure: the same call may work later. */
  get transient(): boolean {
    return this.status === 0 || this.status >= 500;
  }
}

interface Call {
  api: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  data?: unknown;
  params?: Record<string, string>;
}

const TOKEN_MARGIN_MS = 3 * 60_000;

/**
 * The open platform as the bot uses it, through the official SDK's HTTP client. The tenant token is
 * managed here rather than by the SDK: its cache is module-global and keeps a token Feishu rejected,
 * so this one is cached until 3 minutes before it expires and dropped when Feishu calls it invalid
 * (99991663 / 99991661), after which the call is made once more with a fresh token.
 */
export class FeishuApi {
  private readonly client: lark.Client;
  private readonly appId: string;
  private readonly appSecret: string;
  private readonly metrics: Metrics;
  private token: { value: string; until: number } | undefined;
  private fetching: Promise<string> | undefined;
  /** When the last call reached Feishu (any answer), and the last transport failure. */
  lastContactAt = 0;
  lastFailure: string | undefined;

  constructor(o: { appId: string; appSecret: string; domain: string; metrics: Metrics; log: Logger }) {
    this.appId = o.appId;
    this.appSecret = o.appSecret;
    this.metrics = o.metrics;
    this.client = new lark.Client({
      appId: o.appId,
      appSecret: o.appSecret,
      domain: o.domain,
      disableTokenCache: true,
      logger: sdkLogger(o.log),
    });
  }

  private async tenantToken(reason: 'expiring' | 'rejected'): Promise<string> {
    if (this.token && Date.now() < this.token.until) return this.token.value;
    this.fetching ??= (async () => {
      try {
        const r = await this.raw<{ tenant_access_token?: string; expire?: number }>({
          api: 'token',
          method: 'POST',
          url: '/open-apis/auth/v3/tenant_access_token/internal',
          data: { app_id: this.appId, app_secret: this.appSecret },
        });
        if (!r.tenant_access_token)
          throw new FeishuError('token', 200, -1, 'no tenant_access_token in the answer');
        const ttl = (r.expire ?? 7200) * 1000;
        this.token = {
          value: r.tenant_access_token,
          until: Date.now() + Math.max(ttl - TOKEN_MARGIN_MS, ttl / 2),
        };
        this.metrics.tokenRefreshes.inc({ reason });
        return r.tenant_access_token;
      } finally {
        this.fetching = undefined;
      }
    })();
    return this.fetching;
  }

  /** One HTTP call: resolves with the answer when code is 0, throws FeishuError otherwise. */
  private async raw<T>(c: Call, token?: string): Promise<T & { code: number }> {
    const end = this.metrics.apiSeconds.startTimer({ api: c.api });
    try {
      const r = (await this.client.request(
        {
          method: c.method,
          url: c.url,
          ...(c.data !== undefined ? { data: c.data } : {}),
          ...(c.params ? { params: c.params } : {}),
          timeout: 20_000,
        },
        token ? lark.withTenantToken(token) : undefined,
      )) as T & { code: number; msg?: string };
      this.lastContactAt = Date.now();
      if (r && typeof r === 'object' && r.code !== 0)
        throw new FeishuError(c.api, 200, Number(r.code ?? -1), String(r.msg ?? ''));
      return r;
    } catch (err) {
      const e = toFeishuError(c.api, err);
      if (e.status) this.lastContactAt = Date.now();
      else this.lastFailure = `${new Date().toISOString()} ${e.message}`;
      this.metrics.apiErrors.inc({ api: c.api, code: String(e.code) });
      if (!e.rateLimited) this.metrics.errors.inc({ kind: 'api' });
      throw e;
    } finally {
      end();
    }
  }

  /** A business API call with the tenant token; a rejected token is replaced once. */
  async call<T = Record<string, unknown>>(c: Call): Promise<T> {
    const token = await this.tenantToken('expiring');
    try {
      return ((await this.raw<{ data?: T }>(c, token)).data ?? {}) as T;
    } catch (err) {
      if (!(err instanceof FeishuError) || (err.code !== Code.tokenInvalid && err.code !== Code.tokenMissing))
        throw err;
      if (this.token?.value === token) this.token = undefined;
      const fresh = await this.tenantToken('rejected');
      return ((await this.raw<{ data?: T }>(c, fresh)).data ?? {}) as T;
    }
  }

  async botInfo(): Promise<{ open_id: string; app_name: string }> {
    const token = await this.tenantToken('expiring');
    const r = await this.raw<{ bot?: { open_id: string; app_name: string } }>(
      { api: 'bot.info', method: 'GET', url: '/open-apis/bot/v3/info' },
      token,
    );
    if (!r.bot?.open_id) throw new FeishuError('bot.info', 200, -1, 'no bot.open_id in the answer');
    return r.bot;
  }

  /** Sends a message: a reply to `replyTo` (in its topic when `inThread`), or a new message in the chat. */
  async send(m: {
    chatId: string;
    replyTo?: string;
    inThread?: boolean;
    msgType: 'text' | 'post' | 'interactive';
    content: string;
    uuid: string;
  }): Promise<string> {
    const r = m.replyTo
      ? await this.call<{ message_id: string }>({
          api: 'message.reply',
          method: 'POST',
          url: `/open-apis/im/v1/messages/${m.replyTo}/reply`,
          data: {
            msg_type: m.msgType,
            content: m.content,
            uuid: m.uuid,
            ...(m.inThread ? { reply_in_thread: true } : {}),
          },
        })
      : await this.call<{ message_id: string }>({
          api: 'message.create',
          method: 'POST',
          url: '/open-apis/im/v1/messages',
          params: { receive_id_type: 'chat_id' },
          data: { receive_id: m.chatId, msg_type: m.msgType, content: m.content, uuid: m.uuid },
        });
    return r.message_id;
  }

  async patchCard(messageId: string, card: string): Promise<void> {
    await this.call({
      api: 'message.patch',
      method: 'PATCH',
      url: `/open-apis/im/v1/messages/${messageId}`,
      data: { content: card },
    });
  }

  async createCard(card: string): Promise<string> {
    const r = await this.call<{ card_id: string }>({
      api: 'card.create',
      method: 'POST',
      url: '/open-apis/cardkit/v1/cards',
      data: { type: 'card_json', data: card },
    });
    return r.card_id;
  }

  async cardContent(
    cardId: string,
    elementId: string,
    content: string,
    sequence: number,
    uuid: string,
  ): Promise<void> {
    await this.call({
      api: 'card.element.content',
      method: 'PUT',
      url: `/open-apis/cardkit/v1/cards/${cardId}/elements/${elementId}/content`,
      data: { content, sequence, uuid },
    });
  }

  /** Replaces the card entity whole (content and config in one call: a finished card in one step). */
  async updateCard(cardId: string, card: string, sequence: number, uuid: string): Promise<void> {
    await this.call({
      api: 'card.update',
      method: 'PUT',
      url: `/open-apis/cardkit/v1/cards/${cardId}`,
      data: { card: { type: 'card_json', data: card }, sequence, uuid },
    });
  }

  async cardSettings(cardId: string, settings: object, sequence: number, uuid: string): Promise<void> {
    await this.call({
      api: 'card.settings',
      method: 'PATCH',
      url: `/open-apis/cardkit/v1/cards/${cardId}/settings`,
      data: { settings: JSON.stringify(settings), sequence, uuid },
    });
  }

  async addReaction(messageId: string, emoji: string): Promise<string> {
    const r = await this.call<{ reaction_id: string }>({
      api: 'reaction.create',
      method: 'POST',
      url: `/open-apis/im/v1/messages/${messageId}/reactions`,
      data: { reaction_type: { emoji_type: emoji } },
    });
    return r.reaction_id;
  }

  async removeReaction(messageId: string, reactionId: string): Promise<void> {
    await this.call({
      api: 'reaction.delete',
      method: 'DELETE',
      url: `/open-apis/im/v1/messages/${messageId}/reactions/${reactionId}`,
    });
  }
}

function toFeishuError(api: string, err: unknown): FeishuError {
  if (err instanceof FeishuError) return err;
  const res = (
    err as {
      response?: {
        status: number;
        data?: { code?: number; msg?: string };
        headers?: Record<string, unknown>;
      };
    }
  ).response;
  if (!res) return new FeishuError(api, 0, 0, (err as Error)?.message ?? String(err));
  const reset = Number(res.headers?.['x-ogw-ratelimit-reset']);
  return new FeishuError(
    api,
    res.status,
    Number(res.data?.code ?? res.status),
    String(res.data?.msg ?? ''),
    Number.isFinite(reset) && reset > 0 ? reset * 1000 : undefined,
  );
}

/** The SDK's log lines, into ours at debug level (the bot reports what matters itself). */
export function sdkLogger(log: Logger): lark.Logger {
  const fmt = (a: unknown[]) =>
    a
      .map((x) => {
        if (x instanceof Error || (x && typeof x === 'object' && 'message' in x))
          return String((x as Error).message);
        if (typeof x === 'string') return x;
        try {
          return JSON.stringify(x);
        } catch {
          return String(x);
        }
      })
      .join(' ');
  const line = (...a: unknown[]) => {
    log.debug(`lark sdk: ${fmt(a)}`);
  };
  return { error: line, warn: line, info: line, debug: () => {}, trace: () => {} };
}
