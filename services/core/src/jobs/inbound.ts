import { InboundMessage, type Logger } from '@pincer/shared';
import { UnrecoverableError } from 'bullmq';
import { DelayedError, type Job } from '../repositories/queues.ts';
import type { Engine, InboundOutcome } from '../services/engine.ts';
import type { CoreMetrics } from '../services/metrics.ts';

/** How long a message waits before checking again whether its chat's turn is free. */
const WAIT_MS = 250;
/** Transient failures (database, Redis) are retried by core itself, with backoff, this many times. */
const MAX_RETRIES = 6;

/** What core keeps in an inbound job between runs (the adapter's payload is left as it was). */
interface CoreState {
  scope?: string;
  message_id?: number;
  retries?: number;
}

/**
 * The `inbound` handler: validate, then hand to the engine. A busy chat delays the job instead of
 * holding a worker slot, and the job comes back straight to the chat's queue, without a second
 * intake (no second rate count, no second identity lookup).
 */
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
    const state: CoreState = (job.data as { _core?: CoreState })._core ?? {};
    const later = async (next: CoreState, delayMs: number) => {
      await job.updateData({ ...job.data, _core: next });
      await job.moveToDelayed(Date.now() + delayMs, token);
      throw new DelayedError();
    };
    let outcome: InboundOutcome;
    try {
      outcome =
        state.scope && state.message_id !== undefined
          ? await engine.resumeInbound(parsed.data, state.scope, state.message_id)
          : await engine.handleInbound(parsed.data);
    } catch (err) {
      const retries = (state.retries ?? 0) + 1;
      metrics.errors.inc({ kind: 'inbound_retry' });
      log.warn('inbound job will be retried', { jobId: job.id, retries, error: (err as Error).message });
      if (retries > MAX_RETRIES) throw err;
      return later({ ...state, retries }, Math.min(30_000, 250 * 2 ** retries));
    }
    if (outcome.outcome === 'wait')
      return later({ ...state, scope: outcome.scope, message_id: outcome.messageId }, WAIT_MS);
  };
}
