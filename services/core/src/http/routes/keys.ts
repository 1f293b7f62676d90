import { AppError } from '@pincer/shared';
import { z } from 'zod';
import { writeAudit } from '../../repositories/audit.ts';
import { createApiKey, listApiKeys, revokeApiKey, ROLES } from '../../repositories/keys.ts';
import { type Route, route } from '../route.ts';
import { Timestamp, UuidPath } from '../schemas.ts';

const ApiKey = z.object({
  id: z.uuid(),
  name: z.string(),
  role: z.enum(ROLES),
  created_at: Timestamp,
  last_used_at: Timestamp.nullable().describe('Updated at most once a minute.'),
  revoked_at: Timestamp.nullable(),
});

export const keyRoutes: Route[] = [
  route({
    method: 'post',
    path: '/api/v1/keys',
    operationId: 'createApiKey',
    tag: 'keys',
    summary: 'Create an API key',
    description: 'The key is in this response only: Pincer keeps just its SHA-256.',
    roles: [],
    body: z.strictObject({
      name: z
        .string()
        .trim()
        .min(1, 'must not be empty')
        .max(100)
        .describe('Who or what uses the key; shown in the audit log.'),
      role: z
        .enum(ROLES)
        .describe(
          'admin: everything; operator: chat, conversations, users, pairing; auditor: conversations and audit log; user: chat and its own conversations.',
        ),
    }),
    response: {
      status: 201,
      description: 'The new key.',
      schema: ApiKey.pick({ id: true, name: true, role: true, created_at: true }).extend({
        key: z.string().describe('Send as Authorization: Bearer <key>.'),
      }),
    },
    async handler({ body, caller, deps }) {
      const k = await createApiKey(deps.db, body);
      await writeAudit(deps.db, {
        kind: 'key.create',
        actor: caller.name,
        outcome: 'ok',
        detail: { key_id: k.id, name: k.name, role: k.role },
      });
      deps.log.info('api key created', { keyId: k.id, name: k.name, role: k.role, actor: caller.name });
      return { id: k.id, name: k.name, role: k.role, created_at: k.created_at, key: k.key };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/keys',
    operationId: 'listApiKeys',
    tag: 'keys',
    summary: 'API keys (never the keys themselves)',
    roles: [],
    response: {
      description: 'Every key, revoked ones included.',
      schema: z.object({ data: z.array(ApiKey) }),
    },
    async handler({ deps }) {
      return { data: await listApiKeys(deps.db) };
    },
  }),
  route({
    method: 'delete',
    path: '/api/v1/keys/:id',
    operationId: 'revokeApiKey',
    tag: 'keys',
    summary: 'Revoke an API key',
    description: 'Refused from the next request on. Revoking a revoked key changes nothing.',
    roles: [],
    params: UuidPath,
    response: { status: 204, description: 'Revoked.' },
    async handler({ params, caller, deps }) {
      const r = await revokeApiKey(deps.db, params.id);
      if (r === 'unknown') throw new AppError(404, 'not_found', `No API key ${params.id}.`);
      if (r === 'revoked') {
        await writeAudit(deps.db, {
          kind: 'key.revoke',
          actor: caller.name,
          outcome: 'ok',
          detail: { key_id: params.id },
        });
        deps.log.info('api key revoked', { keyId: params.id, actor: caller.name });
      }
      return null;
    },
  }),
];
