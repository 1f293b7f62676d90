import { InboundMessage, type Logger } from '@pincer/shared';
import { UnrecoverableError } from 'bullmq';
import { DelayedError, type Job } from '../repositories/queues.ts';
import type { Engine } from '../services/engine.ts';
import type { CoreMetrics } from '../services/metrics.ts';

/** How long a message waits before checking again whether its chat's turn is free. */
const WAIT_MS = 250;

/** The `inbound` handler: validate, then hand to the engine; a busy chat delays the job instead of holding a slot. */
export function inboundHandler(engine: Engine, metrics: CoreMetrics, log: Logger) {
  return async (job: Job, token: string | undefined): Promise<void> => {
    const parsed = InboundMessage.safeParse(job.data);
    if (!parsed.success) {
      metrics.errors.inc({ kind: 'bad_inbound_payload' });
      const issue = parsed.error.issues[0]!;
      const reason = `malformed inbound payload: ${issue.path.join('.') || '(root)'}: ${issue.message}`;
      log.warn('inbound job refused', { jobId: job.id, reason });
      // to the failed set with its reason, never retried, nothing else affected
      throw new UnrecoverableError(reason);
    }
    const outcome = await engine.handleInbound(parsed.data);
    if (outcome === 'wait') {
      await job.moveToDelayed(Date.now() + WAIT_MS, token);
      throw new DelayedError();
    }
  };
}
