import { randomInt } from 'node:crypto';
import type { Db } from './db.ts';

// no 0/O, 1/I/L: codes are read aloud and typed by hand
const ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

function newCode(): string {
  let s = '';
  for (let i = 0; i < 8; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return s;
}

export type PairingOutcome =
  { kind: 'code'; code: string; expiresAt: Date; created: boolean } | { kind: 'full' };

/** A pending pairing code for the sender: the existing one if still valid, a new one otherwise (capped). */
export async function pairingCode(
  db: Db,
  p: { platform: string; externalId: string; displayName: string; ttlMinutes: number; maxPending: number },
): Promise<PairingOutcome> {
  await expirePairing(db);
  const existing = await pendingCode(db, p.platform, p.externalId);
  if (existing) return existing;
  const pending = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pairing_requests WHERE status = 'pending'`,
  );
  if (pending.rows[0]!.n >= p.maxPending) return { kind: 'full' };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const { rows } = await db.query<{ code: string; expires_at: Date }>(
        `INSERT INTO pairing_requests(platform, external_id, display_name, code, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(mins => $5)) RETURNING code, expires_at`,
        [p.platform, p.externalId, p.displayName, newCode(), p.ttlMinutes],
      );
      return { kind: 'code', code: rows[0]!.code, expiresAt: rows[0]!.expires_at, created: true };
    } catch (err) {
      // a concurrent request for the same sender won: use its code; a code collision: try another
      if ((err as { code?: string }).code !== '23505') throw err;
      const again = await pendingCode(db, p.platform, p.externalId);
      if (again) return again;
    }
  }
  throw new Error('could not allocate a pairing code');
}

/** The sender's pending, unexpired pairing code, if there is one. */
async function pendingCode(
  db: Db,
  platform: string,
  externalId: string,
): Promise<PairingOutcome | undefined> {
  const { rows } = await db.query<{ code: string; expires_at: Date }>(
    `SELECT code, expires_at FROM pairing_requests WHERE platform = $1 AND external_id = $2 AND status = 'pending'`,
    [platform, externalId],
  );
  return rows[0] && { kind: 'code', code: rows[0].code, expiresAt: rows[0].expires_at, created: false };
}

export async function expirePairing(db: Db): Promise<number> {
  const r = await db.query(
    `UPDATE pairing_requests SET status = 'expired' WHERE status = 'pending' AND expires_at < now()`,
  );
  return r.rowCount ?? 0;
}
