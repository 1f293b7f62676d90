/**
 * The whole stack for the performance table, every part its own process from dist/ as the local stack
 * (scripts/local-stack.ts) runs it, with the environment its SERVICES give each service: the mock model
 * at zero delay, llm-proxy, core, telegram-adapter, feishu-bot, and the Telegram and Feishu emulators
 * that the adapters reach over HTTP and the long connection. On a fresh database, a private Redis
 * prefix and a private port range; `close()` takes all of it down again, also after a failure.
 *
 * What differs from `scripts/stack.sh start --emulators`, and why:
 *  - no nginx and no Prometheus: the emulator pushes Telegram's webhook straight to the adapter (nginx's
 *    50 r/s webhook limit would cap every figure) and nothing is scraped;
 *  - models.yml is the operator's registry with every model served by the mock (OpenAI API, vLLM
 *    flavour, 256 at once), so the model is never the bottleneck;
 *  - config.yaml is the operator's, with the overrides listed in `overrides` (open access, the
 *    per-user rate limit and the platforms' flood limits lifted: simulated users write faster than
 *    people, and the bench measures the stack, not the platforms' quotas);
 *  - logs at warn, into files kept only when the run fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { parse, parseDocument, stringify } from 'yaml';
import { emulatorArgs, LOCAL_PORTS, SERVICES, type StackSettings } from '../scripts/local-stack.ts';
import { deleteRedisKeys, REDIS_URL, root, start, waitHttp } from './lib.ts';

const ADMIN_DB = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The services the table reports on, in start order (SERVICES' names). */
export const SERVICE_NAMES = SERVICES.map((s) => s.name);

/** config.yaml keys the bench sets over the operator's config (besides the Redis prefix). */
export const overrides: Record<string, unknown> = {
  'access.telegram.direct': 'open',
  'access.feishu.direct': 'open',
  'security.rate_limit': '100000/min',
  'telegram.limits': {
    per_chat_per_sec: 1000,
    per_chat_burst: 1000,
    per_group_per_min: 60000,
    global_per_sec: 100000,
  },
  'feishu.limits': { per_chat_per_sec: 1000, per_api_per_sec: 100000 },
};

export interface RunningStack {
  /** Every process by name: the services, 'mock', 'telegram-emulator', 'feishu-emulator'. */
  procs: Map<string, ChildProcess>;
  urls: {
    mock: string;
    proxy: string;
    core: string;
    telegramEmulator: string;
    feishuEmulator: string;
  };
  /** The key llm-proxy accepts (core's). */
  proxyKey: string;
  /** Model id clients name, and the id llm-proxy sends upstream for it. */
  model: { id: string; upstreamId: string };
  prefix: string;
  /** Stops every process, deletes the Redis keys, drops the database; the logs stay when `keepLogs`. */
  close(keepLogs: boolean): Promise<void>;
  /** The last lines of each process's log. */
  logTails(lines?: number): string;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1' }, () => srv.close(() => resolve(true)));
  });
}

/** An offset for the local stack's ports under which every one of them is free. */
async function freeOffset(bases: number[]): Promise<number> {
  const top = Math.max(...bases);
  for (let i = 0; i < 50; i++) {
    const offset = 1000 + Math.floor(Math.random() * (64000 - top - 1000));
    const free = await Promise.all(bases.map((b) => portFree(b + offset)));
    if (free.every(Boolean)) return offset;
  }
  throw new Error('no free port range for the stack');
}

function secrets(): Record<string, string> {
  const hex = (n: number) => randomBytes(n).toString('hex');
  return {
    LLM_PROXY_API_KEY: hex(24),
    PINCER_ADMIN_TOKEN: hex(32),
    TELEGRAM_BOT_TOKEN: `${100000 + Math.floor(Math.random() * 899999)}:${randomBytes(18).toString('base64url')}`,
    TELEGRAM_WEBHOOK_SECRET: hex(24),
    FEISHU_APP_ID: `cli_${hex(8)}`,
    FEISHU_APP_SECRET: hex(16),
    FEISHU_VERIFICATION_TOKEN: hex(12),
    FEISHU_ENCRYPT_KEY: hex(12),
  };
}

interface Registry {
  models: Record<string, { provider: string; model_id: string }>;
  routing: { default_model: string };
}

/** routing.yaml as is; models.yml with every model on the mock; config.yaml with `overrides`. */
function writeConfig(s: StackSettings, mockUrl: string): Registry {
  mkdirSync(s.configDir, { recursive: true });
  copyFileSync(path.join(root, 'config/routing.yaml'), path.join(s.configDir, 'routing.yaml'));
  const registry = parse(readFileSync(path.join(root, 'config/models.yml'), 'utf8')) as Registry;
  for (const m of Object.values(registry.models)) m.provider = 'mock';
  writeFileSync(
    path.join(s.configDir, 'models.yml'),
    stringify({
      ...registry,
      providers: {
        mock: {
          type: 'openai',
          nodes: [{ url: `${mockUrl}/v1`, max_concurrency: 256 }],
          queue: { size: 4096 },
        },
      },
    }),
  );
  const doc = parseDocument(readFileSync(path.join(root, 'config/config.yaml'), 'utf8'));
  doc.setIn(['system', 'redis_prefix'], s.redisPrefix);
  for (const [k, v] of Object.entries(overrides)) doc.setIn(k.split('.'), doc.createNode(v));
  writeFileSync(path.join(s.configDir, 'config.yaml'), doc.toString());
  return registry;
}

/** `${VAR:-default}` as llm-proxy reads it from its environment. */
const interpolate = (v: string, env: Record<string, string>) =>
  v.replace(/\$\{([A-Z0-9_]+)(?::-([^}]*))?\}/g, (_m, k: string, d?: string) => env[k] ?? d ?? '');

async function waitUntil(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok().catch(() => false))) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms / 1000} s`);
    await sleep(50);
  }
}

/**
 * Starts the stack. `cpuProf` names services to run with --cpu-prof (profiles in `profileDir`, written
 * when they exit).
 */
export async function startStack(
  opts: { cpuProf?: string[]; profileDir?: string } = {},
): Promise<RunningStack> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pincer-bench-stack-'));
  mkdirSync(path.join(dir, 'logs'));
  const procs = new Map<string, ChildProcess>();
  const id = randomBytes(4).toString('hex');
  const dbName = `pincer_bench_${id}`;
  const prefix = `pincer-bench-${id}`;
  const admin = new pg.Client({ connectionString: ADMIN_DB });
  let dbCreated = false;
  let closed = false;

  const close = async (keepLogs: boolean) => {
    if (closed) return;
    closed = true;
    // the adapters first (they hand back in-flight replies), the emulators and the mock last
    for (const name of [...procs.keys()].reverse()) {
      const p = procs.get(name)!;
      if (p.exitCode !== null || p.signalCode !== null) continue;
      p.kill('SIGTERM');
      const exited = new Promise((r) => p.once('exit', r));
      if ((await Promise.race([exited, sleep(10_000, 'late')])) === 'late') p.kill('SIGKILL');
    }
    const redis = new Redis(REDIS_URL);
    await deleteRedisKeys(redis, prefix).finally(() => redis.quit());
    if (dbCreated) await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    if (keepLogs) process.stderr.write(`stack logs kept in ${path.join(dir, 'logs')}\n`);
    else rmSync(dir, { recursive: true, force: true });
  };
  const logTails = (lines = 15) =>
    [...procs.keys()]
      .map((name) => {
        const text = readFileSync(path.join(dir, 'logs', `${name}.log`), 'utf8')
          .trimEnd()
          .split('\n');
        return `--- ${name} ---\n${text.slice(-lines).join('\n')}`;
      })
      .join('\n');

  try {
    const offset = await freeOffset([
      ...SERVICES.map((x) => x.port),
      LOCAL_PORTS.mock,
      LOCAL_PORTS.telegramEmulator,
      LOCAL_PORTS.feishuEmulator,
    ]);
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    dbCreated = true;
    const databaseUrl = new URL(ADMIN_DB);
    databaseUrl.pathname = `/${dbName}`;
    const s: StackSettings = {
      dir,
      offset,
      port: (base) => base + offset,
      secrets: secrets(),
      databaseUrl: databaseUrl.toString(),
      redisUrl: REDIS_URL,
      redisPrefix: prefix,
      configDir: path.join(dir, 'config'),
      emulators: true,
    };
    const url = (base: number) => `http://127.0.0.1:${s.port(base)}`;
    const urls = {
      mock: url(LOCAL_PORTS.mock),
      proxy: url(8000),
      core: url(8080),
      telegramEmulator: url(LOCAL_PORTS.telegramEmulator),
      feishuEmulator: url(LOCAL_PORTS.feishuEmulator),
    };
    const registry = writeConfig(s, urls.mock);

    const run = (name: string, args: string[], env: Record<string, string> = {}) => {
      const prof =
        opts.cpuProf?.includes(name) && opts.profileDir
          ? ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`, `--cpu-prof-name=${name}.cpuprofile`]
          : [];
      // the local stack's Node flags (start() adds --max-semi-space-size=8)
      const p = start(['--enable-source-maps', ...prof, ...args], env, path.join(dir, 'logs', `${name}.log`));
      procs.set(name, p);
      return p;
    };

    const migrate = spawn(process.execPath, ['services/core/dist/cli/migrate.js'], {
      cwd: root,
      env: { PATH: process.env.PATH, DATABASE_URL: s.databaseUrl },
      stdio: 'ignore',
    });
    const code = await new Promise((r) => migrate.on('exit', r));
    if (code !== 0) throw new Error(`migrations failed (exit ${String(code)})`);

    const mock = run('mock', [
      'packages/mock-inference/dist/main.js',
      '--port',
      String(s.port(LOCAL_PORTS.mock)),
      '--flavor',
      'vllm',
    ]);
    await waitHttp(`${urls.mock}/health`, mock, 'mock');
    // the platforms' limits lifted (see the header)
    const emu = emulatorArgs(s);
    const tg = run('telegram-emulator', [...emu.telegram, '--no-flood']);
    await waitHttp(`${urls.telegramEmulator}/_emulator/state`, tg, 'telegram-emulator');
    const fsEmu = run('feishu-emulator', [...emu.feishu, '--no-limits']);
    await waitHttp(`${urls.feishuEmulator}/_emulator/state`, fsEmu, 'feishu-emulator');

    let proxyEnv: Record<string, string> = {};
    for (const svc of SERVICES) {
      const env: Record<string, string> = { ...svc.env(s), LOG_LEVEL: 'warn' };
      // Telegram pushes straight to the adapter (the local stack routes it through nginx)
      if (svc.name === 'telegram-adapter') env.TELEGRAM_WEBHOOK_URL = `${url(svc.port)}/webhook/telegram`;
      if (svc.name === 'llm-proxy') proxyEnv = env;
      const p = run(svc.name, [svc.entry], env);
      await waitHttp(`${url(svc.port)}${svc.health}`, p, svc.name);
    }
    // the adapters are reachable once the webhook is set and the long connection is open
    const getJson = async <T>(u: string) => (await (await fetch(u)).json()) as T;
    await waitUntil('telegram webhook set', async () =>
      Boolean(
        (await getJson<{ webhook?: { url: string } }>(`${urls.telegramEmulator}/_emulator/state`)).webhook,
      ),
    );
    await waitUntil(
      'feishu long connection open',
      async () =>
        (await getJson<{ wsConnections: number }>(`${urls.feishuEmulator}/_emulator/state`)).wsConnections >
        0,
    );

    const modelId = registry.routing.default_model;
    return {
      procs,
      urls,
      proxyKey: s.secrets.LLM_PROXY_API_KEY!,
      model: { id: modelId, upstreamId: interpolate(registry.models[modelId]!.model_id, proxyEnv) },
      prefix,
      close,
      logTails,
    };
  } catch (err) {
    process.stderr.write(`${logTails()}\n`);
    await close(true).catch(() => {});
    throw err;
  }
}
