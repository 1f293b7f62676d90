import {
  Bucket,
  type Desired,
  KeyedBuckets,
  RecentMap,
  type Presenter,
  ReplyBackoff,
  ReplyGone,
  type ReplyTarget,
  RetryAfter,
  type ShowContext,
  type TypingKeeper,
  waitForSlots,
} from '@pincer/adapter-kit';
import type { Logger } from '@pincer/shared';
import type { TelegramSettings } from '../config.ts';
import type { ChatStore } from '../repositories/chats.ts';
import { TelegramError, type TelegramApi } from '../repositories/telegram.ts';
import type { Metrics } from './metrics.ts';
import { renderTelegram, type TelegramPart } from './render.ts';

/** What a reply shows in Telegram: the chat it went to and one message per part (4096-character limit). */
export interface TgReplyState {
  chatId: string;
  parts: Array<{ id: number; html: string; plain: boolean }>;
}

/** Parts are cut below Telegram's 4096 so a rendered part never exceeds it. */
const PART_LIMIT = 4000;
/** Core's typing action keeps "typing…" alive this long at most (a reply that never finishes). */
const TYPING_MAX_MS = 10 * 60_000;

/** Message ids and topic ids are numbers in the Bot API; core carries them as strings. */
const num = (s: string | undefined) => (s && /^-?\d+$/.test(s) ? Number(s) : undefined);

/** The key of a reply's typing indicator: the message it answers (the intake starts it under the same key). */
export function typingKey(chatId: string, messageId: string): string {
  return `telegram/${chatId}/${messageId}`;
}

/**
 * Shows replies in Telegram: sends the first part answering the user's message, edits it as text
 * streams in (paced per chat), renders the finished Markdown as HTML (plain text if Telegram cannot
 * parse it), splits long answers into several messages, and honours 429, blocks and migrations.
 */
export class TelegramPresenter implements Presenter<TgReplyState> {
  private readonly global: Bucket;
  private readonly chats: KeyedBuckets;
  // per reply; lapse on their own for replies finished elsewhere
  private readonly lastShown = new RecentMap<number>(30 * 60_000);
  private readonly backoff = new ReplyBackoff();
  private readonly d: {
    api: TelegramApi;
    store: ChatStore;
    typing: TypingKeeper;
    settings: TelegramSettings;
    metrics: Metrics;
    log: Logger;
    /** Markdown → Telegram parts (replaceable in tests to provoke Telegram's parse errors). */
    render?: (markdown: string, opts: { limit: number }) => TelegramPart[];
  };

  constructor(d: TelegramPresenter['d']) {
    this.d = d;
    const l = d.settings.limits;
    this.global = new Bucket(l.global_per_sec, 1000, Math.max(1, Math.floor(l.global_per_sec)));
    this.chats = new KeyedBuckets((key) =>
      key.startsWith('g')
        ? new Bucket(l.per_group_per_min, 60_000, l.per_chat_burst)
        : new Bucket(l.per_chat_per_sec, 1000, l.per_chat_burst),
    );
  }

  private bucket(chatId: string, group: boolean): Bucket {
    return this.chats.get(`${group ? 'g' : 'd'}${chatId}`);
  }

  delayBefore(target: ReplyTarget, desired: Desired, state: TgReplyState | undefined): number {
    const group = target.chat.type === 'group';
    const chatId = state?.chatId ?? target.chat.id;
    const now = Date.now();
    let wait = Math.max(this.global.delay(now), this.bucket(chatId, group).delay(now));
    if (state && !desired.final) {
      const iv = group ? this.d.settings.edit_interval_ms.group : this.d.settings.edit_interval_ms.direct;
      wait = Math.max(wait, (this.lastShown.get(target.reply_id) ?? 0) + iv - now);
    }
    return wait;
  }

  /** Reserves a slot in the global and the chat's bucket and waits until it is due. */
  private pace(chatId: string, group: boolean): Promise<void> {
    return waitForSlots(this.global, this.bucket(chatId, group));
  }

  async show(
    target: ReplyTarget,
    desired: Desired,
    state: TgReplyState | undefined,
    ctx: ShowContext<TgReplyState>,
  ): Promise<TgReplyState> {
    const resolved = await this.d.store.resolve(state?.chatId ?? target.chat.id);
    if (resolved.gone) throw new ReplyGone(`chat ${resolved.chatId}: ${resolved.gone}`);
    const st: TgReplyState = { chatId: resolved.chatId, parts: [...(state?.parts ?? [])] };
    const group = target.chat.type === 'group';
    let threadId = num(target.chat.thread_id);
    let replyTo = st.chatId === target.chat.id ? num(target.reply_to_message_id) : undefined;
    const text = desired.text.trim();
    if (!text) return st; // nothing to show yet (Telegram refuses empty messages)
    const parts = (this.d.render ?? renderTelegram)(text, { limit: PART_LIMIT });
    if (parts.length === 0) return st; // nothing visible yet (say, an opening code fence)

    try {
      for (let i = 0; i < parts.length; i++) {
        const want = parts[i]!;
        const have = st.parts[i];
        if (have && have.html === want.html) continue;
        for (;;) {
          await this.pace(st.chatId, group);
          try {
            if (have) {
              const plain = await this.edit(st.chatId, have.id, want);
              st.parts[i] = { id: have.id, html: want.html, plain };
            } else {
              const { id, plain } = await this.send(st.chatId, want, threadId, i === 0 ? replyTo : undefined);
              st.parts[i] = { id, html: want.html, plain };
              await ctx.save(st);
            }
            break;
          } catch (err) {
            const f = err instanceof TelegramError ? err.failure : undefined;
            if (f?.kind === 'migrated') {
              await this.d.store.markMigrated(st.chatId, f.chatId);
              this.d.log.info('group moved to a supergroup', { from: st.chatId, to: f.chatId });
              st.chatId = f.chatId;
              replyTo = undefined; // message ids do not carry over to the supergroup
              continue;
            }
            if (f?.kind === 'message_missing' && have) {
              // someone deleted the part: show it again as a new message
              const { id, plain } = await this.send(st.chatId, want, threadId, undefined);
              st.parts[i] = { id, html: want.html, plain };
              await ctx.save(st);
              break;
            }
            if (f?.kind === 'rejected' && threadId && /thread not found/i.test(f.description)) {
              threadId = undefined; // the topic was deleted or closed: answer in the main chat
              continue;
            }
            if (f?.kind === 'rejected' && desired.final) {
              // Telegram refuses this part as sent: the plain text, and failing that a short notice,
              // rather than a half-streamed answer that never ends
              st.parts[i] = await this.lastResort(
                st.chatId,
                want,
                have?.id,
                threadId,
                i === 0 ? replyTo : undefined,
                f.description,
              );
              await ctx.save(st);
              break;
            }
            throw err;
          }
        }
      }
      if (desired.final && st.parts.length > parts.length) {
        // the final answer is shorter than what streamed: remove the parts it no longer has
        for (const extra of st.parts.splice(parts.length)) {
          await this.pace(st.chatId, group);
          await this.d.api.deleteMessage(st.chatId, extra.id).catch(() => {});
        }
      }
    } catch (err) {
      throw await this.translate(err, target, st);
    }
    this.backoff.reset(target.reply_id);
    this.lastShown.set(target.reply_id, Date.now());
    return st;
  }

  /** Sends a part as HTML; as plain text if Telegram cannot parse the HTML. */
  private async send(
    chatId: string,
    part: TelegramPart,
    threadId: number | undefined,
    replyTo: number | undefined,
  ): Promise<{ id: number; plain: boolean }> {
    try {
      const m = await this.d.api.sendMessage(chatId, part.html, { html: true, threadId, replyTo });
      return { id: m.message_id, plain: false };
    } catch (err) {
      if (!(err instanceof TelegramError) || err.failure.kind !== 'parse') throw err;
      this.d.metrics.parseFallbacks.inc();
      this.d.log.warn('reply sent as plain text: Telegram could not parse its HTML', {
        chat_id: chatId,
        error: err.failure.description,
      });
      const m = await this.d.api.sendMessage(chatId, part.plain, { threadId, replyTo });
      return { id: m.message_id, plain: true };
    }
  }

  /** The final part as plain text; if Telegram refuses even that, a short notice in its place. */
  private async lastResort(
    chatId: string,
    part: TelegramPart,
    existing: number | undefined,
    threadId: number | undefined,
    replyTo: number | undefined,
    description: string,
  ): Promise<{ id: number; html: string; plain: boolean }> {
    this.d.log.warn('Telegram refused a finished reply; showing it as plain text', {
      chat_id: chatId,
      error: description,
    });
    this.d.metrics.errors.inc({ kind: 'reply_refused' });
    const attempt = async (text: string) => {
      if (existing !== undefined) {
        await this.d.api.editMessageText(chatId, existing, text, false).catch((e: unknown) => {
          if (!(e instanceof TelegramError) || e.failure.kind !== 'not_modified') throw e;
        });
        return existing;
      }
      return (await this.d.api.sendMessage(chatId, text, { threadId, replyTo })).message_id;
    };
    try {
      return { id: await attempt(part.plain.slice(0, 4096)), html: part.html, plain: true };
    } catch (err) {
      if (!(err instanceof TelegramError) || err.failure.kind !== 'rejected') throw err;
      const notice = `⚠️ This answer could not be shown in Telegram (${err.failure.description.slice(0, 200)}).`;
      return { id: await attempt(notice), html: part.html, plain: true };
    }
  }

  /** Edits a part in place; "message is not modified" is success. Returns whether it is plain text. */
  private async edit(chatId: string, messageId: number, part: TelegramPart): Promise<boolean> {
    try {
      await this.d.api.editMessageText(chatId, messageId, part.html, true);
      return false;
    } catch (err) {
      if (!(err instanceof TelegramError)) throw err;
      if (err.failure.kind === 'not_modified') return false;
      if (err.failure.kind !== 'parse') throw err;
      this.d.metrics.parseFallbacks.inc();
      try {
        await this.d.api.editMessageText(chatId, messageId, part.plain, false);
      } catch (e2) {
        if (!(e2 instanceof TelegramError) || e2.failure.kind !== 'not_modified') throw e2;
      }
      return true;
    }
  }

  /** What the reply runner should do about a failed call. */
  private async translate(err: unknown, target: ReplyTarget, st: TgReplyState): Promise<Error> {
    if (!(err instanceof TelegramError)) return err as Error;
    const f = err.failure;
    const group = target.chat.type === 'group';
    switch (f.kind) {
      case 'flood':
        this.bucket(st.chatId, group).block(f.retryAfterMs);
        return new RetryAfter(f.retryAfterMs, `Telegram flood limit: retry after ${f.retryAfterMs} ms`);
      case 'gone': {
        const reason = /blocked/i.test(f.description)
          ? 'blocked'
          : /kicked|removed|not a member|chat not found/i.test(f.description)
            ? 'removed'
            : 'forbidden';
        await this.d.store.markGone(st.chatId, f.description).catch(() => {});
        this.d.metrics.chatsGone.inc({ reason });
        return new ReplyGone(`chat ${st.chatId}: ${f.description}`);
      }
      case 'transient':
      case 'unauthorized': {
        // retried in place with the latest text; a transient failure never drops the reply
        const backoff = this.backoff.next(target.reply_id);
        const ms = f.kind === 'unauthorized' ? 30_000 : backoff;
        if (f.kind === 'unauthorized')
          this.d.log.error('Telegram refused the bot token', { error: f.description });
        return new RetryAfter(ms, f.description);
      }
      default:
        return err;
    }
  }

  async typing(target: ReplyTarget): Promise<void> {
    const r = await this.d.store.resolve(target.chat.id);
    if (r.gone) return;
    const key = typingKey(target.chat.id, target.reply_to_message_id ?? target.reply_id);
    const thread = num(target.chat.thread_id);
    await this.d.typing.start(key, TYPING_MAX_MS, () => this.d.api.typing(r.chatId, thread));
  }

  async finished(target: ReplyTarget, state: TgReplyState | undefined): Promise<void> {
    this.lastShown.delete(target.reply_id);
    this.backoff.reset(target.reply_id);
    this.d.metrics.replies.inc({ outcome: state ? 'shown' : 'gone' });
    await this.d.typing.stop(typingKey(target.chat.id, target.reply_to_message_id ?? target.reply_id));
  }
}
