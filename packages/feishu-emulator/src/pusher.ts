// Event delivery: one push per event to the current target (a webhook URL or one random live
// long connection), acked by HTTP 200 or an ack frame with code 200 within the deadline, otherwise
// pushed again on the (compressed) 15 s / 5 min / 1 h / 6 h schedule, at most four times.
import type { DeliveryRecord, EventEnvelope, EventTarget } from './types.ts';
import { buildWebhookRequest } from './webhook.ts';
import type { WebhookKeys } from './webhook.ts';

/** A long connection able to carry an event and report its ack. */
export interface EventConnection {
  deliver(payload: Buffer, ackTimeoutMs: number): Promise<{ code: number; error?: string }>;
}

interface Job {
  envelope: EventEnvelope;
  attempt: number;
}

export interface PusherOptions {
  ackTimeoutMs: number;
  redeliveryDelaysMs: number[];
  keys: WebhookKeys;
  records: DeliveryRecord[];
  connections: () => EventConnection[];
  onChange: () => void;
}

export class EventPusher {
  target: EventTarget = { ws: true };
  private readonly opts: PusherOptions;
  /** Jobs waiting for a long connection to open. */
  private held: Job[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inflight = new Set<AbortController>();
  private awaitingAcks = 0;
  private closed = false;

  constructor(opts: PusherOptions) {
    this.opts = opts;
  }

  push(envelope: EventEnvelope): void {
    this.run({ envelope, attempt: 0 });
  }

  /** Held events go out again: to a client that just connected, or to a new target. */
  releaseHeld(): void {
    const held = this.held;
    this.held = [];
    for (const job of held) this.run(job);
  }

  pending(): number {
    return this.held.length + this.timers.size + this.inflight.size + this.awaitingAcks;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.inflight) c.abort();
    this.held = [];
  }

  private run(job: Job): void {
    if (this.closed) return;
    const target = this.target;
    if ('webhook' in target) {
      void this.viaWebhook(job, target.webhook);
      return;
    }
    const conns = this.opts.connections();
    if (conns.length === 0) {
      this.held.push(job);
      return;
    }
    const conn = conns[Math.floor(Math.random() * conns.length)] as EventConnection;
    void this.viaConnection(job, conn);
  }

  private async viaWebhook(job: Job, url: string): Promise<void> {
    const { headers, body } = buildWebhookRequest(job.envelope, this.opts.keys);
    const ctl = new AbortController();
    this.inflight.add(ctl);
    const started = Date.now();
    let status = 0;
    let error: string | undefined;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.any([ctl.signal, AbortSignal.timeout(this.opts.ackTimeoutMs)]),
      });
      await res.arrayBuffer();
      status = res.status;
      if (status !== 200) error = `HTTP ${status}`;
    } catch (e) {
      const name = (e as Error).name;
      error =
        name === 'TimeoutError' || name === 'AbortError'
          ? `no HTTP 200 within ${this.opts.ackTimeoutMs} ms`
          : `request failed: ${(e as Error).message}`;
    } finally {
      this.inflight.delete(ctl);
    }
    if (this.closed) return;
    this.settle(job, 'webhook', status, status === 200, Date.now() - started, error);
  }

  private async viaConnection(job: Job, conn: EventConnection): Promise<void> {
    const started = Date.now();
    this.awaitingAcks++;
    const ack = await conn.deliver(Buffer.from(JSON.stringify(job.envelope)), this.opts.ackTimeoutMs);
    this.awaitingAcks--;
    if (this.closed) return;
    this.settle(job, 'ws', ack.code, ack.code === 200, Date.now() - started, ack.error);
  }

  private settle(
    job: Job,
    transport: 'webhook' | 'ws',
    status: number,
    ok: boolean,
    ms: number,
    error?: string,
  ): void {
    const delays = this.opts.redeliveryDelaysMs;
    const record: DeliveryRecord = {
      event_id: job.envelope.header.event_id,
      event_type: job.envelope.header.event_type,
      attempt: job.attempt,
      transport,
      status,
      ok,
      ms,
      at: Date.now(),
    };
    if (error) record.error = error;
    if (!ok && job.attempt >= delays.length) record.gaveUp = true;
    this.opts.records.push(record);
    if (!ok && job.attempt < delays.length) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.run({ envelope: job.envelope, attempt: job.attempt + 1 });
      }, delays[job.attempt]);
      this.timers.add(timer);
    }
    this.opts.onChange();
  }
}
