import { Api, NetworkError, TelegramApiError, TimeoutError } from 'node-telegram-bot-api';
import type { Metrics } from '../services/metrics.ts';
import type { BotIdentity, TgMessage, TgUpdate } from '../services/normalise.ts';

/** What went wrong with a Bot API call, in the terms the adapter acts on. */
export type TelegramFailure =
  | { kind: 'flood'; retryAfterMs: number }
  | { kind: 'not_modified' }
  | { kind: 'parse'; description: string }
  | { kind: 'gone'; description: string } // blocked, kicked, chat not found: stop sending there
  | { kind: 'migrated'; chatId: string }
  | { kind: 'message_missing'; description: string } // the message to edit or delete is no longer there
  | { kind: 'conflict'; description: string } // 409: another poller, or a webhook is set
  | { kind: 'unauthorized'; description: string }
  | { kind: 'transient'; description: string } // network, timeout, 5xx: try again
  | { kind: 'rejected'; description: string }; // any other 4xx: the request itself is wrong

export class TelegramError extends Error {
  readonly failure: TelegramFailure;
  constructor(failure: TelegramFailure, message: string) {
    super(message);
    this.failure = failure;
  }
}

function classify(err: unknown): TelegramFailure {
  if (err instanceof TelegramApiError) {
    const d = err.description;
    const code = err.errorCode;
    if (code === 429) return { kind: 'flood', retryAfterMs: Math.max(1, err.retryAfter ?? 1) * 1000 };
    if (err.migrateToChatId) return { kind: 'migrated', chatId: String(err.migrateToChatId) };
    if (code === 409) return { kind: 'conflict', description: d };
    if (code === 401) return { kind: 'unauthorized', description: d };
    if (code === 403) return { kind: 'gone', description: d };
    if (code >= 500) return { kind: 'transient', description: d };
    if (/message is not modified/i.test(d)) return { kind: 'not_modified' };
    if (/can't parse entities|can't find end tag|unsupported start tag/i.test(d))
      return { kind: 'parse', description: d };
    if (/chat not found|have no rights to send|not enough rights|chat_write_forbidden/i.test(d))
      return { kind: 'gone', description: d };
    if (/message to (edit|delete) not found|message can't be (edited|deleted)|message_id_invalid/i.test(d))
      return { kind: 'message_missing', description: d };
    return { kind: 'rejected', description: d };
  }
  if (err instanceof TimeoutError || err instanceof NetworkError)
    return { kind: 'transient', description: (err as Error).message };
  return { kind: 'transient', description: (err as Error)?.message ?? String(err) };
}

export interface SendOptions {
  html?: boolean;
  threadId?: number;
  replyTo?: number;
}

/**
 * The Bot API as the adapter uses it, through the official SDK. The SDK's own retries are off: the
 * adapter decides (a retried send can show a message twice, so only the reply runner retries, knowing
 * what was shown).
 */
export class TelegramApi {
  private readonly api: Api;
  private readonly metrics: Metrics;
  /** When the last call reached Telegram (any answer), and the last transport failure. */
  lastContactAt = 0;
  lastFailure: string | undefined;

  constructor(token: string, apiRoot: string, metrics: Metrics) {
    this.api = new Api(token, { apiRoot, maxRetries: 0, timeoutMs: 20_000 });
    this.metrics = metrics;
  }

  private async call<T>(method: string, fn: () => Promise<T>): Promise<T> {
    const end = this.metrics.apiSeconds.startTimer({ method });
    try {
      const r = await fn();
      this.lastContactAt = Date.now();
      this.metrics.apiCalls.inc({ method, outcome: 'ok' });
      return r;
    } catch (err) {
      const f = classify(err);
      if (err instanceof TelegramApiError) this.lastContactAt = Date.now();
      else this.lastFailure = `${new Date().toISOString()} ${(err as Error).message}`;
      this.metrics.apiCalls.inc({ method, outcome: f.kind });
      if (f.kind === 'flood') this.metrics.floodWaits.inc({ method });
      else if (f.kind === 'transient' || f.kind === 'rejected' || f.kind === 'unauthorized')
        this.metrics.errors.inc({ kind: `api_${f.kind}` });
      throw new TelegramError(f, `${method}: ${(err as Error).message}`);
    } finally {
      end();
    }
  }

  getMe(): Promise<BotIdentity> {
    return this.call('getMe', async () => {
      const me = await this.api.getMe();
      return {
        id: me.id,
        username: me.username ?? '',
        can_read_all_group_messages: !!me.can_read_all_group_messages,
      };
    });
  }

  getUpdates(offset: number | undefined, timeoutS: number, signal: AbortSignal): Promise<TgUpdate[]> {
    return this.call('getUpdates', async () => {
      const r = await this.api.getUpdates(
        {
          ...(offset !== undefined ? { offset } : {}),
          timeout: timeoutS,
          limit: 100,
          allowed_updates: ALLOWED_UPDATES,
        },
        signal,
      );
      return r as unknown as TgUpdate[];
    });
  }

  setWebhook(url: string, secret: string, maxConnections: number): Promise<unknown> {
    return this.call('setWebhook', () =>
      this.api.setWebhook({
        url,
        secret_token: secret,
        max_connections: maxConnections,
        allowed_updates: ALLOWED_UPDATES,
      }),
    );
  }

  deleteWebhook(): Promise<unknown> {
    return this.call('deleteWebhook', () => this.api.deleteWebhook({ drop_pending_updates: false }));
  }

  async sendMessage(chatId: string, text: string, o: SendOptions): Promise<TgMessage> {
    const m = await this.call('sendMessage', () =>
      this.api.sendMessage({
        chat_id: chatId,
        text,
        ...(o.html ? { parse_mode: 'HTML' } : {}),
        ...(o.threadId ? { message_thread_id: o.threadId } : {}),
        ...(o.replyTo
          ? { reply_parameters: { message_id: o.replyTo, allow_sending_without_reply: true } }
          : {}),
        link_preview_options: { is_disabled: true },
      }),
    );
    this.metrics.sent.inc();
    return m as unknown as TgMessage;
  }

  async editMessageText(chatId: string, messageId: number, text: string, html: boolean): Promise<void> {
    await this.call('editMessageText', () =>
      this.api.editMessageText({
        chat_id: chatId,
        message_id: messageId,
        text,
        ...(html ? { parse_mode: 'HTML' } : {}),
        link_preview_options: { is_disabled: true },
      }),
    );
    this.metrics.edited.inc();
  }

  async deleteMessage(chatId: string, messageId: number): Promise<void> {
    await this.call('deleteMessage', () =>
      this.api.deleteMessage({ chat_id: chatId, message_id: messageId }),
    );
  }

  async typing(chatId: string, threadId?: number): Promise<void> {
    await this.call('sendChatAction', () =>
      this.api.sendChatAction({
        chat_id: chatId,
        action: 'typing',
        ...(threadId ? { message_thread_id: threadId } : {}),
      }),
    );
  }
}

/** The updates the adapter asks for (Telegram remembers the list; default would omit nothing we need). */
export const ALLOWED_UPDATES = ['message', 'edited_message', 'my_chat_member'];
