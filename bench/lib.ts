/**
 * What the end-to-end benchmarks share: mock model, llm-proxy and core started as separate processes
 * from dist/ (as the images run them), on a fresh database and a private Redis prefix; closed-loop
 * HTTP load (llm-proxy direct vs through); a process's RSS and CPU time. Also what the knowledge
 * benchmarks share: deleting a run's Redis keys, and the retrieval evaluation's report.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EvalResult } from '@pincer/knowledge';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';

export const root = path.resolve(import.meta.dirname, '..');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN_DB = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const KEY = 'bench-proxy-key-0123456789abcdef';

/** A Node process from the repository root; its output to `logFile` when given (else stderr only). */
export function start(args: string[], env: Record<string, string>, logFile?: string): ChildProcess {
  const out = logFile === undefined ? undefined : openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--max-semi-space-size=8', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH, ...env },
    stdio: out === undefined ? ['ignore', 'ignore', 'inherit'] : ['ignore', out, out],
  });
  if (out !== undefined) closeSync(out);
  return child;
}

export async function waitHttp(url: string, proc: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}`);
    if ((await fetch(url).catch(() => undefined))?.ok) return;
    await sleep(50);
  }
  throw new Error(`${what} did not come up`);
}

/** Deletes every key under `prefix` (SCAN, so a large keyspace is never blocked); how many there were. */
export async function deleteRedisKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (batch.length) n += await redis.del(...batch);
  } while (cursor !== '0');
  return n;
}

/** One search mode's figures in a retrieval evaluation (bench/kb-eval.ts, bench/kb-eval-memory.ts). */
export interface RetrievalRow<M extends string = string> {
  mode: M;
  recall_at_5: number;
  mrr: number;
  /** The questions not answered in the top 5. */
  missed: string[];
}

export function retrievalRow<M extends string>(mode: M, r: EvalResult): RetrievalRow<M> {
  return {
    mode,
    recall_at_5: r.recall_at_5,
    mrr: r.mrr,
    missed: r.per_question.filter((p) => p.rank === null || p.rank > 5).map((p) => p.id),
  };
}

/**
 * A retrieval evaluation's report: as JSON (`facts`, then the rows as `results`), or `context` on a line
 * of its own and a table of recall@5, MRR and the questions missed, one line per mode.
 */
export function printRetrieval(o: {
  json: boolean;
  facts: Record<string, unknown>;
  context: string;
  rows: readonly RetrievalRow[];
}): void {
  if (o.json) {
    console.log(JSON.stringify({ ...o.facts, results: o.rows }, null, 2));
    return;
  }
  console.log(`${o.context}\n`);
  console.log('mode     recall@5  MRR    missed (rank > 5)');
  for (const r of o.rows) {
    console.log(
      `${r.mode.padEnd(8)} ${r.recall_at_5.toFixed(3).padStart(8)}  ${r.mrr.toFixed(3)}  ${r.missed.join(', ') || '-'}`,
    );
  }
}

/** The p-th percentile of an ascending array (NaN when empty). */
export const pct = (a: number[], p: number) =>
  a.length ? a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))]! : Number.NaN;
export const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
export const mean = (a: number[]) => (a.length ? a.reduce((s, x) => s + x, 0) / a.length : Number.NaN);
export const ascending = (a: number[]) => a.sort((x, y) => x - y);

/** Resident memory of a process, from /proc/<pid>/status (NaN once it has ended). */
export function rssMB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system) a process has used, in ms (utime, stime are in 100 Hz clock ticks). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/**
 * CPU ms used so far by every process whose command name matches (all Postgres backends, say),
 * with the CPU of their children that ended and were reaped (cutime, cstime): a Postgres backend
 * that exits leaves its time with the postmaster, so the sum never goes down.
 */
export function cpuMsOf(match: (comm: string, pid: number) => boolean): number {
  let ms = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (!match(stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), Number(d))) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ms += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
    } catch {
      // the process ended meanwhile
    }
  }
  return ms;
}

/** One closed-loop HTTP load run. */
export interface LoadRun {
  /** ms, ascending. */
  latencies: number[];
  /** Time to the first content chunk of a stream, ms, ascending. */
  ttfts: number[];
  /** llm-proxy's x-pincer-overhead-ms, ascending. */
  overheads: number[];
  rps: number;
  errors: number;
}

/**
 * Closed-loop load: `concurrency` workers, each sending the next request when the last finished,
 * until `requests` were sent or `seconds` passed. `key` is sent as a bearer token.
 */
export async function load(
  url: string,
  body: string,
  opts: { concurrency: number; requests?: number; seconds?: number; stream?: boolean; key?: string },
): Promise<LoadRun> {
  const agent = new Agent({ connections: opts.concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  const latencies: number[] = [];
  const ttfts: number[] = [];
  const overheads: number[] = [];
  let errors = 0;
  let sent = 0;
  const deadline = opts.seconds ? performance.now() + opts.seconds * 1000 : Number.POSITIVE_INFINITY;
  const t0 = performance.now();
  const worker = async () => {
    while ((opts.requests === undefined || sent < opts.requests) && performance.now() < deadline) {
      sent++;
      const t = performance.now();
      try {
        const res = await request(url, { method: 'POST', headers, body, dispatcher: agent });
        if (opts.stream) {
          let first = 0;
          for await (const chunk of res.body) {
            if (!first && chunk.includes('"content"')) first = performance.now();
          }
          ttfts.push((first || performance.now()) - t);
        } else {
          await res.body.text();
        }
        if (res.statusCode !== 200) errors++;
        const oh = res.headers['x-pincer-overhead-ms'];
        if (oh) overheads.push(Number(oh));
        latencies.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  await agent.close();
  return {
    latencies: ascending(latencies),
    ttfts: ascending(ttfts),
    overheads: ascending(overheads),
    rps: latencies.length / elapsed,
    errors,
  };
}

/** Direct and through-the-proxy latency at p50/p99, what the proxy added, and what it says it added. */
export const compareRuns = (direct: LoadRun, via: LoadRun) => ({
  direct_p50_ms: pct(direct.latencies, 50),
  direct_p99_ms: pct(direct.latencies, 99),
  proxy_p50_ms: pct(via.latencies, 50),
  proxy_p99_ms: pct(via.latencies, 99),
  added_p50_ms: addedAt(direct, via, 50),
  added_p99_ms: addedAt(direct, via, 99),
  self_reported_overhead_p50_ms: pct(via.overheads, 50),
  self_reported_overhead_p99_ms: pct(via.overheads, 99),
});

/** How much later `via` is than `direct` at the p-th percentile (of whole requests, or of first tokens). */
export const addedAt = (direct: LoadRun, via: LoadRun, p: number, key: 'latencies' | 'ttfts' = 'latencies') =>
  pct(via[key], p) - pct(direct[key], p);

export interface BackendStack {
  /** Base of the ports: mock = port, llm-proxy = port + 1, core = port + 2; port + 3 and up are free. */
  port: number;
  prefix: string;
  /** config.yaml and routing.yaml of this run (for other services to read too). */
  configDir: string;
  dbUrl: string;
  /** The key llm-proxy accepts (for calls straight to it). */
  proxyKey: string;
  mock: ChildProcess;
  proxy: ChildProcess;
  core: ChildProcess;
  /** Stops every process, deletes the Redis keys and drops the database. */
  close(): Promise<void>;
}

/**
 * mock (zero delay) → llm-proxy → core, with `config` merged into config.yaml (users open on
 * Telegram, rate limits out of the way); `coreArgs` are extra Node flags for core (profiling).
 */
export async function startBackend(
  config: Record<string, unknown> = {},
  coreArgs: string[] = [],
): Promise<BackendStack> {
  const port = 21000 + Math.floor(Math.random() * 20000);
  const mock = start(
    ['packages/mock-inference/dist/main.js', '--port', String(port), '--flavor', 'vllm'],
    {},
  );
  await waitHttp(`http://127.0.0.1:${port}/health`, mock, 'mock');

  const proxyDir = mkdtempSync(path.join(tmpdir(), 'pincer-bench-proxy-'));
  writeFileSync(
    path.join(proxyDir, 'models.yml'),
    stringify({
      providers: {
        p: {
          type: 'openai',
          nodes: [{ url: `http://127.0.0.1:${port}/v1`, max_concurrency: 256 }],
          queue: { size: 4096 },
        },
      },
      models: { m: { provider: 'p', model_id: 'bench', context_window: 8192, max_tokens: 256 } },
      routing: { default_model: 'm' },
    }),
  );
  const proxy = start(['services/llm-proxy/dist/main.js'], {
    PORT: String(port + 1),
    PINCER_CONFIG_DIR: proxyDir,
    LLM_PROXY_API_KEY: KEY,
    LOG_LEVEL: 'warn',
  });
  await waitHttp(`http://127.0.0.1:${port + 1}/readyz`, proxy, 'llm-proxy');

  const dbName = `pincer_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_DB });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const u = new URL(ADMIN_DB);
  u.pathname = `/${dbName}`;
  const dbUrl = u.toString();
  const prefix = `pincer-bench-${randomBytes(4).toString('hex')}`;
  const configDir = mkdtempSync(path.join(tmpdir(), 'pincer-bench-core-'));
  writeFileSync(
    path.join(configDir, 'config.yaml'),
    stringify({
      system: { redis_prefix: prefix, max_concurrency: 16 },
      access: { telegram: { direct: 'open' } },
      security: { rate_limit: '100000/min' },
      ...config,
    }),
  );
  writeFileSync(path.join(configDir, 'routing.yaml'), readFileSync(path.join(root, 'config/routing.yaml')));
  const mig = spawn(process.execPath, ['services/core/dist/cli/migrate.js'], {
    cwd: root,
    env: { PATH: process.env.PATH, DATABASE_URL: dbUrl },
    stdio: 'ignore',
  });
  await new Promise((r) => mig.on('exit', r));
  const core = start([...coreArgs, 'services/core/dist/main.js'], {
    DATABASE_URL: dbUrl,
    REDIS_URL,
    PINCER_CONFIG_DIR: configDir,
    LLM_PROXY_URL: `http://127.0.0.1:${port + 1}/v1`,
    LLM_PROXY_API_KEY: KEY,
    LOG_LEVEL: 'warn',
    PORT: String(port + 2),
  });
  await waitHttp(`http://127.0.0.1:${port + 2}/healthz`, core, 'core');

  return {
    port,
    prefix,
    configDir,
    dbUrl,
    proxyKey: KEY,
    mock,
    proxy,
    core,
    async close() {
      for (const p of [core, proxy, mock]) p.kill('SIGTERM');
      await sleep(1500);
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}:*`);
      for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
      await redis.quit();
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.end();
    },
  };
}
