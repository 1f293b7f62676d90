import { prom } from '@pincer/shared';

/** Histogram buckets for one call to a chat platform's API (seconds): 5 ms … 30 s. */
export const API_LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The platform's reachability gauge, set from `up` at each scrape. None without `up`: an adapter
 * idling without credentials does not export it (an unconfigured platform is not "down").
 */
export function upGauge(
  registry: prom.Registry,
  o: { name: string; help: string },
  up: (() => boolean) | undefined,
): prom.Gauge | undefined {
  if (!up) return undefined;
  return new prom.Gauge({
    ...o,
    registers: [registry],
    collect() {
      this.set(up() ? 1 : 0);
    },
  });
}
