// Sliding one-second windows, one per key (a chat, a message, a card, an API). Only admitted
// requests count, so a client that backs off gets through again after the window slides.

export class RateWindow {
  readonly perSecond: number;
  private readonly hits = new Map<string, number[]>();

  constructor(perSecond: number) {
    this.perSecond = perSecond;
  }

  /** Admit one request for `key` now, or answer how many ms until a slot frees. */
  take(key: string, now = Date.now()): { ok: true } | { ok: false; retryInMs: number } {
    let list = this.hits.get(key);
    if (!list) {
      list = [];
      this.hits.set(key, list);
    }
    while (list.length > 0 && (list[0] as number) <= now - 1000) list.shift();
    if (list.length >= this.perSecond) return { ok: false, retryInMs: (list[0] as number) + 1000 - now };
    list.push(now);
    return { ok: true };
  }
}

export interface Limits {
  chat: RateWindow;
  messagePatch: RateWindow;
  card: RateWindow;
  app: RateWindow;
}

export function makeLimits(
  opts:
    | false
    | { chatQps?: number; messagePatchQps?: number; cardOpsPerSec?: number; appQps?: number }
    | undefined,
): Limits | undefined {
  if (opts === false) return undefined;
  return {
    chat: new RateWindow(opts?.chatQps ?? 5),
    messagePatch: new RateWindow(opts?.messagePatchQps ?? 5),
    card: new RateWindow(opts?.cardOpsPerSec ?? 10),
    app: new RateWindow(opts?.appQps ?? 50),
  };
}
