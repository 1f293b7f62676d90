import type { Logger } from '@pincer/shared';
import { UnrecoverableError } from 'bullmq';
import { DelayedError, type Job } from '../repositories/queues.ts';
import { firingOf, TASK_JOB, type TaskScheduler } from '../services/automations.ts';
import { WORKFLOW_JOB, type WorkflowJobData, type WorkflowRunner } from '../services/workflows.ts';

type Handler = (job: Job, token: string | undefined) => Promise<unknown>;

/**
 * The `automations` handler: `task` fires a reminder or recurring task, `workflow` executes a run.
 * Every job name of the queue has exactly one handler here. A firing or run held by another process
 * is looked at again once that process's lease lapses (without using up one of the job's tries).
 */
export function automationsHandler(d: {
  tasks: TaskScheduler;
  workflows: WorkflowRunner;
  log: Logger;
}): Handler {
  const later = async (job: Job, token: string | undefined, at: number) => {
    await job.moveToDelayed(Math.max(at, Date.now() + 250), token);
    throw new DelayedError();
  };
  const handlers: Record<typeof TASK_JOB | typeof WORKFLOW_JOB, Handler> = {
    [TASK_JOB]: async (job, token) => {
      const { taskId, slot } = firingOf(job);
      const attempts = job.opts.attempts ?? 1;
      const r = await d.tasks.fire(taskId, slot, {
        finalAttempt: job.attemptsMade + 1 >= attempts,
        workflows: d.workflows,
        requestId: `task-${taskId}-${slot}`,
      });
      if (r.outcome === 'busy') return later(job, token, r.retryAt);
      return r.outcome;
    },
    [WORKFLOW_JOB]: async (job, token) => {
      const { runId } = job.data as WorkflowJobData;
      const r = await d.workflows.execute(runId, `workflow-${runId}`);
      if (r.outcome === 'busy') return later(job, token, r.retryAt);
      return r.outcome;
    },
  };
  return async (job, token) => {
    const handler = Object.hasOwn(handlers, job.name)
      ? handlers[job.name as keyof typeof handlers]
      : undefined;
    if (!handler) {
      d.log.error('automations job with no handler', { jobId: job.id, name: job.name });
      throw new UnrecoverableError(`no handler for the job name "${job.name}"`);
    }
    return handler(job, token);
  };
}
