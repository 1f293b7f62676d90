import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { type AddressInfo, createServer } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startMockServer } from '@pincer/mock-inference';
import { stringify } from 'yaml';
import { eventually, post } from './harness.ts';

const root = path.resolve(import.meta.dirname, '../../..');
// compose, Dockerfile and env agreement for every service: tests/packaging.test.ts
describe('llm-proxy as the image runs it', () => {
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
    // a port the system just handed out, not a random one another test may hold
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
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
      // generous: on a loaded 2-core CI machine a cold start from dist/ can take several seconds
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok,
        30_000,
        'the dist server to answer /healthz',
      ).catch((err: Error) => {
        throw new Error(`${err.message}; its output: ${output || '(none)'}`);
      });
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
