import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '@pincer/shared';
import { parse } from 'yaml';
import { loadConfig } from '../src/config.ts';

const root = path.resolve(import.meta.dirname, '../../..');

describe('telegram-adapter config', () => {
  it('starts (idle) with exactly what compose passes by default: unset variables as empty strings', () => {
    const compose = parse(
      // the ${VAR:-default} of compose, resolved as compose does without a .env
      readFileSync(path.join(root, 'docker-compose.yml'), 'utf8').replace(/\$\{(\w+):-([^}]*)\}/g, '$2'),
    );
    const env = Object.fromEntries(
      Object.entries(compose.services['telegram-adapter'].environment).map(([k, v]) => [
        k,
        v == null ? '' : String(v),
      ]),
    ) as Record<string, string>;
    env.PINCER_CONFIG_DIR = path.join(root, 'config');
    const c = loadConfig(env);
    assert.equal(c.token, undefined);
    assert.equal(c.mode, 'polling');
    assert.equal(c.webhookUrl, undefined);
  });

  it('webhook mode without a URL or secret lists both problems', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pincer-tgc-'));
    writeFileSync(path.join(dir, 'config.yaml'), 'telegram: { edit_interval_ms: { direct: 10 } }\n');
    assert.throws(
      () => loadConfig({ PINCER_CONFIG_DIR: dir, TELEGRAM_MODE: 'webhook', TELEGRAM_BOT_TOKEN: '123:abc' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /TELEGRAM_WEBHOOK_URL: is required in webhook mode/);
        assert.match(err.message, /TELEGRAM_WEBHOOK_SECRET: is required/);
        assert.match(err.message, /TELEGRAM_BOT_TOKEN: does not look like a bot token/);
        assert.match(err.message, /edit_interval_ms\.direct/);
        return true;
      },
    );
  });
});
