import type { Logger } from '@pincer/shared';
import type { CoreConfig } from '../config.ts';
import { pruneToolRecords } from '../repositories/approvals.ts';
import { pruneAudit } from '../repositories/audit.ts';
import type { Db } from '../repositories/db.ts';
import { expirePairing } from '../repositories/pairing.ts';

/**
 * Hourly upkeep, run by one process at a time: audit retention (tool calls, approvals, task firings
 * and workflow runs too), pairing-code expiry, and document ingestions that lost their job.
 */
export function maintenanceHandler(
  db: Db,
  config: CoreConfig,
  log: Logger,
  requeueIngestions: () => Promise<number>,
) {
  return async (): Promise<{ audit: number; pairing: number; ingestions: number }> => {
    const audit = await pruneAudit(db, config.audit.retention_days);
    const records = await pruneToolRecords(db, config.audit.retention_days);
    if (records) log.info('maintenance', { toolRecordsDeleted: records });
    const pairing = await expirePairing(db);
    const ingestions = await requeueIngestions();
    if (audit || pairing) log.info('maintenance', { auditDeleted: audit, pairingExpired: pairing });
    return { audit, pairing, ingestions };
  };
}
