import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createLogger } from '@pincer/shared';
import type { CommandSettings, HttpAllowSettings, Role, ToolsSettings } from '../src/config.ts';
import { runProcess } from '../src/repositories/processes.ts';
import { allowEntryFor, httpRequestTool } from '../src/services/tools/http-request.ts';
import { loadPlugins, PluginError } from '../src/services/tools/plugins.ts';
import { commandArguments, commandTool } from '../src/services/tools/run-command.ts';
import { type Tool, type ToolContext, ToolError } from '../src/services/tools/types.ts';

const log = createLogger({ service: 'core', level: 'error' });
const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/plugins');

function settings(over: Partial<ToolsSettings> = {}): ToolsSettings {
  return {
    enabled: true,
    max_rounds: 5,
    timezone: 'UTC',
    approval_timeout_s: 120,
    result_max_chars: 8000,
    plugins_dir: 'plugins',
    builtin: { time: true, memory: true, knowledge: true, tasks: true },
    http: { timeout_ms: 5000, max_response_bytes: 1_048_576, allow: [] },
    hosts: {},
    commands: {},
    ssh_binary: 'ssh',
    ...over,
  };
}

/** A command as config would produce it: the schema's defaults, then what the test says. */
function command(
  over: Partial<Omit<CommandSettings, 'params'>> & {
    argv: string[];
    params?: Record<string, Partial<CommandSettings['params'][string]>>;
  },
): CommandSettings {
  const params: CommandSettings['params'] = {};
  for (const [name, p] of Object.entries(over.params ?? {}))
    params[name] = { type: 'string', description: '', max_length: 256, allow_dash: false, ...p };
  return {
    description: 'a test command',
    host: 'local',
    role: 'operator',
    confirm: 'user',
    timeout_ms: 10_000,
    output_max_bytes: 16_384,
    ...over,
    params,
  };
}

function allowEntry(over: Partial<HttpAllowSettings> & { url: string }): HttpAllowSettings {
  return {
    methods: ['GET'],
    role: 'user',
    confirm_methods: ['POST', 'PUT', 'PATCH', 'DELETE'],
    confirm: 'user',
    headers: {},
    ...over,
  };
}

function ctxFor(role: Role, signal = new AbortController().signal): ToolContext {
  return {
    caller: { userId: 1, role, name: `test:${role}` },
    platform: 'api',
    timezone: 'UTC',
    signal,
    log,
  };
}

/** The ToolError a call fails with (and that it does fail). */
async function toolError(p: Promise<unknown>): Promise<ToolError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ToolError, `expected a ToolError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

function invalid(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof ToolError);
    assert.equal(err.code, 'invalid');
    return err.message;
  }
  assert.fail('expected the arguments to be refused');
}

/** Gone, or a zombie waiting to be reaped (it runs nothing any more). */
function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function until(ok: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(25);
  }
}

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pincer-tools-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('runProcess', () => {
  it('passes arguments literally: no shell reads $(…) or ;', async () => {
    const dir = await mkdtemp(path.join(tmp, 'literal-'));
    const r = await runProcess({
      argv: ['printf', '%s\n', '$(id)', '; touch X', '`touch Y`'],
      cwd: dir,
      timeoutMs: 5_000,
      outputMaxBytes: 1_000,
    });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, '$(id)\n; touch X\n`touch Y`\n');
    assert.equal(existsSync(path.join(dir, 'X')), false);
    assert.equal(existsSync(path.join(dir, 'Y')), false);
  });

  it("gives the child a minimal environment without core's secrets", async () => {
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = 'postgres://core:very-secret@db/pincer';
    process.env.LLM_PROXY_API_KEY_TEST = 'sk-test-secret';
    try {
      const r = await runProcess({ argv: ['env'], timeoutMs: 5_000, outputMaxBytes: 10_000 });
      const names = r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('=')[0]!);
      assert.ok(!r.stdout.includes('very-secret') && !r.stdout.includes('sk-test-secret'), r.stdout);
      assert.ok(!names.includes('DATABASE_URL'));
      assert.ok(r.stdout.includes('LANG=C.UTF-8\n'));
      assert.ok(names.includes('PATH') && names.includes('HOME'));
      assert.deepEqual(
        names.filter((n) => !['PATH', 'LANG', 'HOME', 'TZ'].includes(n)),
        [],
      );
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
      delete process.env.LLM_PROXY_API_KEY_TEST;
    }
  });

  it('on timeout stops the program and what it started', async () => {
    const r = await runProcess({
      argv: ['sh', '-c', 'sleep 30 & echo $!; sleep 30'],
      timeoutMs: 300,
      outputMaxBytes: 1_000,
    });
    assert.equal(r.timedOut, true);
    assert.ok(r.durationMs < 5_000, `took ${r.durationMs} ms`);
    const grandchild = Number(r.stdout.trim());
    assert.ok(grandchild > 0, `no pid in ${JSON.stringify(r.stdout)}`);
    await until(() => processGone(grandchild));
  });

  it('a program that ignores SIGTERM is killed after the grace period', async () => {
    const r = await runProcess({
      argv: ['sh', '-c', "trap '' TERM; echo ready; while :; do sleep 0.1; done"],
      timeoutMs: 200,
      outputMaxBytes: 1_000,
    });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(r.stdout, 'ready\n');
  });

  it('an abort stops the program and rejects', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const run = runProcess({
      argv: ['sleep', '30'],
      timeoutMs: 60_000,
      outputMaxBytes: 1_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new Error('turn stopped')), 100);
    await assert.rejects(run, /turn stopped/);
    assert.ok(Date.now() - started < 5_000);
  });

  it('keeps at most outputMaxBytes of stdout and stderr together, and lets the program finish', async () => {
    const r = await runProcess({
      argv: ['sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" a; echo done >&2'],
      timeoutMs: 10_000,
      outputMaxBytes: 1_000,
    });
    assert.equal(r.exitCode, 0);
    assert.equal(r.truncated, true);
    assert.equal(r.stdout, 'a'.repeat(1_000));
    assert.equal(r.stderr, '');
    const small = await runProcess({ argv: ['printf', 'abc'], timeoutMs: 5_000, outputMaxBytes: 1_000 });
    assert.equal(small.truncated, false);
    assert.equal(small.stdout, 'abc');
  });

  it('a missing program is a clear error', async () => {
    await assert.rejects(
      runProcess({ argv: ['no-such-program-pincer'], timeoutMs: 1_000, outputMaxBytes: 100 }),
      /no-such-program-pincer was not found/,
    );
    await assert.rejects(
      runProcess({ argv: ['true'], cwd: path.join(tmp, 'nope'), timeoutMs: 1_000, outputMaxBytes: 100 }),
      /working directory .* does not exist/,
    );
  });
});

describe('run_command', () => {
  const spec = command({
    argv: ['printf', '%s|%s|%s|%s\n', '{path}', 'n={count}', '{mode}', '{flag}'],
    params: {
      path: { pattern: '/[a-z/]*' },
      count: { type: 'integer', minimum: 1, maximum: 10, default: 3 },
      mode: { enum: ['fast', 'slow'], default: 'fast' },
      flag: { type: 'boolean', default: false },
    },
  });

  it('accepts and normalises valid arguments, filling defaults', () => {
    assert.deepEqual(commandArguments(spec, { path: '/var/log' }), {
      path: '/var/log',
      count: '3',
      mode: 'fast',
      flag: 'false',
    });
    assert.deepEqual(commandArguments(spec, { path: '/', count: '5', mode: 'slow', flag: true }), {
      path: '/',
      count: '5',
      mode: 'slow',
      flag: 'true',
    });
  });

  it('refuses arguments outside what the operator declared, saying why', () => {
    assert.match(
      invalid(() => commandArguments(spec, { path: '/var', colour: 'red' })),
      /unknown parameter "colour"/,
    );
    assert.match(
      invalid(() => commandArguments(spec, {})),
      /"path" is required/,
    );
    // the pattern must match the whole value, not a part of it
    assert.match(
      invalid(() => commandArguments(spec, { path: '/var; rm -rf /' })),
      /must match the pattern/,
    );
    assert.match(
      invalid(() => commandArguments(spec, { path: 'x/var' })),
      /must match the pattern/,
    );
    assert.match(
      invalid(() => commandArguments(spec, { path: '/var', mode: 'turbo' })),
      /one of "fast", "slow"/,
    );
    assert.match(
      invalid(() => commandArguments(spec, { path: '/var', count: 11 })),
      /at most 10/,
    );
    assert.match(
      invalid(() => commandArguments(spec, { path: '/var', count: 0 })),
      /at least 1/,
    );
    assert.match(
      invalid(() => commandArguments(spec, { path: '/var', count: 2.5 })),
      /whole number/,
    );
    assert.match(
      invalid(() => commandArguments(spec, { path: '/var', count: '2; ls' })),
      /whole number/,
    );
    assert.match(
      invalid(() => commandArguments(spec, { path: '/var', flag: 'yes' })),
      /true or false/,
    );
    assert.match(
      invalid(() => commandArguments(spec, { path: ['/var'] })),
      /must be a string/,
    );
    assert.match(
      invalid(() => commandArguments(spec, 'path=/var')),
      /args must be an object/,
    );
  });

  it('refuses values that could become options or extra lines', () => {
    const free = command({ argv: ['echo', '{text}'], params: { text: { max_length: 10 } } });
    assert.match(
      invalid(() => commandArguments(free, { text: '-rf' })),
      /must not start with "-"/,
    );
    assert.match(
      invalid(() => commandArguments(free, { text: '--help' })),
      /must not start with "-"/,
    );
    assert.match(
      invalid(() => commandArguments(free, { text: 'a\nb' })),
      /single line/,
    );
    assert.match(
      invalid(() => commandArguments(free, { text: 'a\0b' })),
      /single line/,
    );
    assert.match(
      invalid(() => commandArguments(free, { text: 'x'.repeat(11) })),
      /at most 10 characters/,
    );
    const dash = command({ argv: ['echo', '{text}'], params: { text: { allow_dash: true } } });
    assert.deepEqual(commandArguments(dash, { text: '-n' }), { text: '-n' });
    const n = command({ argv: ['echo', '{n}'], params: { n: { type: 'integer' } } });
    assert.match(
      invalid(() => commandArguments(n, { n: -1 })),
      /must not be negative/,
    );
    const neg = command({ argv: ['echo', '{n}'], params: { n: { type: 'integer', minimum: -5 } } });
    assert.deepEqual(commandArguments(neg, { n: '-5' }), { n: '-5' });
  });

  it('runs the command with each value inside its own argument', async () => {
    const dir = await mkdtemp(path.join(tmp, 'cmd-'));
    const tool = commandTool(
      settings({
        commands: {
          echo_text: command({
            argv: ['printf', '<%s>\n', 'prefix-{text}', '{text}'],
            params: { text: {} },
            cwd: dir,
          }),
        },
      }),
    )!;
    const out = await tool.run(
      { command: 'echo_text', args: { text: 'a b $(touch pwned); touch pwned2 {text}' } },
      ctxFor('operator'),
    );
    assert.equal(
      out,
      [
        'exit code 0',
        '--- stdout ---',
        '<prefix-a b $(touch pwned); touch pwned2 {text}>',
        '<a b $(touch pwned); touch pwned2 {text}>',
      ].join('\n'),
    );
    assert.equal(existsSync(path.join(dir, 'pwned')), false);
    assert.equal(existsSync(path.join(dir, 'pwned2')), false);
  });

  it('a non-zero exit is the result, with stdout and stderr', async () => {
    const tool = commandTool(
      settings({ commands: { fails: command({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] }) } }),
    )!;
    assert.equal(
      await tool.run({ command: 'fails' }, ctxFor('operator')),
      'exit code 3\n--- stdout ---\nout\n--- stderr ---\nerr',
    );
  });

  it('notes cut output and stops a command that runs too long', async () => {
    const tool = commandTool(
      settings({
        commands: {
          noisy: command({
            argv: ['sh', '-c', 'head -c 5000 /dev/zero | tr "\\0" x'],
            output_max_bytes: 256,
          }),
          slow: command({ argv: ['sleep', '10'], timeout_ms: 200 }),
        },
      }),
    )!;
    const out = await tool.run({ command: 'noisy' }, ctxFor('operator'));
    assert.equal(out, `exit code 0\n--- stdout ---\n${'x'.repeat(256)}\n[output cut at 256 bytes]`);
    const err = await toolError(tool.run({ command: 'slow' }, ctxFor('operator')));
    assert.equal(err.code, 'timeout');
    assert.equal(err.message, 'the command took longer than 200 ms and was stopped');
  });

  it('enforces each command’s role; roles are not a ladder', async () => {
    const tool = commandTool(
      settings({
        commands: {
          disk_usage: command({ argv: ['echo', 'ok'], role: 'operator' }),
          hello: command({ argv: ['echo', 'hi'], role: 'user', confirm: 'none' }),
        },
      }),
    )!;
    const refused = await toolError(tool.run({ command: 'disk_usage' }, ctxFor('user')));
    assert.equal(refused.code, 'refused');
    assert.equal(refused.message, 'the command disk_usage needs the role operator');
    assert.equal((await toolError(tool.run({ command: 'disk_usage' }, ctxFor('auditor')))).code, 'refused');
    assert.match(
      await tool.run({ command: 'disk_usage' }, ctxFor('operator')),
      /^exit code 0\n--- stdout ---\nok$/,
    );
    assert.match(await tool.run({ command: 'disk_usage' }, ctxFor('admin')), /^exit code 0/);
    assert.match(await tool.run({ command: 'hello' }, ctxFor('user')), /hi/);
    assert.equal((await toolError(tool.run({ command: 'nope' }, ctxFor('admin')))).code, 'refused');

    const operatorOnly = commandTool(settings({ commands: { disk_usage: command({ argv: ['echo'] }) } }))!;
    const caller = (role: Role) => ({ userId: 1, role, name: 'x' });
    assert.equal(operatorOnly.offeredTo!(caller('user')), false);
    assert.equal(operatorOnly.offeredTo!(caller('auditor')), false);
    assert.equal(operatorOnly.offeredTo!(caller('operator')), true);
    assert.equal(tool.offeredTo!(caller('user')), true);
    assert.equal(commandTool(settings()), undefined);
  });

  it('says what needs approval and describes the call', () => {
    const tool = commandTool(
      settings({
        hosts: { 'web-1': { address: 'web-1.internal', user: 'deploy', port: 22 } },
        commands: {
          disk_usage: command({
            argv: ['du', '-sh', '{path}'],
            params: { path: { description: 'the folder', default: '/var' } },
            host: 'web-1',
            confirm: 'operator',
          }),
          uptime: command({ argv: ['uptime'], confirm: 'none' }),
        },
      }),
    )!;
    assert.equal(tool.confirm({ command: 'disk_usage' }, { userId: 1, role: 'user', name: 'x' }), 'operator');
    assert.equal(tool.confirm({ command: 'uptime' }, { userId: 1, role: 'user', name: 'x' }), 'none');
    assert.equal(
      tool.describe!({ command: 'disk_usage', args: { path: '/srv' } }),
      'disk_usage path=/srv on web-1',
    );
    assert.equal(tool.describe!({ command: 'disk_usage' }), 'disk_usage path=/var on web-1');
    assert.match(
      tool.description,
      /disk_usage: a test command \(runs on web-1; only for the role operator\)/,
    );
    assert.match(tool.description, /path \(string, default "\/var"\): the folder/);
    assert.deepEqual((tool.parameters.properties as any).command.enum, ['disk_usage', 'uptime']);
  });

  it('over ssh a hostile value arrives as one literal argument', async () => {
    const dir = await mkdtemp(path.join(tmp, 'ssh-'));
    const record = path.join(dir, 'argv');
    const fakeSsh = path.join(dir, 'fake-ssh');
    // records what it was given, then does what sshd does: hands the last argument to a shell
    await writeFile(
      fakeSsh,
      `#!/bin/sh\nprintf '%s\\0' "$@" > '${record}'\nfor last; do :; done\ncd '${dir}' && exec sh -c "$last"\n`,
    );
    await chmod(fakeSsh, 0o755);
    const tool = commandTool(
      settings({
        ssh_binary: fakeSsh,
        hosts: {
          'web-1': {
            address: 'web-1.internal',
            user: 'deploy',
            port: 2222,
            identity_file: '/etc/pincer/id_ed25519',
            known_hosts_file: '/etc/pincer/known_hosts',
          },
        },
        commands: {
          show: command({ argv: ['printf', '[%s]\n', '{text}'], params: { text: {} }, host: 'web-1' }),
        },
      }),
    )!;
    const hostile = `a'b; touch ${dir}/pwned; echo "$(id)"`;
    const out = await tool.run({ command: 'show', args: { text: hostile } }, ctxFor('operator'));
    assert.equal(out, `exit code 0\n--- stdout ---\n[${hostile}]`);
    assert.equal(existsSync(path.join(dir, 'pwned')), false);
    const argv = readFileSync(record, 'utf8').split('\0').slice(0, -1);
    assert.deepEqual(argv.slice(0, -1), [
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'ConnectTimeout=10',
      '-i',
      '/etc/pincer/id_ed25519',
      '-o',
      'UserKnownHostsFile=/etc/pincer/known_hosts',
      '-p',
      '2222',
      '-l',
      'deploy',
      '--',
      'web-1.internal',
    ]);
    assert.equal(argv.at(-1), `'printf' '[%s]\n' 'a'\\''b; touch ${dir}/pwned; echo "$(id)"'`);
  });
});

describe('http_request', () => {
  const token = 'Bearer s3cret-token-0123456789';
  const apiKey = 'apikey-abcdef123456';
  let server: http.Server;
  let base: string;
  const seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  let tools: ToolsSettings;
  let tool: Tool;

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        const url = req.url!;
        if (url === '/v2/items') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"items":[1,2,3]}');
        } else if (url === '/v2/echo') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ method: req.method, headers: req.headers, body }));
        } else if (url === '/v2/out') {
          res.writeHead(302, { location: base.replace('127.0.0.1', 'localhost') + '/v2/items' });
          res.end();
        } else if (url === '/v2/in') {
          res.writeHead(302, { location: '/v2/items' });
          res.end();
        } else if (url === '/v2/after-post') {
          res.writeHead(303, { location: '/v2/echo' });
          res.end();
        } else if (/^\/v2\/hop[1-3]$/.test(url)) {
          const n = Number(url.at(-1)) - 1;
          res.writeHead(301, { location: n ? `/v2/hop${n}` : '/v2/items' });
          res.end();
        } else if (url === '/v2/loop') {
          res.writeHead(307, { location: '/v2/loop' });
          res.end();
        } else if (url === '/v2/big') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('y'.repeat(100_000));
        } else if (url === '/v2/image') {
          res.writeHead(200, { 'content-type': 'image/png' });
          res.end(Buffer.alloc(300, 1));
        } else if (url === '/v2/slow') {
          setTimeout(() => res.end('late'), 3_000).unref();
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('not here');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    tools = settings({
      http: {
        timeout_ms: 1_000,
        max_response_bytes: 1_024,
        allow: [
          allowEntry({
            url: `${base}/v2/`,
            methods: ['GET', 'POST'],
            headers: { Authorization: token, 'X-Api-Key': apiKey },
          }),
          allowEntry({ url: `${base}/ops`, methods: ['GET'], role: 'operator' }),
        ],
      },
    });
    tool = httpRequestTool(tools)!;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const requestsSoFar = () => seen.length;

  it('sends an allowed GET and returns status, content type and body', async () => {
    const out = await tool.run({ method: 'GET', url: `${base}/v2/items` }, ctxFor('user'));
    assert.equal(out, 'HTTP 200 OK\ncontent-type: application/json\n\n{"items":[1,2,3]}');
  });

  it('refuses a host that is not listed, and sends nothing', async () => {
    const before = requestsSoFar();
    const other = base.replace('127.0.0.1', 'localhost');
    const err = await toolError(tool.run({ method: 'GET', url: `${other}/v2/items` }, ctxFor('user')));
    assert.equal(err.code, 'refused');
    assert.match(err.message, /is not under any allowed URL prefix/);
    assert.ok(!err.message.includes('s3cret'));
    assert.equal(requestsSoFar(), before);
  });

  it('refuses a method the entry does not list', async () => {
    const before = requestsSoFar();
    const err = await toolError(tool.run({ method: 'DELETE', url: `${base}/v2/items` }, ctxFor('admin')));
    assert.equal(err.code, 'refused');
    assert.match(err.message, /DELETE is not allowed for .*\/v2\/items \(allowed: GET, POST\)/);
    assert.equal(requestsSoFar(), before);
  });

  it('matches path prefixes on segment boundaries and refuses ways out of them', async () => {
    const check = (url: string, method = 'GET', role: Role = 'user') =>
      allowEntryFor(tools, method, url, role);
    assert.equal(check(`${base}/v2/items`).entry.url, `${base}/v2/`);
    assert.equal(check(`${base}/v2`).entry.url, `${base}/v2/`);
    assert.equal(check(`${base}/ops/x`, 'GET', 'operator').entry.url, `${base}/ops`);
    const refused = (url: string, why: RegExp, role: Role = 'user') => {
      assert.throws(
        () => check(url, 'GET', role),
        (e) => e instanceof ToolError && e.code === 'refused' && why.test(e.message),
        url,
      );
    };
    refused(`${base}/v2evil`, /not under any allowed URL prefix/);
    refused(`${base}/opsx`, /not under any allowed URL prefix/, 'operator');
    refused(`${base}/v2/../admin`, /not under any allowed URL prefix/);
    refused(`${base}/v2/%2e%2e/admin`, /encoded dots or slashes/);
    refused(`${base}/v2/%2E%2E/admin`, /encoded dots or slashes/);
    refused(`${base}/v2/a%2Fb`, /encoded dots or slashes/);
    refused(`${base}/v2/a%5cb`, /encoded dots or slashes/);
    refused(base.replace('http://', 'http://user:pass@') + '/v2/items', /user name or password/);
    refused(base.replace('http://', 'https://') + '/v2/items', /not under any allowed URL prefix/);
    refused(`ftp://127.0.0.1/v2/items`, /only http and https/);
    refused(`http://127.0.0.1:1/v2/items`, /not under any allowed URL prefix/);
    const api = settings({
      http: { ...tools.http, allow: [allowEntry({ url: 'https://api.example.com/v1/' })] },
    });
    assert.equal(allowEntryFor(api, 'GET', 'https://API.example.com:443/v1/x?q=1', 'user').url.port, '');
    assert.throws(
      () => allowEntryFor(api, 'GET', 'https://api.example.com:8443/v1/x', 'user'),
      /not under any/,
    );
    assert.throws(
      () => allowEntryFor(api, 'GET', 'https://api.example.com.evil.net/v1/x', 'user'),
      /not under/,
    );
    refused('/v2/items', /not an absolute URL/);
    refused(`${base}/ops/x`, /needs the role operator; this user has the role user/);
    refused(`${base}/ops/x`, /needs the role operator/, 'auditor');

    const before = requestsSoFar();
    for (const url of [`${base}/v2evil`, `${base}/v2/../admin`, `${base}/v2/%2e%2e/admin`]) {
      assert.equal((await toolError(tool.run({ method: 'GET', url }, ctxFor('user')))).code, 'refused');
    }
    assert.equal(requestsSoFar(), before);
  });

  it('follows a redirect within the allowlist and refuses one that leaves it', async () => {
    const followed = await tool.run({ method: 'GET', url: `${base}/v2/in` }, ctxFor('user'));
    assert.match(followed, /^HTTP 200 OK\n/);
    assert.match(followed, /\{"items":\[1,2,3\]\}$/);

    const before = requestsSoFar();
    const err = await toolError(tool.run({ method: 'GET', url: `${base}/v2/out` }, ctxFor('user')));
    assert.equal(err.code, 'refused');
    assert.match(err.message, /redirected to http:\/\/localhost:\d+\/v2\/items, which is not allowed/);
    // the server saw the first request only
    assert.deepEqual(
      seen.slice(before).map((r) => r.url),
      ['/v2/out'],
    );

    const hops = await tool.run({ method: 'GET', url: `${base}/v2/hop3` }, ctxFor('user'));
    assert.match(hops, /^HTTP 200 OK\n.*\nfinal url: .*\/v2\/items\n/);

    const beforeLoop = requestsSoFar();
    const loop = await toolError(tool.run({ method: 'GET', url: `${base}/v2/loop` }, ctxFor('user')));
    assert.equal(loop.code, 'failed');
    assert.match(loop.message, /redirected more than 3 times/);
    assert.equal(requestsSoFar() - beforeLoop, 4);
  });

  it('turns a POST answered with 303 into a GET without the body', async () => {
    const out = await tool.run(
      { method: 'POST', url: `${base}/v2/after-post`, body: { name: 'x' } },
      ctxFor('user'),
    );
    const echoed = JSON.parse(out.split('\n\n')[1]!);
    assert.equal(echoed.method, 'GET');
    assert.equal(echoed.body, '');
  });

  it('adds the configured credentials, which the model can neither override nor read', async () => {
    const before = requestsSoFar();
    const out = await tool.run(
      {
        method: 'POST',
        url: `${base}/v2/echo`,
        headers: {
          Authorization: 'Bearer model-made',
          Cookie: 'a=b',
          'x-api-key': 'model-key',
          'X-HTTP-Method-Override': 'DELETE',
          Accept: 'application/json',
        },
        body: { hello: 'world' },
      },
      ctxFor('user'),
    );
    const sent = seen[before]!;
    assert.equal(sent.headers.authorization, token);
    assert.equal(sent.headers['x-api-key'], apiKey);
    assert.equal(sent.headers.cookie, undefined);
    // only content negotiation and conditional headers come from the model: no method override
    assert.equal(sent.headers['x-http-method-override'], undefined);
    assert.equal(sent.headers.accept, 'application/json');
    assert.equal(sent.headers['content-type'], 'application/json');
    assert.equal(sent.body, '{"hello":"world"}');
    // the endpoint echoes every header: the credential is still not handed to the model
    assert.ok(!out.includes('s3cret-token-0123456789') && !out.includes(apiKey), out);
    assert.match(out, /"authorization":"\[redacted\]"/);
    assert.match(out, /"x-api-key":"\[redacted\]"/);
    assert.match(
      out,
      /headers not sent \(set by core or not allowed\): authorization, cookie, x-api-key, x-http-method-override/,
    );
  });

  it('cuts a large response and describes a binary one', async () => {
    const out = await tool.run({ method: 'GET', url: `${base}/v2/big` }, ctxFor('user'));
    assert.equal(
      out,
      `HTTP 200 OK\ncontent-type: text/plain\n\n${'y'.repeat(1_024)}\n[response cut at 1024 bytes]`,
    );
    const image = await tool.run({ method: 'GET', url: `${base}/v2/image` }, ctxFor('user'));
    assert.equal(image, 'HTTP 200 OK\ncontent-type: image/png\n\n[300 bytes of image/png]');
    const missing = await tool.run({ method: 'GET', url: `${base}/v2/nothing` }, ctxFor('user'));
    assert.equal(missing, 'HTTP 404 Not Found\ncontent-type: text/plain\n\nnot here');
  });

  it('stops a request that takes longer than timeout_ms', async () => {
    const started = Date.now();
    const err = await toolError(tool.run({ method: 'GET', url: `${base}/v2/slow` }, ctxFor('user')));
    assert.equal(err.code, 'timeout');
    assert.ok(Date.now() - started < 2_500);
  });

  it('asks first for the methods the entry says, for nothing else', () => {
    const caller = { userId: 1, role: 'user' as const, name: 'x' };
    assert.equal(tool.confirm({ method: 'POST', url: `${base}/v2/items` }, caller), 'user');
    assert.equal(tool.confirm({ method: 'GET', url: `${base}/v2/items` }, caller), 'none');
    assert.equal(tool.confirm({ method: 'POST', url: 'http://elsewhere.example/' }, caller), 'none');
    assert.deepEqual((tool.parameters.properties as any).method.enum, ['GET', 'POST']);
    assert.match(tool.description, new RegExp(`${base}/v2/ \\(GET, POST\\) — POST must be approved first`));
    assert.ok(!tool.description.includes('s3cret'));
    assert.equal(httpRequestTool(settings()), undefined);
  });
});

describe('plugins', () => {
  it('loads and runs the example plugin', async () => {
    const tools = await loadPlugins(examples);
    assert.deepEqual(
      tools.map((t) => [t.name, t.source, t.role]),
      [['word_count', 'plugin', 'user']],
    );
    const wc = tools[0]!;
    assert.equal(wc.confirm({ text: 'x' }, { userId: 1, role: 'user', name: 'x' }), 'none');
    const out = JSON.parse(
      await wc.run({ text: 'Hello brave new world.\nSecond line here.' }, ctxFor('user')),
    );
    assert.deepEqual(out, {
      words: 7,
      characters: 40,
      characters_without_spaces: 34,
      lines: 2,
      sentences: 2,
    });
    const chinese = JSON.parse(await wc.run({ text: '我们喜欢学习。', locale: 'zh' }, ctxFor('user')));
    assert.equal(chinese.characters, 7);
    assert.ok(chinese.words >= 2 && chinese.words < 6, `words: ${chinese.words}`);
  });

  it('a missing or empty folder has no plugins', async () => {
    assert.deepEqual(await loadPlugins(path.join(tmp, 'no-such-folder')), []);
    const empty = await mkdtemp(path.join(tmp, 'empty-'));
    await writeFile(path.join(empty, 'README.md'), '# nothing here');
    assert.deepEqual(await loadPlugins(empty), []);
  });

  it('fails with one PluginError naming every broken file', async () => {
    const dir = path.join(await mkdtemp(path.join(tmp, 'broken-')), 'plugins');
    await mkdir(dir);
    const valid = (name: string, extra = '') =>
      `export default { name: '${name}', description: 'd', parameters: { type: 'object' }, run: () => 'ok'${extra} };\n`;
    const files: Record<string, string> = {
      'a_syntax.ts': `export default { name: 'a_syntax',, };\n`,
      'b_no_run.ts': `export default { name: 'b_no_run', description: 'd', parameters: { type: 'object' } };\n`,
      'c_schema.mjs': `export default { name: 'c_schema', description: 'd', parameters: { type: 'object', properties: { x: { type: 'strin' } } }, run: () => 1 };\n`,
      'd_first.ts': valid('same_name'),
      'e_second.js': valid('same_name'),
      'f_builtin.ts': valid('current_time'),
      'g_throws.mts': `throw new Error('boom at import');\n`,
      'h_fields.ts': valid('h_fields', `, rol: 'admin', role: 'root', confirm: 'maybe'`),
      'i_no_default.ts': `export const tool = 1;\n`,
      'z_good.ts': valid('z_good'),
      // skipped: helpers, hidden files, declarations and other file types
      '_helper.ts': `throw new Error('helpers are not plugins');\n`,
      '.hidden.ts': `throw new Error('hidden files are not plugins');\n`,
      'types.d.ts': `declare const x: number;\n`,
      'notes.json': `{`,
    };
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);

    let error: unknown;
    try {
      await loadPlugins(dir, new Set(['current_time', 'run_command']));
    } catch (err) {
      error = err;
    }
    assert.ok(error instanceof PluginError, `expected a PluginError, got ${String(error)}`);
    const byFile = new Map<string, string[]>();
    for (const p of error.problems) byFile.set(p.file, [...(byFile.get(p.file) ?? []), p.message]);
    assert.deepEqual([...byFile.keys()].sort(), [
      'plugins/a_syntax.ts',
      'plugins/b_no_run.ts',
      'plugins/c_schema.mjs',
      'plugins/e_second.js',
      'plugins/f_builtin.ts',
      'plugins/g_throws.mts',
      'plugins/h_fields.ts',
      'plugins/i_no_default.ts',
    ]);
    assert.match(byFile.get('plugins/a_syntax.ts')!.join(), /cannot be loaded: SyntaxError: .* \(line 1\)/);
    assert.match(byFile.get('plugins/b_no_run.ts')!.join(), /run must be a function/);
    assert.match(byFile.get('plugins/c_schema.mjs')!.join(), /not a valid JSON Schema/);
    assert.match(
      byFile.get('plugins/e_second.js')!.join(),
      /same_name is already used by plugins\/d_first\.ts/,
    );
    assert.match(
      byFile.get('plugins/f_builtin.ts')!.join(),
      /current_time is already a built-in or configured tool/,
    );
    assert.match(byFile.get('plugins/g_throws.mts')!.join(), /cannot be loaded: Error: boom at import/);
    const fields = byFile.get('plugins/h_fields.ts')!.join('\n');
    assert.match(fields, /unknown field "rol"/);
    assert.match(fields, /role must be one of admin, operator, auditor, user/);
    assert.match(fields, /confirm must be one of none, user, operator/);
    assert.match(byFile.get('plugins/i_no_default.ts')!.join(), /needs a default export/);

    // the message has one line per broken file, each naming it
    const lines = error.message.split('\n');
    assert.equal(lines.length, 1 + byFile.size);
    for (const file of byFile.keys()) assert.equal(lines.filter((l) => l.startsWith(`${file}: `)).length, 1);
  });

  it('plugin tools turn results into text and keep confirm fail-closed', async () => {
    const dir = await mkdtemp(path.join(tmp, 'plugins-'));
    await writeFile(
      path.join(dir, 'deploy.ts'),
      `export default {
        name: 'deploy',
        description: 'deploys',
        parameters: { type: 'object', properties: { env: { type: 'string' } } },
        role: 'operator',
        confirm: (args: { env?: string }) => args.env === 'prod' ? 'operator' : args.env === 'bad' ? 'sure' : 'none',
        run: async (args: { env?: string }) => ({ deployed: args.env ?? null }),
      };\n`,
    );
    const [deploy] = await loadPlugins(dir);
    const caller = { userId: 1, role: 'operator' as const, name: 'x' };
    assert.equal(deploy!.role, 'operator');
    assert.equal(deploy!.confirm({ env: 'prod' }, caller), 'operator');
    assert.equal(deploy!.confirm({ env: 'dev' }, caller), 'none');
    assert.equal(deploy!.confirm({ env: 'bad' }, caller), 'operator');
    assert.equal(await deploy!.run({ env: 'dev' }, ctxFor('operator')), '{"deployed":"dev"}');
  });
});
