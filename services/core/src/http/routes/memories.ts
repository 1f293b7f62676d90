import { AppError } from '@pincer/shared';
import { z } from 'zod';
import { writeAudit } from '../../repositories/audit.ts';
import { countMemories, listMemories } from '../../repositories/memories.ts';
import { MAX_FACT } from '../../services/memory.ts';
import { type Route, route } from '../route.ts';
import { IdParam, StoredText, Timestamp, UserIdPath } from '../schemas.ts';

const ANYONE = ['operator', 'auditor', 'user'] as const;

const MemoryBody = z.object({
  id: z.number().int(),
  content: z.string(),
  source: z
    .enum(['user', 'extracted'])
    .describe('user: said with /remember or the API; extracted: learned from conversations.'),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const MemoryIdPath = z.object({ id: IdParam });

export const memoryRoutes: Route[] = [
  route({
    method: 'get',
    path: '/api/v1/memories',
    operationId: 'listMyMemories',
    tag: 'memory',
    summary: 'Everything remembered about the caller',
    roles: ANYONE,
    response: {
      description: "The caller's memories, oldest first.",
      schema: z.object({ data: z.array(MemoryBody) }),
    },
    async handler({ caller, deps }) {
      return { data: await listMemories(deps.db, caller.userId) };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/memories',
    operationId: 'addMyMemory',
    tag: 'memory',
    summary: 'Remember a fact about the caller (as /remember does in a chat)',
    roles: ANYONE,
    body: z.object({ content: StoredText.pipe(z.string().trim().min(1).max(MAX_FACT)) }),
    response: {
      status: 201,
      description: 'The memory (an existing one if the fact was known).',
      schema: MemoryBody,
    },
    async handler({ body, caller, deps }) {
      if (!deps.memory.enabled)
        throw new AppError(409, 'memory_off', 'Long-term memory is turned off (config memory.enabled).');
      return (await deps.memory.remember(caller.userId, body.content)).memory;
    },
  }),
  route({
    method: 'delete',
    path: '/api/v1/memories/:id',
    operationId: 'deleteMyMemory',
    tag: 'memory',
    summary: 'Forget one of the caller’s memories',
    roles: ANYONE,
    params: MemoryIdPath,
    response: { status: 204, description: 'Forgotten.' },
    async handler({ params, caller, deps }) {
      // the same forget as /forget in a chat: the extraction must not learn it again from old messages
      const gone = await deps.memory.forgetIds(caller.userId, [params.id]);
      if (gone.length === 0) throw new AppError(404, 'not_found', `You have no memory ${params.id}.`);
      return undefined;
    },
  }),
  route({
    method: 'delete',
    path: '/api/v1/memories',
    operationId: 'deleteAllMyMemories',
    tag: 'memory',
    summary: 'Forget everything remembered about the caller',
    roles: ANYONE,
    response: { description: 'How many were forgotten.', schema: z.object({ deleted: z.number().int() }) },
    async handler({ caller, deps }) {
      return { deleted: await deps.memory.forgetAll(caller.userId) };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/users/:id/memories',
    operationId: 'listUserMemories',
    tag: 'memory',
    summary: "A user's memories (admin; their content only where config memory.admin_can_read allows)",
    description:
      'Without memory.admin_can_read only the count is given: what people tell the assistant about themselves is theirs.',
    roles: [],
    params: UserIdPath,
    response: {
      description: 'The count, and the memories when allowed.',
      schema: z.object({
        user_id: z.number().int(),
        count: z.number().int(),
        data: z.array(MemoryBody).nullable(),
      }),
    },
    async handler({ params, caller, deps }) {
      const readable = deps.config.memory.admin_can_read;
      const count = await countMemories(deps.db, params.id);
      if (readable)
        await writeAudit(deps.db, {
          kind: 'memory.read',
          actor: caller.name,
          userId: params.id,
          outcome: 'ok',
          detail: { count },
        });
      return { user_id: params.id, count, data: readable ? await listMemories(deps.db, params.id) : null };
    },
  }),
  route({
    method: 'delete',
    path: '/api/v1/users/:id/memories',
    operationId: 'deleteUserMemories',
    tag: 'memory',
    summary: "Forget everything remembered about a user (admin; e.g. on the user's request)",
    roles: [],
    params: UserIdPath,
    response: { description: 'How many were forgotten.', schema: z.object({ deleted: z.number().int() }) },
    async handler({ params, caller, deps }) {
      const deleted = await deps.memory.forgetAll(params.id);
      await writeAudit(deps.db, {
        kind: 'memory.delete_all',
        actor: caller.name,
        userId: params.id,
        outcome: 'ok',
        detail: { deleted },
      });
      return { deleted };
    },
  }),
];
