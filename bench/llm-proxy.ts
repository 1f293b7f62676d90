/**
 * llm-proxy benchmark: the same load sent directly to the mock inference server and through the
 * proxy, in one run, on loopback. Prints a table and writes bench/results/llm-proxy.{json,md}.
 *
 *   npm run bench            (about two minutes)
 *   BENCH_QUICK=1 npm run bench   (a short smoke run)
 *
 * Mock, proxy and this load generator are three processes sharing the machine's cores.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { addedAt, compareRuns, cpuMs, load, mean, pct, root, rssMB, waitHttp } from './lib.ts';

const quick = process.env.BENCH_QUICK === '1';
const KEY = 'bench-key-0123456789abcdef';
const BODY = JSON.stringify({
  model: 'm',
  messages: [{ role: 'user', content: 'Say something short.' }],
  max_tokens: 16,
});
const STREAM_BODY = JSON.stringify({
  model: 'm',
  stream: true,
  messages: [{ role: 'user', content: 'Say something short.' }],
  max_tokens: 16,
});
const UPSTREAM_BODY = BODY.replace('"model":"m"', '"model":"bench-model"');
const UPSTREAM_STREAM_BODY = STREAM_BODY.replace('"model":"m"', '"model":"bench-model"');

function freePort(): number {
  return 20000 + Math.floor(Math.random() * 30000);
}

function start(args: string[], env: Record<string, string>): ChildProcess {
  const p = spawn(process.execPath, ['--conditions=pincer-source', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return p;
}

const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '-');

async function main() {
  const mockPort = freePort();
  const proxyPort = mockPort + 1;
  const mock = start(
    ['packages/mock-inference/src/main.ts', '--port', String(mockPort), '--flavor', 'vllm'],
    {},
  );
  const mockUrl = `http://127.0.0.1:${mockPort}`;
  await waitHttp(`${mockUrl}/health`, mock, 'mock');

  const dir = mkdtempSync(path.join(tmpdir(), 'pincer-bench-'));
  writeFileSync(
    path.join(dir, 'models.yml'),
    stringify({
      providers: {
        bench: {
          type: 'openai',
          nodes: [{ url: `${mockUrl}/v1`, max_concurrency: 256 }],
          queue: { size: 1024 },
        },
      },
      models: { m: { provider: 'bench', model_id: 'bench-model', context_window: 32768, max_tokens: 16 } },
      routing: { default_model: 'm' },
    }),
  );
  writeFileSync(path.join(dir, 'config.yaml'), stringify({ llm_proxy: {} }));
  // the proxy runs from dist/, as the image runs it
  const proxy = start(
    ['--max-semi-space-size=8', '--enable-source-maps', 'services/llm-proxy/dist/main.js'],
    {
      PORT: String(proxyPort),
      PINCER_CONFIG_DIR: dir,
      LLM_PROXY_API_KEY: KEY,
      LOG_LEVEL: 'warn',
    },
  );
  const proxyUrl = `http://127.0.0.1:${proxyPort}`;
  await waitHttp(`${proxyUrl}/readyz`, proxy, 'llm-proxy');
  const idleRss = rssMB(proxy.pid!);

  const direct = `${mockUrl}/v1/chat/completions`;
  const via = `${proxyUrl}/v1/chat/completions`;
  const n1 = quick ? 500 : 3000;
  const seconds = quick ? 3 : 15;

  process.stderr.write('warming up\n');
  await load(direct, UPSTREAM_BODY, { concurrency: 8, requests: 2000 });
  await load(via, BODY, { concurrency: 8, requests: 4000, key: KEY });
  await load(via, STREAM_BODY, { concurrency: 8, requests: 1000, stream: true, key: KEY });

  process.stderr.write('latency at concurrency 1\n');
  const d1 = await load(direct, UPSTREAM_BODY, { concurrency: 1, requests: n1 });
  const p1 = await load(via, BODY, { concurrency: 1, requests: n1, key: KEY });
  process.stderr.write('latency at concurrency 64\n');
  const d64 = await load(direct, UPSTREAM_BODY, { concurrency: 64, requests: n1 * 4 });
  const p64 = await load(via, BODY, { concurrency: 64, requests: n1 * 4, key: KEY });
  process.stderr.write('streams: time to first token at concurrency 1\n');
  const ds = await load(direct, UPSTREAM_STREAM_BODY, {
    concurrency: 1,
    requests: n1,
    stream: true,
  });
  const ps = await load(via, STREAM_BODY, { concurrency: 1, requests: n1, stream: true, key: KEY });

  process.stderr.write(`sustained non-stream load, ${seconds}s each, concurrency 64\n`);
  const mockCpu0 = cpuMs(mock.pid!);
  const genCpu0 = process.cpuUsage();
  const dSus = await load(direct, UPSTREAM_BODY, { concurrency: 64, seconds });
  const genDirect = process.cpuUsage(genCpu0);
  const mockCpuDirect = cpuMs(mock.pid!) - mockCpu0;
  const proxyCpu0 = cpuMs(proxy.pid!);
  const rssSamples: number[] = [];
  const sampler = setInterval(() => rssSamples.push(rssMB(proxy.pid!)), 1000);
  const pSus = await load(via, BODY, { concurrency: 64, seconds, key: KEY });
  const proxyCpu = cpuMs(proxy.pid!) - proxyCpu0;
  // a second sustained round: RSS should not keep climbing
  const pSus2 = await load(via, BODY, { concurrency: 64, seconds, key: KEY });
  clearInterval(sampler);
  const rssAfter = rssMB(proxy.pid!);

  process.stderr.write(`an upstream that takes 20 ms per answer, ${seconds}s each, concurrency 64\n`);
  await fetch(`${mockUrl}/_mock/script`, {
    method: 'POST',
    body: JSON.stringify({ reply: { delayMs: 20 } }),
  });
  // a fresh proxy process, so its memory reflects this load and not the zero-latency one
  const proxy2 = start(
    ['--max-semi-space-size=8', '--enable-source-maps', 'services/llm-proxy/dist/main.js'],
    {
      PORT: String(proxyPort + 1),
      PINCER_CONFIG_DIR: dir,
      LLM_PROXY_API_KEY: KEY,
      LOG_LEVEL: 'warn',
    },
  );
  await waitHttp(`http://127.0.0.1:${proxyPort + 1}/readyz`, proxy2, 'second llm-proxy');
  const via2 = `http://127.0.0.1:${proxyPort + 1}/v1/chat/completions`;
  const dSlow = await load(direct, UPSTREAM_BODY, { concurrency: 64, seconds });
  const slowRss: number[] = [];
  const slowSampler = setInterval(() => slowRss.push(rssMB(proxy2.pid!)), 1000);
  const pSlow = await load(via2, BODY, { concurrency: 64, seconds, key: KEY });
  clearInterval(slowSampler);

  const half = Math.floor(rssSamples.length / 2);
  const results = {
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
    concurrency1: compareRuns(d1, p1),
    concurrency64: {
      direct_p50_ms: pct(d64.latencies, 50),
      direct_p99_ms: pct(d64.latencies, 99),
      proxy_p50_ms: pct(p64.latencies, 50),
      proxy_p99_ms: pct(p64.latencies, 99),
      added_p50_ms: addedAt(d64, p64, 50),
      added_p99_ms: addedAt(d64, p64, 99),
    },
    stream_ttft: {
      direct_p50_ms: pct(ds.ttfts, 50),
      direct_p99_ms: pct(ds.ttfts, 99),
      proxy_p50_ms: pct(ps.ttfts, 50),
      proxy_p99_ms: pct(ps.ttfts, 99),
      added_p50_ms: addedAt(ds, ps, 50, 'ttfts'),
      added_p99_ms: addedAt(ds, ps, 99, 'ttfts'),
    },
    cpu_us_per_request: {
      load_generator: (genDirect.user + genDirect.system) / dSus.latencies.length,
      mock: (mockCpuDirect * 1000) / dSus.latencies.length,
      proxy: (proxyCpu * 1000) / pSus.latencies.length,
    },
    sustained: {
      seconds,
      direct_rps: dSus.rps,
      proxy_rps: pSus.rps,
      proxy_rps_second_round: pSus2.rps,
      ratio: pSus.rps / dSus.rps,
      errors: dSus.errors + pSus.errors + pSus2.errors,
    },
    upstream_20ms: {
      direct_rps: dSlow.rps,
      proxy_rps: pSlow.rps,
      ratio: pSlow.rps / dSlow.rps,
      added_p50_ms: addedAt(dSlow, pSlow, 50),
      added_p99_ms: addedAt(dSlow, pSlow, 99),
      proxy_rss_max_mb: Math.max(...slowRss),
      errors: dSlow.errors + pSlow.errors,
    },
    rss_mb: {
      idle: idleRss,
      after_sustained: rssAfter,
      max: Math.max(...rssSamples),
      first_half_mean: mean(rssSamples.slice(0, half)),
      second_half_mean: mean(rssSamples.slice(half)),
    },
    errors: d1.errors + p1.errors + d64.errors + p64.errors + ds.errors + ps.errors,
  };

  const rows = [
    ['added latency p50, concurrency 1', `${fmt(results.concurrency1.added_p50_ms, 3)} ms`, '≤ 0.5 ms'],
    ['added latency p99, concurrency 1', `${fmt(results.concurrency1.added_p99_ms, 3)} ms`, '≤ 3 ms'],
    [
      'proxy self-reported overhead p50 / p99, c=1',
      `${fmt(results.concurrency1.self_reported_overhead_p50_ms, 3)} / ${fmt(results.concurrency1.self_reported_overhead_p99_ms, 3)} ms`,
      '',
    ],
    [
      'added latency p50 / p99, concurrency 64',
      `${fmt(results.concurrency64.added_p50_ms)} / ${fmt(results.concurrency64.added_p99_ms)} ms`,
      '',
    ],
    [
      'direct p50 / p99, concurrency 64',
      `${fmt(results.concurrency64.direct_p50_ms)} / ${fmt(results.concurrency64.direct_p99_ms)} ms`,
      '',
    ],
    [
      'added time to first token p50 / p99 (streams)',
      `${fmt(results.stream_ttft.added_p50_ms, 3)} / ${fmt(results.stream_ttft.added_p99_ms, 3)} ms`,
      'p99 ≤ 3 ms',
    ],
    [
      'sustained req/s direct → proxy (c=64)',
      `${fmt(results.sustained.direct_rps, 0)} → ${fmt(results.sustained.proxy_rps, 0)} (${fmt(results.sustained.ratio * 100, 0)} %)`,
      '≥ 50 %',
    ],
    ['proxy req/s, second sustained round', fmt(results.sustained.proxy_rps_second_round, 0), ''],
    [
      'CPU per request: load generator / mock / proxy',
      `${fmt(results.cpu_us_per_request.load_generator, 0)} / ${fmt(results.cpu_us_per_request.mock, 0)} / ${fmt(results.cpu_us_per_request.proxy, 0)} µs`,
      '',
    ],
    [
      '20 ms upstream: req/s direct → proxy (c=64)',
      `${fmt(results.upstream_20ms.direct_rps, 0)} → ${fmt(results.upstream_20ms.proxy_rps, 0)} (${fmt(results.upstream_20ms.ratio * 100, 0)} %)`,
      '',
    ],
    [
      '20 ms upstream: added p50 / p99; proxy RSS max',
      `${fmt(results.upstream_20ms.added_p50_ms)} / ${fmt(results.upstream_20ms.added_p99_ms)} ms; ${fmt(results.upstream_20ms.proxy_rss_max_mb, 0)} MB`,
      '',
    ],
    [
      'proxy RSS idle / after zero-latency load / max',
      `${fmt(results.rss_mb.idle, 0)} / ${fmt(results.rss_mb.after_sustained, 0)} / ${fmt(results.rss_mb.max, 0)} MB`,
      '< 150 MB',
    ],
    [
      'proxy RSS mean, first vs second half of load',
      `${fmt(results.rss_mb.first_half_mean, 0)} vs ${fmt(results.rss_mb.second_half_mean, 0)} MB`,
      'flat',
    ],
    ['errors', String(results.errors + results.sustained.errors + results.upstream_20ms.errors), '0'],
  ];
  const md = [
    '| measure | result | target |',
    '| --- | --- | --- |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
  process.stdout.write(
    `\nllm-proxy benchmark (${results.machine.cpus} cores, Node ${results.machine.node}; mock, proxy and load generator share them)\n\n${md}\n`,
  );
  mkdirSync(path.join(root, 'bench/results'), { recursive: true });
  writeFileSync(path.join(root, 'bench/results/llm-proxy.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(root, 'bench/results/llm-proxy.md'), `${md}\n`);

  proxy.kill('SIGTERM');
  proxy2.kill('SIGTERM');
  mock.kill('SIGTERM');
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
