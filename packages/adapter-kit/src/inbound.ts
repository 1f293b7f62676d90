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

  /** Validates and enqueues; resolves once Redis holds every job (the caller may then confirm to the platform). */
  async publish(messages: readonly InboundMessageInput[]): Promise<void> {
    if (messages.length === 0) return;
    const jobs = messages.map((m) => {
      const data = InboundMessage.parse(m);
      return { name: data.event, data, opts: { jobId: inboundJobId(data) } };
    });
    const [one] = jobs;
    if (jobs.length === 1 && one) await this.queue.add(one.name, one.data, one.opts);
    else await this.queue.addBulk(jobs);
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
