import { AppError } from '@pincer/shared';
import { z } from 'zod';
import { type Approval, decideApproval, getApproval, listApprovals } from '../../repositories/approvals.ts';
import { writeAudit } from '../../repositories/audit.ts';
import { type Route, route } from '../route.ts';
import { limitParam, Timestamp, UuidPath } from '../schemas.ts';
import type { Caller, HttpDeps } from '../types.ts';

const STATUSES = ['pending', 'approved', 'denied', 'expired'] as const;

const ApprovalBody = z.object({
  id: z.uuid(),
  tool: z.string(),
  arguments: z.record(z.string(), z.unknown()),
  summary: z.string().describe('The call in one line, as the user was asked.'),
  requested_of: z
    .enum(['user', 'operator'])
    .describe('Who is asked: the user in their chat, or an operator.'),
  user_id: z.number().int().nullable(),
  user_name: z.string().nullable(),
  conversation_id: z.uuid().nullable(),
  platform: z.string().nullable(),
  chat_id: z.string().nullable(),
  status: z.enum(STATUSES),
  created_at: Timestamp,
  expires_at: Timestamp,
  decided_at: Timestamp.nullable(),
  decided_by: z.string().nullable(),
});

/** Operators decide every approval; anyone else only a question put to them about their own call. */
function mayDecide(caller: Caller, a: Approval): boolean {
  if (caller.role === 'admin' || caller.role === 'operator') return true;
  return a.requested_of === 'user' && a.user_id === caller.userId;
}

async function decide(deps: HttpDeps, caller: Caller, id: string, decision: 'approved' | 'denied') {
  const found = await getApproval(deps.db, id);
  if (!found || !(mayDecide(caller, found) || caller.role === 'auditor'))
    throw new AppError(404, 'not_found', `No approval ${id}.`);
  if (!mayDecide(caller, found))
    throw new AppError(403, 'forbidden', 'Only an operator or the user who was asked may decide this.');
  const r = await decideApproval(deps.db, { id, decision, by: caller.name });
  if (!r.decided)
    throw new AppError(
      409,
      'approval_decided',
      r.approval?.status === 'expired'
        ? 'This approval expired; the call was not made.'
        : `This approval was already ${r.approval?.status}${r.approval?.decided_by ? ` by ${r.approval.decided_by}` : ''}.`,
    );
  await writeAudit(deps.db, {
    kind: 'approval.decide',
    actor: caller.name,
    userId: found.user_id,
    platform: found.platform,
    conversationId: found.conversation_id,
    outcome: decision,
    detail: { approval_id: id, tool: found.tool, summary: found.summary },
  });
  return r.approval!;
}

const decideRoute = (decision: 'approved' | 'denied') =>
  route({
    method: 'post',
    path: `/api/v1/approvals/:id/${decision === 'approved' ? 'approve' : 'deny'}`,
    operationId: decision === 'approved' ? 'approveToolCall' : 'denyToolCall',
    tag: 'tools',
    summary:
      decision === 'approved'
        ? 'Approve a tool call: it runs at once'
        : 'Refuse a tool call: the model is told it was not made',
    description: 'Operators decide any; a user key only the questions put to its own user.',
    roles: ['operator', 'user'],
    params: UuidPath,
    response: { description: 'The decided approval.', schema: ApprovalBody },
    errors: { 409: 'Already decided, or expired.' },
    async handler({ params, caller, deps }) {
      return decide(deps, caller, params.id, decision);
    },
  });

export const approvalRoutes: Route[] = [
  route({
    method: 'get',
    path: '/api/v1/approvals',
    operationId: 'listApprovals',
    tag: 'tools',
    summary: 'Tool calls waiting for (or given) approval',
    description:
      'Newest first. Operators and auditors see every approval; a user key sees the questions about its own calls.',
    roles: ['operator', 'auditor', 'user'],
    query: z.object({ status: z.enum(STATUSES).optional(), limit: limitParam(500, 100) }),
    response: { description: 'Approvals.', schema: z.object({ data: z.array(ApprovalBody) }) },
    async handler({ query, caller, deps }) {
      const all = caller.role === 'admin' || caller.role === 'operator' || caller.role === 'auditor';
      return {
        data: await listApprovals(deps.db, {
          status: query.status,
          limit: query.limit,
          userId: all ? undefined : caller.userId,
        }),
      };
    },
  }),
  decideRoute('approved'),
  decideRoute('denied'),
];
