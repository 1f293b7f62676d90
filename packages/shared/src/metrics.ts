import type { IncomingMessage, ServerResponse } from 'node:http';
import client from 'prom-client';

export { client as prom };

/** A registry with the process metrics and a `service` label on every series. */
export function createMetricsRegistry(service: string): client.Registry {
  const registry = new client.Registry();
  registry.setDefaultLabels({ service });
  client.collectDefaultMetrics({ register: registry });
  return registry;
}

/** Serves the registry in the Prometheus text format (a plain node handler, usable from express). */
export function metricsHandler(registry: client.Registry) {
  return async (_req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(body);
    } catch {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('metrics unavailable\n');
    }
  };
}

/** Histogram buckets for latencies of one request to a model (seconds): 5 ms … 10 min. */
export const MODEL_LATENCY_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
];
/** Histogram buckets for the time a proxy or handler adds itself (seconds): 50 µs … 1 s. */
export const OVERHEAD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1];
