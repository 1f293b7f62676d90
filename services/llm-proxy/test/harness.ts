import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '@pincer/shared';
import winston from 'winston';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config.ts';
import { type ProxyHandle, startProxy } from '../src/proxy.ts';

export interface Harness {
  proxy: ProxyHandle;
  url: string;
  key: string;
  /** Every log line the proxy wrote (JSON text), for assertions and secret scans. */
  logs: string[];
  prefix: string;
  close(): Promise<void>;
}

/**
 * Starts a real llm-proxy on an ephemeral port with its own config dir and Redis prefix.
 * `models` is the content of models.yml; `llmProxy` the llm_proxy section of config.yaml.
 */
export async function startHarness(
  models: Record<string, unknown>,
  llmProxy: Record<string, unknown> = {},
  env: Record<string, string> = {},
): Promise<Harness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pincer-proxy-'));
  const prefix = `pincer-test-${randomBytes(6).toString('hex')}`;
  writeFileSync(path.join(dir, 'models.yml'), stringify(models));
  writeFileSync(
    path.join(dir, 'config.yaml'),
    stringify({ system: { redis_prefix: prefix }, llm_proxy: { active_health_checks: false, ...llmProxy } }),
  );
  const key = `test-key-${randomBytes(12).toString('hex')}`;
  const config = loadConfig({
    PINCER_CONFIG_DIR: dir,
    LLM_PROXY_API_KEY: key,
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    LOG_LEVEL: 'debug',
    ...env,
  });
  const logs: string[] = [];
  const log = createLogger({ service: 'llm-proxy', level: 'debug', secrets: [...config.secrets] });
  log.clear();
  log.add(
    new winston.transports.Stream({
      stream: new Writable({
        write(chunk, _enc, cb) {
          logs.push(String(chunk));
          cb();
        },
      }),
    }),
  );
  const proxy = await startProxy(config, log, { host: '127.0.0.1', port: 0 });
  return {
    proxy,
    url: proxy.url,
    key,
    logs,
    prefix,
    async close() {
      await proxy.shutdown(1000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A models.yml with one provider of the given type over the given node URLs. */
export function singleProvider(
  type: 'openai' | 'ollama',
  urls: string[],
  extra: Record<string, unknown> = {},
  model: Record<string, unknown> = {},
) {
  return {
    providers: {
      p: {
        type,
        nodes: urls.map((url) => ({ url, max_concurrency: 4 })),
        retries: { attempts: 1, backoff_ms: 10 },
        ...extra,
      },
    },
    models: {
      m: {
        provider: 'p',
        model_id: 'upstream-m',
        context_window: 8192,
        max_tokens: 1024,
        capabilities: ['chat', 'tools', 'embeddings'],
        ...model,
      },
    },
    routing: { default_model: 'm' },
  };
}

export async function post(
  url: string,
  key: string | undefined,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Parses an SSE body into its data payloads (JSON objects, or the string '[DONE]'). */
export function sseData(text: string): any[] {
  return text
    .split('\n\n')
    .map((block) =>
      block
        .split('\n')
        .find((l) => l.startsWith('data: '))
        ?.slice(6),
    )
    .filter((d): d is string => d !== undefined)
    .map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
}

/** Polls until `fn` returns a truthy value or the deadline passes. */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** GET a JSON endpoint, with the key when given. */
export async function getJson(url: string, key?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  return { status: res.status, body: await res.json() };
}
