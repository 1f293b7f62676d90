import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';

const root = path.resolve(import.meta.dirname, '..');
const read = (f: string) => readFileSync(path.join(root, f), 'utf8');
const compose = parse(read('docker-compose.yml'));
const envExample = new Set(
  [...read('config/.env.example').matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!),
);
const run = promisify(execFile);

/** Services that ship an image, with the port their config defaults to. */
const services = readdirSync(path.join(root, 'services')).filter((s) =>
  existsSync(path.join(root, 'services', s, 'Dockerfile')),
);
const PORTS: Record<string, number> = {
  'llm-proxy': 8000,
  core: 8080,
  'telegram-adapter': 8081,
  'feishu-bot': 8082,
};

describe('packaging: compose, Dockerfiles, env docs and the start contract agree', () => {
  it('the compose file is valid (docker-compose config)', async () => {
    const r = await run('docker-compose', ['config', '-q'], {
      cwd: root,
      env: {
        ...process.env,
        LLM_PROXY_API_KEY: 'x'.repeat(32),
        POSTGRES_PASSWORD: 'p'.repeat(16),
        GRAFANA_ADMIN_PASSWORD: 'g'.repeat(16),
      },
    }).catch((e) => e);
    assert.equal(r.code ?? 0, 0, r.stderr);
  });

  it('Postgres and Redis publish no ports; every service has a restart policy and rotated logs', () => {
    for (const [name, svc] of Object.entries<any>(compose.services)) {
      if (name === 'postgres' || name === 'redis')
        assert.equal(svc.ports, undefined, `${name} must not publish ports`);
      assert.ok(svc.restart, `${name} has a restart policy`);
      assert.equal(svc.logging?.driver, 'json-file', `${name} rotates its logs`);
    }
    assert.match(compose.services.redis.command.join(' '), /--appendonly yes/);
    assert.equal(compose.services.core.depends_on.migrate.condition, 'service_completed_successfully');
  });

  for (const name of services) {
    describe(name, () => {
      const dockerfile = read(`services/${name}/Dockerfile`);
      const pkg = JSON.parse(read(`services/${name}/package.json`));
      const svc = compose.services[name];

      it('Dockerfile: Node 24, multi-stage, production deps only, non-root, healthcheck', () => {
        assert.match(dockerfile, /ARG NODE_IMAGE=node:24-/);
        assert.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 3, 'multi-stage');
        assert.match(dockerfile, /npm ci --omit=dev --workspace services\//);
        assert.match(dockerfile, /^USER node$/m);
        assert.match(dockerfile, /^HEALTHCHECK [\s\S]*?\/healthz/m);
      });

      it('the image runs a file the build produces, with the flags npm start uses', () => {
        const cmd = /^CMD \[(.*)\]$/m.exec(dockerfile)![1]!;
        const entry = /"(services\/[^"]+\.js)"/.exec(cmd)![1]!;
        assert.ok(existsSync(path.join(root, entry)), `${entry} exists after npm run build`);
        for (const flag of cmd.match(/"--[^"]+"/g) ?? [])
          assert.ok(pkg.scripts.start.includes(flag.slice(1, -1)), `npm start lacks ${flag}`);
        for (const m of dockerfile.matchAll(/exec node \/app\/(services\/[^ "]+\.js)/g))
          assert.ok(existsSync(path.join(root, m[1]!)), `${m[1]} exists`);
      });

      it('compose: built from this Dockerfile, its port, healthchecked, config mounted read-only, nothing published', () => {
        assert.ok(svc, `${name} is in docker-compose.yml`);
        assert.equal(svc.build.dockerfile, `services/${name}/Dockerfile`);
        assert.equal(svc.environment.PORT, PORTS[name]);
        assert.deepEqual(svc.expose, [String(PORTS[name])]);
        assert.equal(svc.ports, undefined, 'reached through nginx');
        assert.match(svc.healthcheck.test.join(' '), new RegExp(`127\\.0\\.0\\.1:${PORTS[name]}/healthz`));
        assert.ok(svc.volumes.includes('./config:/app/config:ro'));
        assert.equal(svc.environment.PINCER_CONFIG_DIR, '/app/config');
      });

      it('every variable it reads and compose passes is documented in config/.env.example', () => {
        for (const [key, value] of Object.entries<unknown>(svc.environment)) {
          for (const m of String(value).matchAll(/\$\{([A-Z0-9_]+)/g))
            assert.ok(envExample.has(m[1]!), `${m[1]} missing from .env.example`);
          if (!['PORT', 'PINCER_CONFIG_DIR'].includes(key))
            assert.ok(envExample.has(key), `${key} missing from .env.example`);
        }
        // the service's own variables, and the common ones it spreads in from packages/shared
        const config = read(`services/${name}/src/config.ts`);
        const common = read('packages/shared/src/config.ts');
        const varsIn = (text: string, from: string) => {
          const start = text.indexOf(from);
          return [
            ...text.slice(start, text.indexOf('\n}', start)).matchAll(/^\s{2,4}([A-Z][A-Z0-9_]+):/gm),
          ].map((m) => m[1]!);
        };
        const schemaVars = [
          ...varsIn(config, 'const EnvSchema'),
          ...(config.includes('...commonEnv(') ? varsIn(common, 'export function commonEnv') : []),
        ];
        assert.ok(schemaVars.length >= 5);
        for (const v of schemaVars)
          assert.ok(envExample.has(v) || v === 'PORT', `${v} (read by ${name}) missing from .env.example`);
      });

      it('the built entry point starts without the source condition and reports bad config plainly', async () => {
        const dir = mkdtempSync(path.join(tmpdir(), 'pincer-pack-'));
        writeFileSync(path.join(dir, 'config.yaml'), 'system: { max_concurency: 3 }\n');
        const r = await run(process.execPath, [path.join(root, `services/${name}/dist/main.js`)], {
          env: {
            PATH: process.env.PATH,
            PINCER_CONFIG_DIR: dir,
            LLM_PROXY_API_KEY: 'short',
            LOG_LEVEL: 'loud',
          },
          timeout: 20_000,
        }).catch((e) => e);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`^${name}: invalid configuration`));
        // every problem at once: the shared variables, and the proxy key where the service reads it
        assert.match(r.stderr, /LOG_LEVEL/);
        if (
          readFileSync(path.join(root, 'services', name, 'src/config.ts'), 'utf8').includes(
            'LLM_PROXY_API_KEY',
          )
        )
          assert.match(r.stderr, /LLM_PROXY_API_KEY: must be at least 16 characters/);
        assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
      });
    });
  }
});
