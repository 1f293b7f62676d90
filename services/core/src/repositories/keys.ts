import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './db.ts';

export const ROLES = ['admin', 'operator', 'auditor', 'user'] as const;
export type Role = (typeof ROLES)[number];

export interface ApiKey {
  id: string;
  name: string;
  role: Role;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const KEY_PREFIX = 'pk_';
/** `pk_` + 32 random bytes in base64url. */
const KEY_SHAPE = /^pk_[A-Za-z0-9_-]{43}$/;

/** Only this digest is stored: a leaked table does not leak usable keys. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function looksLikeApiKey(token: string): boolean {
  return KEY_SHAPE.test(token);
}

/** Creates a key; the key itself is returned here and never again. */
export async function createApiKey(
  db: Db,
  k: { name: string; role: Role },
): Promise<ApiKey & { key: string }> {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  const { rows } = await db.query<ApiKey>(
    `INSERT INTO api_keys(name, key_hash, role) VALUES ($1, $2, $3)
     RETURNING id, name, role, created_at, last_used_at, revoked_at`,
    [k.name, hashApiKey(key), k.role],
  );
  return { ...rows[0]!, key };
}

/** The active (not revoked) key with this secret. */
export async function findActiveApiKey(
  db: Db,
  key: string,
): Promise<{ id: string; name: string; role: Role } | undefined> {
  if (!looksLikeApiKey(key)) return undefined;
  const { rows } = await db.query<{ id: string; name: string; role: Role }>(
    'SELECT id, name, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
    [hashApiKey(key)],
  );
  return rows[0];
}

export async function listApiKeys(db: Db): Promise<ApiKey[]> {
  const { rows } = await db.query<ApiKey>(
    'SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_keys ORDER BY created_at DESC, id',
  );
  return rows;
}

/** Revokes a key: 'unknown' when there is none with this id (revoking twice is not an error). */
export async function revokeApiKey(db: Db, id: string): Promise<'revoked' | 'already_revoked' | 'unknown'> {
  const r = await db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [
    id,
  ]);
  if (r.rowCount) return 'revoked';
  const { rows } = await db.query('SELECT 1 FROM api_keys WHERE id = $1', [id]);
  return rows.length ? 'already_revoked' : 'unknown';
}

/** Records use of a key, at most once a minute even across processes. */
export async function touchApiKey(db: Db, id: string): Promise<void> {
  await db.query(
    `UPDATE api_keys SET last_used_at = now()
     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`,
    [id],
  );
}
