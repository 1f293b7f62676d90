import { type InboundPublisher, sameSecret } from '@pincer/adapter-kit';
import type { Logger } from '@pincer/shared';
import type { FeishuSettings } from '../config.ts';
import type { EventType, FeishuEvent } from '../repositories/events.ts';
import { ClaimHeld, type Ledger } from '../repositories/ledger.ts';
import type { Metrics } from './metrics.ts';
import {
  type FsBotAddedEvent,
  type FsMessageEvent,
  type Normalised,
  normaliseBotAdded,
  normaliseMessage,
} from './normalise.ts';

export interface IntakeDeps {
  publisher: InboundPublisher;
  ledger: Ledger;
  settings: FeishuSettings;
  metrics: Metrics;
  log: Logger;
  /** The bot's own open_id (from bot/v3/info): how group mentions are recognised. */
  botOpenId: () => string | undefined;
  /** Long connection: the verification token to compare, when configured (webhooks are checked before). */
  verificationToken?: string;
}

const SHORT_TYPE: Record<EventType, string> = {
  'im.message.receive_v1': 'message',
  'im.chat.member.bot.added_v1': 'bot_added',
};

/**
 * One event from Feishu, taken in: checked, deduplicated on event_id and message_id, normalised and put
 * on the `inbound` queue. Resolves within milliseconds, once the job is in Redis (the caller then acks
 * or answers 200; Feishu redelivers after 3 s); rejects when it could not be queued, so Feishu retries.
 */
export async function acceptEvent(d: IntakeDeps, type: EventType, e: FeishuEvent): Promise<void> {
  const label = SHORT_TYPE[type];
  const count = (outcome: string) => d.metrics.events.inc({ type: label, outcome });
  if (d.verificationToken && !sameSecret(e.token, d.verificationToken)) {
    count('rejected');
    d.log.warn('event with a wrong verification token ignored', { event_id: e.event_id });
    return;
  }
  const botOpenId = d.botOpenId();
  if (!botOpenId) throw new Error('not ready: the bot does not know its open_id yet');
  const now = Date.now();
  let n: Normalised;
  try {
    // event_id becomes a Redis key and a request id: a string or nothing
    if (e.event_id != null && typeof e.event_id !== 'string') throw new Error('event_id is not a string');
    n =
      type === 'im.message.receive_v1'
        ? normaliseMessage(e as FsMessageEvent, botOpenId, now)
        : normaliseBotAdded(e as FsBotAddedEvent, now);
  } catch (err) {
    // a malformed event fails the same way on every redelivery: dropped, not refused for Feishu to retry for hours
    n = { kind: 'ignored', reason: `malformed event: ${(err as Error).message}` };
  }
  if (n.kind === 'ignored') {
    count('ignored');
    d.log.debug('event ignored', { event_id: e.event_id, reason: n.reason });
    return;
  }
  const m = n.message;
  // a reply to one of the bot's messages is addressed to it (Feishu names the parent, not its author)
  const parent = type === 'im.message.receive_v1' ? (e as FsMessageEvent).message?.parent_id : undefined;
  if (
    typeof parent === 'string' &&
    parent &&
    m.chat.type === 'group' &&
    !m.addressed.mention &&
    (await d.ledger.isOwn(parent))
  )
    m.addressed = { ...m.addressed, reply_to_bot: true };
  const keys: Array<{ name: 'event_id' | 'message_id'; id: string }> = [];
  if (e.event_id) keys.push({ name: 'event_id', id: e.event_id });
  if (m.event === 'message') keys.push({ name: 'message_id', id: m.message_id });
  const dup = await d.ledger.claim(keys).catch((err: unknown) => {
    if (err instanceof ClaimHeld) {
      count('held');
      d.log.info('event refused for redelivery: another intake is taking it in', {
        event_id: e.event_id,
        message_id: m.message_id,
      });
    }
    throw err;
  });
  if (dup) {
    count('duplicate');
    d.metrics.duplicates.inc({ key: dup });
    d.log.info('duplicate event dropped', { event_id: e.event_id, message_id: m.message_id, matched: dup });
    return;
  }
  try {
    const age = now - m.sent_at;
    if (m.event === 'message' && age > d.settings.stale_after_s * 1000) {
      if (d.settings.stale_policy === 'drop') {
        await d.ledger.confirm(keys);
        count('stale');
        d.metrics.stale.inc();
        d.log.warn('stale message dropped unanswered', {
          event_id: e.event_id,
          message_id: m.message_id,
          chat_id: m.chat.id,
          age_s: Math.round(age / 1000),
        });
        return;
      }
      d.log.info('stale message answered (stale_policy: answer)', {
        message_id: m.message_id,
        age_s: Math.round(age / 1000),
      });
    }
    const { rejected } = await d.publisher.publish([m]);
    await d.ledger.confirm(keys); // a message that does not fit the contract would fail the same way again
    if (rejected.length) {
      d.metrics.errors.inc({ kind: 'invalid_event' });
      d.log.warn('event skipped: it does not fit the inbound contract', { error: rejected[0]!.error });
      count('invalid');
      return;
    }
  } catch (err) {
    await d.ledger.release(keys).catch(() => {});
    throw err;
  }
  // the Typing reaction comes with core's typing action: only messages core answers get one
  count('queued');
}
