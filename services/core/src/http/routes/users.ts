import { AppError } from '@pincer/shared';
import { z } from 'zod';
import { ROLES } from '../../config.ts';
import { getUser, listUsers, setUserRole } from '../../repositories/admin.ts';
import { writeAudit } from '../../repositories/audit.ts';
import { type Route, route } from '../route.ts';
import { limitParam, Timestamp, UserIdPath } from '../schemas.ts';

const User = z.object({
  id: z.number().int(),
  display_name: z.string(),
  role: z
    .enum(ROLES)
    .describe('What the user may do with tools in chats (commands declare the role they need).'),
  created_at: Timestamp,
  updated_at: Timestamp,
  identities: z.array(
    z.object({
      platform: z.string(),
      external_id: z.string(),
      display_name: z.string(),
      username: z.string().nullable(),
      approved: z.boolean().describe('Allowed to talk to the bot where direct chats need approval.'),
      created_at: Timestamp,
    }),
  ),
});

export const userRoutes: Route[] = [
  route({
    method: 'get',
    path: '/api/v1/users',
    operationId: 'listUsers',
    tag: 'users',
    summary: 'Users and their platform identities',
    description: 'Newest first.',
    roles: ['operator'],
    query: z.object({
      q: z.string().min(1).max(200).optional().describe('Part of a display name, username or platform id.'),
      platform: z.string().max(32).optional().describe('Only users with an identity on this platform.'),
      limit: limitParam(200, 50),
      before: z.coerce
        .number()
        .int()
        .positive()
        .optional()
        .describe('next_cursor of the previous page (a user id).'),
    }),
    response: {
      description: 'A page of users.',
      schema: z.object({ data: z.array(User), next_cursor: z.string().nullable() }),
    },
    async handler({ query, deps }) {
      return listUsers(deps.db, query);
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/users/:id',
    operationId: 'getUser',
    tag: 'users',
    summary: 'One user and their platform identities',
    roles: ['operator'],
    params: UserIdPath,
    response: { description: 'The user.', schema: User },
    async handler({ params, deps }) {
      const user = await getUser(deps.db, params.id);
      if (!user) throw new AppError(404, 'not_found', `No user ${params.id}.`);
      return user;
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/users/:id/role',
    operationId: 'setUserRole',
    tag: 'users',
    summary: "Set a chat user's role",
    description:
      'The role decides which tools the user may call in chats: commands and REST endpoints in config name the role they need. ' +
      'Only an admin may change roles.',
    roles: [],
    params: UserIdPath,
    body: z.object({ role: z.enum(ROLES) }),
    response: { description: 'The user.', schema: User },
    async handler({ params, body, caller, deps }) {
      const before = await setUserRole(deps.db, params.id, body.role);
      if (before === undefined) throw new AppError(404, 'not_found', `No user ${params.id}.`);
      await writeAudit(deps.db, {
        kind: 'user.role',
        actor: caller.name,
        userId: params.id,
        outcome: 'ok',
        detail: { from: before, to: body.role },
      });
      return (await getUser(deps.db, params.id))!;
    },
  }),
];
