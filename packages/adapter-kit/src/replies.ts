import { randomUUID } from 'node:crypto';
import { type Logger, OutboundAction } from '@pincer/shared';
import { DelayedError, type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';

/** Where a reply goes and what it answers (from the outbound action). */
export interface ReplyTarget {
  chat: { id: string; type: 'direct' | 'group'; thread_id?: string };
  reply_id: string;
  reply_to_message_id?: string;
  request_id?: string;
}

/** The text a reply should show now; `final` once core finished it. */
export interface Desired {
  text: string;
  seq: number;
  final: boolean;
  status?: 'complete' | 'stopped' | 'failed';
}

export interface ShowContext<S> {
  /** Persists progress (e.g. a part already sent) so a crash mid-show never sends it twice. */
  save(state: S): Promise<void>;
}

/**
 * A platform's way of showing replies. `show` brings the chat from `state` (what is shown, undefined
 * for a new reply) to `desired` and returns the new state; it throws `RetryAfter` to be called again
 * later with the then-latest text, `ReplyGone` when the reply can no longer be shown.
 */
export interface Presenter<S> {
  show(target: ReplyTarget, desired: Desired, state: S | undefined, ctx: ShowContext<S>): Promise<S>;
  /** Milliseconds to wait before the next show in this chat (platform pacing); 0 = now. */
  delayBefore?(target: ReplyTarget, desired: Desired, state: S | undefined): number;
  /** Core asked to show that the reply is being written. Runs outside the chat's lane (never waits for pacing). */
  typing?(target: ReplyTarget): Promise<void>;
  /** Called once a reply is finished (or gone): stop typing indicators and the like. */
  finished?(target: ReplyTarget, state: S | undefined): Promise<void>;
}

/** Show again after `ms` (a flood limit's retry_after, a transient failure). */
export class RetryAfter extends Error {
  readonly ms: number;
  constructor(ms: number, reason: string) {
    super(reason);
    this.ms = ms;
  }
}

/** The reply cannot be shown any more (the user blocked the bot, the message was deleted): stop it. */
export class ReplyGone extends Error {}

/** A finish that must wait long is handed back to the queue (delayed) instead of holding a worker slot. */
class Parked extends Error {
  readonly ms: number;
  constructor(ms: number) {
    super(`parked for ${ms} ms`);
    this.ms = ms;
  }
}

interface Stored<S> {
  seq: number;
  finished: boolean;
  state?: S;
}

interface Pending {
  target: ReplyTarget;
  desired: Desired;
  firstSeq: number;
  waiters: Array<{ resolve: () => void; reject: (e: Error) => void }>;
}

interface Lane {
  replies: Map<string, Pending>;
  running: boolean;
}

export interface ReplyRunnerOptions<S> {
  connection: Redis;
  prefix: string;
  queue: string;
  /** Key namespace of this platform's reply state in Redis, e.g. `telegram`. */
  platform: string;
  presenter: Presenter<S>;
  log: Logger;
  /** Outbound jobs handled at once; finish jobs wait for their chat's pacing, so keep it generous. */
  concurrency?: number;
  /** How long a finished reply's state is kept (a repeated finish within it changes nothing). */
  stateTtlSec?: number;
  /** A finish told to wait at least this long (ms) goes back to the queue as a delayed job meanwhile. */
  parkAfterMs?: number;
  onError?: (target: ReplyTarget, err: Error, final: boolean) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Takes the lock, or finds it already ours: a SET whose reply was lost to a Redis restart is sent again
 * by ioredis and must not then find its own lock taken (it would wait out the whole TTL).
 */
const ACQUIRE = `if redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
return 0`;
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * Consumes an outbound queue and shows replies. Actions of one reply are applied newest-first
 * (streamed updates carry the whole text, so intermediate ones are coalesced); replies of one chat
 * are shown one operation at a time in the order they began; a `finish` job completes only once the
 * final text is shown (so a crash retries it), every other action completes at once. What each reply
 * shows is kept in Redis under a per-reply lock, so several adapter processes can share the queue.
 */
export class ReplyRunner<S> {
  private readonly o: Required<Omit<ReplyRunnerOptions<S>, 'onError'>> &
    Pick<ReplyRunnerOptions<S>, 'onError'>;
  private readonly lanes = new Map<string, Lane>();
  private worker?: Worker;
  private closing = false;

  constructor(opts: ReplyRunnerOptions<S>) {
    this.o = { concurrency: 64, stateTtlSec: 7 * 24 * 3600, parkAfterMs: 5000, ...opts };
  }

  start(): void {
    this.worker = new Worker(this.o.queue, (job, token) => this.handle(job, token), {
      connection: this.o.connection,
      prefix: this.o.prefix,
      concurrency: this.o.concurrency,
    });
    this.worker.on('error', (err) => this.o.log.warn('outbound worker error', { error: err.message }));
  }

  /** Replies being shown in this process right now. */
  get active(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.replies.size;
    return n;
  }

  /**
   * Stops taking jobs and waits for the ones running (finishes wait for their chat's lane), then for
   * the show in progress in every lane; streamed updates not yet shown are dropped (their finish job,
   * still queued, shows the final text). Call it before closing the Redis connection: a show cut off
   * mid-way would leave its per-reply lock behind.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const wake of this.wakers) wake();
    this.wakers.clear();
    await this.worker?.close();
    while ([...this.lanes.values()].some((l) => l.running)) await sleep(20);
  }

  private key(replyId: string) {
    return `${this.o.prefix}:${this.o.platform}:reply:${replyId}`;
  }

  /** One outbound job. Exported for tests through the queue only. */
  private async handle(job: Job, token: string | undefined): Promise<void> {
    const parsed = OutboundAction.safeParse(job.data);
    if (!parsed.success) {
      this.o.log.error('outbound action refused: malformed', { job_id: job.id, error: parsed.error.message });
      throw new UnrecoverableError(`malformed outbound action: ${parsed.error.message}`);
    }
    const a = parsed.data;
    const target: ReplyTarget = {
      chat: a.chat,
      reply_id: a.reply_id,
      ...(a.reply_to_message_id ? { reply_to_message_id: a.reply_to_message_id } : {}),
      ...(a.request_id ? { request_id: a.request_id } : {}),
    };
    if (a.type === 'typing') {
      try {
        await this.o.presenter.typing?.(target);
      } catch (err) {
        this.o.log.debug('typing not shown', { reply_id: a.reply_id, error: (err as Error).message });
      }
      return;
    }
    const desired: Desired = {
      text: a.text,
      seq: a.seq,
      final: a.type === 'finish',
      ...(a.type === 'finish' ? { status: a.status } : {}),
    };
    let lane = this.lanes.get(a.chat.id);
    if (!lane) this.lanes.set(a.chat.id, (lane = { replies: new Map(), running: false }));
    let p = lane.replies.get(a.reply_id);
    if (!p) {
      p = { target, desired, firstSeq: a.seq, waiters: [] };
      lane.replies.set(a.reply_id, p);
    } else if (a.seq > p.desired.seq || (desired.final && !p.desired.final)) {
      // newer text replaces older; the final text always replaces a streamed one (clocks may disagree)
      p.desired = desired;
    } else if (!desired.final) {
      return; // older than what this reply already shows: ignored
    }
    const done = desired.final
      ? new Promise<void>((resolve, reject) => p.waiters.push({ resolve, reject }))
      : undefined;
    if (!lane.running) void this.run(a.chat.id, lane);
    try {
      await done;
    } catch (err) {
      if (!(err instanceof Parked) || !token) throw err;
      // a long flood wait (or shutdown): back to the queue until then, freeing this worker slot
      await job.moveToDelayed(Date.now() + err.ms, token);
      throw new DelayedError();
    }
  }

  private async run(chatId: string, lane: Lane): Promise<void> {
    lane.running = true;
    try {
      while (lane.replies.size > 0) {
        if (this.closing && ![...lane.replies.values()].some((q) => q.waiters.length > 0)) {
          lane.replies.clear(); // only streamed updates left: the queued finish will show the text
          break;
        }
        let p: Pending | undefined;
        for (const q of lane.replies.values()) if (!p || q.firstSeq < p.firstSeq) p = q;
        await this.step(lane, p!);
      }
    } finally {
      lane.running = false;
      if (lane.replies.size === 0) this.lanes.delete(chatId);
      else if (!this.closing) void this.run(chatId, lane);
    }
  }

  /** Shows the latest desired text of one reply (once), settling it when nothing newer is pending. */
  private async step(lane: Lane, p: Pending): Promise<void> {
    const { presenter } = this.o;
    const settle = (err?: Error) => {
      lane.replies.delete(p.target.reply_id);
      for (const w of p.waiters) {
        if (err) w.reject(err);
        else w.resolve();
      }
    };
    // what this step tries to show (the latest text once pacing allows)
    let attempted = p.desired;
    try {
      // pacing first, on what was shown; the state itself is read again under the lock
      const before = await this.load(p.target.reply_id);
      const wait = presenter.delayBefore?.(p.target, attempted, before?.state) ?? 0;
      if (wait > 0) await this.pause(wait);
      const d = (attempted = p.desired);
      const outcome = await this.withLock(p.target.reply_id, async () => {
        const cur = await this.load(p.target.reply_id);
        if (cur?.finished) return 'finished';
        // another process showed a newer streamed text; a final is shown whatever the seq says
        if (cur && d.seq <= cur.seq && !d.final) return 'applied';
        const save = (state: S) =>
          this.store({ seq: cur?.seq ?? -1, finished: false, state }, p.target.reply_id);
        const state = await presenter.show(p.target, d, cur?.state, { save });
        await this.store(
          { seq: Math.max(d.seq, cur?.seq ?? -1), finished: d.final, state },
          p.target.reply_id,
        );
        if (d.final) await presenter.finished?.(p.target, state).catch(() => {});
        return 'shown';
      });
      if (outcome === 'finished' || d.final || p.desired === d) settle();
    } catch (err) {
      const e = err as Error;
      const d = p.desired;
      if (err instanceof RetryAfter) {
        if (d.final && (this.closing || err.ms >= this.o.parkAfterMs)) {
          settle(new Parked(err.ms)); // its job waits delayed in the queue, not in a worker slot
          return;
        }
        this.o.log.info('reply paused', {
          reply_id: p.target.reply_id,
          retry_in_ms: err.ms,
          reason: e.message,
        });
        await this.pause(err.ms);
        return; // the loop picks this reply again with its then-latest text
      }
      if (err instanceof ReplyGone) {
        this.o.log.warn('reply stopped: no longer deliverable', {
          reply_id: p.target.reply_id,
          chat_id: p.target.chat.id,
          reason: e.message,
        });
        await this.store({ seq: d.seq, finished: true }, p.target.reply_id).catch(() => {});
        await presenter.finished?.(p.target, undefined).catch(() => {});
        settle();
        return;
      }
      this.o.onError?.(p.target, e, d.final);
      this.o.log.warn(d.final ? 'reply not finished; will retry' : 'streamed update not shown', {
        reply_id: p.target.reply_id,
        request_id: p.target.request_id,
        error: e.message,
      });
      // a failed finish fails its job, which BullMQ retries with backoff (so a broken Redis or state
      // never spins here); a failed update is dropped, or superseded by what arrived meanwhile
      if (attempted.final) settle(e);
      else if (p.desired === attempted) settle();
      else await this.pause(200);
    }
  }

  /** A wait that shutdown cuts short. */
  private pause(ms: number): Promise<void> {
    if (this.closing) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wakers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private readonly wakers = new Set<() => void>();

  private async load(replyId: string): Promise<Stored<S> | undefined> {
    const raw = await this.o.connection.get(this.key(replyId));
    return raw ? (JSON.parse(raw) as Stored<S>) : undefined;
  }

  private async store(s: Stored<S>, replyId: string): Promise<void> {
    await this.o.connection.set(this.key(replyId), JSON.stringify(s), 'EX', this.o.stateTtlSec);
  }

  /** A per-reply lock in Redis, so two adapter processes never show the same reply at once. */
  private async withLock<T>(replyId: string, fn: () => Promise<T>): Promise<T> {
    const key = `${this.key(replyId)}:lock`;
    const token = randomUUID();
    const ttl = 60_000;
    for (let delay = 20; ; delay = Math.min(500, delay * 2)) {
      if ((await this.o.connection.eval(ACQUIRE, 1, key, token, String(ttl))) === 1) break;
      if (this.closing) throw new Error('shutting down');
      await sleep(delay);
    }
    const renew = setInterval(() => {
      this.o.connection.eval(RENEW, 1, key, token, String(ttl)).catch(() => {});
    }, ttl / 3);
    try {
      return await fn();
    } finally {
      clearInterval(renew);
      await this.o.connection.eval(RELEASE, 1, key, token).catch(() => {});
    }
  }
}
