import { AppError } from '@pincer/shared';
import { z } from 'zod';
import { decidePairing, listPairingRequests, type PairingRequest } from '../../repositories/admin.ts';
import { type Route, route } from '../route.ts';
import { limitParam, Timestamp, UuidPath } from '../schemas.ts';
import type { HttpDeps, Caller } from '../types.ts';

const STATUSES = ['pending', 'approved', 'denied', 'expired'] as const;

const PairingRequestBody = z.object({
  id: z.uuid(),
  platform: z.string(),
  external_id: z.string(),
  display_name: z.string(),
  code: z.string().describe('The code the user was given; they tell it to whoever approves them.'),
  status: z.enum(STATUSES),
  created_at: Timestamp,
  expires_at: Timestamp,
  decided_at: Timestamp.nullable(),
  decided_by: z.string().nullable(),
});

const CONFLICTS = { 409: 'The request expired or was already approved or denied.' };

async function decide(
  deps: HttpDeps,
  caller: Caller,
  id: string,
  decision: 'approved' | 'denied',
): Promise<PairingRequest> {
  const r = await decidePairing(deps.db, { id, decision, actor: caller.name });
  if (r.outcome === 'decided') {
    deps.log.info('pairing request decided', {
      pairingId: id,
      decision,
      actor: caller.name,
      platform: r.request.platform,
    });
    return r.request;
  }
  if (r.outcome === 'unknown') throw new AppError(404, 'not_found', `No pairing request ${id}.`);
  const req = r.request;
  if (req.status === 'expired')
    throw new AppError(
      409,
      'pairing_expired',
      `This pairing request expired at ${req.expires_at.toISOString()}; the user must ask for a new code.`,
    );
  throw new AppError(
    409,
    'pairing_decided',
    `This pairing request was already ${req.status}${req.decided_by ? ` by ${req.decided_by}` : ''}.`,
  );
}

export const pairingRoutes: Route[] = [
  route({
    method: 'get',
    path: '/api/v1/pairing',
    operationId: 'listPairingRequests',
    tag: 'pairing',
    summary: 'Pairing requests of people who want to talk to the bot',
    description: 'Newest first. A pending request past its expiry is listed as expired.',
    roles: ['operator'],
    query: z.object({ status: z.enum(STATUSES).optional(), limit: limitParam(500, 100) }),
    response: { description: 'Pairing requests.', schema: z.object({ data: z.array(PairingRequestBody) }) },
    async handler({ query, deps }) {
      return { data: await listPairingRequests(deps.db, { status: query.status, limit: query.limit }) };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/pairing/:id/approve',
    operationId: 'approvePairingRequest',
    tag: 'pairing',
    summary: 'Approve a pairing request: the person may talk to the bot from now on',
    roles: ['operator'],
    params: UuidPath,
    response: { description: 'The approved request.', schema: PairingRequestBody },
    errors: CONFLICTS,
    async handler({ params, caller, deps }) {
      return decide(deps, caller, params.id, 'approved');
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/pairing/:id/deny',
    operationId: 'denyPairingRequest',
    tag: 'pairing',
    summary: 'Deny a pairing request',
    roles: ['operator'],
    params: UuidPath,
    response: { description: 'The denied request.', schema: PairingRequestBody },
    errors: CONFLICTS,
    async handler({ params, caller, deps }) {
      return decide(deps, caller, params.id, 'denied');
    },
  }),
];
