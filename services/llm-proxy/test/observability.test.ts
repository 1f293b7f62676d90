import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startMockServer } from '@pincer/mock-inference';
import { eventually, getJson, post, singleProvider, startHarness } from './harness.ts';

describe('metrics, overhead header, health', () => {
  it('exposes pincer_llm_ metrics and the overhead header on every response', async () => {
    const mock = await startMockServer({ flavor: 'vllm', tokenRate: 500 });
    const h = await startHarness(singleProvider('openai', [`${mock.url}/v1`]));
    try {
      const r = await post(`${h.url}/v1/chat/completions`, h.key, {
        model: 'm',
        messages: [{ role: 'user', content: 'hi' }],
      });
      const overhead = Number(r.headers.get('x-pincer-overhead-ms'));
      assert.ok(overhead >= 0 && overhead < 1000, `overhead header ${overhead}`);
      assert.equal(r.headers.get('x-pincer-upstream'), 'p-0');
      const s = await post(`${h.url}/v1/chat/completions`, h.key, {
        model: 'm',
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      });
      assert.ok(Number(s.headers.get('x-pincer-overhead-ms')) >= 0);
      const e = await post(`${h.url}/v1/chat/completions`, h.key, 'nope');
      assert.ok(Number(e.headers.get('x-pincer-overhead-ms')) >= 0, 'errors carry it too');

      const text = await (await fetch(`${h.url}/metrics`)).text();
      for (const name of [
        'pincer_llm_requests_total{model="m",node="p-0",status="200"',
        'pincer_llm_request_duration_seconds_bucket',
        'pincer_llm_time_to_first_token_seconds_bucket',
        'pincer_llm_inter_token_latency_seconds_bucket',
        'pincer_llm_overhead_seconds_bucket{le="0.0001",service="llm-proxy",endpoint="chat"',
        'pincer_llm_overhead_seconds_bucket{le="0.0001",service="llm-proxy",endpoint="chat_stream"',
        'pincer_llm_tokens_total{model="m",direction="in",source="reported"',
        'pincer_llm_in_flight{node="p-0"',
        'pincer_llm_queue_depth{provider="p"',
        'pincer_llm_node_up{node="p-0"',
        'pincer_llm_node_breaker_state{node="p-0"',
        'process_resident_memory_bytes',
      ]) {
        assert.ok(text.includes(name), `missing ${name}`);
      }
      assert.match(
        text,
        /pincer_llm_requests_total\{model="m",node="p-0",status="200",service="llm-proxy"\} 2/,
      );
    } finally {
      await h.close();
      await mock.close();
    }
  });

  it('probes nodes actively: a llama.cpp node loading its model is not ready until it is', async () => {
    const mock = await startMockServer({ flavor: 'llamacpp', loadingMs: 600 });
    const h = await startHarness(
      singleProvider('openai', [`${mock.url}/v1`], { health: { interval_ms: 100, timeout_ms: 500 } }),
      { active_health_checks: true },
    );
    try {
      const ready = await getJson(`${h.url}/readyz`);
      assert.equal(ready.status, 503);
      const body = ready.body;
      assert.equal(body.nodes_usable, 0);
      const status = (await getJson(`${h.url}/status`, h.key)).body;
      assert.match(status.providers[0].nodes[0].probe_detail, /loading/);
      assert.equal((await fetch(`${h.url}/healthz`)).status, 200, 'alive while not ready');
      await eventually(
        async () => (await fetch(`${h.url}/readyz`)).status === 200,
        3000,
        'ready after loading',
      );
      assert.ok(mock.healthChecks >= 2);
    } finally {
      await h.close();
      await mock.close();
    }
  });

  it('probes Ollama on /api/version and marks a dead node down', async () => {
    const mock = await startMockServer({ flavor: 'ollama' });
    const h = await startHarness(
      singleProvider('ollama', [mock.url], { health: { interval_ms: 100, timeout_ms: 300 } }),
      { active_health_checks: true },
    );
    try {
      assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
      mock.setDown(true);
      await eventually(
        async () => (await fetch(`${h.url}/readyz`)).status === 503,
        3000,
        'not ready once the node is down',
      );
      const down = await (await fetch(`${h.url}/metrics`)).text();
      assert.match(down, /pincer_llm_node_up\{node="p-0",service="llm-proxy"\} 0/);
      assert.match(down, /pincer_llm_provider_nodes_usable\{provider="p",service="llm-proxy"\} 0/);
      const failed = await post(`${h.url}/v1/chat/completions`, h.key, {
        model: 'm',
        messages: [{ role: 'user', content: 'hi' }],
      });
      assert.ok(failed.status >= 500);
      assert.match(
        await (await fetch(`${h.url}/metrics`)).text(),
        /pincer_errors_total\{kind="(upstream|internal)",service="llm-proxy"\} 1/,
      );
      mock.setDown(false);
      await eventually(async () => (await fetch(`${h.url}/readyz`)).status === 200, 3000, 'ready again');
    } finally {
      await h.close();
      await mock.close();
    }
  });
});
