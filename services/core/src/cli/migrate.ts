/** `npm run migrate -w services/core`: applies pending migrations (the compose `migrate` one-shot runs this). */
import { createPool } from '../repositories/db.ts';
import { migrate } from '../repositories/migrations.ts';

const url = process.env.DATABASE_URL;
if (!url || !/^postgres(ql)?:\/\//.test(url)) {
  process.stderr.write('migrate: DATABASE_URL must be set to a postgres:// URL\n');
  process.exit(2);
}
const pool = createPool(url, 2);
try {
  const applied = await migrate(pool);
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
} catch (err) {
  process.stderr.write(`migrate: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
