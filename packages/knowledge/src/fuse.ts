// Reciprocal rank fusion (Cormack et al., 2009): each list contributes weight / (k + rank). It needs no
// calibration between a cosine similarity and a ts_rank, which live on unrelated scales.

export interface Ranked {
  id: string;
  score: number;
}

export interface Fused {
  id: string;
  score: number;
  /** The item's 1-based rank in each input list, 0 where it is absent. */
  ranks: number[];
}

export interface FuseOptions {
  /** Damping constant: larger values flatten the difference between top ranks (default 60). */
  k?: number;
  /** One weight per list (default 1 each). */
  weights?: number[];
}

/** Fuse ranked lists, each given best first, into one ranking, best first. */
export function fuseRankings(lists: Ranked[][], opts: FuseOptions = {}): Fused[] {
  const k = opts.k ?? 60;
  if (!(k >= 0)) throw new RangeError('k must be a non-negative number');
  if (opts.weights && opts.weights.length !== lists.length) {
    throw new RangeError('weights must have one entry per list');
  }
  const fused = new Map<string, Fused>();
  lists.forEach((list, li) => {
    const weight = opts.weights?.[li] ?? 1;
    let rank = 0;
    for (const item of list) {
      let entry = fused.get(item.id);
      if (!entry) {
        entry = { id: item.id, score: 0, ranks: new Array<number>(lists.length).fill(0) };
        fused.set(item.id, entry);
      }
      if (entry.ranks[li] !== 0) continue; // a duplicate in the same list counts once, at its best rank
      rank++;
      entry.ranks[li] = rank;
      entry.score += weight / (k + rank);
    }
  });
  const best = (f: Fused): number => Math.min(...f.ranks.map((r) => (r === 0 ? Infinity : r)));
  return [...fused.values()].sort(
    (a, b) => b.score - a.score || best(a) - best(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}
