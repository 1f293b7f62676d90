import { RecentMap } from './recent.ts';

/**
 * How long a reply waits after a failure that trying again may cure (an outage, a rate limit that
 * names no reset time): 0.5 s, doubling with each failure in a row, at most 30 s. Counted per reply,
 * forgotten on success or when the reply ends, and lapsing on their own for replies finished elsewhere.
 */
export class ReplyBackoff {
  private readonly failures = new RecentMap<number>(30 * 60_000);

  /** Counts one more failure of the reply and returns the wait before its next try. */
  next(replyId: string): number {
    const n = (this.failures.get(replyId) ?? 0) + 1;
    this.failures.set(replyId, n);
    return Math.min(30_000, 500 * 2 ** (n - 1));
  }

  reset(replyId: string): void {
    this.failures.delete(replyId);
  }
}
