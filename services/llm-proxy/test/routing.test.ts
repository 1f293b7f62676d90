import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type MockServer, startMockServer } from '@pincer/mock-inference';
import { eventually, getJson, type Harness, post, sseData, startHarness } from './harness.ts';

const user = (content: string) => [{ role: 'user', content }];

async function mocks(n: number, opts: Parameters<typeof startMockServer>[0] = {}): Promise<MockServer[]> {
  return Promise.all(Array.from({ length: n }, () => startMockServer({ flavor: 'vllm', ...opts })));
}

async function closeAll(h: Harness | undefined, ms: MockServer[]) {
  await h?.close();
  await Promise.all(ms.map((m) => m.close()));
}

const nodeUrls = (ms: MockServer[], maxConcurrency = 4) =>
  ms.map((m) => ({ url: `${m.url}/v1`, max_concurrency: maxConcurrency }));

describe('routing across nodes', () => {
  it('least-busy spreads concurrent requests over the nodes', async () => {
    const ms = await mocks(3, { tokenRate: 200 });
    const h = await startHarness({
      providers: { p: { type: 'openai', nodes: nodeUrls(ms) } },
      models: { m: { provider: 'p', model_id: 'x' } },
    });
    try {
      // long replies keep each request busy, so the choice must follow load
      for (const m of ms) m.script({ reply: { content: 'word '.repeat(40) } });
      const results = await Promise.all(
        Array.from({ length: 9 }, (_, i) =>
          post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user(`q${i}`) }),
        ),
      );
      assert.ok(results.every((r) => r.status === 200));
      assert.deepEqual(
        ms.map((m) => m.requests.length),
        [3, 3, 3],
      );
      assert.ok(ms.every((m) => m.maxActive <= 3));
    } finally {
      await closeAll(h, ms);
    }
  });

  it('least-busy avoids a node that is busy with a long request', async () => {
    const ms = await mocks(2);
    const h = await startHarness({
      providers: { p: { type: 'openai', nodes: nodeUrls(ms) } },
      models: { m: { provider: 'p', model_id: 'x' } },
    });
    try {
      for (const m of ms) m.script({ match: { contains: 'long' }, reply: { delayMs: 400 } });
      const long = post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('long') });
      await eventually(() => ms[0]!.active + ms[1]!.active === 1);
      const busy = ms[0]!.active === 1 ? ms[0]! : ms[1]!;
      const idle = busy === ms[0] ? ms[1]! : ms[0]!;
      for (let i = 0; i < 4; i++)
        assert.equal(
          (await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('short') })).status,
          200,
        );
      assert.equal(idle.requests.length, 4, 'all short requests went to the idle node');
      assert.equal(busy.requests.length, 1);
      await long;
    } finally {
      await closeAll(h, ms);
    }
  });

  it('round_robin takes nodes in turn', async () => {
    const ms = await mocks(2);
    const h = await startHarness({
      providers: { p: { type: 'openai', nodes: nodeUrls(ms) } },
      models: { m: { provider: 'p', model_id: 'x' } },
      routing: { load_balance: 'round_robin' },
    });
    try {
      for (let i = 0; i < 4; i++)
        assert.equal(
          (await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('hi') })).status,
          200,
        );
      assert.deepEqual(
        ms.map((m) => m.requests.length),
        [2, 2],
      );
    } finally {
      await closeAll(h, ms);
    }
  });

  it('falls back to the next model when the primary node is down, before any byte reaches the client', async () => {
    const [primary, backup] = await mocks(2);
    primary!.setDown(true);
    const h = await startHarness({
      providers: {
        gpu: { type: 'openai', nodes: nodeUrls([primary!]), retries: { attempts: 1, backoff_ms: 5 } },
        cpu: { type: 'openai', nodes: nodeUrls([backup!]) },
      },
      models: { big: { provider: 'gpu', model_id: 'big' }, small: { provider: 'cpu', model_id: 'small' } },
      routing: { fallbacks: { big: ['small'] } },
    });
    try {
      const r = await post(`${h.url}/v1/chat/completions`, h.key, {
        model: 'big',
        stream: true,
        messages: user('anyone there'),
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-pincer-model'), 'small');
      const text = sseData(r.text)
        .filter((c) => c !== '[DONE]')
        .map((c) => c.choices[0]?.delta?.content ?? '')
        .join('');
      assert.match(text, /anyone there/);
      assert.equal(backup!.requests.at(-1)!.body.model, 'small');
      const metrics = await (await fetch(`${h.url}/metrics`)).text();
      assert.match(metrics, /pincer_llm_fallbacks_total\{from="big",to="small",service="llm-proxy"\} 1/);
      assert.match(metrics, /pincer_llm_retries_total\{model="big",service="llm-proxy"\} 1/);
    } finally {
      await closeAll(h, [primary!, backup!]);
    }
  });

  it('retries on another node when one fails before the first token', async () => {
    const ms = await mocks(2);
    const h = await startHarness({
      providers: { p: { type: 'openai', nodes: nodeUrls(ms), retries: { attempts: 2, backoff_ms: 5 } } },
      models: { m: { provider: 'p', model_id: 'x' } },
    });
    try {
      for (const m of ms) m.script({ times: 1, reply: { status: 500, errorMessage: 'CUDA out of memory' } });
      const r = await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('retry me') });
      assert.equal(r.status, 200);
      assert.match(r.json.choices[0].message.content, /retry me/);
      assert.equal(r.headers.get('x-pincer-retries'), '2');
    } finally {
      await closeAll(h, ms);
    }
  });

  it('sends an error chunk and closes cleanly when the upstream breaks mid-stream (no retry after the first byte)', async () => {
    const ms = await mocks(1);
    const h = await startHarness({
      providers: { p: { type: 'openai', nodes: nodeUrls(ms), retries: { attempts: 2, backoff_ms: 5 } } },
      models: { m: { provider: 'p', model_id: 'x' } },
    });
    try {
      ms[0]!.script({ reply: { content: 'one two three four five six', disconnectAfterChunks: 3 } });
      const r = await post(`${h.url}/v1/chat/completions`, h.key, {
        model: 'm',
        stream: true,
        messages: user('break'),
      });
      assert.equal(r.status, 200);
      const events = sseData(r.text);
      const last = events.at(-1);
      assert.equal(last.error.code, 'upstream_error');
      assert.ok(
        events.some((e) => e !== '[DONE]' && e.choices?.[0]?.delta?.content),
        'the text so far was delivered',
      );
      assert.equal(ms[0]!.requests.length, 1, 'no retry once the client has bytes');
    } finally {
      await closeAll(h, ms);
    }
  });

  it('opens the circuit breaker after repeated failures and closes it after a good half-open trial', async () => {
    const [bad, good] = await mocks(2);
    const h = await startHarness({
      providers: {
        p: {
          type: 'openai',
          nodes: nodeUrls([bad!, good!]),
          retries: { attempts: 1, backoff_ms: 1 },
          breaker: { failure_threshold: 2, cooldown_ms: 300, max_cooldown_ms: 1000 },
        },
      },
      models: { m: { provider: 'p', model_id: 'x' } },
    });
    try {
      bad!.script({ reply: { status: 503, errorMessage: 'overloaded' } });
      for (let i = 0; i < 4; i++)
        assert.equal(
          (await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('x') })).status,
          200,
        );
      const status = (await getJson(`${h.url}/status`, h.key)).body;
      const badNode = status.providers[0].nodes[0];
      assert.equal(badNode.breaker, 'open');
      const seenWhileOpen = bad!.requests.length;
      for (let i = 0; i < 4; i++)
        await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('x') });
      assert.equal(bad!.requests.length, seenWhileOpen, 'an open node gets no traffic');
      assert.match(
        await (await fetch(`${h.url}/metrics`)).text(),
        /pincer_llm_node_breaker_state\{node="p-0",service="llm-proxy"\} 2/,
      );

      bad!.reset(); // healthy again
      await new Promise((r) => setTimeout(r, 400)); // past the (jittered) cooldown
      await eventually(
        async () => {
          await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('x') });
          return bad!.requests.length > 0;
        },
        3000,
        'a half-open trial on the recovered node',
      );
      const after = (await getJson(`${h.url}/status`, h.key)).body;
      assert.equal(after.providers[0].nodes[0].breaker, 'closed');
    } finally {
      await closeAll(h, [bad!, good!]);
    }
  });

  it('when every node is open, tries the one that failed longest ago instead of refusing', async () => {
    const ms = await mocks(1);
    const h = await startHarness({
      providers: {
        p: {
          type: 'openai',
          nodes: nodeUrls(ms),
          retries: { attempts: 0, backoff_ms: 1 },
          breaker: { failure_threshold: 1, cooldown_ms: 60000 },
        },
      },
      models: { m: { provider: 'p', model_id: 'x' } },
    });
    try {
      ms[0]!.script({ times: 1, reply: { status: 500 } });
      assert.equal(
        (await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('a') })).status,
        502,
      );
      // the breaker is now open
      // the breaker is open for a minute, yet the next request is still tried and succeeds
      const r = await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('b') });
      assert.equal(r.status, 200);
      assert.equal(ms[0]!.requests.length, 2);
    } finally {
      await closeAll(h, ms);
    }
  });

  it('limits concurrency per node: waits in the queue, then answers 429 with Retry-After when it is full', async () => {
    const ms = await mocks(1, { tokenRate: 100 });
    const h = await startHarness({
      providers: { p: { type: 'openai', nodes: nodeUrls(ms, 1), queue: { size: 1, timeout_ms: 10000 } } },
      models: { m: { provider: 'p', model_id: 'x' } },
    });
    try {
      ms[0]!.script({ reply: { content: 'a b c d e f g h i j' } });
      const first = post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('1') });
      await eventually(() => ms[0]!.active === 1, 2000, 'first request upstream');
      const second = post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('2') });
      await eventually(
        async () =>
          /pincer_llm_queue_depth\{provider="p",service="llm-proxy"\} 1/.test(
            await (await fetch(`${h.url}/metrics`)).text(),
          ),
        2000,
        'second request queued',
      );
      const third = await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('3') });
      assert.equal(third.status, 429);
      assert.equal(third.json.error.code, 'queue_full');
      assert.ok(Number(third.headers.get('retry-after')) >= 1);
      const [r1, r2] = await Promise.all([first, second]);
      assert.equal(r1.status, 200);
      assert.equal(r2.status, 200, 'the queued request is answered');
      assert.equal(ms[0]!.maxActive, 1);
      assert.equal(ms[0]!.requests.length, 2);
    } finally {
      await closeAll(h, ms);
    }
  });

  it('expires a queued request after the queue timeout with 429', async () => {
    const ms = await mocks(1);
    const h = await startHarness({
      providers: { p: { type: 'openai', nodes: nodeUrls(ms, 1), queue: { size: 4, timeout_ms: 150 } } },
      models: { m: { provider: 'p', model_id: 'x' } },
    });
    try {
      ms[0]!.script({ match: { contains: 'slow' }, reply: { delayMs: 600 } });
      const slow = post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('slow') });
      await eventually(() => ms[0]!.active === 1);
      const r = await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('fast') });
      assert.equal(r.status, 429);
      assert.equal(r.json.error.code, 'queue_timeout');
      assert.equal((await slow).status, 200);
    } finally {
      await closeAll(h, ms);
    }
  });

  it('a client that disconnects aborts the upstream request at once and frees the slot', async () => {
    const ms = await mocks(1, { tokenRate: 20 });
    const h = await startHarness({
      providers: { p: { type: 'openai', nodes: nodeUrls(ms, 1) } },
      models: { m: { provider: 'p', model_id: 'x' } },
    });
    try {
      ms[0]!.script({ reply: { content: 'word '.repeat(200) } });
      const controller = new AbortController();
      const res = await fetch(`${h.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', stream: true, messages: user('long') }),
        signal: controller.signal,
      });
      const reader = res.body!.getReader();
      await reader.read(); // the stream has started
      const t = Date.now();
      controller.abort();
      const seen = await ms[0]!.waitFor((r) => r.aborted, 2000);
      assert.ok(seen.chunksSent < 150, 'generation stopped early');
      assert.ok(Date.now() - t < 1000);
      // the slot is free again: a new request on the max_concurrency=1 node goes straight through
      ms[0]!.reset();
      const next = await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('next') });
      assert.equal(next.status, 200);
      assert.match(
        await (await fetch(`${h.url}/metrics`)).text(),
        /pincer_llm_client_aborts_total\{model="m",service="llm-proxy"\} 1/,
      );
    } finally {
      await closeAll(h, ms);
    }
  });

  it('a client that disconnects while queued never reaches the upstream', async () => {
    const ms = await mocks(1);
    const h = await startHarness({
      providers: { p: { type: 'openai', nodes: nodeUrls(ms, 1), queue: { size: 4, timeout_ms: 5000 } } },
      models: { m: { provider: 'p', model_id: 'x' } },
    });
    try {
      ms[0]!.script({ match: { contains: 'slow' }, reply: { delayMs: 500 } });
      const slow = post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('slow') });
      await eventually(() => ms[0]!.active === 1);
      const controller = new AbortController();
      const queued = fetch(`${h.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages: user('queued') }),
        signal: controller.signal,
      }).catch(() => 'aborted');
      await eventually(async () =>
        /pincer_llm_queue_depth\{provider="p",service="llm-proxy"\} 1/.test(
          await (await fetch(`${h.url}/metrics`)).text(),
        ),
      );
      controller.abort();
      assert.equal(await queued, 'aborted');
      await eventually(async () =>
        /pincer_llm_queue_depth\{provider="p",service="llm-proxy"\} 0/.test(
          await (await fetch(`${h.url}/metrics`)).text(),
        ),
      );
      await slow;
      assert.equal(ms[0]!.requests.length, 1, 'the abandoned request was never sent');
    } finally {
      await closeAll(h, ms);
    }
  });

  it('times out a slow first token, then an idle gap mid-stream', async () => {
    const ms = await mocks(2);
    const h = await startHarness({
      providers: {
        slow: {
          type: 'openai',
          nodes: nodeUrls([ms[0]!]),
          retries: { attempts: 0, backoff_ms: 1 },
          timeouts: { first_token_ms: 150, idle_ms: 150 },
        },
        fast: { type: 'openai', nodes: nodeUrls([ms[1]!]) },
      },
      models: { a: { provider: 'slow', model_id: 'a' }, b: { provider: 'fast', model_id: 'b' } },
      routing: { fallbacks: { a: ['b'] } },
    });
    try {
      ms[0]!.script({ match: { contains: 'first' }, reply: { firstTokenDelayMs: 2000 } });
      const r = await post(`${h.url}/v1/chat/completions`, h.key, {
        model: 'a',
        stream: true,
        messages: user('first'),
      });
      assert.equal(r.headers.get('x-pincer-model'), 'b', 'first-token timeout fell back');
      await ms[0]!.waitFor((x) => x.aborted, 2000);

      ms[0]!.script({ match: { contains: 'idle' }, reply: { content: 'a b c d e f', hangAfterChunks: 2 } });
      const t = Date.now();
      const idle = await post(`${h.url}/v1/chat/completions`, h.key, {
        model: 'a',
        stream: true,
        messages: user('idle'),
      });
      assert.equal(idle.headers.get('x-pincer-model'), 'a');
      assert.equal(sseData(idle.text).at(-1).error.code, 'upstream_error');
      assert.ok(Date.now() - t < 2000);
    } finally {
      await closeAll(h, ms);
    }
  });

  it('every upstream down: a clear 503 that names no internals, and no retry storm', async () => {
    const ms = await mocks(2);
    for (const m of ms) m.setDown(true);
    const h = await startHarness({
      providers: {
        p: {
          type: 'openai',
          nodes: nodeUrls(ms),
          retries: { attempts: 1, backoff_ms: 1 },
          breaker: { failure_threshold: 1, cooldown_ms: 60000 },
        },
      },
      models: { m: { provider: 'p', model_id: 'x' } },
    });
    try {
      const first = await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('x') });
      assert.equal(first.status, 503);
      assert.equal(first.json.error.code, 'upstream_unavailable');
      assert.equal(first.json.error.message, "The model 'm' is unavailable: its server cannot be reached.");
      assert.ok(first.headers.get('retry-after'));
      for (let i = 0; i < 10; i++) {
        const r = await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('x') });
        assert.ok(r.status >= 500);
      }
      const metrics = await (await fetch(`${h.url}/metrics`)).text();
      const attempts = [
        ...metrics.matchAll(
          /pincer_llm_upstream_errors_total\{node="[^"]+",kind="connect",service="llm-proxy"\} (\d+)/g,
        ),
      ].reduce((n, m) => n + Number(m[1]), 0);
      // 2 for the first request (both nodes), then one last-resort try per request: no multiplication
      assert.ok(attempts <= 12, `upstream attempts: ${attempts}`);
    } finally {
      await closeAll(h, ms);
    }
  });
});
