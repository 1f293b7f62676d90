/**
 * A Map whose entries lapse `ttlMs` after they were last set: per-reply bookkeeping (pacing times,
 * failure counts) that is normally deleted when the reply finishes, but must not pile up for replies
 * finished elsewhere (another replica) or never finished at all.
 */
export class RecentMap<V> {
  private readonly entries = new Map<string, { v: V; at: number }>();
  private readonly ttlMs: number;
  private writes = 0;

  constructor(ttlMs: number) {
    this.ttlMs = ttlMs;
  }

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (Date.now() - e.at > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e.v;
  }

  set(key: string, v: V): this {
    this.entries.set(key, { v, at: Date.now() });
    if (++this.writes >= 256) this.sweep();
    return this;
  }

  delete(key: string): boolean {
    return this.entries.delete(key);
  }

  private sweep(): void {
    this.writes = 0;
    const old = Date.now() - this.ttlMs;
    for (const [k, e] of this.entries) if (e.at < old) this.entries.delete(k);
  }
}
