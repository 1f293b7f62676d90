import { randomUUID } from 'node:crypto';
import type { InboundPublisher, TypingKeeper } from '@pincer/adapter-kit';
import type { InboundMessageInput, Logger } from '@pincer/shared';
import type { TelegramSettings } from '../config.ts';
import type { ChatStore } from '../repositories/chats.ts';
import { TelegramError, type TelegramApi } from '../repositories/telegram.ts';
import type { Metrics } from './metrics.ts';
import { type BotIdentity, type Normalised, normalise, type TgUpdate } from './normalise.ts';
import { typingKey } from './presenter.ts';

/** "typing…" from the moment an addressed message arrives until core takes over (or this long). */
const INTAKE_TYPING_MS = 15_000;

export interface IntakeDeps {
  api: TelegramApi;
  publisher: InboundPublisher;
  store: ChatStore;
  typing: TypingKeeper;
  settings: TelegramSettings;
  metrics: Metrics;
  log: Logger;
  /** Who the bot is (from getMe): unknown until the adapter has connected. */
  me?: BotIdentity;
}

const kindOf = (u: TgUpdate) =>
  u.message ? 'message' : u.edited_message ? 'edited_message' : u.my_chat_member ? 'my_chat_member' : 'other';

/**
 * Turns updates into `inbound` jobs. Resolves once every job is in Redis: only then may the caller
 * confirm the updates to Telegram (the next poll's offset, or the webhook's 200).
 */
export async function accept(d: IntakeDeps, updates: readonly TgUpdate[]): Promise<void> {
  const me = d.me;
  if (!me) throw new Error('not ready: bot identity unknown yet');
  const now = Date.now();
  const messages: InboundMessageInput[] = [];
  const after: Array<() => Promise<void>> = [];
  for (const u of updates) {
    let n: Normalised;
    try {
      n = normalise(u, me, { editedMessages: d.settings.edited_messages, now });
    } catch (err) {
      // a malformed update fails the same way on every redelivery: skipped, or it would block the ones after it
      n = { kind: 'ignored', reason: `malformed update: ${(err as Error).message}` };
    }
    const kind = kindOf(u);
    switch (n.kind) {
      case 'message': {
        messages.push(n.message);
        const m = n.message;
        const addressed = m.addressed.direct || m.addressed.mention || m.addressed.reply_to_bot;
        after.push(() => d.store.markPresent(m.chat.id));
        if (addressed) {
          const thread = m.chat.thread_id ? Number(m.chat.thread_id) : undefined;
          after.push(() =>
            d.typing.start(typingKey(m.chat.id, m.message_id), INTAKE_TYPING_MS, () =>
              d.api.typing(m.chat.id, thread),
            ),
          );
        }
        d.metrics.updates.inc({ kind, outcome: 'queued' });
        break;
      }
      case 'migrated':
        await d.store.markMigrated(n.from, n.to);
        d.log.info('group moved to a supergroup', { from: n.from, to: n.to });
        d.metrics.updates.inc({ kind, outcome: 'migration' });
        break;
      case 'membership':
        if (n.present) await d.store.markPresent(n.chat);
        else {
          await d.store.markGone(n.chat, n.direct ? 'the user blocked the bot' : 'the bot was removed');
          d.metrics.chatsGone.inc({ reason: n.direct ? 'blocked' : 'removed' });
        }
        if (n.message) messages.push(n.message);
        d.metrics.updates.inc({ kind, outcome: n.message ? 'queued' : 'membership' });
        break;
      case 'ignored':
        d.metrics.updates.inc({ kind, outcome: 'ignored' });
        d.log.debug('update ignored', { update_id: u.update_id, reason: n.reason });
        break;
    }
  }
  const { rejected } = await d.publisher.publish(messages);
  for (const r of rejected) {
    d.metrics.updates.inc({ kind: 'message', outcome: 'invalid' });
    d.metrics.errors.inc({ kind: 'invalid_update' });
    d.log.warn('update skipped: it does not fit the inbound contract', { error: r.error });
  }
  // after the messages are safe: presence flags and instant "typing…" (failures here lose nothing)
  for (const f of after) f().catch(() => {});
}

/**
 * Long polling. One process polls at a time (a lease in Redis; the others wait to take over); each
 * batch is enqueued before the next call's offset confirms it, and the offset is kept in Redis so a
 * restarted poller confirms at once. Answering never happens here, so a long reply holds up nobody.
 */
export class Poller {
  private readonly d: IntakeDeps;
  private readonly owner = randomUUID();
  private readonly abort = new AbortController();
  private loop?: Promise<void>;
  /** Whether this process holds the poller lease, and when the last poll answered. */
  leader = false;
  lastPollAt = 0;

  constructor(d: IntakeDeps) {
    this.d = d;
  }

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const { d } = this;
    const signal = this.abort.signal;
    const leaseMs = (d.settings.poll_timeout_s + 30) * 1000;
    let offset: number | undefined;
    let backoff = 500;
    while (!signal.aborted) {
      try {
        this.leader = await d.store.leasePoller(this.owner, leaseMs);
        if (!this.leader) {
          await pause(5000, signal);
          continue;
        }
        offset ??= await d.store.offset();
        const updates = await d.api.getUpdates(offset, d.settings.poll_timeout_s, signal);
        this.lastPollAt = Date.now();
        if (updates.length) {
          await accept(d, updates);
          offset = updates[updates.length - 1]!.update_id + 1;
          await d.store.saveOffset(offset);
        }
        backoff = 500;
      } catch (err) {
        if (signal.aborted) break;
        const f = err instanceof TelegramError ? err.failure : undefined;
        const wait = f?.kind === 'flood' ? f.retryAfterMs : backoff;
        if (f?.kind === 'conflict')
          d.log.warn('another getUpdates poller or a webhook is active', { error: f.description });
        else {
          d.metrics.errors.inc({ kind: 'poll' });
          d.log.warn('polling failed; retrying', { error: (err as Error).message, retry_in_ms: wait });
        }
        await pause(wait, signal);
        backoff = Math.min(30_000, backoff * 2);
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.d.store.releasePoller(this.owner).catch(() => {});
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
