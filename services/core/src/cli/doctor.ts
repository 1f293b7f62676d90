/** `pincer doctor`: one pass/fail line per dependency, with the fix for each failure. */
import { ConfigError } from '@pincer/shared';
import { type CoreConfig, loadConfig } from '../config.ts';
import { createPool } from '../repositories/db.ts';
import { migrationStatus } from '../repositories/migrations.ts';
import { pingRedis } from '../repositories/queues.ts';
import { type Command, type Context, errorReason as why } from './command.ts';

interface Check {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}

const TIMEOUT_MS = 5000;

const pass = (name: string, detail: string): Check => ({ name, status: 'pass', detail });
const fail = (name: string, detail: string, fix: string): Check => ({ name, status: 'fail', detail, fix });
const skip = (name: string, detail: string): Check => ({ name, status: 'skip', detail });

interface NodeStatus {
  id: string;
  url: string;
  probe: string;
  probe_detail?: string;
  breaker: string;
  last_error: string | null;
  requests: number;
}

/** The fields doctor reads from the answers it gets (any of them may be missing). */
interface Answer {
  nodes_usable?: number;
  nodes_total?: number;
  providers?: Array<{ id: string; nodes: NodeStatus[] }>;
  ok?: boolean;
  description?: string;
  result?: { username?: string };
  code?: number;
  msg?: string;
}

async function getJson(url: string, init: RequestInit = {}): Promise<{ status: number; json?: Answer }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
  const text = await res.text();
  let json: Answer | undefined;
  try {
    json = JSON.parse(text) as Answer;
  } catch {
    json = undefined;
  }
  return { status: res.status, json };
}

async function postgresChecks(url: string | undefined): Promise<Check[]> {
  if (!url || !/^postgres(ql)?:\/\//.test(url))
    return [
      fail(
        'postgres',
        'DATABASE_URL is not set to a postgres:// URL',
        'set DATABASE_URL (postgres://user:password@host:5432/db)',
      ),
      skip('migrations', 'no database to check'),
    ];
  const pool = createPool(url, 1);
  try {
    const { rows } = await pool.query<{ v: string; m: string | null }>(
      "SELECT current_setting('server_version') AS v, to_regclass('schema_migrations')::text AS m",
    );
    const host = new URL(url).host;
    const out = [pass('postgres', `connected to ${host} (PostgreSQL ${rows[0]!.v})`)];
    const fixMigrate = 'apply them: docker compose run --rm migrate (or npm run migrate -w services/core)';
    if (!rows[0]!.m) {
      out.push(fail('migrations', 'the database has no schema yet', fixMigrate));
      return out;
    }
    const { pending, changed } = await migrationStatus(pool);
    if (changed.length)
      out.push(
        fail(
          'migrations',
          `applied migrations were edited afterwards: ${changed.join(', ')}`,
          'restore those files from the release you run; add a new migration instead of editing one',
        ),
      );
    else if (pending.length)
      out.push(
        fail(
          'migrations',
          `${pending.length} pending: ${pending.map((m) => `${m.version}_${m.name}`).join(', ')}`,
          fixMigrate,
        ),
      );
    else out.push(pass('migrations', 'the schema is up to date'));
    return out;
  } catch (err) {
    return [
      fail(
        'postgres',
        `cannot connect: ${why(err)}`,
        'check DATABASE_URL (host, port, user, password, database) and that Postgres runs: docker compose ps postgres',
      ),
      skip('migrations', 'no database to check'),
    ];
  } finally {
    await pool.end().catch(() => {});
  }
}

async function redisCheck(url: string): Promise<Check> {
  try {
    await pingRedis(url, TIMEOUT_MS);
    return pass('redis', `PING answered by ${new URL(url).host}`);
  } catch (err) {
    return fail(
      'redis',
      `no PONG: ${why(err)}`,
      'check REDIS_URL and that Redis runs: docker compose ps redis',
    );
  }
}

async function proxyChecks(proxyUrl: string, key: string | undefined): Promise<Check[]> {
  const base = proxyUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
  try {
    const ready = await getJson(`${base}/readyz`);
    const out: Check[] = [];
    if (ready.status === 200)
      out.push(
        pass(
          'llm-proxy',
          `ready at ${base} (${ready.json?.nodes_usable}/${ready.json?.nodes_total} upstream nodes usable)`,
        ),
      );
    else
      out.push(
        fail(
          'llm-proxy',
          `not ready at ${base}: ${JSON.stringify(ready.json ?? ready.status)}`,
          'see the upstream lines below and docker compose logs llm-proxy',
        ),
      );
    if (!key) return [...out, skip('upstreams', 'LLM_PROXY_API_KEY is not set')];
    const status = await getJson(`${base}/status`, { headers: { authorization: `Bearer ${key}` } });
    if (status.status === 401 || status.status === 403)
      return [
        ...out,
        fail(
          'upstreams',
          `llm-proxy refused LLM_PROXY_API_KEY (${status.status})`,
          'give core the same LLM_PROXY_API_KEY as llm-proxy',
        ),
      ];
    for (const p of status.json?.providers ?? []) {
      for (const n of p.nodes) {
        const name = `upstream ${p.id}/${n.id}`;
        if (n.breaker === 'open' || n.probe === 'down')
          out.push(
            fail(
              name,
              `${n.url}: ${n.breaker === 'open' ? 'circuit open' : 'health probe failing'}${n.last_error ? `: ${n.last_error}` : ''}${n.probe_detail ? ` (${n.probe_detail})` : ''}`,
              `check that the inference server at ${n.url} runs and that models.yml points at it`,
            ),
          );
        else out.push(pass(name, `${n.url} (${n.breaker}, probe ${n.probe}, ${n.requests} requests)`));
      }
    }
    return out;
  } catch (err) {
    return [
      fail(
        'llm-proxy',
        `cannot reach ${base}: ${why(err)}`,
        'check LLM_PROXY_URL and that llm-proxy runs: docker compose ps llm-proxy',
      ),
      skip('upstreams', 'llm-proxy unreachable'),
    ];
  }
}

async function telegramCheck(env: NodeJS.ProcessEnv): Promise<Check> {
  const token = env.TELEGRAM_BOT_TOKEN;
  if (!token) return skip('telegram', 'TELEGRAM_BOT_TOKEN is not set');
  const root = (env.TELEGRAM_API_ROOT || 'https://api.telegram.org').replace(/\/+$/, '');
  try {
    const r = await getJson(`${root}/bot${token}/getMe`);
    if (r.json?.ok) return pass('telegram', `bot @${r.json.result?.username} (getMe)`);
    return fail(
      'telegram',
      `getMe refused: ${r.json?.description ?? r.status}`,
      'check TELEGRAM_BOT_TOKEN: the token @BotFather gave you, without spaces',
    );
  } catch (err) {
    return fail(
      'telegram',
      `cannot reach ${root}: ${why(err)}`,
      'check TELEGRAM_API_ROOT and outbound HTTPS (proxy, firewall)',
    );
  }
}

async function feishuCheck(env: NodeJS.ProcessEnv): Promise<Check> {
  const appId = env.FEISHU_APP_ID;
  if (!appId) return skip('feishu', 'FEISHU_APP_ID is not set');
  const domain = (env.FEISHU_DOMAIN || 'https://open.feishu.cn').replace(/\/+$/, '');
  try {
    const r = await getJson(`${domain}/open-apis/auth/v3/tenant_access_token/internal`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ app_id: appId, app_secret: env.FEISHU_APP_SECRET ?? '' }),
    });
    if (r.json?.code === 0) return pass('feishu', `app ${appId}: tenant access token issued`);
    return fail(
      'feishu',
      `tenant token refused: ${r.json?.msg ?? r.status}`,
      'check FEISHU_APP_ID and FEISHU_APP_SECRET (developer console, Credentials & Basic Info)',
    );
  } catch (err) {
    return fail(
      'feishu',
      `cannot reach ${domain}: ${why(err)}`,
      'check FEISHU_DOMAIN and outbound HTTPS (proxy, firewall)',
    );
  }
}

/** Every check, in the order an operator fixes them. */
async function runChecks(env: NodeJS.ProcessEnv): Promise<Check[]> {
  const checks: Check[] = [];
  let config: CoreConfig | undefined;
  try {
    config = loadConfig(env);
    checks.push(
      pass('config', `config.yaml and routing.yaml in ${env.PINCER_CONFIG_DIR ?? './config'} are valid`),
    );
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    checks.push(fail('config', err.message, 'correct each problem listed, then run pincer doctor again'));
  }
  // with a broken config the other checks still run on what the environment says
  const [pg, redis, proxy, telegram, feishu] = await Promise.all([
    postgresChecks(config?.databaseUrl ?? env.DATABASE_URL),
    redisCheck(config?.redisUrl ?? env.REDIS_URL ?? 'redis://127.0.0.1:6379'),
    proxyChecks(
      config?.llmProxyUrl ?? env.LLM_PROXY_URL ?? 'http://127.0.0.1:8000/v1',
      config?.llmProxyKey ?? env.LLM_PROXY_API_KEY,
    ),
    telegramCheck(env),
    feishuCheck(env),
  ]);
  return [...checks, ...pg, redis, ...proxy, telegram, feishu];
}

function render(ctx: Context, checks: Check[]) {
  const width = Math.max(...checks.map((c) => c.name.length));
  const pad = ' '.repeat(width + 8);
  for (const c of checks) {
    const [first, ...more] = c.detail.split('\n');
    ctx.stdout.write(`${c.status.toUpperCase().padEnd(4)}  ${c.name.padEnd(width)}  ${first}\n`);
    for (const line of more) ctx.stdout.write(`${pad}${line}\n`);
    if (c.fix) ctx.stdout.write(`${pad}fix: ${c.fix}\n`);
  }
}

export const doctorCommands: Command[] = [
  {
    path: ['doctor'],
    args: '[--json]',
    summary: 'Check config, Postgres, migrations, Redis, llm-proxy, model upstreams and platform credentials',
    details: `Runs where core runs (docker compose exec core pincer doctor) and reads core's environment:
PINCER_CONFIG_DIR, DATABASE_URL, REDIS_URL, LLM_PROXY_URL, LLM_PROXY_API_KEY, and when set
TELEGRAM_BOT_TOKEN (TELEGRAM_API_ROOT) and FEISHU_APP_ID/FEISHU_APP_SECRET (FEISHU_DOMAIN).
Prints one PASS, FAIL or SKIP line per check, with the fix under each failure.
Exit 1 if any check failed.`,
    options: { json: { type: 'boolean' } },
    async run(ctx) {
      if (ctx.positionals.length) return ctx.usage(`unexpected argument "${ctx.positionals[0]}"`);
      const checks = await runChecks(ctx.env);
      const failed = checks.filter((c) => c.status === 'fail').length;
      if (ctx.values.json) ctx.stdout.write(`${JSON.stringify(checks)}\n`);
      else {
        render(ctx, checks);
        ctx.stdout.write(
          failed ? `\n${failed} check${failed === 1 ? '' : 's'} failed\n` : '\nall checks passed\n',
        );
      }
      return failed ? 1 : 0;
    },
  },
];
