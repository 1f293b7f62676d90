import { AppError } from '@pincer/shared';
import { z } from 'zod';
import { writeAudit } from '../../repositories/audit.ts';
import { ROLES } from '../../repositories/keys.ts';
import { RESPONDED, type Route, route } from '../route.ts';
import type { HttpDeps } from '../types.ts';

/** What the web console needs besides the resource APIs: who is signed in, the models, the running configuration. */

const Problem = z.object({
  file: z.string().optional(),
  line: z.number().int().optional(),
  path: z.string(),
  message: z.string(),
});
const Check = z.object({
  ok: z.boolean(),
  problems: z.array(Problem),
  changes: z
    .array(z.string())
    .describe('Settings that differ between the files and what runs (dotted paths).'),
  restart_required: z.array(z.string()).describe('The changes a reload cannot apply: restart core for them.'),
});

const Model = z.object({
  id: z.string(),
  name: z.string(),
  provider: z.string(),
  context_window: z.number().int(),
  max_tokens: z.number().int(),
  capabilities: z.array(z.string()),
  aliases: z.array(z.string()),
  default: z.boolean(),
  fallbacks: z.array(z.string()),
});
const Node = z.object({
  id: z.string(),
  url: z.string(),
  in_flight: z.number().int(),
  max_concurrency: z.number().int(),
  probe: z.enum(['up', 'down', 'unknown']),
  breaker: z.string(),
  consecutive_failures: z.number().int(),
  last_error: z.string().nullable(),
  latency_ms: z.number(),
  requests: z.number().int(),
});

const PROXY_TIMEOUT_MS = 5000;

/** GET on llm-proxy with core's key; `path` is relative to its root (`/status`) or to /v1 (`models`). */
async function proxyGet<T>(deps: HttpDeps, url: string): Promise<T> {
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${deps.config.llmProxyKey}` },
    signal: AbortSignal.timeout(PROXY_TIMEOUT_MS),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`llm-proxy answered ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

/** llm-proxy's GET /v1/models entries and GET /status, as far as read here. */
interface ProxyModel {
  id: string;
  name?: string;
  owned_by: string;
  context_window: number;
  max_tokens: number;
  capabilities?: string[];
  aliases?: string[];
  default?: boolean;
}
interface ProxyStatus {
  providers: { id: string; nodes: z.infer<typeof Node>[] }[];
  models: { id: string; fallbacks: string[] }[];
}

const proxyRoot = (v1: string) => v1.replace(/\/v1$/, '');

export const consoleRoutes: Route[] = [
  route({
    method: 'get',
    path: '/api/v1/me',
    operationId: 'whoAmI',
    tag: 'keys',
    summary: 'The caller: key name, role and the user it acts as',
    roles: ROLES,
    response: {
      description: 'The signed-in key.',
      schema: z.object({
        id: z.string().describe("The key's id, or admin-token."),
        name: z.string(),
        role: z.enum(ROLES),
        user_id: z.number().int().describe('The user this key acts as (its own web-chat conversations).'),
      }),
    },
    async handler({ caller }) {
      return { id: caller.id, name: caller.name, role: caller.role, user_id: caller.userId };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/models',
    operationId: 'listModels',
    tag: 'models',
    summary: "The model registry, and every upstream node's live state",
    description:
      "From llm-proxy. `upstreams` (node addresses, health, in-flight requests, latency) is shown to admins and operators only; it is null with `proxy_error` when llm-proxy's status could not be read.",
    roles: ['operator', 'user'],
    response: {
      description: 'Models and upstream nodes.',
      schema: z.object({
        data: z.array(Model),
        upstreams: z.array(z.object({ id: z.string(), nodes: z.array(Node) })).nullable(),
        proxy_error: z.string().optional(),
      }),
    },
    errors: { 502: 'llm-proxy could not be reached.' },
    async handler({ caller, deps }) {
      const detail = caller.role === 'admin' || caller.role === 'operator';
      const [models, status] = await Promise.allSettled([
        proxyGet<{ data: ProxyModel[] }>(deps, `${deps.config.llmProxyUrl}/models`),
        detail
          ? proxyGet<ProxyStatus>(deps, `${proxyRoot(deps.config.llmProxyUrl)}/status`)
          : Promise.resolve(undefined),
      ]);
      if (models.status === 'rejected')
        throw new AppError(
          502,
          'llm_proxy_unreachable',
          `llm-proxy could not be reached: ${(models.reason as Error).message}`,
        );
      const st = status.status === 'fulfilled' ? status.value : undefined;
      const fallbacks = new Map<string, string[]>((st?.models ?? []).map((m) => [m.id, m.fallbacks]));
      const data = models.value.data.map((m) => ({
        id: m.id,
        name: m.name ?? m.id,
        provider: m.owned_by,
        context_window: m.context_window,
        max_tokens: m.max_tokens,
        capabilities: m.capabilities ?? [],
        aliases: m.aliases ?? [],
        default: !!m.default,
        fallbacks: fallbacks.get(m.id) ?? [],
      }));
      if (!detail) return { data, upstreams: null };
      if (!st)
        return {
          data,
          upstreams: null,
          proxy_error: `llm-proxy status could not be read: ${(status as PromiseRejectedResult).reason?.message}`,
        };
      return { data, upstreams: st.providers.map((p) => ({ id: p.id, nodes: p.nodes })) };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/config',
    operationId: 'getConfig',
    tag: 'config',
    summary: 'The configuration core runs with',
    description: 'Routing rules and settings as loaded (secrets and connection strings are never shown).',
    roles: ['operator'],
    response: {
      description: 'The running configuration.',
      schema: z.object({
        loaded_at: z.string(),
        source: z.object({ dir: z.string() }),
        routes: z.array(
          z.object({
            index: z.number().int(),
            match: z
              .object({
                platforms: z.array(z.string()).nullable(),
                chat_type: z.string().nullable(),
                content: z.string().nullable(),
                commands: z.array(z.string()).nullable(),
                event: z.string().nullable(),
              })
              .nullable(),
            action: z.string(),
            model: z.string().nullable(),
            system_prompt: z.string().nullable(),
            knowledge: z.boolean(),
          }),
        ),
        settings: z.record(z.string(), z.unknown()),
      }),
    },
    async handler({ deps }) {
      return deps.configManager.view();
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/config/validate',
    operationId: 'validateConfig',
    tag: 'config',
    summary: 'Check the configuration files without applying them',
    description:
      'Reads config.yaml and routing.yaml as a reload would; lists every problem with its file and line.',
    roles: [],
    response: { description: 'The outcome; ok is false when the files would be refused.', schema: Check },
    async handler({ deps }) {
      const { next: _next, ...result } = deps.configManager.check();
      return result;
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/config/reload',
    operationId: 'reloadConfig',
    tag: 'config',
    summary: 'Apply the configuration files without a restart',
    description:
      'Routing rules, the core section (prompts, messages, history), access, rate limit and audit settings apply at once, in every core process. ' +
      'Invalid files change nothing (422 with the problems). Other changed settings are listed in restart_required.',
    roles: [],
    response: {
      description: 'Applied here; `propagated` tells whether the other core processes were told.',
      schema: Check.extend({ loaded_at: z.string(), propagated: z.boolean() }),
    },
    errors: { 422: 'The files are invalid; nothing changed.' },
    async handler({ deps, caller, res }) {
      const result = await deps.reloadConfig(`API (${caller.name})`);
      await writeAudit(deps.db, {
        kind: 'config.reload',
        actor: caller.name,
        outcome: result.ok ? 'ok' : 'invalid',
        detail: {
          changes: result.changes,
          restart_required: result.restart_required,
          problems: result.problems.length,
          propagated: result.propagated ?? false,
        },
      });
      if (!result.ok) {
        res.status(422).json({
          error: {
            code: 'config_invalid',
            message: `The configuration files have ${result.problems.length} problem(s); nothing was changed.`,
          },
          problems: result.problems,
        });
        return RESPONDED;
      }
      return {
        ...result,
        propagated: result.propagated ?? false,
        loaded_at: deps.configManager.loadedAt.toISOString(),
      };
    },
  }),
];
