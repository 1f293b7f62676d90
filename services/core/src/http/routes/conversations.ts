import { AppError } from '@pincer/shared';
import { z } from 'zod';
import {
  conversationMessages,
  conversationSummary,
  decodeConversationCursor,
  searchConversations,
} from '../../repositories/admin.ts';
import type { Db } from '../../repositories/db.ts';
import { type Route, route } from '../route.ts';
import { limitParam, rangeEnd, rangeStart, TimeBound, Timestamp, UserIdParam, UuidPath } from '../schemas.ts';
import type { Caller } from '../types.ts';

const READERS = ['operator', 'auditor', 'user'] as const;

const Conversation = z.object({
  id: z.uuid(),
  platform: z.string(),
  chat_id: z.string(),
  chat_type: z.enum(['direct', 'group']),
  user_id: z.number().int().nullable(),
  user_display_name: z.string().nullable(),
  title: z.string(),
  model: z.string().nullable(),
  active: z.boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
  message_count: z.number().int(),
});

const Message = z.object({
  id: z.number().int(),
  role: z.enum(['user', 'assistant', 'system']),
  content: z.string(),
  status: z.string(),
  user_id: z.number().int().nullable(),
  reply_to: z.number().int().nullable(),
  model: z.string().nullable(),
  prompt_tokens: z.number().int().nullable(),
  completion_tokens: z.number().int().nullable(),
  latency_ms: z.number().int().nullable(),
  ttft_ms: z.number().int().nullable(),
  created_at: Timestamp,
});

const ListQuery = z.object({
  user_id: UserIdParam.optional().describe("Only this user's conversations."),
  platform: z.string().max(32).optional().describe('telegram, feishu or api.'),
  q: z.string().min(1).max(200).optional().describe('Text one of the messages contains.'),
  from: TimeBound.optional().describe('Active since (inclusive).'),
  to: TimeBound.optional().describe('Started before (exclusive; a bare date includes that day).'),
  limit: limitParam(200, 50),
  before: z.string().max(200).optional().describe('next_cursor of the previous page.'),
});

const MessagesQuery = z.object({
  after: z.coerce
    .number()
    .int()
    .min(0)
    .optional()
    .describe('next_cursor of the previous page (a message id).'),
  limit: limitParam(1000, 200),
});

/** The conversation if the caller may read it; a user key sees only its own (others look unknown). */
async function readable(db: Db, caller: Caller, id: string) {
  const c = await conversationSummary(db, id);
  if (!c || (caller.role === 'user' && c.user_id !== caller.userId))
    throw new AppError(404, 'not_found', `No conversation ${id}.`);
  return c;
}

export const conversationRoutes: Route[] = [
  route({
    method: 'get',
    path: '/api/v1/conversations',
    operationId: 'listConversations',
    tag: 'conversations',
    summary: 'List and search conversations',
    description: 'Most recently active first. A key with the role user sees only its own conversations.',
    roles: READERS,
    query: ListQuery,
    response: {
      description: 'A page of conversations.',
      schema: z.object({ data: z.array(Conversation), next_cursor: z.string().nullable() }),
    },
    async handler({ query, caller, deps }) {
      let userId = query.user_id;
      if (caller.role === 'user') {
        if (userId !== undefined && userId !== caller.userId)
          throw new AppError(403, 'forbidden', 'A key with the role user sees only its own conversations.');
        userId = caller.userId;
      }
      const before = query.before === undefined ? undefined : decodeConversationCursor(query.before);
      if (query.before !== undefined && !before)
        throw new AppError(400, 'invalid_request', 'query.before: not a cursor this API returned.');
      return searchConversations(deps.db, {
        userId,
        platform: query.platform,
        q: query.q,
        from: rangeStart(query.from),
        to: rangeEnd(query.to),
        limit: query.limit,
        before,
      });
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/conversations/:id',
    operationId: 'getConversation',
    tag: 'conversations',
    summary: 'One conversation',
    roles: READERS,
    params: UuidPath,
    response: { description: 'The conversation.', schema: Conversation },
    async handler({ params, caller, deps }) {
      return readable(deps.db, caller, params.id);
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/conversations/:id/messages',
    operationId: 'listConversationMessages',
    tag: 'conversations',
    summary: 'Messages of a conversation, oldest first',
    roles: READERS,
    params: UuidPath,
    query: MessagesQuery,
    response: {
      description: 'A page of messages with their model, token usage and latency.',
      schema: z.object({ data: z.array(Message), next_cursor: z.string().nullable() }),
    },
    async handler({ params, query, caller, deps }) {
      await readable(deps.db, caller, params.id);
      return conversationMessages(deps.db, params.id, { after: query.after, limit: query.limit });
    },
  }),
];
