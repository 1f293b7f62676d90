import { createHash, timingSafeEqual } from 'node:crypto';
import { AppError, type Logger } from '@pincer/shared';
import type { Db } from '../repositories/db.ts';
import { findActiveApiKey, type Role, touchApiKey } from '../repositories/keys.ts';
import { identify } from '../repositories/people.ts';
import type { Caller } from './types.ts';

const ADMIN_TOKEN_ID = 'admin-token';
/** last_used_at is a hint for operators: one write a minute per key is plenty. */
const TOUCH_INTERVAL_MS = 60_000;

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export interface Authenticator {
  /** The caller behind an Authorization header; 401 when missing, unknown or revoked. */
  authenticate(authorization: string | undefined): Promise<Caller>;
}

export function createAuthenticator(db: Db, adminToken: string | undefined, log: Logger): Authenticator {
  // digests have equal length whatever the token, so the comparison takes constant time
  const adminDigest = adminToken ? sha256(adminToken) : undefined;
  const userIds = new Map<string, Promise<number>>();
  const touchedAt = new Map<string, number>();

  /** The user a key acts as (an 'api' identity), looked up once per process. */
  const userOf = (id: string, name: string): Promise<number> => {
    let p = userIds.get(id);
    if (!p) {
      p = identify(db, { platform: 'api', externalId: id, displayName: name }).then((i) => i.userId);
      p.catch(() => userIds.delete(id));
      userIds.set(id, p);
    }
    return p;
  };

  const touch = (id: string) => {
    const now = Date.now();
    if (now - (touchedAt.get(id) ?? 0) < TOUCH_INTERVAL_MS) return;
    touchedAt.set(id, now);
    touchApiKey(db, id).catch((err: Error) =>
      log.warn('could not record key use', { keyId: id, error: err.message }),
    );
  };

  return {
    async authenticate(authorization) {
      const m = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
      if (!m) throw unauthorized('Missing bearer token: send Authorization: Bearer <API key>.');
      const token = m[1]!;
      if (adminDigest && timingSafeEqual(sha256(token), adminDigest)) {
        return {
          id: ADMIN_TOKEN_ID,
          name: ADMIN_TOKEN_ID,
          role: 'admin' as Role,
          userId: await userOf(ADMIN_TOKEN_ID, 'admin token'),
        };
      }
      const key = await findActiveApiKey(db, token);
      if (!key) throw unauthorized('Invalid or revoked API key.');
      touch(key.id);
      return { id: key.id, name: key.name, role: key.role, userId: await userOf(key.id, key.name) };
    },
  };
}

function unauthorized(message: string): AppError {
  return new AppError(401, 'unauthorized', message, { headers: { 'www-authenticate': 'Bearer' } });
}

/** 403 unless the caller's role is admin or one the route allows. */
export function authorize(caller: Caller, roles: readonly Role[]): void {
  if (caller.role === 'admin' || roles.includes(caller.role)) return;
  throw new AppError(
    403,
    'forbidden',
    `This endpoint needs one of the roles ${['admin', ...roles].join(', ')}; this key has the role ${caller.role}.`,
  );
}
