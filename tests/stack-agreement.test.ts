import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { fill, renderNginx, root, SERVICES, type StackSettings } from '../scripts/local-stack.ts';

const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, any>;
};
const settings: StackSettings = {
  dir: mkdtempSync(path.join(tmpdir(), 'pincer-agree-')),
  offset: 0,
  port: (p) => p,
  secrets: new Proxy({}, { get: (_t, k) => `secret-${String(k)}` }) as Record<string, string>,
  databaseUrl: 'postgres://postgres@127.0.0.1:5432/x',
  redisUrl: 'redis://127.0.0.1:6379',
  redisPrefix: 'p',
  configDir: '/tmp/config',
  emulators: false,
};

describe('docker-compose.yml, the Dockerfiles and the local stack agree', () => {
  const imaged = readdirSync(path.join(root, 'services')).filter((s) =>
    existsSync(path.join(root, 'services', s, 'Dockerfile')),
  );

  it('the same services: every service with a Dockerfile runs in compose and in the local stack', () => {
    assert.deepEqual(SERVICES.map((s) => s.name).sort(), [...imaged].sort());
    for (const name of imaged) assert.ok(compose.services[name], `${name} missing from docker-compose.yml`);
    for (const extra of [
      'postgres',
      'redis',
      'migrate',
      'nginx',
      'prometheus',
      'grafana',
      'backup',
      'ollama',
    ])
      assert.ok(compose.services[extra], `compose has ${extra}`);
  });

  for (const svc of SERVICES) {
    describe(svc.name, () => {
      const c = compose.services[svc.name];
      const dockerfile = readFileSync(path.join(root, 'services', svc.name, 'Dockerfile'), 'utf8');

      it('the same port', () => {
        assert.equal(Number(c.environment.PORT), svc.port);
        assert.deepEqual(c.expose, [String(svc.port)]);
        assert.match(dockerfile, new RegExp(`EXPOSE ${svc.port}\\b`));
        assert.equal(svc.env(settings).PORT, String(svc.port));
      });

      it('the same health path', () => {
        assert.ok(c.healthcheck.test.join(' ').includes(`127.0.0.1:${svc.port}${svc.health}`));
        assert.ok(dockerfile.includes(svc.health), `the Dockerfile's HEALTHCHECK uses ${svc.health}`);
      });

      it('the same entry point', () => {
        const cmd = /^CMD \[(.*)\]$/m.exec(dockerfile)?.[1] ?? '';
        assert.ok(cmd.includes(`"${svc.entry}"`), `Dockerfile CMD runs ${svc.entry}: ${cmd}`);
      });

      it('the same environment variable names', () => {
        const local = Object.keys(svc.env(settings)).sort();
        const composed = Object.keys(c.environment).sort();
        assert.deepEqual(local, composed);
      });
    });
  }

  it('nginx: compose fills the same template the local stack renders, with the same variables', () => {
    const tmpl = readFileSync(path.join(root, 'nginx/templates/pincer.conf.template'), 'utf8');
    const needed = [...new Set([...tmpl.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!))].sort();
    assert.deepEqual(Object.keys(compose.services.nginx.environment).sort(), needed);
    const mount = compose.services.nginx.volumes.find((v: string) => v.includes('pincer.conf.template'));
    assert.ok(mount, 'compose mounts the template');
    // every upstream points at the service compose names and the port it listens on
    for (const [v, svc] of [
      ['PINCER_CORE_ADDR', 'core'],
      ['PINCER_LLM_PROXY_ADDR', 'llm-proxy'],
      ['PINCER_TELEGRAM_ADDR', 'telegram-adapter'],
      ['PINCER_FEISHU_ADDR', 'feishu-bot'],
    ] as const) {
      const port = SERVICES.find((s) => s.name === svc)!.port;
      assert.equal(compose.services.nginx.environment[v], `${svc}:${port}`);
      assert.ok(renderNginx(settings).includes(`server 127.0.0.1:${port};`), `local nginx → ${svc}`);
    }
    assert.equal(fill('a $' + '{X} $host', { X: '1' }), 'a 1 $host');
  });

  it('Prometheus scrapes every service at the same port in compose and locally', () => {
    const jobs = (file: string) =>
      (parse(readFileSync(path.join(root, file), 'utf8')) as { scrape_configs: any[] }).scrape_configs;
    const composeJobs = jobs('prometheus/prometheus.yml');
    const localJobs = jobs('prometheus/prometheus.local.yml.tmpl');
    for (const svc of SERVICES) {
      const c = composeJobs.find((j) => j.job_name === svc.name);
      assert.ok(c, `prometheus.yml has a ${svc.name} job`);
      // by DNS (every replica) or statically: either way the service's name and port
      const target = c.dns_sd_configs
        ? `${c.dns_sd_configs[0].names[0]}:${c.dns_sd_configs[0].port}`
        : c.static_configs[0].targets[0];
      assert.equal(target, `${svc.name}:${svc.port}`);
      assert.ok(
        localJobs.some((j) => j.job_name === svc.name),
        `the local template has a ${svc.name} job`,
      );
    }
  });

  it('the local stack script is valid bash', () => {
    execFileSync('bash', ['-n', path.join(root, 'scripts/stack.sh')]);
  });
});
