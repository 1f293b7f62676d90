import { createHash } from 'node:crypto';
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
  waitForSlots,
} from '@pincer/adapter-kit';
import type { Logger } from '@pincer/shared';
import type { FeishuSettings } from '../config.ts';
import { Code, FeishuError, type FeishuApi } from '../repositories/feishu.ts';
import type { Ledger } from '../repositories/ledger.ts';
import type { Metrics } from './metrics.ts';
import { splitForCard, splitForPost, toCardMarkdown, toPostMd } from './render.ts';

/**
 * How a reply is shown: `cardkit` streams into CardKit card entities (preferred), `card` PATCHes an
 * interactive card (when CardKit is refused), `post` sends rich-text posts once their text is complete
 * (when cards are refused too). Each part (one message) keeps the kind it was created with.
 */
export type ReplyMode = 'cardkit' | 'card' | 'post';

export interface ReplyPart {
  kind: ReplyMode;
  message_id?: string;
  card_id?: string;
  /** CardKit: when the entity was created (sequences are milliseconds since, so they grow across restarts). */
  created_at?: number;
  seq?: number;
  /** The rendered content shown now. */
  shown: string;
  /** CardKit: streaming mode switched off (the card is final, its summary set). */
  closed?: boolean;
}

export interface FsReplyState {
  mode: ReplyMode;
  parts: ReplyPart[];
  /** The final answer could not be shown and the user was told so. */
  failed?: boolean;
}

const ELEMENT_ID = 'answer';
const SUMMARY_CHARS = 60;
/** After CardKit is refused for lack of permission, new replies skip it this long. */
const CARDKIT_OFF_MS = 10 * 60_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Feishu's `uuid` (≤ 50 characters): the same send retried is shown once. */
export function uuidFor(replyId: string, part: number, kind: string): string {
  const raw = `${replyId}.${part}.${kind}`;
  return raw.length <= 50 ? raw : createHash('sha256').update(raw).digest('base64url').slice(0, 43);
}

/** The card's summary (chat list preview): the start of the answer as plain text. */
function summaryOf(markdown: string): string {
  const plain = markdown
    .replace(/```[^\n]*\n?/g, '')
    .replace(/[*_`#>~|]/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\s+/g, ' ')
    .trim();
  return plain.length > SUMMARY_CHARS ? `${plain.slice(0, SUMMARY_CHARS - 1)}…` : plain || '…';
}

function cardJson(content: string, streaming: boolean): string {
  return JSON.stringify({
    schema: '2.0',
    config: {
      update_multi: true,
      ...(streaming
        ? { streaming_mode: true, summary: { content: '…' } }
        : { summary: { content: summaryOf(content) } }),
    },
    body: { elements: [{ tag: 'markdown', element_id: ELEMENT_ID, content }] },
  });
}

const postJson = (md: string) => JSON.stringify({ zh_cn: { content: [[{ tag: 'md', text: md }]] } });

/**
 * A failure that a different way of showing may avoid, as opposed to limits, outages and bad requests:
 * CardKit refused (no permission, any CardKit error), a card refused (230099 and the card codes 2xxxxx/3xxxxx).
 */
function refused(err: unknown, kind: ReplyMode): err is FeishuError {
  if (!(err instanceof FeishuError) || err.rateLimited || err.transient || err.gone) return false;
  if (kind === 'cardkit' && err.api.startsWith('card.')) return true;
  return (
    err.code === Code.noPermission ||
    err.code === Code.cardFailed ||
    err.code === Code.messageTooLong ||
    (err.code >= 200_000 &&
      err.code < 400_000 &&
      err.code !== Code.frequency &&
      (err.code < 230_000 || err.code >= 240_000))
  );
}

/** The message a reply answers, when it is one Feishu knows (core's welcome answers a join, not a message). */
const repliesTo = (target: ReplyTarget) =>
  target.reply_to_message_id?.startsWith('om_') ? target.reply_to_message_id : undefined;

class Fallback extends Error {}

/**
 * Shows replies in Feishu: a "Typing" reaction on the user's message while the reply is written, the
 * answer streamed into a CardKit card (PATCHed card, then post as fallbacks), rolled over into more
 * cards when long, paced to Feishu's limits, with recalled or deleted messages ending the reply.
 */
export class FeishuPresenter implements Presenter<FsReplyState> {
  private readonly chats: KeyedBuckets;
  private readonly apis: KeyedBuckets;
  // per reply and card; lapse on their own for replies finished elsewhere
  private readonly lastOp = new RecentMap<number>(30 * 60_000);
  private readonly backoff = new ReplyBackoff();
  private cardkitOffUntil = 0;
  private readonly d: {
    api: FeishuApi;
    ledger: Ledger;
    settings: FeishuSettings;
    metrics: Metrics;
    log: Logger;
  };

  constructor(d: FeishuPresenter['d']) {
    this.d = d;
    const l = d.settings.limits;
    // Feishu counts requests in sliding one-second windows; a bucket of rate r and burst b admits up
    // to b + r in any second, so the two add up to the limit (and not to twice it)
    const within = (perSec: number) => {
      const burst = Math.max(1, Math.floor(perSec * 0.1));
      return () => new Bucket(Math.max(0.1, perSec - burst), 1000, burst);
    };
    this.chats = new KeyedBuckets(within(l.per_chat_per_sec));
    this.apis = new KeyedBuckets(within(l.per_api_per_sec));
  }

  private interval(mode: ReplyMode): number {
    return mode === 'card' ? this.d.settings.patch_interval_ms : this.d.settings.card_interval_ms;
  }

  delayBefore(target: ReplyTarget, desired: Desired, state: FsReplyState | undefined): number {
    const now = Date.now();
    if (!state?.parts.length) return this.chats.get(target.chat.id).delay(now);
    if (state.mode === 'post' && !desired.final) return 0; // posts are not streamed: nothing to pace
    if (desired.final) {
      // a finished answer waits only for the per-card limit of the card it changes
      const card = state.parts.at(-1)?.card_id;
      const last = card ? (this.lastOp.get(card) ?? 0) : (this.lastOp.get(target.reply_id) ?? 0);
      const iv = card ? this.d.settings.card_interval_ms : this.interval(state.mode);
      return Math.max(0, last + iv - now);
    }
    // streamed updates keep the streaming pace
    return Math.max(0, (this.lastOp.get(target.reply_id) ?? 0) + this.interval(state.mode) - now);
  }

  /** Waits for a slot of the API (and the chat, for sends), then takes it. */
  private pace(api: string, chatId?: string): Promise<void> {
    return waitForSlots(this.apis.get(api), chatId ? this.chats.get(chatId) : undefined);
  }

  /** Keeps two operations on one card at least card_interval_ms apart (Feishu: 10/s per card). */
  private async cardSlot(part: ReplyPart): Promise<number> {
    const key = part.card_id!;
    const wait = (this.lastOp.get(key) ?? 0) + this.d.settings.card_interval_ms - Date.now();
    if (wait > 0) await sleep(wait);
    this.lastOp.set(key, Date.now());
    const seq = Math.max((part.seq ?? 0) + 1, Date.now() - (part.created_at ?? Date.now()));
    part.seq = Math.min(seq, 2_147_483_647);
    return part.seq;
  }

  async show(
    target: ReplyTarget,
    desired: Desired,
    state: FsReplyState | undefined,
    ctx: ShowContext<FsReplyState>,
  ): Promise<FsReplyState> {
    const st: FsReplyState = state
      ? { ...state, parts: state.parts.map((p) => ({ ...p })) }
      : { mode: Date.now() < this.cardkitOffUntil ? 'card' : 'cardkit', parts: [] };
    if (st.failed) return st;
    let text = desired.text.trim();
    if (!text) {
      if (!desired.final) return st;
      text = desired.status === 'failed' ? 'Sorry, something went wrong.' : 'Done.';
    }
    for (;;) {
      try {
        await this.render(target, desired.final, text, st, ctx);
        break;
      } catch (err) {
        if (err instanceof Fallback) continue; // st.mode changed: show the rest the next way
        const e = await this.translate(err, target, desired, st);
        if (!e) break; // the user was told the answer cannot be shown: the reply ends here
        throw e;
      }
    }
    this.backoff.reset(target.reply_id);
    this.lastOp.set(target.reply_id, Date.now());
    return st;
  }

  /** The text's chunks: card-sized, or post-sized past the parts already shown as cards. */
  private chunks(text: string, st: FsReplyState): string[] {
    if (st.mode !== 'post') return splitForCard(text);
    const cards = st.parts.findIndex((p) => p.kind === 'post');
    const k = cards === -1 ? st.parts.length : cards;
    if (k === 0) return splitForPost(text);
    const byCard = splitForCard(text);
    return [...byCard.slice(0, k), ...splitForPost(byCard.slice(k).join('\n\n'))];
  }

  private async render(
    target: ReplyTarget,
    final: boolean,
    text: string,
    st: FsReplyState,
    ctx: ShowContext<FsReplyState>,
  ): Promise<void> {
    const chunks = this.chunks(text, st);
    for (let i = 0; i < chunks.length; i++) {
      const complete = final || i < chunks.length - 1;
      const part = st.parts[i];
      const kind = part?.kind ?? st.mode;
      const want = kind === 'post' ? toPostMd(chunks[i]!) : toCardMarkdown(chunks[i]!);
      if (!want.trim()) continue; // nothing visible yet (say, an opening code fence)
      if (!part?.message_id) {
        if (kind === 'post' && !complete) break; // posts are sent once, when their text is complete
        await this.create(target, i, kind, want, complete, st, ctx);
        // a card entity made while streaming that gets its complete text only now still has to close
        if (complete && st.parts[i]?.kind === 'cardkit')
          await this.update(target, i, st.parts[i]!, want, true);
        continue;
      }
      try {
        await this.update(target, i, part, want, complete);
      } catch (err) {
        if (!complete || part.kind === 'post' || !refused(err, part.kind)) throw err;
        // the message can no longer take this text (say, an element over its size): the rest of the
        // answer goes out the next way, as new messages; what was shown stays as it is
        const to: ReplyMode = part.kind === 'cardkit' ? 'card' : 'post';
        this.d.log.warn(`reply continues as ${to === 'card' ? 'a PATCHed card' : 'a post'}`, {
          reply_id: target.reply_id,
          code: err.code,
          error: err.message,
        });
        this.d.metrics.fallbacks.inc({ to });
        st.mode = to;
        st.parts.splice(i);
        await ctx.save(st);
        throw new Fallback();
      }
    }
  }

  /** Sends part i as a new message (a reply to the user's message, in its topic). */
  private async create(
    target: ReplyTarget,
    i: number,
    kind: ReplyMode,
    want: string,
    complete: boolean,
    st: FsReplyState,
    ctx: ShowContext<FsReplyState>,
  ): Promise<void> {
    const { api, metrics } = this.d;
    const replyTo = repliesTo(target);
    const send = async (msgType: 'interactive' | 'post', content: string, tag: string) => {
      await this.pace(replyTo ? 'message.reply' : 'message.create', target.chat.id);
      const id = await api.send({
        chatId: target.chat.id,
        ...(replyTo ? { replyTo } : {}),
        inThread: !!target.chat.thread_id,
        msgType,
        content,
        uuid: uuidFor(target.reply_id, i, tag),
      });
      // a user replying to this message addresses the bot
      await this.d.ledger.markOwn(id).catch(() => {});
      return id;
    };
    try {
      if (kind === 'cardkit') {
        let part = st.parts[i];
        if (!part?.card_id) {
          await this.pace('card.create');
          // an answer complete at its first showing (a short one, a command's reply, a rolled-over
          // part) is created finished: no streaming mode to switch off afterwards
          const cardId = await api.createCard(cardJson(want, !complete));
          part = { kind, card_id: cardId, created_at: Date.now(), seq: 0, shown: want, closed: complete };
          st.parts[i] = part;
          await ctx.save(st); // a crash now re-sends this card entity, never a second one
        }
        part.message_id = await send(
          'interactive',
          JSON.stringify({ type: 'card', data: { card_id: part.card_id } }),
          'ck',
        );
        metrics.cards.inc({ kind });
      } else if (kind === 'card') {
        const message_id = await send('interactive', cardJson(want, false), 'card');
        st.parts[i] = { kind, message_id, shown: want };
        metrics.cards.inc({ kind });
      } else {
        const message_id = await send('post', postJson(want), 'post');
        st.parts[i] = { kind, message_id, shown: want };
        metrics.cards.inc({ kind });
      }
      await ctx.save(st);
      this.lastOp.set(target.reply_id, Date.now());
    } catch (err) {
      if (!refused(err, kind) || kind === 'post') throw err;
      // CardKit refused (no permission, card rejected): cards instead; cards refused: posts
      const to: ReplyMode = kind === 'cardkit' ? 'card' : 'post';
      if (kind === 'cardkit' && st.parts[i]?.card_id) st.parts.splice(i, 1);
      if (err.code === Code.noPermission && kind === 'cardkit')
        this.cardkitOffUntil = Date.now() + CARDKIT_OFF_MS;
      this.d.log.warn(`reply falls back to ${to === 'card' ? 'a PATCHed card' : 'a post'}`, {
        reply_id: target.reply_id,
        code: err.code,
        error: err.message,
      });
      metrics.fallbacks.inc({ to });
      st.mode = to;
      throw new Fallback();
    }
  }

  /** Brings an existing part to `want`; `complete` once its text will not change any more. */
  private async update(
    target: ReplyTarget,
    i: number,
    part: ReplyPart,
    want: string,
    complete: boolean,
  ): Promise<void> {
    const { api, metrics } = this.d;
    if (part.kind === 'post') return; // posts are sent complete and never edited
    if (part.kind === 'card') {
      if (part.shown === want) return;
      await this.pace('message.patch');
      await api.patchCard(part.message_id!, cardJson(want, false));
      part.shown = want;
      metrics.updates.inc({ kind: 'patch' });
      return;
    }
    if (complete && !part.closed && part.shown !== want) {
      // the last text and the end of streaming in one call (Feishu allows 10 calls a second per card)
      const seq = await this.cardSlot(part);
      await this.pace('card.update');
      await api.updateCard(part.card_id!, cardJson(want, false), seq, uuidFor(target.reply_id, i, `u${seq}`));
      part.shown = want;
      part.closed = true;
      metrics.updates.inc({ kind: 'cardkit_update' });
      return;
    }
    if (part.shown !== want) {
      const seq = await this.cardSlot(part);
      await this.pace('card.element.content');
      try {
        await api.cardContent(part.card_id!, ELEMENT_ID, want, seq, uuidFor(target.reply_id, i, `c${seq}`));
      } catch (err) {
        const closed =
          err instanceof FeishuError &&
          (err.code === Code.cardStreamingTimeout || err.code === Code.cardStreamingClosed);
        if (!closed) throw err;
        // streaming switched itself off (10 minutes): switch it on again for this update
        const s = await this.cardSlot(part);
        await api.cardSettings(
          part.card_id!,
          { config: { streaming_mode: true } },
          s,
          uuidFor(target.reply_id, i, `o${s}`),
        );
        const s2 = await this.cardSlot(part);
        await api.cardContent(part.card_id!, ELEMENT_ID, want, s2, uuidFor(target.reply_id, i, `c${s2}`));
      }
      part.shown = want;
      part.closed = false;
      metrics.updates.inc({ kind: 'cardkit_content' });
    }
    if (complete && !part.closed) {
      const seq = await this.cardSlot(part);
      await this.pace('card.settings');
      await api.cardSettings(
        part.card_id!,
        { config: { streaming_mode: false, summary: { content: summaryOf(want) } } },
        seq,
        uuidFor(target.reply_id, i, `s${seq}`),
      );
      part.closed = true;
      metrics.updates.inc({ kind: 'cardkit_settings' });
    }
  }

  /** What the reply runner should do about a failed show; undefined once the user was told it failed. */
  private async translate(
    err: unknown,
    target: ReplyTarget,
    desired: Desired,
    st: FsReplyState,
  ): Promise<Error | undefined> {
    if (!(err instanceof FeishuError)) return err as Error;
    if (err.gone) return new ReplyGone(`${err.message} (message recalled or deleted)`);
    const backoff = this.backoff.next(target.reply_id);
    if (err.rateLimited) {
      const ms = err.retryAfterMs ?? backoff;
      this.apis.get(err.api).block(ms);
      return new RetryAfter(ms, err.message);
    }
    if (err.transient || err.code === Code.tokenInvalid || err.code === Code.tokenMissing)
      return new RetryAfter(backoff, err.message);
    this.d.log.error('Feishu refused to show a reply', {
      reply_id: target.reply_id,
      request_id: target.request_id,
      api: err.api,
      code: err.code,
      error: err.message,
    });
    if (!desired.final) return err; // the next update or the finish tries again
    await this.tellUser(target, err, st);
    return undefined;
  }

  /** The final answer cannot be shown: one short plain message says so (sent once). */
  private async tellUser(target: ReplyTarget, cause: FeishuError, st: FsReplyState): Promise<void> {
    try {
      const replyTo = repliesTo(target);
      await this.pace(replyTo ? 'message.reply' : 'message.create', target.chat.id);
      await this.d.api.send({
        chatId: target.chat.id,
        ...(replyTo ? { replyTo } : {}),
        inThread: !!target.chat.thread_id,
        msgType: 'text',
        content: JSON.stringify({
          text: `Sorry, this answer could not be shown here (Feishu error ${cause.code}).`,
        }),
        uuid: uuidFor(target.reply_id, 0, 'notice'),
      });
      this.d.metrics.cards.inc({ kind: 'text' });
    } catch (err) {
      // a notice held back by a limit or a hiccup is tried again later, not given up
      if (err instanceof FeishuError && (err.rateLimited || err.transient))
        throw new RetryAfter(err.retryAfterMs ?? 2000, `notice: ${err.message}`);
      this.d.log.error('could not tell the user either', {
        reply_id: target.reply_id,
        error: (err as Error).message,
      });
    }
    st.failed = true;
  }

  async typing(target: ReplyTarget): Promise<void> {
    const mid = repliesTo(target);
    if (!mid || !(await this.d.ledger.claimReaction(mid))) return;
    await this.pace('reaction.create');
    const rid = await this.d.api.addReaction(mid, 'Typing');
    if (!(await this.d.ledger.saveReaction(mid, rid)))
      await this.d.api.removeReaction(mid, rid).catch(() => {});
  }

  async finished(target: ReplyTarget, state: FsReplyState | undefined): Promise<void> {
    this.lastOp.delete(target.reply_id);
    for (const p of state?.parts ?? []) if (p.card_id) this.lastOp.delete(p.card_id);
    this.backoff.reset(target.reply_id);
    this.d.metrics.replies.inc({ outcome: !state ? 'gone' : state.failed ? 'failed' : 'shown' });
    const mid = repliesTo(target);
    if (!mid) return;
    const rid = await this.d.ledger.endReaction(mid);
    if (rid) {
      await this.pace('reaction.delete');
      await this.d.api
        .removeReaction(mid, rid)
        .catch((err: Error) =>
          this.d.log.debug('Typing reaction not removed', { message_id: mid, error: err.message }),
        );
    }
  }
}
