import { z } from 'zod';
import { AUDIT_COLUMNS, queryAudit } from '../../repositories/admin.ts';
import { toCsv } from '../csv.ts';
import { RESPONDED, type Route, route } from '../route.ts';
import { limitParam, rangeEnd, rangeStart, TimeBound, Timestamp, UserIdParam } from '../schemas.ts';

const AuditEntry = z.object({
  id: z.number().int(),
  at: Timestamp,
  kind: z.string().describe('model.invoke, pairing.approve, key.create, ...'),
  actor: z.string().nullable().describe('The API key (by name) that acted, for admin actions.'),
  user_id: z.number().int().nullable(),
  platform: z.string().nullable(),
  conversation_id: z.uuid().nullable(),
  model: z.string().nullable(),
  duration_ms: z.number().int().nullable(),
  prompt_tokens: z.number().int().nullable(),
  completion_tokens: z.number().int().nullable(),
  outcome: z.string(),
  detail: z.record(z.string(), z.unknown()).nullable(),
  content: z.string().nullable().describe('Message text, only when audit.include_content is on.'),
});

export const auditRoutes: Route[] = [
  route({
    method: 'get',
    path: '/api/v1/audit',
    operationId: 'queryAuditLog',
    tag: 'audit',
    summary: 'Query the audit log',
    description:
      'Newest first. `format=csv` answers text/csv with the same columns; the next page cursor is then in the `x-next-cursor` header.',
    roles: ['auditor'],
    query: z.object({
      from: TimeBound.optional().describe('At or after (inclusive).'),
      to: TimeBound.optional().describe('Before (exclusive; a bare date includes that day).'),
      user_id: UserIdParam.optional(),
      kind: z.string().max(100).optional(),
      outcome: z.string().max(100).optional(),
      limit: limitParam(1000, 100),
      before: z.coerce
        .number()
        .int()
        .positive()
        .optional()
        .describe('next_cursor of the previous page (an entry id).'),
      format: z.enum(['json', 'csv']).default('json'),
    }),
    response: {
      description: 'A page of audit entries.',
      schema: z.object({ data: z.array(AuditEntry), next_cursor: z.string().nullable() }),
      alternatives: { 'text/csv': 'with format=csv' },
    },
    async handler({ query, deps, res }) {
      const page = await queryAudit(deps.db, {
        from: rangeStart(query.from),
        to: rangeEnd(query.to),
        userId: query.user_id,
        kind: query.kind,
        outcome: query.outcome,
        limit: query.limit,
        before: query.before,
      });
      if (query.format === 'json') return page;
      res.status(200).set({
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': 'attachment; filename="pincer-audit.csv"',
        ...(page.next_cursor ? { 'x-next-cursor': page.next_cursor } : {}),
      });
      res.end(toCsv(AUDIT_COLUMNS, page.data as unknown as Record<string, unknown>[]));
      return RESPONDED;
    },
  }),
];
