/**
 * The whole stack as plain processes, for a machine without Docker: every service from its built
 * dist/ (as the images run it), nginx and Prometheus from Debian's packages, against local Postgres
 * and Redis, the mock model, and — with --emulators — the Telegram and Feishu emulators.
 *
 *   scripts/stack.sh start [--emulators] | stop | status | env
 *
 * State (logs, pids, generated config, secrets) lives in PINCER_LOCAL_DIR (default .local/).
 * PINCER_LOCAL_PORT_OFFSET shifts every port (tests run a second stack beside yours).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseDocument } from 'yaml';

export const root = path.resolve(import.meta.dirname, '..');

/** What the local stack runs, in start order. Compose runs the same services (tests check they agree). */
export interface LocalService {
  name: string;
  /** The port the service listens on (its compose port; shifted by the offset). */
  port: number;
  /** Entry point, relative to the repository. */
  entry: string;
  health: string;
  /** Only with --emulators, or only without. */
  when?: 'emulators';
  /** Environment given to the process: the same variable names compose passes to the container. */
  env: (s: StackSettings) => Record<string, string>;
}

export interface StackSettings {
  dir: string;
  offset: number;
  port: (base: number) => number;
  secrets: Record<string, string>;
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  configDir: string;
  emulators: boolean;
}

/** Ports of what compose gets from images (nginx, Prometheus, emulators, the mock model). */
export const LOCAL_PORTS = {
  mock: 11434,
  nginxHttp: 18080,
  nginxHttps: 18443,
  prometheus: 19090,
  telegramEmulator: 18091,
  feishuEmulator: 18092,
  backupMetrics: 9108,
};

const common = (s: StackSettings, port: number) => ({
  PORT: String(s.port(port)),
  // processes on a shared host listen on loopback only: nginx is the way in
  HOST: '127.0.0.1',
  REDIS_URL: s.redisUrl,
  PINCER_CONFIG_DIR: s.configDir,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
  LOG_FORMAT: 'json',
});

export const SERVICES: LocalService[] = [
  {
    name: 'llm-proxy',
    port: 8000,
    entry: 'services/llm-proxy/dist/main.js',
    health: '/healthz',
    env: (s) => ({
      ...common(s, 8000),
      LLM_PROXY_API_KEY: s.secrets.LLM_PROXY_API_KEY!,
      OLLAMA_URL: `http://127.0.0.1:${s.port(LOCAL_PORTS.mock)}`,
      OLLAMA_MODEL: 'qwen2.5:1.5b',
      OLLAMA_EMBED_MODEL: 'nomic-embed-text',
      OLLAMA_NUM_PARALLEL: '4',
      KT_URL: process.env.KT_URL ?? 'http://127.0.0.1:30000/v1',
      KT_MODEL: process.env.KT_MODEL ?? 'Kimi-K2-Instruct',
      KT_API_KEY: process.env.KT_API_KEY ?? 'EMPTY',
    }),
  },
  {
    name: 'core',
    port: 8080,
    entry: 'services/core/dist/main.js',
    health: '/healthz',
    env: (s) => ({
      ...common(s, 8080),
      DATABASE_URL: s.databaseUrl,
      LLM_PROXY_URL: `http://127.0.0.1:${s.port(8000)}/v1`,
      LLM_PROXY_API_KEY: s.secrets.LLM_PROXY_API_KEY!,
      PINCER_ADMIN_TOKEN: s.secrets.PINCER_ADMIN_TOKEN!,
      // `pincer backup` from core's environment writes where the local backup job does
      BACKUP_DIR: path.join(s.dir, 'backups'),
      BACKUP_KEEP_DAYS: process.env.BACKUP_KEEP_DAYS ?? '7',
    }),
  },
  {
    name: 'telegram-adapter',
    port: 8081,
    entry: 'services/telegram-adapter/dist/main.js',
    health: '/healthz',
    env: (s) => ({
      ...common(s, 8081),
      TELEGRAM_BOT_TOKEN: s.emulators
        ? s.secrets.TELEGRAM_BOT_TOKEN!
        : (process.env.TELEGRAM_BOT_TOKEN ?? ''),
      TELEGRAM_API_ROOT: s.emulators
        ? `http://127.0.0.1:${s.port(LOCAL_PORTS.telegramEmulator)}`
        : (process.env.TELEGRAM_API_ROOT ?? 'https://api.telegram.org'),
      TELEGRAM_MODE: s.emulators ? 'webhook' : (process.env.TELEGRAM_MODE ?? 'polling'),
      TELEGRAM_WEBHOOK_URL: s.emulators
        ? `https://127.0.0.1:${s.port(LOCAL_PORTS.nginxHttps)}/webhook/telegram`
        : (process.env.TELEGRAM_WEBHOOK_URL ?? ''),
      TELEGRAM_WEBHOOK_SECRET: s.secrets.TELEGRAM_WEBHOOK_SECRET!,
    }),
  },
  {
    name: 'feishu-bot',
    port: 8082,
    entry: 'services/feishu-bot/dist/main.js',
    health: '/healthz',
    env: (s) => ({
      ...common(s, 8082),
      FEISHU_APP_ID: s.emulators ? s.secrets.FEISHU_APP_ID! : (process.env.FEISHU_APP_ID ?? ''),
      FEISHU_APP_SECRET: s.emulators ? s.secrets.FEISHU_APP_SECRET! : (process.env.FEISHU_APP_SECRET ?? ''),
      FEISHU_VERIFICATION_TOKEN: s.secrets.FEISHU_VERIFICATION_TOKEN!,
      FEISHU_ENCRYPT_KEY: s.secrets.FEISHU_ENCRYPT_KEY!,
      FEISHU_DOMAIN: s.emulators
        ? `http://127.0.0.1:${s.port(LOCAL_PORTS.feishuEmulator)}`
        : (process.env.FEISHU_DOMAIN ?? 'https://open.feishu.cn'),
      FEISHU_MODE: process.env.FEISHU_MODE ?? 'ws',
    }),
  },
];

/** Processes the stack runs besides the services: the mock model, the emulators, the backup metrics file server. */
function helpers(s: StackSettings): Array<{ name: string; args: string[]; health?: string; port?: number }> {
  const h = [
    {
      name: 'mock-model',
      args: [
        'packages/mock-inference/dist/main.js',
        '--flavor',
        'ollama',
        '--port',
        String(s.port(LOCAL_PORTS.mock)),
      ],
      health: '/api/version',
      port: s.port(LOCAL_PORTS.mock),
    },
    {
      name: 'backup-metrics',
      args: [
        'scripts/serve-file.ts',
        path.join(s.dir, 'backups', 'metrics'),
        String(s.port(LOCAL_PORTS.backupMetrics)),
      ],
    },
  ];
  if (s.emulators) {
    const args = emulatorArgs(s);
    h.push(
      {
        name: 'telegram-emulator',
        args: args.telegram,
        health: '/_emulator/state',
        port: s.port(LOCAL_PORTS.telegramEmulator),
      },
      {
        name: 'feishu-emulator',
        args: args.feishu,
        health: '/_emulator/state',
        port: s.port(LOCAL_PORTS.feishuEmulator),
      },
    );
  }
  return h;
}

/** The emulators' command lines: their ports and the secrets the adapters are given. */
export function emulatorArgs(s: StackSettings): { telegram: string[]; feishu: string[] } {
  return {
    telegram: [
      'packages/telegram-emulator/dist/main.js',
      '--port',
      String(s.port(LOCAL_PORTS.telegramEmulator)),
      '--token',
      s.secrets.TELEGRAM_BOT_TOKEN!,
      '--no-privacy',
    ],
    feishu: [
      'packages/feishu-emulator/dist/main.js',
      '--port',
      String(s.port(LOCAL_PORTS.feishuEmulator)),
      '--app-id',
      s.secrets.FEISHU_APP_ID!,
      '--app-secret',
      s.secrets.FEISHU_APP_SECRET!,
      '--verification-token',
      s.secrets.FEISHU_VERIFICATION_TOKEN!,
      '--encrypt-key',
      s.secrets.FEISHU_ENCRYPT_KEY!,
    ],
  };
}

function settings(emulators: boolean): StackSettings {
  const dir = path.resolve(process.env.PINCER_LOCAL_DIR ?? path.join(root, '.local'));
  const offset = Number(process.env.PINCER_LOCAL_PORT_OFFSET ?? 0);
  mkdirSync(dir, { recursive: true });
  const secretsFile = path.join(dir, 'secrets.json');
  let secrets: Record<string, string> = existsSync(secretsFile)
    ? (JSON.parse(readFileSync(secretsFile, 'utf8')) as Record<string, string>)
    : {};
  const want: Record<string, () => string> = {
    LLM_PROXY_API_KEY: () => randomBytes(24).toString('hex'),
    PINCER_ADMIN_TOKEN: () => randomBytes(32).toString('hex'),
    TELEGRAM_BOT_TOKEN: () =>
      `${100000 + Math.floor(Math.random() * 899999)}:${randomBytes(18).toString('base64url')}`,
    TELEGRAM_WEBHOOK_SECRET: () => randomBytes(24).toString('hex'),
    FEISHU_APP_ID: () => `cli_${randomBytes(8).toString('hex')}`,
    FEISHU_APP_SECRET: () => randomBytes(16).toString('hex'),
    FEISHU_VERIFICATION_TOKEN: () => randomBytes(12).toString('hex'),
    FEISHU_ENCRYPT_KEY: () => randomBytes(12).toString('hex'),
  };
  let changed = false;
  for (const [k, make] of Object.entries(want))
    if (!secrets[k]) {
      secrets = { ...secrets, [k]: make() };
      changed = true;
    }
  if (changed) writeFileSync(secretsFile, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  const db = process.env.PINCER_LOCAL_DB ?? 'pincer_local';
  return {
    dir,
    offset,
    port: (base) => base + offset,
    secrets,
    databaseUrl: `postgres://postgres@127.0.0.1:5432/${db}`,
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    redisPrefix: process.env.PINCER_LOCAL_REDIS_PREFIX ?? 'pincer-local',
    configDir: path.join(dir, 'config'),
    emulators,
  };
}

/** nginx's config from the same template compose uses, with the local addresses filled in. */
export function renderNginx(s: StackSettings): string {
  const vars: Record<string, string> = {
    PINCER_CORE_ADDR: `127.0.0.1:${s.port(8080)}`,
    PINCER_LLM_PROXY_ADDR: `127.0.0.1:${s.port(8000)}`,
    PINCER_TELEGRAM_ADDR: `127.0.0.1:${s.port(8081)}`,
    PINCER_FEISHU_ADDR: `127.0.0.1:${s.port(8082)}`,
    PINCER_HTTP_PORT: `127.0.0.1:${s.port(LOCAL_PORTS.nginxHttp)}`,
    PINCER_HTTPS_PORT: `127.0.0.1:${s.port(LOCAL_PORTS.nginxHttps)}`,
    PINCER_TLS_CERT: path.join(s.dir, 'certs', 'fullchain.pem'),
    PINCER_TLS_KEY: path.join(s.dir, 'certs', 'privkey.pem'),
    PINCER_WEBHOOK_RATE: '50r/s',
    PINCER_V1_RATE: '50r/s',
  };
  const server = fill(readFileSync(path.join(root, 'nginx/templates/pincer.conf.template'), 'utf8'), vars);
  const n = path.join(s.dir, 'nginx');
  // the main config the nginx image has, with every path inside the state folder
  return [
    'worker_processes 1;',
    `pid ${n}/nginx.pid;`,
    `error_log ${n}/error.log warn;`,
    'events { worker_connections 1024; }',
    'http {',
    `  access_log ${n}/access.log;`,
    `  client_body_temp_path ${n}/tmp/body;`,
    `  proxy_temp_path ${n}/tmp/proxy;`,
    `  fastcgi_temp_path ${n}/tmp/fastcgi;`,
    `  uwsgi_temp_path ${n}/tmp/uwsgi;`,
    `  scgi_temp_path ${n}/tmp/scgi;`,
    '  default_type application/octet-stream;',
    '  sendfile on;',
    server,
    '}',
    '',
  ].join('\n');
}

/** `${NAME}` → value for the listed names only (nginx's own `$vars` stay), like the nginx image's envsubst. */
export function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\$\{([A-Z0-9_]+)\}/g, (m, k: string) => vars[k] ?? m);
}

function writeConfig(s: StackSettings): void {
  mkdirSync(s.configDir, { recursive: true });
  for (const f of ['models.yml', 'routing.yaml'])
    copyFileSync(path.join(root, 'config', f), path.join(s.configDir, f));
  // the operator's config.yaml with this stack's Redis prefix (it never touches another stack's keys)
  const doc = parseDocument(readFileSync(path.join(root, 'config', 'config.yaml'), 'utf8'));
  doc.setIn(['system', 'redis_prefix'], s.redisPrefix);
  if (s.emulators) {
    // with emulated platforms everyone may talk to the bot
    doc.setIn(['access', 'telegram', 'direct'], 'open');
    doc.setIn(['access', 'feishu', 'direct'], 'open');
  }
  writeFileSync(path.join(s.configDir, 'config.yaml'), doc.toString());
}

const pidFile = (s: StackSettings, name: string) => path.join(s.dir, 'pids', `${name}.pid`);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The pid of a process this stack started, if it still runs. The pid file also records the process's
 * command line: after a reboot the pid may belong to something else, which must never be signalled.
 */
function running(s: StackSettings, name: string): number | undefined {
  const f = pidFile(s, name);
  if (!existsSync(f)) return undefined;
  const [pidLine, ...cmd] = readFileSync(f, 'utf8').split('\n');
  const pid = Number(pidLine);
  if (!pid || !alive(pid)) return undefined;
  try {
    const actual = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    // nginx retitles itself ("nginx: master process <its command>"): contained, not equal
    return actual.includes(cmd.join('\n').trim()) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function launch(
  s: StackSettings,
  name: string,
  cmd: string,
  args: string[],
  env: Record<string, string>,
): ChildProcess {
  mkdirSync(path.join(s.dir, 'logs'), { recursive: true });
  mkdirSync(path.join(s.dir, 'pids'), { recursive: true });
  const out = openSync(path.join(s.dir, 'logs', `${name}.log`), 'a');
  const child = spawn(cmd, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', out, out],
    detached: true,
  });
  closeSync(out);
  writeFileSync(pidFile(s, name), `${child.pid}\n${[cmd, ...args].join(' ')}\n`);
  child.unref();
  return child;
}

async function waitHealthy(url: string, name: string, s: StackSettings, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const r = await fetch(url).catch(() => undefined);
    if (r?.ok) return;
    if (!running(s, name)) break;
    await sleep(100);
  }
  throw new Error(`${name} did not become healthy at ${url}; see ${path.join(s.dir, 'logs', `${name}.log`)}`);
}

const node = (args: string[]) =>
  [process.execPath, ['--max-semi-space-size=8', '--enable-source-maps', ...args]] as const;

async function start(emulators: boolean): Promise<void> {
  const s = settings(emulators);
  for (const bin of ['nginx', 'prometheus', 'openssl'])
    if (!which(bin))
      throw new Error(`${bin} is not installed (scripts/stack.sh installs it from Debian's packages)`);
  writeConfig(s);
  writeFileSync(
    path.join(s.dir, 'settings.json'),
    `${JSON.stringify({ emulators, offset: s.offset }, null, 2)}\n`,
  );

  // the database and its schema, as compose's one-shot `migrate` does
  execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-tAc', 'SELECT 1'], { stdio: 'ignore' });
  const db = new URL(s.databaseUrl).pathname.slice(1);
  const exists = execFileSync('psql', [
    '-h',
    '127.0.0.1',
    '-U',
    'postgres',
    '-tAc',
    `SELECT 1 FROM pg_database WHERE datname='${db}'`,
  ])
    .toString()
    .trim();
  if (!exists) execFileSync('createdb', ['-h', '127.0.0.1', '-U', 'postgres', db]);
  execFileSync(process.execPath, ['services/core/dist/cli/migrate.js'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: s.databaseUrl },
    stdio: 'inherit',
  });

  // a self-signed certificate on first run; the emulators trust it, as Telegram trusts an uploaded one
  const certs = path.join(s.dir, 'certs');
  execFileSync('bash', [path.join(root, 'scripts/make-cert.sh'), certs, 'localhost'], { stdio: 'ignore' });
  for (const h of helpers(s)) {
    if (running(s, h.name)) continue;
    const [cmd, args] =
      h.name === 'backup-metrics'
        ? [process.execPath, ['--conditions=pincer-source', ...h.args]]
        : node(h.args);
    launch(s, h.name, cmd, [...args], { NODE_EXTRA_CA_CERTS: path.join(certs, 'fullchain.pem') });
    if (h.health) await waitHealthy(`http://127.0.0.1:${h.port}${h.health}`, h.name, s);
  }
  for (const svc of SERVICES) {
    if (running(s, svc.name)) continue;
    const [cmd, args] = node([svc.entry]);
    launch(s, svc.name, cmd, [...args], svc.env(s));
    await waitHealthy(`http://127.0.0.1:${s.port(svc.port)}${svc.health}`, svc.name, s);
  }

  // nginx in front
  const n = path.join(s.dir, 'nginx');
  for (const t of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    mkdirSync(path.join(n, 'tmp', t), { recursive: true });
  writeFileSync(path.join(n, 'nginx.conf'), renderNginx(s));
  execFileSync(nginxBin(), ['-t', '-q', '-p', n, '-c', path.join(n, 'nginx.conf')], { stdio: 'inherit' });
  if (!running(s, 'nginx')) {
    launch(s, 'nginx', nginxBin(), ['-p', n, '-c', path.join(n, 'nginx.conf'), '-g', 'daemon off;'], {});
    // the plain port answers every request with a redirect: any answer means nginx is up
    const end = Date.now() + 10_000;
    while (
      !(await fetch(`http://127.0.0.1:${s.port(LOCAL_PORTS.nginxHttp)}/`, { redirect: 'manual' }).catch(
        () => undefined,
      ))
    ) {
      if (Date.now() > end || !running(s, 'nginx'))
        throw new Error(`nginx did not start; see ${n}/error.log`);
      await sleep(100);
    }
  }

  // Prometheus scraping every service, with the alert rules
  const p = path.join(s.dir, 'prometheus');
  mkdirSync(path.join(p, 'data'), { recursive: true });
  const tmpl = path.join(root, 'prometheus/prometheus.local.yml.tmpl');
  if (existsSync(tmpl)) {
    // PINCER_LOCAL_SCRAPE_INTERVAL (e.g. 2s) for tests that want data quickly
    const interval = process.env.PINCER_LOCAL_SCRAPE_INTERVAL;
    let config = readFileSync(tmpl, 'utf8');
    if (interval) config = config.replace(/^(\s+(?:scrape|evaluation)_interval:).*$/gm, `$1 ${interval}`);
    writeFileSync(
      path.join(p, 'prometheus.yml'),
      fill(config, {
        PROMETHEUS_PORT: String(s.port(LOCAL_PORTS.prometheus)),
        LLM_PROXY_PORT: String(s.port(8000)),
        CORE_PORT: String(s.port(8080)),
        TELEGRAM_PORT: String(s.port(8081)),
        FEISHU_PORT: String(s.port(8082)),
        BACKUP_METRICS_PORT: String(s.port(LOCAL_PORTS.backupMetrics)),
        RULES_DIR: path.join(root, 'prometheus/rules'),
      }),
    );
    if (!running(s, 'prometheus')) {
      launch(
        s,
        'prometheus',
        which('prometheus')!,
        [
          `--config.file=${path.join(p, 'prometheus.yml')}`,
          `--storage.tsdb.path=${path.join(p, 'data')}`,
          `--web.listen-address=127.0.0.1:${s.port(LOCAL_PORTS.prometheus)}`,
          '--storage.tsdb.retention.time=2d',
        ],
        {},
      );
      await waitHealthy(`http://127.0.0.1:${s.port(LOCAL_PORTS.prometheus)}/-/ready`, 'prometheus', s);
    }
  }
  await status();
}

function nginxBin(): string {
  return which('nginx') ?? '/usr/sbin/nginx';
}

function which(bin: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin'])) {
    const f = path.join(d, bin);
    if (existsSync(f)) return f;
  }
  return undefined;
}

async function stop(): Promise<void> {
  const s = settings(false);
  const names = [
    'prometheus',
    'nginx',
    ...[...SERVICES].reverse().map((x) => x.name),
    'backup-metrics',
    'feishu-emulator',
    'telegram-emulator',
    'mock-model',
  ];
  for (const name of names) {
    const pid = running(s, name);
    if (!pid) continue;
    process.kill(pid, 'SIGTERM');
    const end = Date.now() + 30_000;
    while (alive(pid) && Date.now() < end) await sleep(100);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(pidFile(s, name), { force: true });
    process.stdout.write(`stopped ${name}\n`);
  }
}

async function status(): Promise<boolean> {
  const saved = path.join(
    path.resolve(process.env.PINCER_LOCAL_DIR ?? path.join(root, '.local')),
    'settings.json',
  );
  const emulators =
    existsSync(saved) && (JSON.parse(readFileSync(saved, 'utf8')) as { emulators: boolean }).emulators;
  const s = settings(emulators);
  let ok = true;
  const rows: string[] = [];
  for (const svc of SERVICES) {
    const pid = running(s, svc.name);
    const h = pid
      ? await fetch(`http://127.0.0.1:${s.port(svc.port)}${svc.health}`)
          .then(async (r) => `${r.status} ${((await r.json()) as { status?: string }).status ?? ''}`)
          .catch(() => 'unreachable')
      : 'stopped';
    if (!pid || !h.startsWith('200')) ok = false;
    rows.push(`${svc.name.padEnd(18)} ${String(pid ?? '-').padEnd(8)} :${s.port(svc.port)}  ${h}`);
  }
  for (const name of [
    'nginx',
    'prometheus',
    'mock-model',
    'backup-metrics',
    'telegram-emulator',
    'feishu-emulator',
  ]) {
    const pid = running(s, name);
    if (pid || !name.endsWith('emulator'))
      rows.push(`${name.padEnd(18)} ${String(pid ?? '-').padEnd(8)} ${pid ? 'running' : 'stopped'}`);
  }
  process.stdout.write(
    `${rows.join('\n')}\n\nnginx: https://127.0.0.1:${s.port(LOCAL_PORTS.nginxHttps)}  Prometheus: http://127.0.0.1:${s.port(LOCAL_PORTS.prometheus)}  state: ${s.dir}\n`,
  );
  return ok;
}

/** `scripts/stack.sh env`: the addresses and secrets of the running stack, as shell assignments. */
function env(): void {
  const s = settings(false);
  const lines = {
    PINCER_URL: `https://127.0.0.1:${s.port(LOCAL_PORTS.nginxHttps)}`,
    PROMETHEUS_URL: `http://127.0.0.1:${s.port(LOCAL_PORTS.prometheus)}`,
    TELEGRAM_EMULATOR_URL: `http://127.0.0.1:${s.port(LOCAL_PORTS.telegramEmulator)}`,
    FEISHU_EMULATOR_URL: `http://127.0.0.1:${s.port(LOCAL_PORTS.feishuEmulator)}`,
    ...s.secrets,
  };
  for (const [k, v] of Object.entries(lines)) process.stdout.write(`${k}=${v}\n`);
}

if (import.meta.main) {
  const [cmd, ...rest] = process.argv.slice(2);
  try {
    if (cmd === 'start') await start(rest.includes('--emulators'));
    else if (cmd === 'stop') await stop();
    else if (cmd === 'status') process.exitCode = (await status()) ? 0 : 1;
    else if (cmd === 'env') env();
    else {
      process.stderr.write('usage: scripts/stack.sh start [--emulators] | stop | status | env\n');
      process.exitCode = 2;
    }
  } catch (err) {
    process.stderr.write(`local stack: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
