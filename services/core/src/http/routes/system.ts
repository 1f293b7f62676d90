import { metricsHandler } from '@pincer/shared';
import { z } from 'zod';
import { publicRoute, RESPONDED, type Route } from '../route.ts';

export const systemRoutes: Route[] = [
  publicRoute({
    method: 'get',
    path: '/healthz',
    operationId: 'health',
    tag: 'system',
    summary: 'Health: Postgres and Redis reachable',
    response: {
      description: 'Healthy; 503 with the same body when a dependency is down.',
      schema: z.object({ status: z.enum(['ok', 'unavailable']), postgres: z.boolean(), redis: z.boolean() }),
    },
    errors: { 503: 'Postgres or Redis is unreachable.' },
    async handler({ deps, res }) {
      const h = await deps.health().catch(() => ({ postgres: false, redis: false }));
      const ok = h.postgres && h.redis;
      res
        .status(ok ? 200 : 503)
        .json({ status: ok ? 'ok' : 'unavailable', postgres: h.postgres, redis: h.redis });
      return RESPONDED;
    },
  }),
  publicRoute({
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    tag: 'system',
    summary: 'Prometheus metrics',
    response: { description: 'The Prometheus text format.', alternatives: { 'text/plain': 'always' } },
    async handler({ deps, req, res }) {
      await metricsHandler(deps.metrics)(req, res);
      return RESPONDED;
    },
  }),
];
