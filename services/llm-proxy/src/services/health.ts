import type { Logger } from '@pincer/shared';
import type { UpstreamApi } from '../repositories/upstream-client.ts';
import type { UpstreamNode, UpstreamProvider } from './upstreams.ts';

/** Active health probes per node, by provider type; a model still loading reads as not ready. */
export class HealthProber {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly providers: readonly UpstreamProvider[];
  private readonly apis: Record<'openai' | 'ollama', UpstreamApi>;
  private readonly log: Logger;

  constructor(
    providers: readonly UpstreamProvider[],
    apis: Record<'openai' | 'ollama', UpstreamApi>,
    log: Logger,
  ) {
    this.providers = providers;
    this.apis = apis;
    this.log = log;
  }

  async probe(node: UpstreamNode): Promise<void> {
    const p = node.provider;
    const r = await this.apis[p.config.type].probe(
      { nodeId: node.id, url: node.url, provider: p.config, modelId: '', contextWindow: 0 },
      AbortSignal.timeout(p.config.health.timeout_ms),
    );
    if (r.up !== node.probeUp) {
      if (r.up) this.log.info('upstream node is up', { node: node.id, detail: r.detail });
      else this.log.warn('upstream node is down', { node: node.id, detail: r.detail });
    }
    const recovered = r.up && node.probeUp === false;
    node.probeUp = r.up;
    node.probeDetail = r.detail;
    // requests queued while the node was down can use it now
    if (recovered) p.dispatch();
  }

  probeAll(): Promise<void> {
    return Promise.all(this.providers.flatMap((p) => p.nodes.map((n) => this.probe(n)))).then(() => {});
  }

  start(): Promise<void> {
    for (const p of this.providers) {
      const t = setInterval(() => {
        for (const n of p.nodes) void this.probe(n);
      }, p.config.health.interval_ms);
      t.unref();
      this.timers.push(t);
    }
    return this.probeAll();
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
  }
}
