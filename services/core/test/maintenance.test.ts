import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '@pincer/shared';
import { loadConfig } from '../src/config.ts';
import { maintenanceHandler } from '../src/jobs/maintenance.ts';
import { createTestDatabase, writeConfigDir } from './db-harness.ts';

describe('maintenance', () => {
  it('deletes audit entries past the retention and expires stale pairing codes, leaving the rest', async () => {
    const t = await createTestDatabase();
    try {
      const config = loadConfig({
        DATABASE_URL: t.url,
        LLM_PROXY_API_KEY: 'x'.repeat(20),
        PINCER_CONFIG_DIR: writeConfigDir({ audit: { retention_days: 30 } }),
      });
      await t.db.query(
        `INSERT INTO audit_log(kind, outcome, at) VALUES ('model.invoke', 'complete', now() - interval '31 days'), ('model.invoke', 'complete', now() - interval '29 days')`,
      );
      await t.db.query(
        `INSERT INTO pairing_requests(platform, external_id, code, expires_at) VALUES ('telegram', '1', 'AAAAAAAA', now() - interval '1 minute'), ('telegram', '2', 'BBBBBBBB', now() + interval '1 hour')`,
      );
      let requeues = 0;
      const requeueIngestions = async () => {
        requeues++;
        return 0;
      };
      const log = createLogger({ service: 'core', level: 'error' });
      const out = await maintenanceHandler(t.db, config, log, requeueIngestions)();
      assert.deepEqual(out, { audit: 1, pairing: 1, ingestions: 0 });
      assert.equal(requeues, 1, 'the upkeep re-queues lost ingestions too');
      const audit = await t.db.query(`SELECT count(*)::int AS n FROM audit_log`);
      assert.equal(audit.rows[0].n, 1);
      const pairing = await t.db.query(`SELECT code, status FROM pairing_requests ORDER BY code`);
      assert.deepEqual(pairing.rows, [
        { code: 'AAAAAAAA', status: 'expired' },
        { code: 'BBBBBBBB', status: 'pending' },
      ]);
    } finally {
      await t.drop();
    }
  });
});
