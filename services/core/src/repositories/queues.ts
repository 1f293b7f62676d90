import { type OutboundAction, QUEUE_DEFAULTS, QueueName } from '@pincer/shared';
import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

export { DelayedError, type Job, type Queue };

/** One Redis connection factory for BullMQ (it needs maxRetriesPerRequest: null on blocking connections). */
export function redisConnection(url: string): Redis {
  const r = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
  r.on('error', () => {});
  return r;
}

/** PING with a deadline on a connection of its own that never retries (`pincer doctor`). */
export async function pingRedis(url: string, timeoutMs: number): Promise<string> {
  const r = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  r.on('error', () => {});
  try {
    await r.connect();
    return await r.ping();
  } finally {
    r.disconnect();
  }
}

let seqCounter = 0;
/**
 * Sequence numbers for outbound actions that grow across runs and processes: a re-run after a crash
 * supersedes the dead run's actions of the same reply.
 */
export function nextActionSeq(): number {
  seqCounter = (seqCounter + 1) % 1000;
  return Date.now() * 1000 + seqCounter;
}

/** Publishes outbound actions to the adapters; each action is a job named after its type. */
export class OutboundPublisher {
  private readonly queues = new Map<string, Queue>();
  private readonly connection: Redis;
  private readonly prefix: string;

  constructor(connection: Redis, prefix: string) {
    this.connection = connection;
    this.prefix = prefix;
  }

  private queue(platform: 'telegram' | 'feishu'): Queue {
    const name = platform === 'telegram' ? QueueName.OutboundTelegram : QueueName.OutboundFeishu;
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, {
        connection: this.connection,
        prefix: this.prefix,
        defaultJobOptions: { ...QUEUE_DEFAULTS },
      });
      this.queues.set(name, q);
    }
    return q;
  }

  async publish(platform: 'telegram' | 'feishu', action: OutboundAction): Promise<void> {
    await this.queue(platform).add(action.type, action, { jobId: `${action.reply_id}#${action.seq}` });
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}

/**
 * Jobs waiting (or delayed) on every Pincer queue, for the backlog gauge: a growing number means the
 * consumers (core workers, adapters) fall behind.
 */
export class QueueBacklog {
  private readonly queues: Queue[];

  constructor(connection: Redis, prefix: string) {
    this.queues = [
      QueueName.Inbound,
      QueueName.OutboundTelegram,
      QueueName.OutboundFeishu,
      QueueName.Knowledge,
      QueueName.Memory,
      QueueName.Automations,
    ].map((name) => new Queue(name, { connection, prefix }));
  }

  async counts(): Promise<Array<{ queue: string; waiting: number }>> {
    return Promise.all(
      this.queues.map(async (q) => {
        const c = await q.getJobCounts('waiting', 'delayed', 'prioritized');
        return { queue: q.name, waiting: Object.values(c).reduce((a, b) => a + b, 0) };
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}

/** The inbound worker: `concurrency` jobs at once per process; stalled jobs (a dead process) run again. */
export function inboundWorker(
  connection: Redis,
  prefix: string,
  concurrency: number,
  lockMs: number,
  handler: (job: Job, token: string | undefined) => Promise<unknown>,
): Worker {
  return new Worker(QueueName.Inbound, handler, {
    connection,
    prefix,
    concurrency,
    // a crashed worker's job is noticed once its lock lapses and is handed to another process
    lockDuration: lockMs,
    stalledInterval: Math.max(500, Math.floor(lockMs / 2)),
    maxStalledCount: 5,
  });
}

/** A queue for core's own periodic jobs (audit retention, pairing expiry): run once across processes. */
export function maintenanceQueue(connection: Redis, prefix: string): Queue {
  return new Queue(QueueName.CoreMaintenance, { connection, prefix });
}

export function maintenanceWorker(
  connection: Redis,
  prefix: string,
  handler: (job: Job) => Promise<unknown>,
): Worker {
  return new Worker(QueueName.CoreMaintenance, handler, { connection, prefix, concurrency: 1 });
}

/** Task firings (job "task") and workflow runs (job "workflow"): each job runs once across processes. */
export function automationsQueue(connection: Redis, prefix: string): Queue {
  return new Queue(QueueName.Automations, {
    connection,
    prefix,
    defaultJobOptions: {
      attempts: 5,
      backoff: { type: 'exponential', delay: 5_000 },
      removeOnComplete: { age: 24 * 3600, count: 5_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  });
}

export function automationsWorker(
  connection: Redis,
  prefix: string,
  concurrency: number,
  handler: (job: Job, token: string | undefined) => Promise<unknown>,
): Worker {
  return new Worker(QueueName.Automations, handler, {
    connection,
    prefix,
    concurrency,
    // the lock is renewed while a job runs; a dead process's job is taken over once it lapses
    lockDuration: 30_000,
    maxStalledCount: 3,
  });
}
