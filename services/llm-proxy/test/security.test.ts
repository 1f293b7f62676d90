import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { type MockServer, startMockServer } from '@pincer/mock-inference';
import { Redis } from 'ioredis';
import { getJson, type Harness, post, singleProvider, startHarness } from './harness.ts';

const LIMITED_KEY = 'limited-key-0123456789abcdef';
const TOKEN_KEY = 'token-key-0123456789abcdefgh';
const SCOPED_KEY = 'scoped-key-0123456789abcdefg';
const msgs = [{ role: 'user', content: 'hello' }];

describe('keys, limits and bad input', () => {
  let mock: MockServer;
  let h: Harness;
  before(async () => {
    mock = await startMockServer({ flavor: 'openai' });
    const models = singleProvider('openai', [`${mock.url}/v1`]);
    (models.models as Record<string, unknown>).other = { provider: 'p', model_id: 'other' };
    h = await startHarness(models, {
      max_body_bytes: 4096,
      keys: [
        { name: 'limited', key: LIMITED_KEY, rpm: 3 },
        { name: 'tokens', key_sha256: createHash('sha256').update(TOKEN_KEY).digest('hex'), tpm: 50 },
        { name: 'scoped', key: SCOPED_KEY, models: ['other'] },
      ],
    });
  });
  after(async () => {
    await h.close();
    await mock.close();
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    const keys = await redis.keys(`${h.prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  it('refuses missing and wrong keys in the OpenAI error shape, sending nothing upstream', async () => {
    const before = mock.requests.length;
    const none = await post(`${h.url}/v1/chat/completions`, undefined, { model: 'm', messages: msgs });
    assert.equal(none.status, 401);
    assert.deepEqual(Object.keys(none.json.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(none.json.error.code, 'missing_api_key');
    const wrong = await post(`${h.url}/v1/chat/completions`, 'sk-wrong-key-that-is-long-enough', {
      model: 'm',
      messages: msgs,
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.code, 'invalid_api_key');
    const models = await fetch(`${h.url}/v1/models`);
    assert.equal(models.status, 401);
    assert.equal(mock.requests.length, before);
  });

  it('accepts declared keys, by clear key (hashed at load) or by SHA-256, and enforces their model list', async () => {
    assert.equal(
      (await post(`${h.url}/v1/chat/completions`, TOKEN_KEY, { model: 'm', messages: msgs })).status,
      200,
    );
    const denied = await post(`${h.url}/v1/chat/completions`, SCOPED_KEY, { model: 'm', messages: msgs });
    assert.equal(denied.status, 403);
    assert.equal(denied.json.error.code, 'model_not_allowed');
    assert.equal(
      (await post(`${h.url}/v1/chat/completions`, SCOPED_KEY, { model: 'other', messages: msgs })).status,
      200,
    );
    const list = (await getJson(`${h.url}/v1/models`, SCOPED_KEY)).body;
    assert.deepEqual(
      list.data.map((m: { id: string }) => m.id),
      ['other'],
    );
  });

  it('enforces requests per minute per key with 429, Retry-After and rate-limit headers', async () => {
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 0; i < 5; i++) {
      last = await post(`${h.url}/v1/chat/completions`, LIMITED_KEY, { model: 'm', messages: msgs });
      statuses.push(last.status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    assert.equal(last!.json.error.code, 'rate_limit_exceeded');
    assert.equal(last!.json.error.type, 'requests');
    assert.ok(Number(last!.headers.get('retry-after')) >= 1);
    assert.equal(last!.headers.get('x-ratelimit-limit-requests'), '3');
    // core's own key has no limit
    assert.equal(
      (await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: msgs })).status,
      200,
    );
    assert.match(
      await (await fetch(`${h.url}/metrics`)).text(),
      /pincer_llm_rate_limited_total\{key="limited",limit="requests",service="llm-proxy"\} 2/,
    );
  });

  it('enforces tokens per minute from real usage', async () => {
    // the earlier request by this key already used its tokens; keep going until the budget is spent
    let status = 200;
    for (let i = 0; i < 10 && status === 200; i++) {
      status = (
        await post(`${h.url}/v1/chat/completions`, TOKEN_KEY, {
          model: 'm',
          messages: [{ role: 'user', content: 'a fairly long question to spend tokens on' }],
        })
      ).status;
    }
    assert.equal(status, 429);
  });

  const bad: [string, string | object, number, string][] = [
    ['malformed JSON', '{"model": "m", "messages": [', 400, 'invalid_json'],
    ['a JSON array', '[1,2]', 400, 'invalid_request'],
    ['missing messages', { model: 'm' }, 400, 'missing_required_parameter'],
    ['empty messages', { model: 'm', messages: [] }, 400, 'invalid_value'],
    ['a bad role', { model: 'm', messages: [{ role: 'wizard', content: 'x' }] }, 400, 'invalid_value'],
    ['a bad temperature', { model: 'm', messages: msgs, temperature: 9 }, 400, 'invalid_value'],
    ['an unknown model', { model: 'gpt-17', messages: msgs }, 404, 'model_not_found'],
    [
      'an oversized body',
      { model: 'm', messages: [{ role: 'user', content: 'x'.repeat(5000) }] },
      413,
      'request_too_large',
    ],
  ];
  for (const [what, body, status, code] of bad) {
    it(`answers ${what} with ${status} ${code}, sending nothing upstream`, async () => {
      const before = mock.requests.length;
      const r = await post(`${h.url}/v1/chat/completions`, h.key, body);
      assert.equal(r.status, status);
      assert.equal(r.json.error.code, code);
      assert.equal(typeof r.json.error.message, 'string');
      assert.equal(mock.requests.length, before);
    });
  }

  it('refuses a body that only claims a huge length before reading it', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(`${h.url}/v1/chat/completions`);
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname,
          method: 'POST',
          headers: {
            authorization: `Bearer ${h.key}`,
            'content-type': 'application/json',
            'content-length': '999999999',
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      req.write('{"model":');
    });
    assert.equal(status, 413);
  });

  it('answers unknown paths with an OpenAI-shaped 404', async () => {
    const r = await post(`${h.url}/v1/completions/legacy`, h.key, {});
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'unknown_url');
  });

  it('never logs keys or message content', async () => {
    await post(`${h.url}/v1/chat/completions`, 'sk-not-a-real-key-0123456789', {
      model: 'm',
      messages: [{ role: 'user', content: 'my secret diary entry' }],
    });
    await post(`${h.url}/v1/chat/completions`, h.key, {
      model: 'm',
      messages: [{ role: 'user', content: 'my secret diary entry' }],
    });
    const all = h.logs.join('\n');
    assert.ok(h.logs.length > 0);
    for (const secret of [
      h.key,
      LIMITED_KEY,
      TOKEN_KEY,
      SCOPED_KEY,
      'sk-not-a-real-key-0123456789',
      'my secret diary entry',
    ]) {
      assert.ok(!all.includes(secret), `log contains ${secret.slice(0, 8)}…`);
    }
  });
});
