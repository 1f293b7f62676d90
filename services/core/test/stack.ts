import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { type MockOptions, type MockServer, startMockServer } from '@pincer/mock-inference';
import {
  createLogger,
  type InboundMessageInput,
  inboundJobId,
  type OutboundAction,
  QueueName,
} from '@pincer/shared';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import winston from 'winston';
import { stringify } from 'yaml';
import { loadConfig as loadProxyConfig } from '../../llm-proxy/src/config.ts';
import { type ProxyHandle, startProxy } from '../../llm-proxy/src/proxy.ts';
import { loadConfig } from '../src/config.ts';
import { type CoreHandle, startCore } from '../src/core.ts';
import { createTestDatabase, type TestDatabase, writeConfigDir } from './db-harness.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const PROXY_KEY = 'core-test-proxy-key-0123456789';
export const ADMIN_TOKEN = 'admin-token-0123456789abcdef0123456789';

/** What a fake adapter saw for one reply. */
export interface SeenReply {
  reply_id: string;
  chat: string;
  actions: OutboundAction[];
  text: string;
  status?: string;
  finishes: number;
}

export interface Stack {
  mock: MockServer;
  proxy: ProxyHandle;
  core: CoreHandle;
  t: TestDatabase;
  prefix: string;
  configDir: string;
  env: Record<string, string>;
  logs: string[];
  replies: Map<string, SeenReply>;
  /** Enqueues an inbound message (`jobId` to enqueue a redelivery under a new job id). */
  send(m: Partial<InboundMessageInput> & { text: string; jobId?: string }): Promise<string>;
  /** Resolves with the reply once it is finished (by reply id, or the first whose chat and predicate match). */
  finished(pred: (r: SeenReply) => boolean, timeoutMs?: number): Promise<SeenReply>;
  restartCore(extraConfig?: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

let seq = 1000;

/** Sends a logger's lines into the returned array instead of the console (tests read what was logged). */
export function captureLogs(log: winston.Logger): string[] {
  const lines: string[] = [];
  log.clear();
  log.add(
    new winston.transports.Stream({
      stream: new Writable({ write: (c, _e, cb) => void (lines.push(String(c)), cb()) }),
    }),
  );
  return lines;
}

/** A free TCP port on loopback (for a service whose own URL must be known before it starts). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** models.yml for a stack whose model may answer at length (chunking and rollover tests). */
export const bigModels = (mockUrl: string) => ({
  providers: {
    p: {
      type: 'openai',
      nodes: [{ url: `${mockUrl}/v1`, max_concurrency: 512 }],
      retries: { attempts: 0, backoff_ms: 1 },
    },
  },
  models: { small: { provider: 'p', model_id: 'small-model', context_window: 65536, max_tokens: 16384 } },
  routing: { default_model: 'small' },
});

/** models.yml with a chat model `small` and an embedding model `embed` (knowledge-base tests). */
export const embeddingModels = (mockUrl: string, chatMaxTokens = 512) => ({
  providers: {
    p: {
      type: 'openai',
      nodes: [{ url: `${mockUrl}/v1`, max_concurrency: 64 }],
      retries: { attempts: 0, backoff_ms: 1 },
    },
  },
  models: {
    small: { provider: 'p', model_id: 'small-model', context_window: 16384, max_tokens: chatMaxTokens },
    embed: {
      provider: 'p',
      model_id: 'embed-model',
      context_window: 8192,
      max_tokens: 1,
      capabilities: ['embeddings'],
    },
  },
  routing: { default_model: 'small' },
});

/** models.yml: `small` can call tools, `plain` cannot. */
export const toolModels = (mockUrl: string) => ({
  providers: {
    p: {
      type: 'openai',
      nodes: [{ url: `${mockUrl}/v1`, max_concurrency: 64 }],
      retries: { attempts: 0, backoff_ms: 1 },
    },
  },
  models: {
    small: {
      provider: 'p',
      model_id: 'small-model',
      context_window: 16384,
      max_tokens: 512,
      capabilities: ['chat', 'tools'],
    },
    plain: { provider: 'p', model_id: 'plain-model', context_window: 16384, max_tokens: 512 },
  },
  routing: { default_model: 'small' },
});

/** One call to core's REST API as the admin (or `token`); `json` is undefined when the body is not JSON. */
export async function api(
  s: Pick<Stack, 'core'>,
  method: string,
  path: string,
  body?: unknown,
  token = ADMIN_TOKEN,
) {
  const res = await fetch(`${s.core.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

export interface StackOptions {
  mock?: MockOptions;
  /** models.yml for the stack's llm-proxy, given the mock's URL. */
  models?: (mockUrl: string) => Record<string, unknown>;
  config?: Record<string, unknown>;
  routing?: unknown;
  workers?: boolean;
  /** Platforms whose outbound queue the fake adapter consumes (default both; a real adapter takes the others). */
  fakeAdapters?: Array<'telegram' | 'feishu'>;
  /** More files for the config dir (name → content), e.g. workflows.yaml. */
  files?: Record<string, string>;
}

/** mock model → real llm-proxy → real core (own database, own Redis prefix) → a fake adapter on the outbound queue. */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const mock = await startMockServer({ flavor: 'vllm', ...opts.mock });
  const proxyDir = mkdtempSync(path.join(tmpdir(), 'pincer-core-proxy-'));
  writeFileSync(
    path.join(proxyDir, 'models.yml'),
    stringify(
      opts.models?.(mock.url) ?? {
        providers: {
          p: {
            type: 'openai',
            nodes: [{ url: `${mock.url}/v1`, max_concurrency: 64 }],
            retries: { attempts: 0, backoff_ms: 1 },
          },
        },
        models: {
          small: { provider: 'p', model_id: 'small-model', context_window: 8192, max_tokens: 512 },
          big: { provider: 'p', model_id: 'big-model', context_window: 32768, max_tokens: 1024 },
        },
        routing: { default_model: 'small' },
      },
    ),
  );
  writeFileSync(
    path.join(proxyDir, 'config.yaml'),
    stringify({ llm_proxy: { active_health_checks: false } }),
  );
  const quiet = createLogger({ service: 'llm-proxy', level: 'error' });
  const proxy = await startProxy(
    loadProxyConfig({ PINCER_CONFIG_DIR: proxyDir, LLM_PROXY_API_KEY: PROXY_KEY }),
    quiet,
    { host: '127.0.0.1', port: 0 },
  );
  const t = await createTestDatabase();
  const prefix = `pincer-test-${randomBytes(6).toString('hex')}`;
  const { system: systemOverrides, ...otherOverrides } = (opts.config ?? {}) as {
    system?: Record<string, unknown>;
  };
  // deep-merged: a test's system settings must never drop the private Redis prefix
  const baseConfig = {
    system: {
      redis_prefix: prefix,
      max_concurrency: 8,
      ...systemOverrides,
      ...(systemOverrides?.redis_prefix ? {} : { redis_prefix: prefix }),
    },
    access: {
      telegram: { direct: 'open', groups: 'mention' },
      feishu: { direct: 'open', groups: 'mention' },
    },
    ...otherOverrides,
  };
  let configDir = writeConfigDir(baseConfig, opts.routing);
  const writeFiles = (dir: string) => {
    for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(path.join(dir, name), text);
  };
  writeFiles(configDir);
  const env = {
    DATABASE_URL: t.url,
    REDIS_URL,
    LLM_PROXY_URL: `${proxy.url}/v1`,
    LLM_PROXY_API_KEY: PROXY_KEY,
    PINCER_ADMIN_TOKEN: ADMIN_TOKEN,
    PINCER_CONFIG_DIR: configDir,
  };
  const log = createLogger({ service: 'core', level: 'debug', secrets: [PROXY_KEY, ADMIN_TOKEN] });
  const logs = captureLogs(log);
  let core = await startCore(loadConfig(env), log, { host: '127.0.0.1', port: 0, workers: opts.workers });

  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const inbound = new Queue(QueueName.Inbound, { connection, prefix });
  const replies = new Map<string, SeenReply>();
  const waiters = new Set<() => void>();
  // a fake adapter: applies actions the way a real one must (ignore older seq, show a finish once)
  const fake = opts.fakeAdapters ?? ['telegram', 'feishu'];
  const queues = fake.map((p) => (p === 'telegram' ? QueueName.OutboundTelegram : QueueName.OutboundFeishu));
  const adapters = queues.map(
    (name) =>
      new Worker(
        name,
        async (job) => {
          const a = job.data as OutboundAction;
          let r = replies.get(a.reply_id);
          if (!r)
            replies.set(
              a.reply_id,
              (r = { reply_id: a.reply_id, chat: a.chat.id, actions: [], text: '', finishes: 0 }),
            );
          r.actions.push(a);
          if (a.type === 'finish') {
            r.finishes++;
            r.text = a.text;
            r.status = a.status;
          } else if ((a.type === 'create' || a.type === 'update') && !r.status) r.text = a.text;
          for (const w of waiters) w();
        },
        { connection, prefix, concurrency: 1 },
      ),
  );

  const stack: Stack = {
    mock,
    proxy,
    core,
    t,
    prefix,
    configDir,
    env,
    logs,
    replies,
    async send(m) {
      const chatId = m.chat?.id ?? '100';
      const message_id = m.message_id ?? String(seq++);
      const payload: InboundMessageInput = {
        v: 1,
        platform: m.platform ?? 'telegram',
        event: m.event ?? 'message',
        message_id,
        order: m.order ?? seq++,
        chat: m.chat ?? { id: chatId, type: 'direct' },
        sender: m.sender ?? { id: chatId, display_name: 'Tester' },
        text: m.text,
        addressed: m.addressed ?? {
          direct: (m.chat?.type ?? 'direct') === 'direct',
          mention: false,
          reply_to_bot: false,
        },
        attachments: m.attachments ?? [],
        sent_at: m.sent_at ?? Date.now(),
        received_at: m.received_at ?? Date.now(),
      };
      const jobId = m.jobId ?? inboundJobId(payload as never);
      await inbound.add('message', payload, { jobId });
      return jobId;
    },
    finished(pred, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (const r of replies.values()) {
            if (r.status && pred(r)) {
              waiters.delete(check);
              clearTimeout(timer);
              resolve(r);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `no finished reply matched within ${timeoutMs} ms; seen: ${JSON.stringify([...replies.values()].map((r) => [r.reply_id, r.status, r.text.slice(0, 60)]))}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async restartCore(extraConfig) {
      await stack.core.shutdown(2000);
      if (extraConfig) {
        configDir = writeConfigDir({ ...baseConfig, ...extraConfig }, opts.routing);
        writeFiles(configDir);
        env.PINCER_CONFIG_DIR = configDir;
      }
      core = await startCore(loadConfig(env), log, { host: '127.0.0.1', port: 0, workers: opts.workers });
      stack.core = core;
    },
    async close() {
      await Promise.all(adapters.map((w) => w.close()));
      await inbound.close();
      await stack.core.shutdown(2000);
      await proxy.shutdown(500);
      await mock.close();
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await connection.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      if (keys.length) await connection.del(...keys);
      await connection.quit();
      await t.drop();
    },
  };
  return stack;
}
