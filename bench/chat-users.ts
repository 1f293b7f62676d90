/**
 * Simulated users of Telegram and Feishu for the stack benchmark. The emulators run as processes of
 * their own: users write through their control API, and what the bot did is read from their call
 * records (`/_emulator/calls?since=`), which carry the emulator's own timestamps, so a reply's time
 * does not depend on how often they are read. The mock model's records (`/_mock/requests`) give how
 * long the model itself took for each turn.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CallRecord as FsCall, ChatView as FsChat } from '@pincer/feishu-emulator';
import type { RecordedRequest } from '@pincer/mock-inference';
import type { CallRecord as TgCall, ChatView as TgChat } from '@pincer/telegram-emulator';
import { Agent, request } from 'undici';

const http = new Agent({ connections: 128, keepAliveTimeout: 30_000 });

export async function getJson<T>(url: string): Promise<T> {
  const r = await request(url, { dispatcher: http });
  if (r.statusCode !== 200) throw new Error(`GET ${url}: ${r.statusCode} ${await r.body.text()}`);
  return (await r.body.json()) as T;
}

async function postJson<T>(url: string, body: unknown): Promise<T> {
  const r = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    dispatcher: http,
  });
  if (r.statusCode !== 200) throw new Error(`POST ${url}: ${r.statusCode} ${await r.body.text()}`);
  return (await r.body.json()) as T;
}

export type PlatformName = 'telegram' | 'feishu';

/** A user message and its reply. Times are epoch ms, as the emulators record them. */
export interface Turn {
  platform: PlatformName;
  /** What the user wrote (`ping <phase> <user> <n> end`); the mock answers "Mock reply: " and it. */
  text: string;
  /** Telegram: the user's private chat (their id). Feishu: the p2p chat's id. */
  chat: string;
  /** Feishu: the user's message, which the reply card answers. */
  messageId?: string;
  /** Just before the user's message went to the platform. */
  sentAt: number;
  /** When the finished reply was shown (Telegram: the call carrying the whole text; Feishu: the card closed). */
  doneAt?: number;
  /** Settles with `doneAt`. */
  done: Promise<void>;
}

/** A turn's text, and the pattern that finds it in the model's prompt. */
export const turnText = (phase: string, user: number, n: number) => `ping ${phase} ${user} ${n} end`;
const TURN_TEXT = /^ping [a-z]+ \d+ \d+ end$/;

/** Finished replies matched to the turns waiting for them, by a key each platform knows both by. */
class Replies {
  private readonly waiting = new Map<string, { turn: Turn; settle: () => void }>();
  /** Finished before the turn was registered (Feishu: the message id is known once the send returns). */
  private readonly early = new Map<string, number>();
  private readonly finished = new Set<string>();
  /** A finished reply shown again (counted per call; the chats say whether the user saw two). */
  repeats = 0;

  expect(key: string, turn: Turn): Promise<void> {
    const at = this.early.get(key);
    if (at !== undefined) {
      this.early.delete(key);
      this.finished.add(key);
      turn.doneAt = at;
      return Promise.resolve();
    }
    return new Promise((settle) => this.waiting.set(key, { turn, settle }));
  }

  shown(key: string, at: number): void {
    const w = this.waiting.get(key);
    if (w) {
      this.waiting.delete(key);
      this.finished.add(key);
      w.turn.doneAt = at;
      w.settle();
    } else if (this.finished.has(key) || this.early.has(key)) this.repeats++;
    else this.early.set(key, at);
  }
}

/** Reads an emulator's call records as they come, from where the last read ended. */
class CallFeed<C> {
  private next = 0;
  private stopped = false;
  private readonly loop: Promise<void>;
  private readonly url: string;
  private readonly take: (calls: C[]) => void;

  constructor(url: string, take: (calls: C[]) => void) {
    this.url = url;
    this.take = take;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const r = await getJson<{ calls: C[]; next: number }>(`${this.url}?since=${this.next}`);
        this.next = r.next;
        if (r.calls.length) this.take(r.calls);
        else await sleep(5);
      } catch {
        if (!this.stopped) await sleep(100);
      }
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.loop;
  }
}

async function eachLimit<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

const byChat = (turns: Turn[]) => Map.groupBy(turns, (t) => t.chat);

export interface Delivery {
  /** Turns whose reply the user saw more than once (each extra one counts). */
  duplicates: number;
  /** Turns whose whole reply the user never saw. */
  lost: number;
}

export interface ChatPlatform {
  name: PlatformName;
  /** User number `user` writes `text`; the turn's `done` settles once the whole reply is shown. */
  send(user: number, text: string): Promise<Turn>;
  /** The chats as the users see them: every turn answered exactly once, with the whole text. */
  check(turns: Turn[]): Promise<Delivery>;
  /** Calls the emulator refused so far: rate limited, and other failures. */
  refused(): { limited: number; errors: number };
  close(): Promise<void>;
}

/** Telegram: private chats; a reply is finished with the sendMessage/editMessageText carrying its whole text. */
export function telegram(emulator: string): ChatPlatform {
  const replies = new Replies();
  const base = 7_000_000_000 + Math.floor(Math.random() * 1_000_000_000);
  const reply = /Mock reply: (ping [a-z]+ \d+ \d+ end)/;
  let limited = 0;
  let errors = 0;
  const feed = new CallFeed<TgCall>(`${emulator}/_emulator/calls`, (calls) => {
    for (const c of calls) {
      if (!c.ok) {
        if (c.error_code === 429) limited++;
        else errors++;
        continue;
      }
      if (c.method !== 'sendMessage' && c.method !== 'editMessageText') continue;
      const m = reply.exec(String(c.params.text ?? ''));
      if (m) replies.shown(m[1]!, c.at);
    }
  });
  return {
    name: 'telegram',
    async send(user, text) {
      const id = base + user;
      const turn: Turn = { platform: 'telegram', text, chat: String(id), sentAt: 0, done: Promise.resolve() };
      turn.done = replies.expect(text, turn);
      turn.sentAt = Date.now();
      await postJson(`${emulator}/_emulator/messages`, {
        chat: { id, type: 'private' },
        from: { id, first_name: `User ${user}` },
        text,
      });
      return turn;
    },
    async check(turns) {
      let duplicates = 0;
      let lost = 0;
      await eachLimit([...byChat(turns)], 16, async ([chat, mine]) => {
        const view = await getJson<TgChat>(`${emulator}/_emulator/chats/${chat}`);
        const shown = view.botMessages.filter((m) => !m.deleted).map((m) => m.text);
        for (const t of mine) {
          const n = shown.filter((s) => s.includes(`Mock reply: ${t.text}`)).length;
          if (n === 0) lost++;
          else duplicates += n - 1;
        }
      });
      return { duplicates, lost };
    },
    refused: () => ({ limited, errors }),
    close: () => feed.stop(),
  };
}

const parseJson = (s: unknown): any => {
  try {
    return typeof s === 'string' ? JSON.parse(s) : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Feishu: p2p chats over the long connection; a reply is a CardKit card answering the user's message,
 * finished when its streaming mode is switched off.
 */
export function feishu(emulator: string): ChatPlatform {
  const replies = new Replies();
  const run = randomBytes(8).toString('hex');
  const answers = new Map<string, string>(); // card_id → the message it answers
  const bornFinished = new Set<string>(); // cards created with streaming mode off
  let limited = 0;
  let errors = 0;
  const feed = new CallFeed<FsCall>(`${emulator}/_emulator/calls`, (calls) => {
    for (const c of calls) {
      if (c.status !== 200 || c.code !== 0) {
        if (c.status === 429 || c.code === 230020 || c.code === 99991400) limited++;
        else errors++;
        continue;
      }
      const body = c.body as { content?: string; settings?: string; data?: string; card?: { data?: string } };
      const closes = (card: string) => {
        const parent = answers.get(card);
        if (parent) {
          answers.delete(card);
          replies.shown(parent, c.at + c.ms);
        }
      };
      if (c.api === 'card.create') {
        // a short answer's card is created finished: it shows once the reply carrying it is sent
        if (parseJson(body.data)?.config?.streaming_mode !== true)
          bornFinished.add(String((c.data as { card_id?: string } | undefined)?.card_id));
      } else if (c.api === 'message.reply') {
        const content = parseJson(body.content);
        const parent = /\/messages\/([^/]+)\/reply$/.exec(c.path)?.[1];
        const card = String(content?.data?.card_id);
        if (content?.type === 'card' && parent) {
          answers.set(card, parent);
          if (bornFinished.delete(card)) closes(card);
        }
      } else if (c.api === 'card.settings' && parseJson(body.settings)?.config?.streaming_mode === false) {
        closes(/\/cards\/([^/]+)\/settings$/.exec(c.path)?.[1] ?? '');
      } else if (c.api === 'card.update' && parseJson(body.card?.data)?.config?.streaming_mode !== true) {
        closes(/\/cards\/([^/]+)$/.exec(c.path)?.[1] ?? '');
      }
    }
  });
  return {
    name: 'feishu',
    async send(user, text) {
      const sentAt = Date.now();
      const r = await postJson<{ message_id: string; chat_id: string }>(`${emulator}/_emulator/messages`, {
        chat: { type: 'p2p' },
        sender: { open_id: `ou_${run}${user.toString(16).padStart(16, '0')}`, name: `User ${user}` },
        text,
      });
      const turn: Turn = {
        platform: 'feishu',
        text,
        chat: r.chat_id,
        messageId: r.message_id,
        sentAt,
        done: Promise.resolve(),
      };
      turn.done = replies.expect(r.message_id, turn);
      return turn;
    },
    async check(turns) {
      let duplicates = 0;
      let lost = 0;
      await eachLimit([...byChat(turns)], 16, async ([chat, mine]) => {
        const view = await getJson<FsChat>(`${emulator}/_emulator/chats/${encodeURIComponent(chat)}`);
        for (const t of mine) {
          const shown = view.botMessages.filter(
            (m) => m.parent_id === t.messageId && !m.deleted && !m.recalled,
          );
          const whole = shown.some(
            (m) => m.card && !m.card.streaming_mode && m.text.includes(`Mock reply: ${t.text}`),
          );
          if (!whole) lost++;
          duplicates += Math.max(0, shown.length - 1);
        }
      });
      return { duplicates, lost };
    },
    refused: () => ({ limited, errors }),
    close: () => feed.stop(),
  };
}

/** The last user message of a chat completion request, as text. */
function lastUserText(body: any): string | undefined {
  const messages = Array.isArray(body?.messages) ? (body.messages as any[]) : [];
  const last = messages.findLast((m) => m?.role === 'user');
  if (typeof last?.content === 'string') return last.content;
  if (Array.isArray(last?.content))
    return (last.content as any[])
      .map((p) => (typeof p?.text === 'string' ? p.text : ''))
      .join('')
      .trim();
  return undefined;
}

/**
 * How long the model itself took for each turn: from the mock's record of the request whose last user
 * message is the turn's text, the time from its arrival to the end of its answer. The mock keeps only
 * its last 1000 requests (and sends them all at each read, a few MB), so it is read as seldom as the
 * request rate allows; `missed` counts records gone before they were read, `other` the model calls
 * that answer no turn (memory extraction, say).
 */
export class ModelTimes {
  private readonly ms = new Map<string, number>();
  private readonly seen = new Set<number>();
  private newest = 0;
  other = 0;
  missed = 0;
  private readonly stopping = new AbortController();
  private readonly loop: Promise<void>;
  private readonly url: string;

  constructor(mock: string) {
    this.url = `${mock}/_mock/requests`;
    this.loop = this.run();
  }

  get(text: string): number | undefined {
    return this.ms.get(text);
  }

  private async run(): Promise<void> {
    let every = 1000;
    while (!this.stopping.signal.aborted) {
      const fresh = await this.read().catch(() => 0);
      // next read when about 400 more have arrived, at the rate just seen
      every = Math.min(10_000, Math.max(500, fresh ? (400 / fresh) * every : every * 2));
      await sleep(every, undefined, { signal: this.stopping.signal }).catch(() => {});
    }
  }

  /** Reads the mock's records now; how many were new. */
  async read(): Promise<number> {
    const records = await getJson<Array<Omit<RecordedRequest, 'headers'>>>(this.url);
    let oldest = Number.POSITIVE_INFINITY;
    let fresh = 0;
    for (const r of records) {
      oldest = Math.min(oldest, r.seq);
      if (r.finishedAt === undefined || this.seen.has(r.seq)) continue;
      this.seen.add(r.seq);
      fresh++;
      const text = lastUserText(r.body)?.trim();
      if (text && TURN_TEXT.test(text) && !this.ms.has(text)) this.ms.set(text, r.finishedAt - r.startedAt);
      else this.other++;
    }
    if (records.length && oldest > this.newest + 1) this.missed += oldest - this.newest - 1;
    for (const r of records) this.newest = Math.max(this.newest, r.seq);
    for (const seq of this.seen) if (seq < oldest) this.seen.delete(seq);
    return fresh;
  }

  stop(): Promise<void> {
    this.stopping.abort();
    return this.loop;
  }
}
