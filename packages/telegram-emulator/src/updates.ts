// The bot's update queue: ids increase, an update stays until confirmed (getUpdates offset) or
// acknowledged (webhook 2xx), allowed_updates filters at creation time, and at most one getUpdates
// may wait for news at a time.

/* eslint-disable @typescript-eslint/no-explicit-any */

import { randomInt } from 'node:crypto';
import { ApiError } from './errors.ts';

export const UPDATE_TYPES = [
  'message',
  'edited_message',
  'channel_post',
  'edited_channel_post',
  'business_connection',
  'business_message',
  'edited_business_message',
  'deleted_business_messages',
  'message_reaction',
  'message_reaction_count',
  'inline_query',
  'chosen_inline_result',
  'callback_query',
  'shipping_query',
  'pre_checkout_query',
  'purchased_paid_media',
  'poll',
  'poll_answer',
  'my_chat_member',
  'chat_member',
  'chat_join_request',
  'chat_boost',
  'removed_chat_boost',
  'stopped_message_generation',
];

/** Left out when allowed_updates is empty or was never set. */
export const NOT_BY_DEFAULT = new Set(['chat_member', 'message_reaction', 'message_reaction_count']);

/** The server caps how long one getUpdates may wait. */
export const LONG_POLL_MAX_TIMEOUT_S = 50;

export interface QueuedUpdate {
  update_id: number;
  kind: string;
  /** Updates of one chat are pushed to a webhook one at a time, in order. */
  chatId?: number;
  json: any;
}

interface HeldPoll {
  limit: number;
  finish: (result: QueuedUpdate[] | ApiError) => void;
}

export class UpdateQueue {
  readonly pending: QueuedUpdate[] = [];
  /** The allowed_updates setting shared by getUpdates and setWebhook; undefined = never set. */
  allowed: string[] | undefined;
  private nextId = randomInt(100_000_000, 900_000_000);
  private held: HeldPoll | undefined;
  private readonly changed: () => void;

  constructor(changed: () => void) {
    this.changed = changed;
  }

  get nextUpdateId(): number {
    return this.nextId;
  }

  get isPollWaiting(): boolean {
    return this.held !== undefined;
  }

  accepts(kind: string): boolean {
    if (!this.allowed || this.allowed.length === 0) return !NOT_BY_DEFAULT.has(kind);
    return this.allowed.includes(kind);
  }

  /** Queues an update if the bot asked for this kind; returns its update_id. */
  push(kind: string, payload: any, chatId?: number): number | undefined {
    if (!this.accepts(kind)) return undefined;
    const update_id = this.nextId++;
    const update: QueuedUpdate = { update_id, kind, json: { update_id, [kind]: payload } };
    if (chatId !== undefined) update.chatId = chatId;
    this.pending.push(update);
    const held = this.held;
    if (held) {
      this.held = undefined;
      held.finish(this.pending.slice(0, held.limit));
    }
    this.changed();
    return update_id;
  }

  /** getUpdates offset: everything below it is confirmed; a negative one keeps only the last -offset. */
  confirm(offset: number): void {
    const before = this.pending.length;
    if (offset > 0) {
      let drop = 0;
      while (drop < this.pending.length && (this.pending[drop] as QueuedUpdate).update_id < offset) drop++;
      this.pending.splice(0, drop);
    } else if (offset < 0) {
      const keep = -offset;
      if (this.pending.length > keep) this.pending.splice(0, this.pending.length - keep);
    }
    if (this.pending.length !== before) this.changed();
  }

  remove(updateId: number): boolean {
    const i = this.pending.findIndex((u) => u.update_id === updateId);
    if (i < 0) return false;
    this.pending.splice(i, 1);
    this.changed();
    return true;
  }

  dropAll(): void {
    if (!this.pending.length) return;
    this.pending.length = 0;
    this.changed();
  }

  /** Ends a waiting getUpdates with a 409 (another poller or a webhook took over). */
  terminateHeld(description: string): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    held.finish(new ApiError(409, description));
  }

  /**
   * Answers at once when updates are pending (or timeout is 0), else waits until one arrives or the
   * timeout passes. `abandon` stops waiting when the client goes away; nothing was taken, so nothing
   * is lost.
   */
  poll(limit: number, timeoutS: number, abandon: (stop: () => void) => void): Promise<QueuedUpdate[]> {
    if (this.pending.length || timeoutS <= 0) return Promise.resolve(this.pending.slice(0, limit));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.held === entry) this.held = undefined;
        this.changed();
        resolve([]);
      }, timeoutS * 1000);
      const entry: HeldPoll = {
        limit,
        finish: (result) => {
          clearTimeout(timer);
          if (result instanceof ApiError) reject(result);
          else resolve(result);
        },
      };
      this.held = entry;
      abandon(() => {
        if (this.held !== entry) return;
        this.held = undefined;
        clearTimeout(timer);
        resolve([]);
        this.changed();
      });
      this.changed();
    });
  }

  close(): void {
    this.terminateHeld(
      'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
    );
  }
}
