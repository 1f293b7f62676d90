import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { startMockServer } from '@pincer/mock-inference';
import { eventually, getJson, type Harness, post, sseData, startHarness } from './harness.ts';

const user = (content: string) => [{ role: 'user', content }];
const chunk = (content: string) =>
  `data: ${JSON.stringify({ id: 'x', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

/** A raw upstream whose behaviour each test writes by hand; records when each request's connection closed. */
async function rawUpstream(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const closed: number[] = [];
  let requests = 0;
  const server = createServer((req, res) => {
    if (req.url === '/health') return void res.end('ok');
    requests++;
    req.resume();
    res.on('close', () => closed.push(Date.now()));
    handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return {
    url,
    closed,
    get requests() {
      return requests;
    },
    close: () => new Promise<void>((r) => server.close(() => r()).closeAllConnections()),
  };
}

async function harness(
  nodes: string[],
  provider: Record<string, unknown> = {},
  extraModels: Record<string, unknown> = {},
  routing: Record<string, unknown> = {},
  llmProxy: Record<string, unknown> = {},
): Promise<Harness> {
  return startHarness(
    {
      providers: {
        p: {
          type: 'openai',
          nodes: nodes.map((url) => ({ url, max_concurrency: 4 })),
          retries: { attempts: 1, backoff_ms: 1 },
          ...provider,
        },
      },
      models: { m: { provider: 'p', model_id: 'x' }, ...extraModels },
      routing,
    },
    llmProxy,
  );
}

describe('resilience against misbehaving upstreams and clients', () => {
  it('cancels the upstream request at once when its stream turns malformed after the first token', async () => {
    const up = await rawUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('Hello'));
      setTimeout(() => res.write('data: {not json\n\n'), 20);
      setTimeout(() => res.end(chunk(' late') + 'data: [DONE]\n\n'), 3000);
    });
    const h = await harness([up.url]);
    try {
      const t = Date.now();
      const r = await post(`${h.url}/v1/chat/completions`, h.key, {
        model: 'm',
        stream: true,
        messages: user('x'),
      });
      assert.equal(sseData(r.text).at(-1).error.code, 'upstream_error');
      await eventually(() => up.closed.length === 1, 1000, 'upstream connection closed');
      assert.ok(up.closed[0]! - t < 1000, 'closed long before the upstream would have finished');
    } finally {
      await h.close();
      await up.close();
    }
  });

  it('retries elsewhere on a null event or an empty stream before the first token, and closes the bad request', async () => {
    let n = 0;
    const bad = await rawUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (n++ % 2 === 0) {
        res.write('data: null\n\n');
        setTimeout(() => res.end(), 3000);
      } else res.end(); // headers, then nothing at all
    });
    const good = await startMockServer({ flavor: 'vllm' });
    const h = await harness(
      [bad.url, `${good.url}/v1`],
      { retries: { attempts: 3, backoff_ms: 1 }, breaker: { failure_threshold: 5, cooldown_ms: 100 } },
      {},
      { load_balance: 'round_robin' },
    );
    try {
      for (let i = 0; i < 4; i++) {
        const r = await post(`${h.url}/v1/chat/completions`, h.key, {
          model: 'm',
          stream: true,
          messages: user(`q${i}`),
        });
        const text = sseData(r.text)
          .filter((c) => c !== '[DONE]')
          .map((c) => c.choices?.[0]?.delta?.content ?? '')
          .join('');
        assert.match(text, new RegExp(`q${i}`));
      }
      assert.ok(bad.requests >= 2, `bad node tried ${bad.requests} times`);
      await eventually(() => bad.closed.length === bad.requests, 1000, 'every bad request closed');
      const status = (await getJson(`${h.url}/status`, h.key)).body;
      assert.notEqual(status.providers[0].nodes[0].breaker, 'half_open', 'no stuck trial');
    } finally {
      await h.close();
      await bad.close();
      await good.close();
    }
  });

  it('does not let a slow-reading client trip the idle timeout or count against the node', async () => {
    const mock = await startMockServer({ flavor: 'vllm' });
    const h = await harness([`${mock.url}/v1`], { timeouts: { idle_ms: 200 } });
    try {
      mock.script({ reply: { content: 'lorem ipsum dolor sit amet '.repeat(60000) } });
      const u = new URL(`${h.url}/v1/chat/completions`);
      const text = await new Promise<string>((resolve, reject) => {
        const req = request(
          {
            host: u.hostname,
            port: u.port,
            path: u.pathname,
            method: 'POST',
            headers: { authorization: `Bearer ${h.key}`, 'content-type': 'application/json' },
          },
          (res) => {
            res.pause(); // a client that stops reading: the proxy's socket buffer fills
            setTimeout(() => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (d) => (body += d));
              res.on('end', () => resolve(body));
              res.resume();
            }, 800);
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify({ model: 'm', stream: true, max_tokens: 100000, messages: user('long') }));
      });
      assert.ok(text.endsWith('data: [DONE]\n\n'), 'the whole answer arrived');
      const node = (await getJson(`${h.url}/status`, h.key)).body.providers[0].nodes[0];
      assert.equal(node.consecutive_failures, 0);
    } finally {
      await h.close();
      await mock.close();
    }
  });

  it('holds non-streaming requests to the total limit only, not the first-token limit', async () => {
    const mock = await startMockServer({ flavor: 'vllm' });
    const h = await harness([`${mock.url}/v1`], { timeouts: { first_token_ms: 150, total_ms: 5000 } });
    try {
      mock.script({ reply: { delayMs: 400 } });
      const r = await post(`${h.url}/v1/chat/completions`, h.key, {
        model: 'm',
        messages: user('slow but fine'),
      });
      assert.equal(r.status, 200);
      assert.equal(mock.requests.length, 1);
    } finally {
      await h.close();
      await mock.close();
    }
  });

  it('hides a non-JSON upstream error page from the client', async () => {
    const up = await rawUpstream((_req, res) => {
      res.writeHead(400, { 'content-type': 'text/html' });
      res.end('<html><body>nginx at 10.0.0.7: bad request</body></html>');
    });
    const h = await harness([up.url]);
    try {
      const r = await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('x') });
      assert.equal(r.status, 400);
      assert.equal(r.json.error.message, 'upstream answered HTTP 400');
      assert.doesNotMatch(r.text, /10\.0\.0\.7/);
    } finally {
      await h.close();
      await up.close();
    }
  });

  it('wakes queued requests when an open node cools down, instead of waiting for a busy one', async () => {
    const [busy, flaky] = await Promise.all([
      startMockServer({ flavor: 'vllm' }),
      startMockServer({ flavor: 'vllm' }),
    ]);
    const h = await startHarness({
      providers: {
        p: {
          type: 'openai',
          nodes: [
            { url: `${busy.url}/v1`, max_concurrency: 1 },
            { url: `${flaky.url}/v1`, max_concurrency: 1 },
          ],
          retries: { attempts: 0, backoff_ms: 1 },
          breaker: { failure_threshold: 1, cooldown_ms: 300 },
          queue: { size: 4, timeout_ms: 10000 },
        },
      },
      models: { m: { provider: 'p', model_id: 'x' } },
      routing: { load_balance: 'round_robin' },
    });
    try {
      flaky.script({ times: 1, reply: { status: 500 } });
      busy.script({ match: { contains: 'long' }, reply: { delayMs: 3000 } });
      // round robin: the first request goes to busy (long), the second to flaky (fails, opens it)
      const long = post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('long') });
      await eventually(() => busy.active === 1);
      assert.equal(
        (await post(`${h.url}/v1/chat/completions`, h.key, { model: 'm', messages: user('fails') })).status,
        502,
      );
      const t = Date.now();
      const queued = await post(`${h.url}/v1/chat/completions`, h.key, {
        model: 'm',
        messages: user('queued'),
      });
      assert.equal(queued.status, 200);
      assert.equal(queued.headers.get('x-pincer-upstream'), 'p-1');
      assert.ok(Date.now() - t < 2000, `answered after ${Date.now() - t} ms, not after the long request`);
      await long;
    } finally {
      await h.close();
      await Promise.all([busy.close(), flaky.close()]);
    }
  });

  it('keeps parallel Ollama tool calls apart', async () => {
    const mock = await startMockServer({ flavor: 'ollama' });
    const h = await startHarness({
      providers: { o: { type: 'ollama', nodes: [{ url: mock.url }] } },
      models: { m: { provider: 'o', model_id: 'q', capabilities: ['chat', 'tools'] } },
    });
    try {
      mock.script({
        reply: {
          toolCalls: [
            { name: 'alpha', arguments: { a: 1 } },
            { name: 'beta', arguments: { b: 2 } },
          ],
        },
      });
      const r = await post(`${h.url}/v1/chat/completions`, h.key, {
        model: 'm',
        stream: true,
        messages: user('two tools'),
      });
      const calls = new Map<number, { name: string; args: string }>();
      for (const c of sseData(r.text)) {
        for (const tc of c.choices?.[0]?.delta?.tool_calls ?? []) {
          const cur = calls.get(tc.index) ?? { name: '', args: '' };
          cur.name += tc.function?.name ?? '';
          cur.args += tc.function?.arguments ?? '';
          calls.set(tc.index, cur);
        }
      }
      assert.deepEqual(
        [...calls.values()].map((c) => [c.name, JSON.parse(c.args)]),
        [
          ['alpha', { a: 1 }],
          ['beta', { b: 2 }],
        ],
      );
    } finally {
      await h.close();
      await mock.close();
    }
  });

  it('a key limited to some models is never served another model by fallback, and cannot read /status', async () => {
    const mock = await startMockServer({ flavor: 'vllm' });
    mock.setDown(true);
    const backup = await startMockServer({ flavor: 'vllm' });
    const key = 'scoped-fallback-key-0123456789';
    const h = await startHarness(
      {
        providers: {
          a: { type: 'openai', nodes: [{ url: `${mock.url}/v1` }], retries: { attempts: 0 } },
          b: { type: 'openai', nodes: [{ url: `${backup.url}/v1` }] },
        },
        models: { small: { provider: 'a', model_id: 's' }, big: { provider: 'b', model_id: 'b' } },
        routing: { fallbacks: { small: ['big'] } },
      },
      { keys: [{ name: 'scoped', key, models: ['small'] }] },
    );
    try {
      const r = await post(`${h.url}/v1/chat/completions`, key, { model: 'small', messages: user('x') });
      assert.equal(r.status, 503);
      assert.equal(backup.requests.length, 0);
      assert.equal(
        (
          await post(`${h.url}/v1/chat/completions`, h.key, { model: 'small', messages: user('x') })
        ).headers.get('x-pincer-model'),
        'big',
        'an unrestricted key does fall back',
      );
      assert.equal((await getJson(`${h.url}/status`, key)).status, 403);
    } finally {
      await h.close();
      await Promise.all([mock.close(), backup.close()]);
    }
  });

  it('lets limited keys through when Redis hangs (fail open after a short timeout)', async () => {
    // a TCP relay to the real Redis that can be frozen mid-connection
    let frozen = false;
    const sockets: Socket[] = [];
    const relay = createTcpServer((client) => {
      const upstream = connect(6379, '127.0.0.1');
      sockets.push(client, upstream);
      client.on('data', (d) => frozen || upstream.write(d));
      upstream.on('data', (d) => frozen || client.write(d));
      client.on('error', () => {});
      upstream.on('error', () => {});
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const mock = await startMockServer({ flavor: 'vllm' });
    const key = 'limited-hang-key-0123456789';
    const h = await startHarness(
      {
        providers: { p: { type: 'openai', nodes: [{ url: `${mock.url}/v1` }] } },
        models: { m: { provider: 'p', model_id: 'x' } },
      },
      { keys: [{ name: 'limited', key, rpm: 100 }] },
      { REDIS_URL: `redis://127.0.0.1:${(relay.address() as AddressInfo).port}` },
    );
    try {
      assert.equal(
        (await post(`${h.url}/v1/chat/completions`, key, { model: 'm', messages: user('a') })).headers.get(
          'x-ratelimit-limit-requests',
        ),
        '100',
      );
      frozen = true;
      const t = Date.now();
      const r = await post(`${h.url}/v1/chat/completions`, key, { model: 'm', messages: user('b') });
      assert.equal(r.status, 200);
      assert.ok(Date.now() - t < 1500, `took ${Date.now() - t} ms`);
      assert.match(
        await (await fetch(`${h.url}/metrics`)).text(),
        /pincer_llm_rate_limit_errors_total\{service="llm-proxy"\} [1-9]/,
      );
    } finally {
      await h.close();
      await mock.close();
      for (const s of sockets) s.destroy();
      relay.close();
    }
  });
});
