import type { Queryable } from './db.ts';

export interface Identity {
  userId: number;
  approved: boolean;
}

/**
 * The user behind a platform sender, created on first contact; display names are kept current.
 * Safe under concurrent first messages from the same sender.
 */
export async function identify(
  db: Queryable,
  p: { platform: string; externalId: string; displayName: string; username?: string },
): Promise<Identity> {
  const { rows } = await db.query<{ user_id: number; approved: boolean; inserted: boolean }>({
    name: 'core.identify',
    text: `WITH existing AS (SELECT user_id FROM identities WHERE platform = $1 AND external_id = $2),
     new_user AS (INSERT INTO users(display_name) SELECT $3 WHERE NOT EXISTS (SELECT 1 FROM existing) RETURNING id)
     INSERT INTO identities(platform, external_id, user_id, display_name, username)
     VALUES ($1, $2, COALESCE((SELECT user_id FROM existing), (SELECT id FROM new_user)), $3, $4)
     ON CONFLICT (platform, external_id) DO UPDATE
       SET display_name = EXCLUDED.display_name, username = EXCLUDED.username, updated_at = now()
       WHERE identities.display_name IS DISTINCT FROM EXCLUDED.display_name OR identities.username IS DISTINCT FROM EXCLUDED.username
     RETURNING user_id, approved, (xmax = 0) AS inserted`,
    values: [p.platform, p.externalId, p.displayName, p.username ?? null],
  });
  if (rows[0]) {
    // a new identity's user was created with this name; a changed one updates it
    if (p.displayName && !rows[0].inserted)
      await db.query(
        'UPDATE users SET display_name = $2, updated_at = now() WHERE id = $1 AND display_name IS DISTINCT FROM $2',
        [rows[0].user_id, p.displayName],
      );
    return { userId: rows[0].user_id, approved: rows[0].approved };
  }
  // unchanged identity (the conditional update returned nothing)
  const again = await db.query<{ user_id: number; approved: boolean }>(
    'SELECT user_id, approved FROM identities WHERE platform = $1 AND external_id = $2',
    [p.platform, p.externalId],
  );
  return { userId: again.rows[0]!.user_id, approved: again.rows[0]!.approved };
}

export async function approveIdentity(db: Queryable, platform: string, externalId: string): Promise<void> {
  await db.query(
    'UPDATE identities SET approved = true, updated_at = now() WHERE platform = $1 AND external_id = $2',
    [platform, externalId],
  );
}
