import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { type InboundMessageInput, QueueName } from '@pincer/shared';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { InboundPublisher } from '../src/index.ts';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const prefix = `pincer-test-kit-in-${randomBytes(5).toString('hex')}`;
after(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

const message = (id: string, text: string): InboundMessageInput => ({
  v: 1,
  platform: 'telegram',
  message_id: id,
  order: 1,
  chat: { id: '42', type: 'direct' },
  sender: { id: '42', display_name: 'T' },
  text,
  addressed: { direct: true, mention: false, reply_to_bot: false },
  sent_at: 1,
  received_at: 1,
});

test('a batch: valid messages are queued once each, one that breaks the contract is returned, not queued', async () => {
  const publisher = new InboundPublisher(redis, prefix);
  const queue = new Queue(QueueName.Inbound, { connection: redis, prefix });
  try {
    const bad = { ...message('2', 'x'), chat: { id: '', type: 'direct' } } as InboundMessageInput;
    const r = await publisher.publish([message('1', 'first'), bad, message('3', 'third')]);
    assert.equal(r.rejected.length, 1);
    assert.match(r.rejected[0]!.error, /chat/);
    // the same messages again (a repeated poll): still one job each
    await publisher.publish([message('1', 'first'), message('3', 'third')]);
    const jobs = await queue.getJobs(['waiting']);
    assert.deepEqual(jobs.map((j) => j.id).sort(), ['telegram/42/1', 'telegram/42/3']);
  } finally {
    await publisher.close();
    await queue.close();
  }
});
