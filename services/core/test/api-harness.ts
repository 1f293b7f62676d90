import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { AppError, createLogger, createMetricsRegistry } from '@pincer/shared';
import type express from 'express';
import { loadConfig } from '../src/config.ts';
import { ConfigManager } from '../src/services/config-manager.ts';
import { createApp, type RestChat, type RestChatRequest, type RestChatResult } from '../src/http/app.ts';
import type { Role } from '../src/repositories/keys.ts';
import { createTestDatabase, type TestDatabase, writeConfigDir } from './db-harness.ts';

export const ADMIN_TOKEN = 'a'.repeat(32);
export const REPLY_PIECES = ['Hello ', 'from the ', 'fake model.'];

export interface FakeCall {
  req: RestChatRequest;
  streamed: boolean;
  aborted: boolean;
}

/**
 * Plays the engine: records calls and answers with a fixed reply. Messages steer it:
 * `fail-404` (unknown conversation), `crash` (an unexpected error), `fail-mid-stream`
 * (fails after streaming), `hang` (streams, then waits until the request is aborted).
 */
export class FakeChat implements RestChat {
  readonly calls: FakeCall[] = [];

  async chat(
    req: RestChatRequest,
    onDelta: ((text: string) => void) | undefined,
    signal: AbortSignal,
  ): Promise<RestChatResult> {
    const call: FakeCall = { req, streamed: onDelta !== undefined, aborted: false };
    this.calls.push(call);
    signal.addEventListener('abort', () => (call.aborted = true), { once: true });
    if (req.message === 'fail-404')
      throw new AppError(404, 'conversation_not_found', 'No such API conversation.');
    if (req.message === 'crash') throw new Error('connection to postgres://core:hunter2@db failed');
    if (onDelta) {
      for (const piece of REPLY_PIECES) onDelta(piece);
      if (req.message === 'fail-mid-stream')
        throw new AppError(502, 'model_unavailable', 'The model is not answering.');
      if (req.message === 'hang')
        await new Promise((_resolve, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
        );
    }
    return {
      conversation_id: req.conversationId ?? '00000000-0000-4000-8000-000000000001',
      message_id: 42,
      reply: {
        content: REPLY_PIECES.join(''),
        status: 'complete',
        model: req.model ?? 'fake-model',
        usage: { prompt_tokens: 7, completion_tokens: 5 },
        latency_ms: 12,
        ttft_ms: 3,
      },
    };
  }
}

export interface Response {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export interface ApiHarness {
  t: TestDatabase;
  app: express.Express;
  url: string;
  chat: FakeChat;
  health: { postgres: boolean; redis: boolean };
  /** A key per role, created through the API at start. */
  keys: Record<Role, { id: string; name: string; key: string }>;
  call(
    method: string,
    path: string,
    opts?: { token?: string | null; body?: unknown; rawBody?: string; headers?: Record<string, string> },
  ): Promise<Response>;
  close(): Promise<void>;
}

/** The HTTP app on an ephemeral port over a database of its own, with a fake engine. */
export async function startApi(opts: { consoleDir?: string } = {}): Promise<ApiHarness> {
  const t = await createTestDatabase();
  const dir = writeConfigDir({}, undefined);
  const config = loadConfig({
    DATABASE_URL: t.url,
    LLM_PROXY_API_KEY: 'x'.repeat(20),
    PINCER_ADMIN_TOKEN: ADMIN_TOKEN,
    PINCER_CONFIG_DIR: dir,
  });
  const log = createLogger({ service: 'core', level: 'error' });
  log.silent = true;
  const chat = new FakeChat();
  const health = { postgres: true, redis: true };
  const configManager = new ConfigManager(config, log);
  const app = createApp({
    db: t.db,
    config: configManager.live,
    configManager,
    consoleDir: opts.consoleDir,
    reloadConfig: async (reason) => configManager.reload(reason),
    log,
    metrics: createMetricsRegistry('core'),
    chat,
    // the knowledge base and memory are exercised through the whole stack (knowledge.test.ts, memory.test.ts)
    knowledge: undefined as never,
    memory: undefined as never,
    // tasks and workflows are exercised through the whole stack (automations.test.ts)
    tasks: undefined as never,
    workflows: undefined as never,
    health: async () => ({
      postgres:
        health.postgres &&
        (await t.db.query('SELECT 1').then(
          () => true,
          () => false,
        )),
      redis: health.redis,
    }),
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const call: ApiHarness['call'] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token === undefined ? ADMIN_TOKEN : opts.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined = opts.rawBody;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(url + path, { method, headers, body });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  };

  const keys = {} as ApiHarness['keys'];
  for (const role of ['admin', 'operator', 'auditor', 'user'] as const) {
    const r = await call('POST', '/api/v1/keys', { body: { name: `test-${role}`, role } });
    if (r.status !== 201) throw new Error(`could not create a ${role} key: ${r.status} ${r.text}`);
    keys[role] = { id: r.json.id, name: r.json.name, key: r.json.key };
  }

  return {
    t,
    app,
    url,
    chat,
    health,
    keys,
    call,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await t.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns a value, or fails after the deadline (no fixed sleeps). */
export async function eventually<T>(check: () => Promise<T | undefined | false>, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met before the deadline');
    await new Promise((r) => setTimeout(r, 20));
  }
}
