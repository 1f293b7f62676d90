import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startMockServer } from '@pincer/mock-inference';
import { parse, stringify } from 'yaml';
import { eventually, post } from './harness.ts';

const root = path.resolve(import.meta.dirname, '../../..');
const read = (f: string) => readFileSync(path.join(root, f), 'utf8');
const compose = parse(read('docker-compose.yml'));
const dockerfile = read('services/llm-proxy/Dockerfile');
const envExample = new Set(
  [...read('config/.env.example').matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!),
);

describe('packaging: compose, Dockerfile and the start contract agree', () => {
  it('the compose file is valid (docker-compose config)', async () => {
    const r = await promisify(execFile)('docker-compose', ['config', '-q'], {
      cwd: root,
      env: { ...process.env, LLM_PROXY_API_KEY: 'x'.repeat(32) },
    }).catch((e) => e);
    assert.equal(r.code ?? 0, 0, r.stderr);
  });

  it('llm-proxy in compose: built from its Dockerfile, port 8000, healthchecked, config mounted, Redis healthy first', () => {
    const svc = compose.services['llm-proxy'];
    assert.equal(svc.build.dockerfile, 'services/llm-proxy/Dockerfile');
    assert.ok(existsSync(path.join(root, svc.build.dockerfile)));
    assert.equal(svc.environment.PORT, 8000);
    assert.deepEqual(svc.expose, ['8000']);
    assert.equal(svc.ports, undefined, 'reached through nginx, not published');
    assert.match(svc.healthcheck.test.join(' '), /127\.0\.0\.1:8000\/healthz/);
    assert.ok(svc.volumes.includes('./config:/app/config:ro'));
    assert.equal(svc.environment.PINCER_CONFIG_DIR, '/app/config');
    assert.equal(svc.depends_on.redis.condition, 'service_healthy');
    assert.equal(svc.restart, 'unless-stopped');
    for (const s of ['redis', 'ollama'])
      assert.equal(compose.services[s].ports, undefined, `${s} must not publish ports`);
    assert.match(compose.services.redis.command.join(' '), /--appendonly yes/);
  });

  it('every variable compose passes to llm-proxy is documented in config/.env.example', () => {
    const env = compose.services['llm-proxy'].environment;
    for (const [name, value] of Object.entries(env)) {
      const fromEnv = /\$\{([A-Z0-9_]+)/.exec(String(value))?.[1];
      if (fromEnv) assert.ok(envExample.has(fromEnv), `${fromEnv} missing from .env.example`);
      if (!['PORT', 'PINCER_CONFIG_DIR'].includes(name))
        assert.ok(envExample.has(name), `${name} missing from .env.example`);
    }
    const configTs = read('services/llm-proxy/src/config.ts');
    const schemaVars = [
      ...configTs.slice(configTs.indexOf('const EnvSchema')).matchAll(/^\s{2}([A-Z][A-Z0-9_]+):/gm),
    ].map((m) => m[1]!);
    assert.ok(schemaVars.length >= 5);
    for (const v of schemaVars)
      assert.ok(envExample.has(v) || v === 'PORT', `${v} (read by llm-proxy) missing from .env.example`);
  });

  it('the Dockerfile: Node 24, multi-stage, non-root, healthcheck, runs the built entry point', () => {
    assert.match(dockerfile, /ARG NODE_IMAGE=node:24-/);
    assert.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 3, 'multi-stage');
    assert.match(dockerfile, /^USER node$/m);
    assert.match(dockerfile, /^HEALTHCHECK .*\n.*\/healthz/m);
    assert.match(dockerfile, /npm ci --omit=dev/);
    const cmd = /^CMD \[(.*)\]$/m.exec(dockerfile)![1]!;
    assert.match(cmd, /"services\/llm-proxy\/dist\/main\.js"/);
    // the test-model command in the image runs a file the build produces
    const wrapped = /exec node \/app\/(services\/llm-proxy\/dist\/cli\/test-model\.js)/.exec(dockerfile)?.[1];
    assert.ok(wrapped && existsSync(path.join(root, wrapped)), 'test-model wrapper points at a built file');
    // the image and `npm start` run with the same V8 settings
    const pkg = JSON.parse(read('services/llm-proxy/package.json'));
    for (const flag of cmd.match(/"--[^"]+"/g)!.map((f) => f.slice(1, -1)))
      assert.ok(pkg.scripts.start.includes(flag), `npm start lacks ${flag}`);
  });

  it('the built dist/ runs as the image runs it (no source condition) and stops cleanly on SIGTERM', async () => {
    const entry = path.join(root, 'services/llm-proxy/dist/main.js');
    assert.ok(existsSync(entry), 'run `npm run build` first (scripts/test.sh does)');
    const mock = await startMockServer({ flavor: 'ollama' });
    const dir = mkdtempSync(path.join(tmpdir(), 'pincer-dist-'));
    writeFileSync(
      path.join(dir, 'models.yml'),
      stringify({
        providers: { o: { type: 'ollama', nodes: [{ url: mock.url }] } },
        models: { q: { provider: 'o', model_id: 'q' } },
        routing: { default_model: 'q' },
      }),
    );
    const port = 20000 + Math.floor(Math.random() * 20000);
    const key = 'dist-test-key-0123456789';
    const child = spawn(process.execPath, ['--enable-source-maps', entry], {
      cwd: root,
      env: {
        PATH: process.env.PATH,
        PORT: String(port),
        PINCER_CONFIG_DIR: dir,
        LLM_PROXY_API_KEY: key,
        NODE_ENV: 'production',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok,
        10000,
        `dist server up (${output})`,
      );
      const r = await post(`http://127.0.0.1:${port}/v1/chat/completions`, key, {
        messages: [{ role: 'user', content: 'from dist' }],
      });
      assert.equal(r.status, 200);
      assert.match(r.json.choices[0].message.content, /from dist/);
      const line = JSON.parse(output.split('\n').find((l) => l.includes('llm-proxy listening'))!);
      assert.equal(line.service, 'llm-proxy');
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
      await mock.close();
    }
  });

  it('refuses to start on an invalid config with every problem listed and exit 1', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pincer-bad-'));
    writeFileSync(
      path.join(dir, 'models.yml'),
      'providers: {}\nmodels:\n  a: { provider: nope, model_id: x, temprature: 1 }\n',
    );
    const r = await promisify(execFile)(
      process.execPath,
      [path.join(root, 'services/llm-proxy/dist/main.js')],
      { env: { PATH: process.env.PATH, PINCER_CONFIG_DIR: dir, LLM_PROXY_API_KEY: 'short' } },
    ).catch((e) => e);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid configuration \(3 problems\)/);
    assert.match(r.stderr, /LLM_PROXY_API_KEY: must be at least 16 characters/);
    assert.match(r.stderr, /models\.a: unknown key "temprature"/);
    assert.match(r.stderr, /models\.a\.provider: unknown provider "nope"/);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  });
});
