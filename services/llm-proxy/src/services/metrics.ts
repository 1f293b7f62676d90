import { createMetricsRegistry, MODEL_LATENCY_BUCKETS, OVERHEAD_BUCKETS, prom } from '@pincer/shared';
import type { UpstreamProvider } from './upstreams.ts';

const BREAKER_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

/** Every metric llm-proxy exposes (`pincer_llm_` prefix; labels bounded by the registry). */
export function createProxyMetrics(providers: () => Iterable<UpstreamProvider>) {
  const registry = createMetricsRegistry('llm-proxy');
  const r = [registry];
  const nodesOf = function* () {
    for (const p of providers()) yield* p.nodes;
  };
  return {
    registry,
    requests: new prom.Counter({
      name: 'pincer_llm_requests_total',
      help: 'Requests answered, by model, node and HTTP status',
      labelNames: ['model', 'node', 'status'],
      registers: r,
    }),
    duration: new prom.Histogram({
      name: 'pincer_llm_request_duration_seconds',
      help: 'Whole request duration',
      labelNames: ['model', 'node'],
      buckets: MODEL_LATENCY_BUCKETS,
      registers: r,
    }),
    ttft: new prom.Histogram({
      name: 'pincer_llm_time_to_first_token_seconds',
      help: 'Time from the request to the first token (streams)',
      labelNames: ['model', 'node'],
      buckets: MODEL_LATENCY_BUCKETS,
      registers: r,
    }),
    interToken: new prom.Histogram({
      name: 'pincer_llm_inter_token_latency_seconds',
      help: 'Mean gap between chunks after the first, one observation per stream',
      labelNames: ['model'],
      buckets: [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
      registers: r,
    }),
    overhead: new prom.Histogram({
      name: 'pincer_llm_overhead_seconds',
      help: "The proxy's own time per request (excluding upstream and queue time)",
      labelNames: ['endpoint'],
      buckets: OVERHEAD_BUCKETS,
      registers: r,
    }),
    tokens: new prom.Counter({
      name: 'pincer_llm_tokens_total',
      help: 'Tokens in and out; source says whether the upstream reported them or we estimated',
      labelNames: ['model', 'direction', 'source'],
      registers: r,
    }),
    queueWait: new prom.Histogram({
      name: 'pincer_llm_queue_wait_seconds',
      help: 'Time spent waiting for a free node slot (0 for requests that found one free)',
      labelNames: ['provider'],
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 120],
      registers: r,
    }),
    retries: new prom.Counter({
      name: 'pincer_llm_retries_total',
      help: 'Retries before the first byte reached the client',
      labelNames: ['model'],
      registers: r,
    }),
    fallbacks: new prom.Counter({
      name: 'pincer_llm_fallbacks_total',
      help: 'Requests served by a fallback model',
      labelNames: ['from', 'to'],
      registers: r,
    }),
    upstreamErrors: new prom.Counter({
      name: 'pincer_llm_upstream_errors_total',
      help: 'Failed upstream attempts, by node and kind',
      labelNames: ['node', 'kind'],
      registers: r,
    }),
    rateLimited: new prom.Counter({
      name: 'pincer_llm_rate_limited_total',
      help: 'Requests refused by a per-key limit',
      labelNames: ['key', 'limit'],
      registers: r,
    }),
    rateLimitErrors: new prom.Counter({
      name: 'pincer_llm_rate_limit_errors_total',
      help: 'Limit checks that failed (Redis unreachable); the request was let through',
      registers: r,
    }),
    clientAborts: new prom.Counter({
      name: 'pincer_llm_client_aborts_total',
      help: 'Requests the client abandoned (upstream request cancelled)',
      labelNames: ['model'],
      registers: r,
    }),
    inFlight: new prom.Gauge({
      name: 'pincer_llm_in_flight',
      help: 'Requests in flight per node',
      labelNames: ['node'],
      registers: r,
      collect() {
        for (const n of nodesOf()) this.set({ node: n.id }, n.inFlight);
      },
    }),
    queueDepth: new prom.Gauge({
      name: 'pincer_llm_queue_depth',
      help: 'Requests waiting for a node slot, per provider',
      labelNames: ['provider'],
      registers: r,
      collect() {
        for (const p of providers()) this.set({ provider: p.id }, p.queueDepth);
      },
    }),
    nodeUp: new prom.Gauge({
      name: 'pincer_llm_node_up',
      help: '1 when the last active probe of the node succeeded (unknown counts as 1), else 0',
      labelNames: ['node'],
      registers: r,
      collect() {
        for (const n of nodesOf()) this.set({ node: n.id }, n.probeUp === false ? 0 : 1);
      },
    }),
    providerUsable: new prom.Gauge({
      name: 'pincer_llm_provider_nodes_usable',
      help: 'Nodes of a provider that can take requests now (probe up, breaker not open); 0 = its models cannot be served',
      labelNames: ['provider'],
      registers: r,
      collect() {
        const now = Date.now();
        for (const p of providers())
          this.set({ provider: p.id }, p.nodes.filter((n) => n.probeUp !== false && n.available(now)).length);
      },
    }),
    errors: new prom.Counter({
      name: 'pincer_errors_total',
      help: 'Requests that ended in a server-side error (5xx), by kind',
      labelNames: ['kind'],
      registers: r,
    }),
    breaker: new prom.Gauge({
      name: 'pincer_llm_node_breaker_state',
      help: 'Circuit breaker per node: 0 closed, 1 half-open, 2 open',
      labelNames: ['node'],
      registers: r,
      collect() {
        for (const n of nodesOf()) this.set({ node: n.id }, BREAKER_VALUE[n.breaker]);
      },
    }),
  };
}

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;
