import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { createLogger } from '@pincer/shared';
import { AdapterProcess } from '../src/index.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const log = createLogger({ service: 'adapter-kit-test', level: 'error' });
const start = () =>
  new AdapterProcess({
    name: 'kit-test',
    redisUrl: REDIS_URL,
    redisPrefix: `pincer-test-kit-proc-${randomBytes(5).toString('hex')}`,
    log,
    idle: false,
  });

test('connect: tried again until the platform answers; health then says ok', async () => {
  const proc = start();
  try {
    let tries = 0;
    await proc.connect(
      async () => {
        if (++tries === 1) throw new Error('ECONNREFUSED');
      },
      () => ({ unauthorized: false, message: 'cannot reach the platform yet' }),
    );
    assert.equal(tries, 2);
    const h = await proc.health('polling', { platform: { reachable: true } });
    assert.equal(h.ok, true);
    assert.deepEqual(h.body, { status: 'ok', mode: 'polling', redis: true, platform: { reachable: true } });
  } finally {
    await proc.shutdown(1000);
  }
});

test('connect: refused credentials show in health, and shutdown does not wait out the backoff', async () => {
  const proc = start();
  const connecting = proc.connect(
    async () => {
      throw new Error('401 Unauthorized');
    },
    () => ({ unauthorized: true, message: 'the platform refused the credentials' }),
  );
  const deadline = Date.now() + 3000;
  while (proc.phase !== 'unauthorized' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const h = await proc.health('webhook', {});
  assert.equal(h.body.status, 'unauthorized');
  assert.equal(h.body.error, '401 Unauthorized');
  const stopping = Date.now();
  await proc.shutdown(5000);
  await connecting;
  assert.ok(Date.now() - stopping < 500, `connect loop ended ${Date.now() - stopping} ms after shutdown`);
});
