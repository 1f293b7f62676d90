import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@pincer/shared';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../src/config.ts';
import { type CoreHandle, startCore } from '../src/core.ts';
import { startApi } from './api-harness.ts';
import { api, type Stack, startStack } from './stack.ts';

/** The APIs the web console stands on: who am I, models with upstream state, configuration view/validate/reload. */
describe('console APIs', () => {
  let s: Stack;
  let userKey: string;
  let operatorKey: string;

  before(async () => {
    s = await startStack();
    userKey = (await api(s, 'POST', '/api/v1/keys', { name: 'web user', role: 'user' })).json.key;
    operatorKey = (await api(s, 'POST', '/api/v1/keys', { name: 'ops', role: 'operator' })).json.key;
  });
  after(() => s.close());

  it('GET /me tells the key, its role and the user it chats as', async () => {
    const admin = await api(s, 'GET', '/api/v1/me');
    assert.equal(admin.status, 200);
    assert.deepEqual(
      { id: admin.json.id, role: admin.json.role, name: admin.json.name },
      { id: 'admin-token', role: 'admin', name: 'admin-token' },
    );
    assert.equal(typeof admin.json.user_id, 'number');
    const user = await api(s, 'GET', '/api/v1/me', undefined, userKey);
    assert.equal(user.json.role, 'user');
    assert.equal(user.json.name, 'web user');
    assert.notEqual(user.json.user_id, admin.json.user_id);
    // the user id is the one its web-chat conversations belong to
    const chat = await api(s, 'POST', '/api/v1/chat', { message: 'hello' }, userKey);
    assert.equal(chat.status, 200);
    const mine = await api(
      s,
      'GET',
      `/api/v1/conversations?user_id=${user.json.user_id}`,
      undefined,
      userKey,
    );
    assert.deepEqual(
      mine.json.data.map((c: { id: string }) => c.id),
      [chat.json.conversation_id],
    );
    assert.equal((await api(s, 'GET', '/api/v1/me', undefined, 'not-a-key')).status, 401);
  });

  it('a streamed web chat announces its conversation first; the conversation is named after its first line and keeps the model asked for', async () => {
    const res = await fetch(`${s.core.url}/api/v1/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'Plan my week\nwith details', model: 'big', stream: true }),
    });
    const events = [...(await res.text()).matchAll(/^event: (\w+)\ndata: (.*)$/gm)].map((m) => [
      m[1],
      JSON.parse(m[2]!),
    ]);
    assert.equal(events[0]![0], 'start');
    const done = events.at(-1)!;
    assert.equal(done[0], 'done');
    assert.equal(events[0]![1].conversation_id, done[1].conversation_id);
    assert.equal(events[0]![1].message_id, done[1].message_id);
    const c = await api(s, 'GET', `/api/v1/conversations/${done[1].conversation_id}`, undefined, userKey);
    assert.equal(c.json.title, 'Plan my week');
    assert.equal(c.json.model, 'big');
  });

  it('GET /models: the registry for everyone, upstream nodes for admins and operators only', async () => {
    const op = await api(s, 'GET', '/api/v1/models', undefined, operatorKey);
    assert.equal(op.status, 200);
    assert.deepEqual(op.json.data.map((m: { id: string }) => m.id).sort(), ['big', 'small']);
    const small = op.json.data.find((m: { id: string }) => m.id === 'small');
    assert.equal(small.default, true);
    assert.equal(small.context_window, 8192);
    assert.equal(small.provider, 'p');
    assert.equal(op.json.upstreams.length, 1);
    const node = op.json.upstreams[0].nodes[0];
    assert.equal(node.url, `${s.mock.url}/v1`);
    assert.equal(node.max_concurrency, 64);
    assert.ok(node.requests >= 1, 'the chat above went through this node');
    const user = await api(s, 'GET', '/api/v1/models', undefined, userKey);
    assert.equal(user.status, 200);
    assert.equal(user.json.upstreams, null, 'node addresses are not for users');
    assert.equal(user.json.data.length, 2);
  });

  it('GET /config shows rules and settings without secrets; only admins may validate or reload', async () => {
    const view = await api(s, 'GET', '/api/v1/config', undefined, operatorKey);
    assert.equal(view.status, 200);
    assert.equal(view.json.source.dir, s.configDir);
    assert.ok(view.json.routes.length >= 2);
    assert.equal(view.json.routes.at(-1).match, null, 'the default rule is last');
    assert.equal(view.json.settings.system.redis_prefix, s.prefix);
    for (const secret of [s.env.LLM_PROXY_API_KEY!, s.env.PINCER_ADMIN_TOKEN!, s.env.DATABASE_URL!])
      assert.ok(!view.text.includes(secret), 'no secret or connection string in the view');
    assert.equal((await api(s, 'POST', '/api/v1/config/reload', undefined, operatorKey)).status, 403);
    assert.equal((await api(s, 'POST', '/api/v1/config/validate', undefined, operatorKey)).status, 403);
    assert.equal((await api(s, 'GET', '/api/v1/config', undefined, userKey)).status, 403);
  });

  it('validate reports every problem with file and line, and an invalid reload changes nothing', async () => {
    const routingFile = path.join(s.configDir, 'routing.yaml');
    const good = readFileSync(routingFile, 'utf8');
    try {
      writeFileSync(
        routingFile,
        'routes:\n  - match: { command: ping }\n    action: pong\n  - default: { action: process_with_llm }\n',
      );
      const v = await api(s, 'POST', '/api/v1/config/validate');
      assert.equal(v.status, 200);
      assert.equal(v.json.ok, false);
      assert.equal(v.json.problems.length, 1);
      assert.equal(v.json.problems[0].file, routingFile);
      assert.equal(v.json.problems[0].line, 3);
      assert.match(v.json.problems[0].message, /unknown action "pong"/);
      const before = (await api(s, 'GET', '/api/v1/config')).json;
      const r = await api(s, 'POST', '/api/v1/config/reload');
      assert.equal(r.status, 422);
      assert.equal(r.json.error.code, 'config_invalid');
      assert.equal(r.json.problems[0].line, 3);
      assert.deepEqual((await api(s, 'GET', '/api/v1/config')).json, before, 'nothing changed');
      const audit = await api(s, 'GET', '/api/v1/audit?kind=config.reload');
      assert.equal(audit.json.data[0].outcome, 'invalid');
      assert.equal(audit.json.data[0].actor, 'admin-token');
    } finally {
      writeFileSync(routingFile, good);
    }
  });

  it('a reload applies rules and messages to the next message, in every core process, and lists what needs a restart', async () => {
    // a second core process on the same database, Redis prefix and files (another replica)
    const log = createLogger({ service: 'core', level: 'error' });
    log.silent = true;
    const replica: CoreHandle = await startCore(loadConfig(s.env), log, {
      host: '127.0.0.1',
      port: 0,
      workers: false,
    });
    const configFile = path.join(s.configDir, 'config.yaml');
    const routingFile = path.join(s.configDir, 'routing.yaml');
    const oldConfig = readFileSync(configFile, 'utf8');
    const oldRouting = readFileSync(routingFile, 'utf8');
    try {
      const cfg = parse(oldConfig);
      cfg.core = {
        ...cfg.core,
        help_message: 'Reloaded help text.',
        system_prompt: `You may say ${s.env.PINCER_ADMIN_TOKEN} never.`,
      };
      cfg.system = { ...cfg.system, max_concurrency: 3 };
      writeFileSync(configFile, stringify(cfg));
      const routing = parse(oldRouting);
      routing.routes.unshift({ match: { content: '^ping$' }, action: 'help' });
      writeFileSync(routingFile, stringify(routing));

      const v = await api(s, 'POST', '/api/v1/config/validate');
      assert.equal(v.json.ok, true);
      // named as they are written in the files
      assert.deepEqual(v.json.changes.sort(), [
        'core.help_message',
        'core.system_prompt',
        'routes',
        'system.max_concurrency',
      ]);
      assert.deepEqual(v.json.restart_required, ['system.max_concurrency']);
      // validating applied nothing
      const notYet = await s.send({ chat: { id: 'cfg-1', type: 'direct' }, text: '/help' });
      const r0 = await s.finished((r) => r.chat === 'cfg-1');
      assert.ok(notYet);
      assert.notEqual(r0.text, 'Reloaded help text.');

      const r = await api(s, 'POST', '/api/v1/config/reload');
      assert.equal(r.status, 200);
      assert.equal(r.json.ok, true);
      assert.deepEqual(r.json.restart_required, ['system.max_concurrency']);
      assert.equal(r.json.propagated, true);

      await s.send({ chat: { id: 'cfg-2', type: 'direct' }, text: 'ping' });
      const r1 = await s.finished((x) => x.chat === 'cfg-2');
      assert.equal(r1.text, 'Reloaded help text.', 'the new rule and the new message apply at once');
      const view = (await api(s, 'GET', '/api/v1/config')).json;
      assert.equal(view.routes[0].match.content, '^ping$');
      assert.equal(view.settings.system.max_concurrency, 8, 'a restart-only setting is not applied');
      assert.equal(
        view.settings.core.system_prompt,
        'You may say [redacted] never.',
        'a secret in a setting is masked',
      );

      // the replica heard the announcement and reloaded its own copy
      const deadline = Date.now() + 5000;
      while (replica.configManager.live.core.help_message !== 'Reloaded help text.' && Date.now() < deadline)
        await new Promise((res) => setTimeout(res, 20));
      assert.equal(replica.configManager.live.core.help_message, 'Reloaded help text.');
      assert.equal(replica.configManager.live.routes[0]!.match?.content?.source, '^ping$');
      const audited = async (actor: string) =>
        (await api(s, 'GET', '/api/v1/audit?kind=config.reload&limit=20')).json.data.find(
          (e: { actor: string }) => e.actor === actor,
        );
      const deadline2 = Date.now() + 5000;
      while (!(await audited('core replica')) && Date.now() < deadline2)
        await new Promise((res) => setTimeout(res, 20));
      assert.equal(
        (await audited('core replica'))?.outcome,
        'ok',
        "the replica's reload is in the audit log",
      );
      // SIGHUP (main.ts) reloads one process and is audited under its reason
      const hup = replica.reloadConfig('SIGHUP');
      assert.equal(hup.ok, true);
      // what only a restart applies keeps being reported until then
      assert.deepEqual(hup.changes, ['system.max_concurrency']);
      assert.deepEqual(hup.restart_required, ['system.max_concurrency']);
      while (!(await audited('SIGHUP')) && Date.now() < deadline2 + 5000)
        await new Promise((res) => setTimeout(res, 20));
      assert.equal((await audited('SIGHUP'))?.outcome, 'ok');
    } finally {
      writeFileSync(configFile, oldConfig);
      writeFileSync(routingFile, oldRouting);
      await api(s, 'POST', '/api/v1/config/reload');
      await replica.shutdown(1000);
    }
  });
});

describe('console files', () => {
  it('serves the built console with a strict CSP, caches hashed assets for good and index.html never', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pincer-console-'));
    mkdirSync(path.join(dir, 'assets'));
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>Pincer</title>');
    writeFileSync(path.join(dir, 'assets', 'app-1a2b3c.js'), 'console.log(1)');
    const h = await startApi({ consoleDir: dir });
    try {
      const index = await h.call('GET', '/admin/', { token: null });
      assert.equal(index.status, 200);
      assert.match(index.text, /<title>Pincer<\/title>/);
      assert.match(index.headers.get('content-security-policy')!, /script-src 'self'/);
      assert.equal(index.headers.get('cache-control'), 'no-cache');
      assert.equal(index.headers.get('x-frame-options'), 'DENY');
      const asset = await h.call('GET', '/admin/assets/app-1a2b3c.js', { token: null });
      assert.equal(asset.status, 200);
      assert.match(asset.headers.get('cache-control')!, /immutable/);
      assert.equal((await h.call('GET', '/admin/assets/nope.js', { token: null })).status, 404);
      // raw paths (fetch would normalise them away): nothing next to the console folder is reachable
      writeFileSync(path.join(dir, '..', `${path.basename(dir)}-secret.txt`), 'sentinel');
      const port = new URL(h.url).port;
      for (const raw of [
        `/admin/../${path.basename(dir)}-secret.txt`,
        `/admin/..%2f${path.basename(dir)}-secret.txt`,
        `/admin/%2e%2e%2f${path.basename(dir)}-secret.txt`,
        `/admin/%2e%2e/${path.basename(dir)}-secret.txt`,
        `/admin/..%5c${path.basename(dir)}-secret.txt`,
        '/admin/assets/..%2f..%2f..%2fetc%2fpasswd',
      ]) {
        const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port, path: raw }, (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (d: string) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          });
          req.on('error', reject);
          req.end();
        });
        assert.ok(r.status >= 400 && r.status < 500, `${raw}: ${r.status}`);
        assert.ok(!r.body.includes('sentinel') && !r.body.includes('root:'), `${raw} leaked a file`);
      }
    } finally {
      await h.close();
    }
    const missing = await startApi({ consoleDir: path.join(dir, 'nothing-here') });
    try {
      const r = await missing.call('GET', '/admin/', { token: null });
      assert.equal(r.status, 503);
      assert.equal(r.json.error.code, 'console_not_built');
    } finally {
      await missing.close();
    }
  });
});
