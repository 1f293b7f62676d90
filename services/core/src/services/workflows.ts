import type { Logger, OutboundAction } from '@pincer/shared';
import { DateTime } from 'luxon';
import type { CoreConfig, WorkflowSettings, WorkflowStepSettings } from '../config.ts';
import { writeAudit } from '../repositories/audit.ts';
import type { Db } from '../repositories/db.ts';
import type { LlmClient } from '../repositories/llm.ts';
import { nextActionSeq, type OutboundPublisher, type Queue } from '../repositories/queues.ts';
import type { Page } from '../repositories/tasks.ts';
import {
  claimRun,
  createRun,
  finishRun,
  getRun,
  listRuns,
  recordSteps,
  renewRun,
  type RunChat,
  type RunStatus,
  type RunTrigger,
  type StepRecord,
  unfinishedRuns,
  type WorkflowRun,
} from '../repositories/workflow-runs.ts';
import type { CoreMetrics } from './metrics.ts';
import type { ToolRegistry } from './tools/registry.ts';
import { roleAllows, type ToolCaller } from './tools/types.ts';

export type { RunChat, StepRecord, WorkflowRun };

/** The job that executes a run. */
export const WORKFLOW_JOB = 'workflow';
export interface WorkflowJobData {
  runId: string;
}

/** A step's output is kept (and handed to later steps after a resume) up to this many characters. */
const OUTPUT_MAX = 4000;
const LEASE_MS = 30_000;
const RENEW_MS = 10_000;
/** How long POST …/run with wait: true waits before answering 202 (ms). */
export const RUN_WAIT_MS = 60_000;

export type WorkflowErrorCode = 'not_found' | 'failed';

export class WorkflowError extends Error {
  readonly code: WorkflowErrorCode;
  constructor(code: WorkflowErrorCode, message: string) {
    super(message);
    this.name = 'WorkflowError';
    this.code = code;
  }
}

export interface StartOptions {
  trigger: RunTrigger;
  /** Values for {{input.<key>}} (a routing rule's run gets { text: the message }). */
  input?: Record<string, unknown>;
  /** The chat that started it: where message steps without `to` go. */
  chat?: RunChat;
  /** Who started it, for the run and the audit log ("admin-token", "telegram:42", "task:<id>"). */
  startedBy: string;
  /**
   * The same start asked for again (a re-delivered chat message or task firing) returns the first
   * run instead of starting a second, e.g. `route/<inbound job id>`.
   */
  key?: string;
}

interface WorkflowRunnerDeps {
  db: Db;
  config: CoreConfig;
  log: Logger;
  llm: LlmClient;
  outbound: OutboundPublisher;
  tools: ToolRegistry;
  /** The `automations` queue. */
  queue: Queue;
  metrics?: CoreMetrics;
}

const stepId = (s: WorkflowStepSettings, i: number) => s.id ?? `step${i + 1}`;
const stepKind = (s: WorkflowStepSettings): StepRecord['kind'] =>
  s.tool !== undefined ? 'tool' : s.prompt !== undefined ? 'prompt' : 'message';

/**
 * The workflows of workflows.yaml: starts runs (a row in workflow_runs and a job on the automations
 * queue) and executes them step by step, recording each step's outcome as it finishes.
 */
export class WorkflowRunner {
  private readonly d: WorkflowRunnerDeps;
  /** Aborted at shutdown, once the worker gave up waiting for the runs in flight. */
  private readonly stopping = new AbortController();

  /** Throws, naming workflow, step and tool, when a tool step names a tool core does not have. */
  constructor(deps: WorkflowRunnerDeps) {
    this.d = deps;
    const problems = workflowToolProblems(deps.config.workflows, deps.tools);
    if (problems.length)
      throw new Error(`workflows.yaml refers to tools that cannot run:\n  ${problems.join('\n  ')}`);
  }

  /** The workflows of workflows.yaml, by name. */
  get workflows(): Readonly<Record<string, WorkflowSettings>> {
    return this.d.config.workflows;
  }

  /** Records a run and queues it; it runs in whichever core process takes the job. */
  async start(name: string, o: StartOptions): Promise<WorkflowRun> {
    if (!this.d.config.workflows[name])
      throw new WorkflowError(
        'not_found',
        `No workflow "${name}" (known: ${Object.keys(this.d.config.workflows).join(', ') || 'none'}).`,
      );
    const { run, created } = await createRun(this.d.db, {
      workflow: name,
      trigger: o.trigger,
      startedBy: o.startedBy,
      input: o.input ?? {},
      chat: o.chat ?? null,
      dedupKey: o.key,
    });
    // a start that died between the row and the job left a queued run: queue it now (same job id)
    if (run.status === 'queued') {
      try {
        await this.enqueue(run.id);
      } catch (err) {
        if (created)
          await finishRun(
            this.d.db,
            run.id,
            'failed',
            `could not be queued: ${(err as Error).message}`,
          ).catch(() => {});
        throw err;
      }
    }
    if (created) {
      await writeAudit(this.d.db, {
        kind: 'workflow.run',
        actor: o.startedBy,
        platform: o.chat?.platform ?? null,
        outcome: 'queued',
        detail: { run_id: run.id, workflow: name, trigger: o.trigger },
      });
      this.d.log.info('workflow run queued', { runId: run.id, workflow: name, trigger: o.trigger });
    }
    return run;
  }

  private async enqueue(runId: string): Promise<void> {
    await this.d.queue.add(WORKFLOW_JOB, { runId } satisfies WorkflowJobData, { jobId: `workflow-${runId}` });
  }

  get(id: string): Promise<WorkflowRun | undefined> {
    return getRun(this.d.db, id);
  }

  list(f: {
    workflow?: string;
    status?: RunStatus;
    limit: number;
    before?: string;
  }): Promise<Page<WorkflowRun>> {
    return listRuns(this.d.db, f);
  }

  /** The run once it finished, or as it is after `timeoutMs`. */
  async waitFor(id: string, timeoutMs: number, signal?: AbortSignal): Promise<WorkflowRun> {
    const deadline = Date.now() + timeoutMs;
    let delay = 100;
    for (;;) {
      const run = await getRun(this.d.db, id);
      if (!run) throw new WorkflowError('not_found', `No run ${id}.`);
      if (run.status === 'succeeded' || run.status === 'failed' || Date.now() >= deadline || signal?.aborted)
        return run;
      await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
      delay = Math.min(delay * 1.5, 1000);
    }
  }

  /** At start: runs left unfinished whose job Redis lost (or that ran out of tries) are queued again. */
  async resumeUnfinished(): Promise<number> {
    let n = 0;
    for (const { id } of await unfinishedRuns(this.d.db)) {
      const job = await this.d.queue.getJob(`workflow-${id}`);
      if (job) {
        const state = await job.getState();
        if (state !== 'completed' && state !== 'failed' && state !== 'unknown') continue;
        await job.remove().catch(() => {});
      }
      await this.enqueue(id);
      n++;
    }
    if (n) this.d.log.info('unfinished workflow runs queued again', { runs: n });
    return n;
  }

  /**
   * Executes a run from its first unfinished step. After a crash the step that was running is run
   * again from its start: a message step is shown once (its reply id is stable), a prompt step asks the
   * model again, and a tool step calls its tool again — a tool with side effects may act twice.
   * Returns 'busy' (with when to look again) while another process holds the run.
   */
  async execute(
    runId: string,
    requestId: string,
  ): Promise<{ outcome: 'done' | 'finished' | 'unknown' } | { outcome: 'busy'; retryAt: number }> {
    const { db, log } = this.d;
    const claim = await claimRun(db, runId, LEASE_MS);
    if (claim.outcome === 'busy') return { outcome: 'busy', retryAt: claim.until.getTime() + 500 };
    if (claim.outcome !== 'claimed') return { outcome: claim.outcome };
    const { run } = claim;
    const workflow = this.d.config.workflows[run.workflow];
    if (!workflow) {
      await finishRun(db, runId, 'failed', `the workflow "${run.workflow}" is no longer in workflows.yaml`);
      return { outcome: 'done' };
    }
    const renew = setInterval(() => {
      renewRun(db, runId, LEASE_MS).catch((err: Error) =>
        log.warn('could not renew a workflow run', { runId, error: err.message }),
      );
    }, RENEW_MS);
    try {
      const outputs = new Map<string, string>();
      let previous = '';
      for (const s of run.steps) {
        if (s.status !== 'ok') continue;
        outputs.set(s.id, s.output);
        previous = s.output;
      }
      let stopped = run.steps.find((s) => s.status === 'failed' && stepOnError(workflow, s.id) === 'stop');
      for (let i = run.steps.length; i < workflow.steps.length; i++) {
        const step = workflow.steps[i]!;
        const id = stepId(step, i);
        if (stopped) {
          await recordSteps(db, runId, [
            { id, kind: stepKind(step), status: 'skipped', output: '', error: null, duration_ms: 0 },
          ]);
          continue;
        }
        const started = performance.now();
        const vars: TemplateVars = { previous, steps: outputs, input: run.input, now: this.now() };
        let record: StepRecord;
        try {
          const output = await this.runStep(run, workflow, step, id, vars, this.stopping.signal, requestId);
          record = {
            id,
            kind: stepKind(step),
            status: 'ok',
            output: cut(output),
            error: null,
            duration_ms: 0,
          };
          outputs.set(id, output);
          previous = output;
        } catch (err) {
          // shutting down is not the step's failure: the run is resumed by the next process
          if (this.stopping.signal.aborted) throw err;
          const error = (err as Error).message || String(err);
          record = { id, kind: stepKind(step), status: 'failed', output: '', error, duration_ms: 0 };
          if (step.on_error === 'stop') stopped = record;
        }
        record.duration_ms = Math.round(performance.now() - started);
        await recordSteps(db, runId, [record]);
        log.info('workflow step finished', {
          runId,
          workflow: run.workflow,
          step: id,
          status: record.status,
        });
      }
      const status = stopped ? 'failed' : 'succeeded';
      await finishRun(db, runId, status, stopped ? `step ${stopped.id} failed: ${stopped.error}` : null);
      this.d.metrics?.workflowRuns.inc({ workflow: run.workflow, status });
      log.info('workflow run finished', { runId, workflow: run.workflow, status });
      return { outcome: 'done' };
    } catch (err) {
      // the next try (the queue retries the job) may take the run over at once
      await renewRun(db, runId, 0).catch(() => {});
      throw err;
    } finally {
      clearInterval(renew);
    }
  }

  /** Stops the steps still running (after the worker's graceful close ran out of time). */
  close(): void {
    this.stopping.abort(new Error('core is shutting down'));
  }

  private now(): string {
    return DateTime.now().setZone(this.d.config.tools.timezone).toISO({ suppressMilliseconds: true }) ?? '';
  }

  private async runStep(
    run: WorkflowRun,
    workflow: WorkflowSettings,
    step: WorkflowStepSettings,
    id: string,
    vars: TemplateVars,
    signal: AbortSignal,
    requestId: string,
  ): Promise<string> {
    const { config, db, tools, log } = this.d;
    if (step.tool !== undefined) {
      const caller: ToolCaller = { userId: null, role: workflow.role, name: `workflow:${run.workflow}` };
      const args = fillArgs(step.args, vars) as Record<string, unknown>;
      const prepared = tools.prepare(step.tool, args, caller);
      const result = prepared.ok
        ? await tools.execute(prepared.tool, prepared.args, {
            caller,
            platform: 'workflow',
            chat: run.chat
              ? {
                  id: run.chat.id,
                  type: run.chat.type,
                  ...(run.chat.thread_id ? { thread_id: run.chat.thread_id } : {}),
                }
              : undefined,
            timezone: config.tools.timezone,
            signal,
            log,
          })
        : prepared.result;
      await writeAudit(db, {
        kind: 'tool.call',
        actor: caller.name,
        outcome: result.status,
        durationMs: result.durationMs,
        detail: {
          tool: step.tool,
          arguments: args,
          result_bytes: Buffer.byteLength(result.content),
          // the operator wrote the workflow: its calls need no approval
          approved_by: caller.name,
          workflow_run: run.id,
          step: id,
        },
      });
      if (result.status !== 'ok') throw new Error(`${step.tool}: ${result.content}`);
      return result.content;
    }
    if (step.prompt !== undefined) {
      let answer = '';
      await this.d.llm.streamChat(
        {
          model: step.model ?? config.core.default_model,
          messages: [{ role: 'user', content: fill(step.prompt, vars) }],
          requestId,
        },
        { onText: (d) => void (answer += d) },
        AbortSignal.any([signal, AbortSignal.timeout(config.core.reply_timeout_ms)]),
      );
      if (!answer.trim()) throw new Error('the model answered with nothing');
      return answer;
    }
    const text = fill(step.message ?? '', vars).trim();
    const to = step.to ?? run.chat;
    if (!to)
      throw new Error(
        'this message step has no `to` and the run was not started from a chat: say where it goes (to: {platform, chat_id})',
      );
    if (!text) throw new Error('the message is empty once its templates are filled in');
    const chat = 'chat_id' in to ? { id: to.chat_id, type: to.chat_type, thread_id: to.thread_id } : to;
    await this.d.outbound.publish(to.platform, {
      v: 1,
      type: 'finish',
      chat: { id: chat.id, type: chat.type, ...(chat.thread_id ? { thread_id: chat.thread_id } : {}) },
      // stable: a step run again after a crash shows its message once
      reply_id: `workflow/${run.id}/${id}`,
      seq: nextActionSeq(),
      text,
      status: 'complete',
      request_id: requestId,
    } satisfies OutboundAction);
    return text;
  }
}

function stepOnError(w: WorkflowSettings, id: string): 'stop' | 'continue' {
  const i = w.steps.findIndex((s, n) => stepId(s, n) === id);
  return w.steps[i]?.on_error ?? 'stop';
}

/** Every tool step naming a tool core does not have, or one the workflow's role may not call. */
export function workflowToolProblems(
  workflows: Readonly<Record<string, WorkflowSettings>>,
  tools: Pick<ToolRegistry, 'get' | 'names'>,
): string[] {
  const problems: string[] = [];
  for (const [name, w] of Object.entries(workflows)) {
    w.steps.forEach((s, i) => {
      if (s.tool === undefined) return;
      const tool = tools.get(s.tool);
      const where = `workflow "${name}", step "${stepId(s, i)}"`;
      if (!tool)
        problems.push(`${where}: there is no tool "${s.tool}" (known: ${tools.names.join(', ') || 'none'})`);
      else if (!roleAllows(w.role, tool.role))
        problems.push(
          `${where}: the tool "${s.tool}" needs the role ${tool.role}; the workflow runs as ${w.role} (set role:)`,
        );
    });
  }
  return problems;
}

interface TemplateVars {
  previous: string;
  steps: ReadonlyMap<string, string>;
  input: Record<string, unknown>;
  now: string;
}

const TEMPLATE = /\{\{\s*(previous|now|steps\.([a-z][a-z0-9_]*)|input\.([A-Za-z0-9_-]+))\s*\}\}/g;

/**
 * Fills {{previous}}, {{steps.<id>}}, {{input.<key>}} and {{now}} in one pass, as plain text: what is
 * put in is never read for templates again, and nothing is evaluated. Unknown names stay as written.
 */
export function fill(text: string, v: TemplateVars): string {
  return text.replace(TEMPLATE, (whole, name: string, step?: string, key?: string) => {
    if (name === 'previous') return v.previous;
    if (name === 'now') return v.now;
    if (step !== undefined) return v.steps.get(step) ?? '';
    const value = v.input[key!];
    if (value === undefined || value === null) return '';
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
}

/** Fills templates in every string inside a tool's arguments (keys and other values are left as they are). */
function fillArgs(value: unknown, v: TemplateVars): unknown {
  if (typeof value === 'string') return fill(value, v);
  if (Array.isArray(value)) return value.map((x) => fillArgs(x, v));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, fillArgs(x, v)]));
  return value;
}

function cut(s: string): string {
  return s.length > OUTPUT_MAX ? `${s.slice(0, OUTPUT_MAX)}…` : s;
}
