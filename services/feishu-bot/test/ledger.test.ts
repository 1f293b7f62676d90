import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { REDIS_URL } from '../../core/test/stack.ts';
import { ClaimHeld, Ledger } from '../src/repositories/ledger.ts';

describe('the intake ledger: each event taken in once, and never lost to an intake that died', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = `test-ledger-${randomBytes(4).toString('hex')}`;
  after(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });
  const keysFor = (n: string) => [
    { name: 'event_id' as const, id: `ev-${n}` },
    { name: 'message_id' as const, id: `om-${n}` },
  ];

  it('a claim still held refuses the redelivery (so the platform sends it again); once confirmed it is a duplicate', async () => {
    const ledger = new Ledger(redis, prefix, 60);
    const k = keysFor('a');
    assert.equal(await ledger.claim(k), undefined, 'the first intake owns it');
    await assert.rejects(ledger.claim(k), ClaimHeld, 'held by the first intake: refused, not dropped');
    // the same message under a new event id is held too, and the new event id is not left claimed
    await assert.rejects(ledger.claim([{ name: 'event_id', id: 'ev-a2' }, k[1]!]), ClaimHeld);
    assert.equal(await redis.exists(`${prefix}:feishu:seen:event_id:ev-a2`), 0);
    await ledger.confirm(k);
    assert.equal(await ledger.claim(k), 'event_id', 'taken in: a duplicate');
    assert.equal(await ledger.claim([{ name: 'event_id', id: 'ev-a3' }, k[1]!]), 'message_id');
  });

  it('the claim of an intake that died before queueing lapses, and the redelivery is taken in', async () => {
    const dead = new Ledger(redis, prefix, 60, 300);
    const k = keysFor('b');
    assert.equal(await dead.claim(k), undefined);
    // the intake dies here: no confirm, no release
    const next = new Ledger(redis, prefix, 60, 300);
    await assert.rejects(next.claim(k), ClaimHeld);
    await sleep(400);
    assert.equal(await next.claim(k), undefined, 'the lapsed claim is taken over');
  });
});
