import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Bucket } from '../src/index.ts';

test('reserve serves callers in order: each waits one slot longer than the one before', () => {
  const b = new Bucket(10, 1000, 2); // 10/s, a burst of 2
  const now = Date.now();
  const waits = Array.from({ length: 5 }, () => b.reserve(now));
  assert.deepEqual(waits, [0, 0, 100, 200, 300]);
  // later, the balance has refilled: the next caller after 1 s is due at once
  assert.equal(b.reserve(now + 1000), 0);
});

test('block: after a 429, nothing is due before retry_after', () => {
  const b = new Bucket(1, 1000, 3);
  const now = Date.now();
  b.block(2000, now);
  assert.ok(b.delay(now) >= 2000);
  assert.ok(b.reserve(now) >= 3000, 'the next reservation queues behind the block');
});
