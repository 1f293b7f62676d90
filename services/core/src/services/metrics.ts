import { createMetricsRegistry, MODEL_LATENCY_BUCKETS, prom } from '@pincer/shared';

/** core's metrics (labels bounded: platform, outcome, kind). `backlog` feeds the queue gauge. */
export function createCoreMetrics(backlog?: () => Promise<Array<{ queue: string; waiting: number }>>) {
  const registry = createMetricsRegistry('core');
  const r = [registry];
  return {
    registry,
    messages: new prom.Counter({
      name: 'pincer_messages_total',
      help: 'Chat messages in (from users) and out (replies), by platform',
      labelNames: ['platform', 'direction'],
      registers: r,
    }),
    replies: new prom.Counter({
      name: 'pincer_replies_total',
      help: 'Inbound messages by what became of them: complete, stopped, failed, command, skipped, denied, pairing, rate_limited',
      labelNames: ['platform', 'outcome'],
      registers: r,
    }),
    replyLatency: new prom.Histogram({
      name: 'pincer_reply_latency_seconds',
      help: 'Platform message time to finished reply',
      labelNames: ['platform'],
      buckets: MODEL_LATENCY_BUCKETS,
      registers: r,
    }),
    firstToken: new prom.Histogram({
      name: 'pincer_time_to_first_token_seconds',
      help: 'Platform message time to the first text the user sees',
      labelNames: ['platform'],
      buckets: MODEL_LATENCY_BUCKETS,
      registers: r,
    }),
    queueWait: new prom.Histogram({
      name: 'pincer_queue_wait_seconds',
      help: 'Receipt by the adapter to the start of answering',
      labelNames: ['platform'],
      buckets: MODEL_LATENCY_BUCKETS,
      registers: r,
    }),
    engineOverhead: new prom.Histogram({
      name: 'pincer_engine_overhead_seconds',
      help: "core's own time per answered message (model time excluded)",
      labelNames: ['platform'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: r,
    }),
    queueWaiting: new prom.Gauge({
      name: 'pincer_queue_waiting',
      help: 'Jobs waiting or delayed per queue (inbound, outbound-telegram, outbound-feishu, knowledge, memory)',
      labelNames: ['queue'],
      registers: r,
      async collect() {
        if (!backlog) return;
        for (const { queue, waiting } of await backlog().catch(() => [])) this.set({ queue }, waiting);
      },
    }),
    knowledgeSearch: new prom.Histogram({
      name: 'pincer_knowledge_search_duration_seconds',
      help: 'Knowledge-base searches (query embedding included), by mode',
      labelNames: ['mode'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: r,
    }),
    knowledgeDocuments: new prom.Counter({
      name: 'pincer_knowledge_ingestions_total',
      help: 'Document ingestions by outcome: ready, failed, superseded',
      labelNames: ['outcome'],
      registers: r,
    }),
    knowledgeChunks: new prom.Counter({
      name: 'pincer_knowledge_chunks_indexed_total',
      help: 'Chunks embedded and indexed',
      registers: r,
    }),
    memoryChanges: new prom.Counter({
      name: 'pincer_memory_changes_total',
      help: 'Memories added, updated and deleted, by source (user command or extraction)',
      labelNames: ['change', 'source'],
      registers: r,
    }),
    toolCalls: new prom.Counter({
      name: 'pincer_tool_calls_total',
      help: 'Tool calls models made, by tool and outcome (ok, error, refused, denied)',
      labelNames: ['tool', 'status'],
      registers: r,
    }),
    toolDuration: new prom.Histogram({
      name: 'pincer_tool_call_duration_seconds',
      help: 'Time a tool call took to run (approval waits excluded)',
      labelNames: ['tool'],
      buckets: [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 30, 120],
      registers: r,
    }),
    taskFirings: new prom.Counter({
      name: 'pincer_task_firings_total',
      help: 'Reminder and recurring-task firings by action and outcome: ok, failed (will be retried or gave up), skipped (cancelled or turned off), duplicate (delivered again, not run)',
      labelNames: ['action', 'outcome'],
      registers: r,
    }),
    workflowRuns: new prom.Counter({
      name: 'pincer_workflow_runs_total',
      help: 'Finished workflow runs by workflow and status (succeeded, failed)',
      labelNames: ['workflow', 'status'],
      registers: r,
    }),
    errors: new prom.Counter({
      name: 'pincer_errors_total',
      help: 'Errors by kind',
      labelNames: ['kind'],
      registers: r,
    }),
  };
}

export type CoreMetrics = ReturnType<typeof createCoreMetrics>;
