import {
  InboundMessage,
  type InboundMessageInput,
  inboundJobId,
  QUEUE_DEFAULTS,
  QueueName,
} from '@pincer/shared';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * Puts normalised chat messages on the `inbound` queue. The job id is derived from the platform
 * message, so a redelivered event (a repeated poll, a webhook retry, a second replica) is the same job.
 */
export class InboundPublisher {
  private readonly queue: Queue;

  constructor(connection: Redis, prefix: string) {
    this.queue = new Queue(QueueName.Inbound, {
      connection,
      prefix,
      defaultJobOptions: { ...QUEUE_DEFAULTS },
    });
  }

  /**
   * Validates and enqueues; resolves once Redis holds every valid job (the caller may then confirm to
   * the platform). A message that does not fit the contract is returned, not queued: one bad update
   * must never hold up the others (a poller would otherwise fetch the same batch forever).
   */
  async publish(
    messages: readonly InboundMessageInput[],
  ): Promise<{ rejected: Array<{ message: unknown; error: string }> }> {
    const rejected: Array<{ message: unknown; error: string }> = [];
    const jobs = [];
    for (const m of messages) {
      const r = InboundMessage.safeParse(m);
      if (r.success) jobs.push({ name: r.data.event, data: r.data, opts: { jobId: inboundJobId(r.data) } });
      else rejected.push({ message: m, error: r.error.message });
    }
    const [one] = jobs;
    if (jobs.length === 1 && one) await this.queue.add(one.name, one.data, one.opts);
    else if (jobs.length > 1) await this.queue.addBulk(jobs);
    return { rejected };
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
