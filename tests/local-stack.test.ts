import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { LOCAL_PORTS } from '../scripts/local-stack.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const id = randomBytes(4).toString('hex');
const offset = 400 + Math.floor(Math.random() * 50) * 10;
const port = (p: number) => p + offset;
const env = {
  ...process.env,
  PINCER_LOCAL_DIR: mkdtempSync(path.join(tmpdir(), 'pincer-stack-')),
  PINCER_LOCAL_PORT_OFFSET: String(offset),
  PINCER_LOCAL_DB: `pincer_stacktest_${id}`,
  PINCER_LOCAL_REDIS_PREFIX: `pincer-test-stack-${id}`,
  PINCER_LOCAL_SCRAPE_INTERVAL: '1s',
  LOG_LEVEL: 'warn',
};
const stack = (...args: string[]) =>
  run(process.execPath, ['--conditions=pincer-source', 'scripts/local-stack.ts', ...args], {
    cwd: root,
    env,
    timeout: 180_000,
  });

const https = `https://127.0.0.1:${port(LOCAL_PORTS.nginxHttps)}`;
const cacert = path.join(env.PINCER_LOCAL_DIR, 'certs', 'fullchain.pem');
/** curl against nginx with the stack's own certificate (status, body). */
async function curl(url: string, ...args: string[]): Promise<{ status: number; body: string }> {
  const r = await run('curl', ['-sS', '--cacert', cacert, '-o', '-', '-w', '\n%{http_code}', ...args, url]);
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

async function until<T>(fn: () => Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const json = async (url: string, init?: RequestInit) => (await fetch(url, init)).json() as Promise<any>;

describe('the local stack: one command, every service as a process behind nginx, watched by Prometheus', () => {
  let secrets: Record<string, string>;
  before(async () => {
    await stack('start', '--emulators');
    secrets = JSON.parse(readFileSync(path.join(env.PINCER_LOCAL_DIR, 'secrets.json'), 'utf8'));
  });
  after(async () => {
    await stack('stop').catch(() => {});
    await run('dropdb', [
      '-h',
      '127.0.0.1',
      '-U',
      'postgres',
      '--if-exists',
      '--force',
      env.PINCER_LOCAL_DB,
    ]).catch(() => {});
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    const keys = await redis.keys(`${env.PINCER_LOCAL_REDIS_PREFIX}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  it('status reports every service healthy', async () => {
    const r = await stack('status');
    for (const name of ['llm-proxy', 'core', 'telegram-adapter', 'feishu-bot'])
      assert.match(r.stdout, new RegExp(`${name}.*200`));
  });

  it('a Telegram message reaches the bot through nginx (webhook over TLS) and is answered', async () => {
    const tg = `http://127.0.0.1:${port(LOCAL_PORTS.telegramEmulator)}`;
    const uid = 6_000_000 + Math.floor(Math.random() * 100_000);
    await fetch(`${tg}/_emulator/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        chat: { id: uid, type: 'private' },
        from: { id: uid, first_name: 'L' },
        text: 'hi from the local stack',
      }),
    });
    const reply = await until(async () => {
      const chat = await json(`${tg}/_emulator/chats/${uid}`);
      return chat.botMessages.find((m: any) => m.text.includes('hi from the local stack'));
    }, 'the Telegram answer');
    assert.ok(reply);
    const access = readFileSync(path.join(env.PINCER_LOCAL_DIR, 'nginx', 'access.log'), 'utf8');
    assert.match(access, /"POST \/webhook\/telegram HTTP\/[\d.]+" 200/);
  });

  it('a Feishu message over the long connection is answered in a card', async () => {
    const fs = `http://127.0.0.1:${port(LOCAL_PORTS.feishuEmulator)}`;
    const sent = await json(`${fs}/_emulator/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        chat: { type: 'p2p' },
        sender: { open_id: `ou_${randomBytes(16).toString('hex')}` },
        text: 'ni hao local stack',
      }),
    });
    const reply = await until(async () => {
      const chat = await json(`${fs}/_emulator/chats/${sent.chat_id}`);
      return chat.botMessages.find((m: any) => m.text.includes('ni hao local stack'));
    }, 'the Feishu answer');
    assert.ok(reply);
  });

  it('nginx: /v1 streams from llm-proxy, /api reaches core, /metrics is never exposed, HTTP redirects', async () => {
    const completion = await curl(
      `${https}/v1/chat/completions`,
      '-H',
      `authorization: Bearer ${secrets.LLM_PROXY_API_KEY}`,
      '-H',
      'content-type: application/json',
      '-d',
      JSON.stringify({
        model: 'qwen2.5',
        stream: true,
        messages: [{ role: 'user', content: 'stream please' }],
      }),
    );
    assert.equal(completion.status, 200, completion.body);
    assert.match(completion.body, /^data: /m);
    assert.match(completion.body, /data: \[DONE\]/);
    const health = await curl(`${https}/healthz`);
    assert.equal(health.status, 200);
    const api = await curl(
      `${https}/api/v1/keys`,
      '-H',
      `authorization: Bearer ${secrets.PINCER_ADMIN_TOKEN}`,
    );
    assert.equal(api.status, 200, api.body);
    for (const p of ['/metrics', '/api/metrics', '/v1/metrics'])
      assert.equal((await curl(`${https}${p}`)).status, 404, p);
    const plain = await curl(`http://127.0.0.1:${port(LOCAL_PORTS.nginxHttp)}/api/v1/keys`);
    assert.equal(plain.status, 301);
    // nginx's request id reaches core (logs correlate), and core answers with it
    const traced = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-D',
      '-',
      '--cacert',
      cacert,
      '-H',
      `authorization: Bearer ${secrets.PINCER_ADMIN_TOKEN}`,
      `${https}/api/v1/keys`,
    ]);
    assert.match(traced.stdout, /x-request-id: [0-9a-f]{32}\r?$/im);
    const headers = await run('curl', ['-sSI', '--cacert', cacert, `${https}/healthz`]);
    assert.match(headers.stdout, /strict-transport-security/i);
    assert.match(headers.stdout, /x-content-type-options: nosniff/i);
  });

  it('Prometheus scrapes every service, and every dashboard panel returns data', async () => {
    const prom = `http://127.0.0.1:${port(LOCAL_PORTS.prometheus)}`;
    // a backup, so the backup job's metrics exist too
    await run('bash', [path.join(root, 'scripts/backup.sh')], {
      env: {
        ...process.env,
        DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${env.PINCER_LOCAL_DB}`,
        BACKUP_DIR: path.join(env.PINCER_LOCAL_DIR, 'backups'),
        PINCER_CONFIG_DIR: path.join(env.PINCER_LOCAL_DIR, 'config'),
      },
    });
    const jobs = ['llm-proxy', 'core', 'telegram-adapter', 'feishu-bot', 'backup'];
    await until(async () => {
      const t = await json(`${prom}/api/v1/targets`);
      const up = new Set(
        t.data.activeTargets.filter((x: any) => x.health === 'up').map((x: any) => x.labels.job),
      );
      return jobs.every((j) => up.has(j)) ? true : undefined;
    }, 'every target up');

    // load: chats on both platforms and direct API calls, so every series has samples
    const tg = `http://127.0.0.1:${port(LOCAL_PORTS.telegramEmulator)}`;
    for (let i = 0; i < 5; i++) {
      const uid = 6_100_000 + i;
      await fetch(`${tg}/_emulator/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          chat: { id: uid, type: 'private' },
          from: { id: uid, first_name: 'Load' },
          text: `load ${i}`,
        }),
      });
      await curl(
        `${https}/v1/chat/completions`,
        '-H',
        `authorization: Bearer ${secrets.LLM_PROXY_API_KEY}`,
        '-H',
        'content-type: application/json',
        '-d',
        JSON.stringify({ model: 'qwen2.5', messages: [{ role: 'user', content: `load ${i}` }] }),
      );
    }
    // and the events the dashboards count, made by the mock model (its control API) and clients
    const mock = `http://127.0.0.1:${port(LOCAL_PORTS.mock)}`;
    const script = (rule: unknown) =>
      fetch(`${mock}/_mock/script`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(rule),
      });
    await script({
      match: { contains: 'slow stream' },
      reply: { tokenRate: 40, content: 'one two three four five six seven eight nine ten' },
    });
    await script({ match: { contains: 'flaky' }, times: 1, reply: { status: 500 } });
    await script({ match: { contains: 'broken' }, reply: { status: 500 } });
    await script({ match: { contains: 'abandoned' }, reply: { firstTokenDelayMs: 3000 } });
    const v1 = (content: string, opts: { model?: string; stream?: boolean; maxTime?: string } = {}) =>
      curl(
        `${https}/v1/chat/completions`,
        ...(opts.maxTime ? ['--max-time', opts.maxTime] : []),
        '-H',
        `authorization: Bearer ${secrets.LLM_PROXY_API_KEY}`,
        '-H',
        'content-type: application/json',
        '-d',
        JSON.stringify({
          model: opts.model ?? 'qwen2.5',
          stream: opts.stream ?? false,
          messages: [{ role: 'user', content }],
        }),
      ).catch(() => ({ status: 0, body: '' }));
    // more slow streams than the Ollama node's slots: token timing and queue waits
    await Promise.all(Array.from({ length: 5 }, (_, i) => v1(`slow stream ${i}`, { stream: true })));
    assert.equal((await v1('flaky once')).status, 200, 'a retry hides one upstream failure');
    assert.ok((await v1('broken always')).status >= 500);
    assert.equal(
      (await v1('big model please', { model: 'kimi-k2' })).status,
      200,
      'kimi-k2 falls back to qwen2.5',
    );
    await v1('abandoned by the client', { stream: true, maxTime: '0.5' });

    const exprs: Array<{ board: string; title: string; expr: string }> = [];
    for (const f of readdirSync(path.join(root, 'grafana/dashboards'))) {
      const board = JSON.parse(readFileSync(path.join(root, 'grafana/dashboards', f), 'utf8'));
      const panels = (board.panels ?? []).flatMap((p: any) => [p, ...(p.panels ?? [])]);
      for (const p of panels)
        for (const t of p.targets ?? []) if (t.expr) exprs.push({ board: f, title: p.title, expr: t.expr });
    }
    assert.ok(exprs.length >= 10, `${exprs.length} panel queries`);
    const grafanaVars = (e: string) =>
      e.replace(/\$__rate_interval|\$__interval|\$__range/g, '1m').replace(/\$\{?(\w+)\}?/g, '.*');
    const missing = async () => {
      const out: string[] = [];
      for (const { board, title, expr } of exprs) {
        const r = await json(`${prom}/api/v1/query?query=${encodeURIComponent(grafanaVars(expr))}`);
        assert.equal(r.status, 'success', `${board} "${title}": ${r.error ?? ''}`);
        if (r.data.result.length === 0) out.push(`${board} "${title}": ${expr}`);
      }
      return out;
    };
    // rates need two scrapes after the load: poll until every panel has data, or say which have none
    const empty = await until(
      async () => ((await missing()).length === 0 ? [] : undefined),
      'data for every panel',
      40_000,
    ).catch(() => missing());
    assert.deepEqual(empty, [], `panels without data:\n${empty.join('\n')}`);
    // the rules load and evaluate
    const rules = await json(`${prom}/api/v1/rules`);
    const groups = rules.data.groups;
    assert.ok(groups.length > 0);
    for (const g of groups)
      for (const r of g.rules) assert.notEqual(r.health, 'err', `${r.name}: ${r.lastError}`);
  });
});
