import { AppError } from '@pincer/shared';
import type { ProviderConfig } from '../config.ts';

export type BreakerState = 'closed' | 'open' | 'half_open';

/** One inference server: its capacity, its health as probes and real traffic see it. */
export class UpstreamNode {
  readonly id: string;
  readonly url: string;
  readonly maxConcurrency: number;
  inFlight = 0;
  /** Result of the last active probe; undefined until the first one. */
  probeUp: boolean | undefined;
  probeDetail = '';
  breaker: BreakerState = 'closed';
  consecutiveFailures = 0;
  openedAt = 0;
  openUntil = 0;
  cooldownMs: number;
  trialInFlight = false;
  lastFailureAt = 0;
  lastError = '';
  /** Smoothed latency to the first token, ms (for the console and tie-breaks). */
  latencyMs = 0;
  requests = 0;

  readonly provider: UpstreamProvider;

  constructor(provider: UpstreamProvider, index: number, node: ProviderConfig['nodes'][number]) {
    this.provider = provider;
    this.id = node.name ?? `${provider.id}-${index}`;
    this.url = node.url.replace(/\/+$/, '');
    this.maxConcurrency = node.max_concurrency;
    this.cooldownMs = provider.config.breaker.cooldown_ms;
  }

  /** Whether normal traffic may use this node now (a half-open node takes one trial at a time). */
  available(now: number): boolean {
    if (this.probeUp === false && this.breaker === 'closed') return false;
    if (this.breaker === 'closed') return true;
    if (this.breaker === 'open' && now >= this.openUntil) return !this.trialInFlight;
    return this.breaker === 'half_open' && !this.trialInFlight;
  }

  get hasCapacity(): boolean {
    return this.inFlight < this.maxConcurrency;
  }

  /** A request succeeded (reached its first token): close the breaker. */
  recordSuccess(latencyMs: number): void {
    this.consecutiveFailures = 0;
    this.trialInFlight = false;
    if (this.breaker !== 'closed') {
      this.breaker = 'closed';
      this.cooldownMs = this.provider.config.breaker.cooldown_ms;
    }
    this.latencyMs = this.latencyMs === 0 ? latencyMs : this.latencyMs * 0.8 + latencyMs * 0.2;
  }

  /** A request failed in a way that says the node is unwell (connect error, 5xx, timeout). */
  recordFailure(now: number, reason: string): void {
    this.lastFailureAt = now;
    this.lastError = reason;
    this.consecutiveFailures++;
    const cfg = this.provider.config.breaker;
    if (this.breaker === 'half_open' || this.trialInFlight) {
      // the trial failed: open again, for longer
      this.cooldownMs = Math.min(this.cooldownMs * 2, cfg.max_cooldown_ms);
      this.open(now);
    } else if (this.breaker === 'closed' && this.consecutiveFailures >= cfg.failure_threshold) {
      this.open(now);
    }
    this.trialInFlight = false;
  }

  private open(now: number): void {
    this.breaker = 'open';
    this.openedAt = now;
    // jitter so that replicas and nodes do not retry in lockstep
    this.openUntil = now + this.cooldownMs * (0.8 + Math.random() * 0.4);
  }

  /** Marks the start of a request on this node; the first one after a cooldown is the half-open trial. */
  begin(now: number): void {
    this.inFlight++;
    this.requests++;
    if (this.breaker === 'open' && now >= this.openUntil) this.breaker = 'half_open';
    if (this.breaker !== 'closed') this.trialInFlight = true;
  }

  end(): void {
    this.inFlight--;
  }

  /** Forget a trial that ended without telling us anything about the node (client abort). */
  abandonTrial(): void {
    if (this.trialInFlight) {
      this.trialInFlight = false;
      if (this.breaker === 'half_open') this.breaker = 'open';
    }
  }

  status() {
    return {
      id: this.id,
      provider: this.provider.id,
      url: this.url,
      in_flight: this.inFlight,
      max_concurrency: this.maxConcurrency,
      probe: this.probeUp === undefined ? 'unknown' : this.probeUp ? 'up' : 'down',
      probe_detail: this.probeDetail,
      breaker: this.breaker,
      consecutive_failures: this.consecutiveFailures,
      last_error: this.lastError || null,
      latency_ms: Math.round(this.latencyMs),
      requests: this.requests,
    };
  }
}

interface Waiter {
  priority: number;
  /** Nodes this request already failed on: avoided when another node is free. */
  exclude: ReadonlySet<UpstreamNode> | undefined;
  seq: number;
  resolve: (node: UpstreamNode) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  onAbort: () => void;
  signal: AbortSignal;
  enqueuedAt: number;
}

export class NoNodeAvailable extends Error {
  readonly provider: string;
  constructor(provider: string) {
    super(`no healthy node for provider ${provider}`);
    this.provider = provider;
  }
}

/** A provider's nodes, the choice between them and the bounded wait for a free slot. */
export class UpstreamProvider {
  readonly nodes: UpstreamNode[];
  private readonly waiters: Waiter[] = [];
  private seq = 0;
  private rr = 0;

  readonly id: string;
  readonly config: ProviderConfig;
  private readonly balance: 'least_busy' | 'round_robin';
  private readonly onQueueChange: (provider: string, depth: number) => void;

  constructor(
    id: string,
    config: ProviderConfig,
    balance: 'least_busy' | 'round_robin',
    onQueueChange: (provider: string, depth: number) => void = () => {},
  ) {
    this.id = id;
    this.config = config;
    this.balance = balance;
    this.onQueueChange = onQueueChange;
    this.nodes = config.nodes.map((n, i) => new UpstreamNode(this, i, n));
  }

  get queueDepth(): number {
    return this.waiters.length;
  }

  /** Whether any node could take traffic now or after a wait (not all broken or down). */
  anyAvailable(now: number, exclude?: ReadonlySet<UpstreamNode>): boolean {
    return this.nodes.some((n) => n.available(now) && !exclude?.has(n));
  }

  /** The node that failed longest ago: the last resort when every node is open. */
  leastRecentlyFailed(exclude?: ReadonlySet<UpstreamNode>): UpstreamNode | undefined {
    let best: UpstreamNode | undefined;
    for (const n of this.nodes)
      if (!exclude?.has(n) && (!best || n.lastFailureAt < best.lastFailureAt)) best = n;
    return best;
  }

  private pick(now: number, exclude?: ReadonlySet<UpstreamNode>): UpstreamNode | undefined {
    const nodes = this.nodes;
    const n = nodes.length;
    if (this.balance === 'round_robin') {
      for (let i = 0; i < n; i++) {
        const node = nodes[(this.rr + i) % n]!;
        if (node.hasCapacity && node.available(now) && !exclude?.has(node)) {
          this.rr = (this.rr + i + 1) % n;
          return node;
        }
      }
      return undefined;
    }
    let best: UpstreamNode | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    // start where the last pick left off so equal loads spread evenly
    for (let i = 0; i < n; i++) {
      const node = nodes[(this.rr + i) % n]!;
      if (!node.hasCapacity || !node.available(now) || exclude?.has(node)) continue;
      const load = node.inFlight / node.maxConcurrency;
      if (load < bestLoad) {
        best = node;
        bestLoad = load;
      }
    }
    if (best) this.rr = (nodes.indexOf(best) + 1) % n;
    return best;
  }

  /**
   * A node with a free slot, waiting in a bounded priority queue when all are busy. `force` takes a
   * given node regardless of its breaker (the last resort). Throws NoNodeAvailable when no node may
   * take traffic, and a 429 AppError when the queue is full or the wait expires.
   */
  acquire(
    priority: number,
    signal: AbortSignal,
    exclude?: ReadonlySet<UpstreamNode>,
    force?: UpstreamNode,
  ): Promise<UpstreamNode> | UpstreamNode {
    const now = Date.now();
    if (force) {
      if (force.hasCapacity) {
        force.begin(now);
        return force;
      }
    } else {
      const node = this.pick(now, exclude);
      if (node) {
        node.begin(now);
        return node;
      }
      if (!this.anyAvailable(now, exclude)) throw new NoNodeAvailable(this.id);
    }
    const { size, timeout_ms } = this.config.queue;
    if (this.waiters.length >= size) throw this.busy('queue_full');
    return new Promise<UpstreamNode>((resolve, reject) => {
      const waiter: Waiter = {
        priority,
        exclude,
        seq: this.seq++,
        resolve,
        reject,
        signal,
        enqueuedAt: now,
        timer: setTimeout(() => {
          this.remove(waiter);
          reject(this.busy('queue_timeout'));
        }, timeout_ms),
        onAbort: () => {
          this.remove(waiter);
          clearTimeout(waiter.timer);
          reject(signal.reason ?? new Error('aborted'));
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.scheduleWake(now);
      // higher priority first, then arrival order
      let i = this.waiters.length;
      while (i > 0 && this.waiters[i - 1]!.priority < priority) i--;
      this.waiters.splice(i, 0, waiter);
      this.onQueueChange(this.id, this.waiters.length);
    });
  }

  private busy(code: 'queue_full' | 'queue_timeout'): AppError {
    const retryAfter = Math.max(1, Math.ceil(this.config.queue.timeout_ms / 4000));
    const msg =
      code === 'queue_full'
        ? `all nodes of ${this.id} are busy and the wait queue is full`
        : `no node of ${this.id} became free in time`;
    return new AppError(429, code, `${msg}; retry after ${retryAfter}s`, {
      type: 'rate_limit_error',
      headers: { 'retry-after': String(retryAfter) },
    });
  }

  private remove(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) {
      this.waiters.splice(i, 1);
      this.onQueueChange(this.id, this.waiters.length);
    }
    w.signal.removeEventListener('abort', w.onAbort);
  }

  /** Frees a slot and hands it to the first waiter that a node can now serve. */
  release(node: UpstreamNode): void {
    node.end();
    this.dispatch();
  }

  /** Hands free slots to waiters, highest priority first; called on release and when a node recovers. */
  dispatch(): void {
    while (this.waiters.length) {
      const now = Date.now();
      const w = this.waiters[0]!;
      const next = this.pick(now, w.exclude) ?? this.pick(now);
      if (!next) {
        // nothing can serve the queue any more (every node broke): fail the waiters fast
        if (!this.anyAvailable(now))
          for (const x of [...this.waiters]) this.failWaiter(x, new NoNodeAvailable(this.id));
        else this.scheduleWake(now);
        return;
      }
      this.waiters.shift();
      this.onQueueChange(this.id, this.waiters.length);
      clearTimeout(w.timer);
      w.signal.removeEventListener('abort', w.onAbort);
      next.begin(now);
      w.resolve(next);
    }
  }

  private wake: NodeJS.Timeout | undefined;

  /** Waiters are woken when an open node's cooldown ends, not only when a slot is released. */
  private scheduleWake(now: number): void {
    if (this.wake) return;
    let at = Number.POSITIVE_INFINITY;
    for (const n of this.nodes) if (n.breaker === 'open' && n.openUntil > now) at = Math.min(at, n.openUntil);
    if (at === Number.POSITIVE_INFINITY) return;
    this.wake = setTimeout(
      () => {
        this.wake = undefined;
        this.dispatch();
      },
      at - now + 1,
    );
    this.wake.unref();
  }

  private failWaiter(w: Waiter, err: Error): void {
    this.remove(w);
    clearTimeout(w.timer);
    w.reject(err);
  }
}
