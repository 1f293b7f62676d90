import { createServer, type Server } from 'node:http';
import { listen, type Logger } from '@pincer/shared';
import type { ProxyConfig } from './config.ts';
import { createHandler } from './http/routes.ts';
import { connectRateLimitStore, type RateLimitStore } from './repositories/rate-limits.ts';
import { OllamaUpstream, OpenAIUpstream, UpstreamPools } from './repositories/upstream-client.ts';
import { KeyRing } from './services/auth.ts';
import { ChatService, ModelCaller } from './services/chat.ts';
import { EmbeddingsService } from './services/embeddings.ts';
import { HealthProber } from './services/health.ts';
import { Limits } from './services/limits.ts';
import { createProxyMetrics } from './services/metrics.ts';
import { Registry } from './services/registry.ts';
import { UpstreamProvider } from './services/upstreams.ts';

export interface ProxyHandle {
  server: Server;
  url: string;
  caller: ModelCaller;
  chat: ChatService;
  providers: ReadonlyMap<string, UpstreamProvider>;
  prober: HealthProber;
  shutdown(deadlineMs?: number): Promise<void>;
}

/** Builds the model-calling machinery without an HTTP server (used by the server and by test-model). */
export function buildCaller(config: ProxyConfig, log: Logger, limitStore?: RateLimitStore) {
  const registry = new Registry(config.models);
  const providers = new Map<string, UpstreamProvider>();
  for (const [id, p] of Object.entries(config.models.providers)) {
    providers.set(id, new UpstreamProvider(id, p, config.models.routing.load_balance));
  }
  const metrics = createProxyMetrics(() => providers.values());
  const pools = new UpstreamPools();
  const apis = { openai: new OpenAIUpstream(pools), ollama: new OllamaUpstream(pools) };
  const limits = new Limits(limitStore, metrics, log);
  const caller = new ModelCaller({ registry, providers, apis, metrics, limits, log });
  const prober = new HealthProber([...providers.values()], apis, log);
  return { registry, providers, metrics, pools, apis, limits, caller, prober };
}

/** Starts llm-proxy: probes, HTTP server; returns a handle with an ordered shutdown. */
export async function startProxy(
  config: ProxyConfig,
  log: Logger,
  opts: { host?: string; port?: number } = {},
): Promise<ProxyHandle> {
  // Only keys with limits need Redis; without them the proxy depends on nothing but its upstreams.
  const limitStore = config.apiKeys.some((k) => k.rpm || k.tpm)
    ? await connectRateLimitStore(config.redisUrl, config.redisPrefix, log)
    : undefined;
  const parts = buildCaller(config, log, limitStore);
  const { registry, providers, metrics, caller, prober, pools } = parts;
  const chat = new ChatService(caller);
  const embeddings = new EmbeddingsService(caller);
  if (config.activeHealthChecks) await prober.start();

  const handler = createHandler({
    keys: new KeyRing(config.apiKeys),
    chat,
    embeddings,
    registry,
    metrics,
    maxBodyBytes: config.maxBodyBytes,
    log,
    readiness: async () => {
      const now = Date.now();
      const nodes = [...providers.values()].flatMap((p) => p.nodes);
      const usable = nodes.filter((n) => n.probeUp !== false && n.available(now));
      const redisOk = !limitStore || limitStore.status === 'ready';
      return {
        ready: usable.length > 0 && redisOk,
        detail: {
          nodes_usable: usable.length,
          nodes_total: nodes.length,
          redis: limitStore ? limitStore.status : 'not used',
        },
      };
    },
    status: () => ({
      providers: [...providers.values()].map((p) => ({
        id: p.id,
        type: p.config.type,
        queue_depth: p.queueDepth,
        nodes: p.nodes.map((n) => n.status()),
      })),
      models: registry.list().map((m) => ({
        id: m.id,
        provider: m.provider,
        model_id: m.model_id,
        fallbacks: registry
          .chain(m)
          .slice(1)
          .map((f) => f.id),
      })),
    }),
  });

  const server = createServer(
    { keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 30_000 },
    handler,
  );
  const boundPort = await listen(server, opts.port ?? config.port, opts.host ?? config.host);
  const url = `http://127.0.0.1:${boundPort}`;
  log.info('llm-proxy listening', {
    port: boundPort,
    models: registry.models.size,
    providers: providers.size,
  });

  let closing: Promise<void> | undefined;
  const shutdown = (deadlineMs = 25_000) =>
    (closing ??= (async () => {
      log.info('llm-proxy shutting down');
      // stop accepting; in-flight streams get until the deadline to finish
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
      await Promise.race([closed, timer]);
      server.closeAllConnections();
      prober.stop();
      await pools.close();
      await limitStore?.close();
      log.info('llm-proxy stopped');
    })());

  return { server, url, caller, chat, providers, prober, shutdown };
}
