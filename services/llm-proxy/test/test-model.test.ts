import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { startMockServer } from '@pincer/mock-inference';
import { stringify } from 'yaml';

const run = promisify(execFile);
const cli = path.resolve(import.meta.dirname, '../src/cli/test-model.ts');

async function testModel(configDir: string, ...args: string[]) {
  try {
    const r = await run(process.execPath, ['--conditions=pincer-source', cli, ...args], {
      env: { ...process.env, PINCER_CONFIG_DIR: configDir },
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('test-model', () => {
  it('reports node, time to first token and tokens/s of a real request through the registry', async () => {
    const mock = await startMockServer({ flavor: 'ollama', tokenRate: 100, firstTokenDelayMs: 80 });
    const dir = mkdtempSync(path.join(tmpdir(), 'pincer-tm-'));
    writeFileSync(
      path.join(dir, 'models.yml'),
      stringify({
        providers: {
          local: { type: 'ollama', nodes: [{ url: mock.url, name: 'cpu-box' }] },
          gpu: { type: 'openai', nodes: [{ url: 'http://127.0.0.1:1/v1' }], retries: { attempts: 0 } },
        },
        models: {
          qwen: { provider: 'local', model_id: 'qwen2.5:1.5b' },
          kimi: { provider: 'gpu', model_id: 'k' },
        },
        routing: { default_model: 'qwen', fallbacks: { kimi: ['qwen'] } },
      }),
    );
    try {
      const ok = await testModel(dir, '--json', '--max-tokens', '20');
      assert.equal(ok.code, 0, ok.stderr);
      const r = JSON.parse(ok.stdout);
      assert.equal(r.model, 'qwen');
      assert.equal(r.node, 'cpu-box');
      assert.ok(r.time_to_first_token_ms >= 80, `ttft ${r.time_to_first_token_ms}`);
      assert.ok(r.output_tokens > 5);
      assert.ok(r.tokens_per_second > 50 && r.tokens_per_second < 200, `tokens/s ${r.tokens_per_second}`);
      assert.equal(mock.requests.at(-1)!.body.options.num_predict, 20);

      const fb = JSON.parse((await testModel(dir, 'kimi', '--json')).stdout);
      assert.equal(fb.requested, 'kimi');
      assert.equal(fb.model, 'qwen');
      assert.equal(fb.fallback, true);

      const human = await testModel(dir);
      assert.match(human.stdout, /node\s+cpu-box/);

      const unknown = await testModel(dir, 'nope');
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /unknown model "nope"/);

      mock.setDown(true);
      const down = await testModel(dir, '--json');
      assert.equal(down.code, 1);
      assert.equal(JSON.parse(down.stdout).ok, false);
    } finally {
      await mock.close();
    }
  });
});
