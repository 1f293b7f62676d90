/**
 * The fault suite's stack: every Pincer service as its own process from dist/ (as the images and
 * scripts/local-stack.ts run them, with the same environment), on a private Redis (AOF on, as in
 * compose) and a private Postgres cluster — so a case may restart either without touching what other
 * tests use — with the Telegram and Feishu emulators and the mock model(s) in this process.
 * Each case starts one, breaks something, and checks that every accepted message got exactly one
 * finished reply.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  type FeishuEmulator,
  type FeishuEmulatorOptions,
  startFeishuEmulator,
} from '@pincer/feishu-emulator';
import { type MockOptions, type MockServer, startMockServer } from '@pincer/mock-inference';
import {
  startTelegramEmulator,
  type TelegramEmulator,
  type TelegramEmulatorOptions,
} from '@pincer/telegram-emulator';
import { parseDocument, stringify } from 'yaml';
import { root, SERVICES, type StackSettings } from '../scripts/local-stack.ts';

const execFileAsync = promisify(execFile);

export type ServiceName = 'llm-proxy' | 'core' | 'telegram-adapter' | 'feishu-bot';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function until<T>(
  fn: () => T | undefined | Promise<T | undefined>,
  what: string,
  ms: number,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await Promise.resolve()
      .then(fn)
      .catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what} after ${ms} ms`);
    await sleep(100);
  }
}
export { until };

/** A process this suite started and may kill or restart; its output goes to a log file. */
export class Proc {
  readonly name: string;
  private readonly cmd: string;
  private readonly args: string[];
  private readonly env: Record<string, string>;
  readonly logFile: string;
  private readonly health?: string;
  child?: ChildProcess;
  private exited?: Promise<void>;
  starts = 0;

  constructor(o: {
    name: string;
    cmd: string;
    args: string[];
    env: Record<string, string>;
    logFile: string;
    health?: string;
  }) {
    this.name = o.name;
    this.cmd = o.cmd;
    this.args = o.args;
    this.env = o.env;
    this.logFile = o.logFile;
    this.health = o.health;
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  async start(): Promise<void> {
    const out = openSync(this.logFile, 'a');
    writeFileSync(this.logFile, `\n--- start ${++this.starts} ---\n`, { flag: 'a' });
    const child = spawn(this.cmd, this.args, {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', ...this.env },
      stdio: ['ignore', out, out],
    });
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', () => r()));
    if (!this.health) return;
    await until(
      async () => {
        if (child.exitCode !== null) return 'exited';
        return (await fetch(this.health!)).ok ? 'healthy' : undefined;
      },
      `${this.name} to become healthy`,
      30_000,
    )
      .then((state) => {
        if (state === 'exited') throw new Error(`${this.name} exited at start`);
      })
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${this.tail()}`);
      });
  }

  /** Signals the process and waits until it has gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.pid) return;
    this.child!.kill(signal);
    await this.exited;
  }

  async restart(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.kill(signal);
    await this.start();
  }

  /** Whether the process's health endpoint answers 2xx now (false when it has none or is down). */
  async healthy(): Promise<boolean> {
    if (!this.health) return false;
    return fetch(this.health, { signal: AbortSignal.timeout(10_000) })
      .then((r) => r.ok)
      .catch(() => false);
  }

  /** Resident memory in MB (VmRSS), or 0 when not running. */
  rssMB(): number {
    if (!this.pid) return 0;
    try {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'))![1]) / 1024;
    } catch {
      return 0;
    }
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  tail(lines = 30): string {
    return this.log().split('\n').slice(-lines).join('\n');
  }
}

/** redis-server on a private port with AOF on (appendfsync everysec, as compose runs it). */
async function startRedis(dir: string): Promise<{ url: string; proc: Proc }> {
  const port = await freePort();
  mkdirSync(path.join(dir, 'redis'), { recursive: true });
  const proc = new Proc({
    name: 'redis',
    cmd: 'redis-server',
    args: [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      path.join(dir, 'redis'),
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
    ],
    env: {},
    logFile: path.join(dir, 'logs', 'redis.log'),
  });
  await proc.start();
  await until(() => canConnect(port), 'redis to listen', 10_000);
  return { url: `redis://127.0.0.1:${port}`, proc };
}

function canConnect(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(undefined));
  });
}

/** A private Postgres cluster (initdb in the case's folder; as the postgres user when run as root). */
class PrivatePostgres {
  readonly port: number;
  readonly dir: string;
  private readonly bin: string;
  private readonly asRoot: boolean;

  constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
    this.bin = execFileSync('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1'])
      .toString()
      .trim();
    this.asRoot = process.getuid?.() === 0;
  }

  private command(tool: string, args: string[]): [string, string[]] {
    return this.asRoot
      ? ['runuser', ['-u', 'postgres', '--', path.join(this.bin, tool), ...args]]
      : [path.join(this.bin, tool), args];
  }

  private run(tool: string, args: string[]): void {
    const [cmd, argv] = this.command(tool, args);
    execFileSync(cmd, argv, { stdio: 'ignore', timeout: 60_000 });
  }

  /** run() without blocking this process: the emulators and mock models in it keep serving meanwhile. */
  private async runInBackground(tool: string, args: string[]): Promise<void> {
    const [cmd, argv] = this.command(tool, args);
    await execFileAsync(cmd, argv, { timeout: 120_000 });
  }

  private options(): string {
    return [
      `-p ${this.port}`,
      '-c listen_addresses=127.0.0.1',
      `-c unix_socket_directories=${this.dir}`,
      '-c max_connections=600',
      '-c fsync=off',
      '-c shared_buffers=32MB',
    ].join(' ');
  }

  init(): void {
    mkdirSync(this.dir, { recursive: true });
    if (this.asRoot) {
      // the postgres user must reach its folder inside the case's (mkdtemp's 0700) folder
      chmodSync(path.dirname(this.dir), 0o711);
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(this.dir, uid, gid);
    }
    this.run('initdb', [
      '-D',
      path.join(this.dir, 'data'),
      '-A',
      'trust',
      '-U',
      'postgres',
      '--no-sync',
      '-E',
      'UTF8',
    ]);
    this.start();
  }

  private startArgs(): string[] {
    const data = path.join(this.dir, 'data');
    return ['-D', data, '-l', path.join(this.dir, 'log'), '-o', this.options(), '-w', 'start'];
  }

  private stopArgs(mode: 'fast' | 'immediate'): string[] {
    return ['-D', path.join(this.dir, 'data'), '-m', mode, '-w', 'stop'];
  }

  start(): void {
    this.run('pg_ctl', this.startArgs());
  }

  stop(mode: 'fast' | 'immediate' = 'fast'): void {
    this.run('pg_ctl', this.stopArgs(mode));
  }

  /** start() and stop() that let this process's emulators and mocks serve while pg_ctl runs. */
  async startInBackground(): Promise<void> {
    await this.runInBackground('pg_ctl', this.startArgs());
  }

  async stopInBackground(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.runInBackground('pg_ctl', this.stopArgs(mode));
  }

  /** As `docker compose restart postgres` does: a fast shutdown (sessions cut), then a start. */
  async restartInBackground(): Promise<void> {
    await this.stopInBackground('fast');
    await this.startInBackground();
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/pincer`;
  }
}

/** A TCP listener that takes connections and resets them at once: a dead upstream whose calls we can count. */
export async function deadNode(): Promise<{
  url: string;
  connections: () => number;
  close: () => Promise<void>;
}> {
  let n = 0;
  const server: Server = createServer((sock) => {
    n++;
    sock.resetAndDestroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    connections: () => n,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

export interface FaultStackOptions {
  /** The mock model nodes (default one, zero delay). */
  mocks?: MockOptions[];
  /** models.yml for llm-proxy, given the mock nodes' /v1 URLs (default: one model `m` on every node). */
  models?: (urls: string[]) => Record<string, unknown>;
  /** Merged into the repository's config.yaml (leaf by leaf). */
  config?: Record<string, unknown>;
  telegramMode?: 'polling' | 'webhook';
  feishuMode?: 'ws' | 'webhook';
  telegram?: TelegramEmulatorOptions;
  feishu?: FeishuEmulatorOptions;
}

export interface FaultStack {
  dir: string;
  redis: Proc;
  redisUrl: string;
  pg: PrivatePostgres;
  mocks: MockServer[];
  tg: TelegramEmulator;
  fs: FeishuEmulator;
  procs: Record<ServiceName, Proc>;
  /** Each service's own address (http://127.0.0.1:<port>): /healthz, /metrics, webhooks. */
  urls: Record<ServiceName, string>;
  /** Sum of RSS of the named services, MB. */
  rss(): Record<ServiceName, number>;
  /** The last lines of every service's log (for a failure message). */
  tails(): string;
  close(): Promise<void>;
}

export const defaultModels = (urls: string[]) => ({
  providers: {
    local: {
      type: 'openai',
      nodes: urls.map((url) => ({ url, max_concurrency: 256 })),
      queue: { size: 4096 },
    },
  },
  models: { m: { provider: 'local', model_id: 'mock', context_window: 8192, max_tokens: 512, priority: 10 } },
  routing: { default_model: 'm' },
});

/** Sets each leaf of `patch` (arrays as a whole) in the YAML document. */
function merge(
  doc: ReturnType<typeof parseDocument>,
  patch: Record<string, unknown>,
  at: string[] = [],
): void {
  for (const [k, v] of Object.entries(patch)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) merge(doc, v as Record<string, unknown>, [...at, k]);
    else doc.setIn([...at, k], v);
  }
}

export async function startFaultStack(o: FaultStackOptions = {}): Promise<FaultStack> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pincer-faults-'));
  mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const cleanups: Array<() => Promise<void> | void> = [];
  try {
    const redis = await startRedis(dir);
    cleanups.push(() => redis.proc.kill('SIGKILL'));
    const pg = new PrivatePostgres(path.join(dir, 'pg'), await freePort());
    pg.init();
    cleanups.push(() => pg.stop('immediate'));
    execFileSync(
      process.getuid?.() === 0 ? 'runuser' : 'createdb',
      [
        ...(process.getuid?.() === 0 ? ['-u', 'postgres', '--', 'createdb'] : []),
        '-h',
        '127.0.0.1',
        '-p',
        String(pg.port),
        '-U',
        'postgres',
        'pincer',
      ],
      { stdio: 'ignore' },
    );
    execFileSync(process.execPath, ['services/core/dist/cli/migrate.js'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: pg.url },
      stdio: 'ignore',
    });

    const mocks: MockServer[] = [];
    for (const m of o.mocks ?? [{}]) {
      const mock = await startMockServer({ flavor: 'vllm', ...m });
      mocks.push(mock);
      cleanups.push(() => mock.close());
    }

    const secrets = {
      LLM_PROXY_API_KEY: randomBytes(24).toString('hex'),
      PINCER_ADMIN_TOKEN: randomBytes(32).toString('hex'),
      TELEGRAM_BOT_TOKEN: `${100000 + Math.floor(Math.random() * 899999)}:${randomBytes(18).toString('base64url')}`,
      TELEGRAM_WEBHOOK_SECRET: randomBytes(24).toString('hex'),
      FEISHU_APP_ID: `cli_${randomBytes(8).toString('hex')}`,
      FEISHU_APP_SECRET: randomBytes(16).toString('hex'),
      FEISHU_VERIFICATION_TOKEN: randomBytes(12).toString('hex'),
      FEISHU_ENCRYPT_KEY: randomBytes(12).toString('hex'),
    };
    const tg = await startTelegramEmulator({
      token: secrets.TELEGRAM_BOT_TOKEN,
      privacyMode: false,
      ...o.telegram,
    });
    cleanups.push(() => tg.close());
    const fs = await startFeishuEmulator({
      appId: secrets.FEISHU_APP_ID,
      appSecret: secrets.FEISHU_APP_SECRET,
      verificationToken: secrets.FEISHU_VERIFICATION_TOKEN,
      encryptKey: secrets.FEISHU_ENCRYPT_KEY,
      ...o.feishu,
    });
    cleanups.push(() => fs.close());

    // each service's port (the local stack's 8000, 8080, … mapped to free ones)
    const ports = new Map<number, number>();
    for (const svc of SERVICES) ports.set(svc.port, await freePort());
    const offset = 0;
    const configDir = path.join(dir, 'config');
    mkdirSync(configDir, { recursive: true });
    writeFileSync(
      path.join(configDir, 'models.yml'),
      stringify((o.models ?? defaultModels)(mocks.map((m) => `${m.url}/v1`))),
    );
    writeFileSync(path.join(configDir, 'routing.yaml'), readFileSync(path.join(root, 'config/routing.yaml')));
    const doc = parseDocument(readFileSync(path.join(root, 'config/config.yaml'), 'utf8'));
    merge(doc, {
      system: { redis_prefix: 'pincer' },
      access: { telegram: { direct: 'open' }, feishu: { direct: 'open' } },
      ...o.config,
    });
    writeFileSync(path.join(configDir, 'config.yaml'), doc.toString());

    const s: StackSettings = {
      dir,
      offset,
      port: (p) => ports.get(p) ?? p + offset,
      secrets,
      databaseUrl: pg.url,
      redisUrl: redis.url,
      redisPrefix: 'pincer',
      configDir,
      emulators: true,
    };
    const telegramMode = o.telegramMode ?? 'polling';
    const overrides: Record<ServiceName, Record<string, string>> = {
      'llm-proxy': {},
      core: { BACKUP_DIR: path.join(dir, 'backups') },
      'telegram-adapter': {
        TELEGRAM_API_ROOT: tg.url,
        TELEGRAM_MODE: telegramMode,
        TELEGRAM_WEBHOOK_URL:
          telegramMode === 'webhook' ? `http://127.0.0.1:${s.port(8081)}/webhook/telegram` : '',
      },
      'feishu-bot': { FEISHU_DOMAIN: fs.url, FEISHU_MODE: o.feishuMode ?? 'ws' },
    };
    if (o.feishuMode === 'webhook')
      fs.setEventTarget({ webhook: `http://127.0.0.1:${s.port(8082)}/webhook/feishu` });
    const procs = {} as Record<ServiceName, Proc>;
    const urls = {} as Record<ServiceName, string>;
    for (const svc of SERVICES) {
      const name = svc.name as ServiceName;
      urls[name] = `http://127.0.0.1:${s.port(svc.port)}`;
      const p = new Proc({
        name,
        cmd: process.execPath,
        args: ['--max-semi-space-size=8', '--enable-source-maps', svc.entry],
        env: { ...svc.env(s), LOG_LEVEL: 'info', ...overrides[name] },
        logFile: path.join(dir, 'logs', `${name}.log`),
        health: `http://127.0.0.1:${s.port(svc.port)}${svc.health}`,
      });
      procs[name] = p;
      cleanups.push(() => p.kill('SIGKILL'));
      await p.start();
    }
    const stack: FaultStack = {
      dir,
      redis: redis.proc,
      redisUrl: redis.url,
      pg,
      mocks,
      tg,
      fs,
      procs,
      urls,
      rss: () =>
        Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p.rssMB()])) as Record<
          ServiceName,
          number
        >,
      tails: () =>
        Object.values(procs)
          .map((p) => `--- ${p.name} ---\n${p.tail(15)}`)
          .join('\n'),
      async close() {
        for (const c of cleanups.reverse())
          await Promise.resolve()
            .then(c)
            .catch(() => {});
        if (!process.env.PINCER_KEEP_FAULT_DIR) rmSync(dir, { recursive: true, force: true });
      },
    };
    return stack;
  } catch (err) {
    for (const c of cleanups.reverse())
      await Promise.resolve()
        .then(c)
        .catch(() => {});
    throw err;
  }
}

// ------------------------------------------------------------------ what the users see

/** A Telegram user id no other case uses. */
/** A longer user message (the answer echoes it: every reply streams for a while). */
export const pad = (i: number, times = 4) =>
  `padding words to make a longer streamed answer number ${i} `.repeat(times).trim();

/** A new Feishu user's open_id. */
export const feishuUser = () => `ou_${Math.random().toString(16).slice(2).padEnd(32, '0')}`;

/** `n` new Telegram users each write one message (`<tag> <i> <padding>`) in their private chat. */
export function telegramBurst(s: FaultStack, n: number, tag: string): Array<{ uid: number; text: string }> {
  return Array.from({ length: n }, (_, i) => {
    const uid = tgUser();
    const text = `${tag} ${i} ${pad(i)}`;
    s.tg.userSend({ chat: { id: uid, type: 'private' }, from: { id: uid, first_name: `U${i}` }, text });
    return { uid, text };
  });
}

/** `n` new Feishu users each write one direct message; its ids and text. */
export function feishuBurst(
  s: FaultStack,
  n: number,
  tag: string,
): Array<{ message_id: string; chat_id: string; event_id: string; text: string }> {
  return Array.from({ length: n }, (_, i) => {
    const text = `${tag} ${i} ${pad(i)}`;
    const m = s.fs.userSend({ chat: { type: 'p2p' }, sender: { open_id: feishuUser() }, text });
    return { message_id: m.message_id, chat_id: m.chat_id, event_id: m.event_id, text };
  });
}

export const tgUser = (() => {
  let next = 8_000_000 + Math.floor(Math.random() * 1_000_000) * 10;
  return () => next++;
})();

export interface Expectation {
  /** Telegram chat id or Feishu message id. */
  key: string | number;
  /** The whole reply text, or a test it must pass. */
  reply: string | RegExp;
}

/**
 * Waits until every Telegram chat shows a bot message with its expected reply, lets late duplicates
 * arrive, then lists what is wrong: a chat with no finished reply, or with more than one bot message.
 */
export async function telegramOutcome(
  tg: TelegramEmulator,
  expect: Expectation[],
  timeoutMs: number,
): Promise<{ missing: string[]; extra: string[]; ms: number }> {
  const t0 = Date.now();
  const matches = (text: string, want: string | RegExp) =>
    typeof want === 'string' ? text === want : want.test(text);
  const done = () =>
    expect.every((e) =>
      tg.chat(Number(e.key)).botMessages.some((m) => !m.deleted && matches(m.text, e.reply)),
    );
  await until(() => (done() ? true : undefined), 'every reply', timeoutMs).catch(() => {});
  const ms = Date.now() - t0;
  await sleep(1500);
  const missing: string[] = [];
  const extra: string[] = [];
  for (const e of expect) {
    const shown = tg.chat(Number(e.key)).botMessages.filter((m) => !m.deleted);
    if (!shown.some((m) => matches(m.text, e.reply)))
      missing.push(`${e.key}: ${JSON.stringify(shown.map((m) => m.text.slice(0, 80)))}`);
    if (shown.length > 1) extra.push(`${e.key}: ${JSON.stringify(shown.map((m) => m.text.slice(0, 80)))}`);
  }
  return { missing, extra, ms };
}

/** The same for Feishu: each message id must have exactly one finished card (or text) reply under it. */
export async function feishuOutcome(
  fs: FeishuEmulator,
  expect: Array<Expectation & { chat: string }>,
  timeoutMs: number,
): Promise<{ missing: string[]; extra: string[]; ms: number }> {
  const t0 = Date.now();
  const matches = (text: string, want: string | RegExp) =>
    typeof want === 'string' ? text.includes(want) : want.test(text);
  const replies = (e: Expectation & { chat: string }) =>
    fs.chat(e.chat).botMessages.filter((m) => !m.deleted && m.parent_id === e.key);
  const finished = (e: Expectation & { chat: string }) =>
    replies(e).some((m) => (!m.card || !m.card.streaming_mode) && matches(m.text, e.reply));
  await until(() => (expect.every(finished) ? true : undefined), 'every reply', timeoutMs).catch(() => {});
  const ms = Date.now() - t0;
  await sleep(1500);
  const missing: string[] = [];
  const extra: string[] = [];
  for (const e of expect) {
    const shown = replies(e);
    const texts = JSON.stringify(
      shown.map((m) => `${m.card?.streaming_mode ? '(streaming) ' : ''}${m.text.slice(0, 80)}`),
    );
    if (!finished(e)) missing.push(`${e.key}: ${texts}`);
    if (shown.length > 1) extra.push(`${e.key}: ${texts}`);
  }
  return { missing, extra, ms };
}

/** A summary for an assertion message: counts and the first few problems. */
/**
 * Of the Telegram chats with more than one bot message: the ones where the extra messages are only
 * unfinished beginnings of the one finished reply (a sendMessage Telegram stored while the adapter
 * was killed before it could record the message's id: the Bot API has no idempotency key and no way
 * to read a chat, so the restarted adapter cannot know that message exists), and the chats with
 * anything else (a second finished reply, an unrelated message).
 */
export function telegramStrays(
  tg: TelegramEmulator,
  expect: Expectation[],
): { strays: number; chats: number; other: string[] } {
  let strays = 0;
  let chats = 0;
  const other: string[] = [];
  for (const e of expect) {
    const shown = tg.chat(Number(e.key)).botMessages.filter((m) => !m.deleted);
    if (shown.length <= 1 || typeof e.reply !== 'string') continue;
    const reply = e.reply;
    const finished = shown.filter((m) => m.text === reply).length;
    const fragments = shown.filter((m) => m.text !== reply && reply.startsWith(m.text)).length;
    if (finished === 1 && fragments === shown.length - 1) {
      strays += fragments;
      chats++;
    } else other.push(`${e.key}: ${JSON.stringify(shown.map((m) => m.text.slice(0, 80)))}`);
  }
  return { strays, chats, other };
}

export function report(o: { missing: string[]; extra: string[] }, stack?: FaultStack): string {
  return [
    `${o.missing.length} without a finished reply, ${o.extra.length} with more than one`,
    ...o.missing.slice(0, 5).map((m) => `missing ${m}`),
    ...o.extra.slice(0, 5).map((m) => `extra ${m}`),
    ...(stack && (o.missing.length || o.extra.length) ? [stack.tails()] : []),
  ].join('\n');
}
