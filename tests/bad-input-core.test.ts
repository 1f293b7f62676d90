// Bad input against core's REST API (/api/v1/*, every route of the route table): refused with a 4xx,
// never a 5xx or a hang, nothing written to the database or queued, no secret in the logs.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { parse as parseQuery } from 'node:querystring';
import { after, before, describe, it } from 'node:test';
import { createLogger, QueueName } from '@pincer/shared';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { loadConfig } from '../services/core/src/config.ts';
import { type CoreHandle, startCore } from '../services/core/src/core.ts';
import { allowedRoles, type Route } from '../services/core/src/http/route.ts';
import { routes } from '../services/core/src/http/routes/index.ts';
import type { HttpDeps } from '../services/core/src/http/types.ts';
import type { Db } from '../services/core/src/repositories/db.ts';
import { activeConversation } from '../services/core/src/repositories/conversations.ts';
import { ROLES, type Role } from '../services/core/src/repositories/keys.ts';
import { storeReply, storeUserMessage } from '../services/core/src/repositories/messages.ts';
import { pairingCode } from '../services/core/src/repositories/pairing.ts';
import { identify } from '../services/core/src/repositories/people.ts';
import { createTestDatabase, type TestDatabase, writeConfigDir } from '../services/core/test/db-harness.ts';
import { captureLogs, freePort, REDIS_URL } from '../services/core/test/stack.ts';
import {
  type Answer,
  assertQueued,
  type Case,
  type Client,
  Family,
  type Headers,
  headerSafe,
  hostileField,
  hostileJson,
  hostileString,
  jsonOfSize,
  malformedJson,
  missingField,
  nearMiss,
  oversized,
  pct,
  queueCounts,
  raw,
  type Segment,
  segment,
  WRONG_TYPES,
} from './bad-input-kit.ts';

const ADMIN_TOKEN = `admin-${randomBytes(24).toString('hex')}`;
const PROXY_KEY = `proxy-${randomBytes(16).toString('hex')}`;
const DB_PASSWORD = `dbpass-${randomBytes(12).toString('hex')}`;
const MAX_JSON = 1024 * 1024;
const MAX_DOCUMENT = 128 * 1024;
const BATCH = 12;
const RUNS = 500; // per phase: 2 × 500 × 12 = 12,000 cases

const api = routes.filter((r) => r.path.startsWith('/api/v1/'));
const key = (r: Route) => `${r.method.toUpperCase()} ${r.path}`;

/** A valid body per route with one (so every case can break exactly one thing of a request that would pass). */
const SAMPLE_BODIES: Record<string, Record<string, unknown>> = {
  'POST /api/v1/chat': { message: 'hello' },
  'POST /api/v1/keys': { name: 'fuzz', role: 'user' },
  'POST /api/v1/knowledge/documents': { title: 'Title', content: 'Some text.' },
  'POST /api/v1/knowledge/query': { query: 'text' },
  'POST /api/v1/memories': { content: 'likes tea' },
  'POST /api/v1/users/:id/role': { role: 'user' },
  'POST /api/v1/tasks': { text: 'stretch', cron: '0 9 * * *', chat: { platform: 'telegram', id: '1' } },
  'POST /api/v1/workflows/:name/run': { input: { text: 'hi' } },
};

/** What the routes' limits are computed from (the running core's configuration). */
let deps: HttpDeps;
/** The largest JSON body a route reads: its own maxBodyBytes or express's 1 MB. */
const jsonLimit = (r: Route) => r.maxBodyBytes?.(deps) ?? MAX_JSON;

/** What one request to a route is made of. */
interface Parts {
  id?: Segment;
  query: string;
  headers: Headers;
  body?: string | Buffer;
  chunked?: boolean;
  cutAfter?: number;
}

function probeOf(r: Route, p: Parts) {
  // a function, so a hostile id such as $` is inserted as written, not as a replacement pattern
  const path = r.path.replace(/:\w+/, () => p.id?.text ?? '1') + p.query;
  const headers = { ...p.headers, ...(p.chunked ? { 'transfer-encoding': 'chunked' } : {}) };
  return { method: r.method.toUpperCase(), path, headers, body: p.body, cutAfter: p.cutAfter };
}

/** The route's path parameter (`id`, or `name` for workflows), or '' when it has none. */
const paramOf = (r: Route) => /:(\w+)/.exec(r.path)?.[1] ?? '';

/** Whether the route's path pattern still matches (a raw `/` or `%` in a segment may change that). */
const routed = (p: Parts) => p.id === undefined || p.id.routed;

const isObject = (v: unknown) => v !== null && typeof v === 'object';

/** A query string its route's schema refuses, accepts, or either (express parses it with node:querystring). */
function queryArb(r: Route, want: 'invalid' | 'valid' | 'any'): fc.Arbitrary<string> {
  const shape = Object.keys((r.query as unknown as { shape?: object } | undefined)?.shape ?? {});
  const names = fc.oneof(
    { weight: 4, arbitrary: shape.length ? fc.constantFrom(...shape) : fc.constant('q') },
    { weight: 1, arbitrary: hostileString },
  );
  const pair = fc
    .tuple(names, hostileString, fc.constantFrom('pct', 'pct', 'raw', 'array', 'nested'))
    .map(([k, v, how]) =>
      how === 'pct'
        ? `${pct(k)}=${pct(v)}`
        : how === 'raw'
          ? `${raw(k)}=${raw(v)}`
          : how === 'array'
            ? `${pct(k)}=${pct(v)}&${pct(k)}=1`
            : `${pct(k)}[a]=${pct(v)}`,
    );
  const cursor = fc
    // conversations' `before` cursor: base64url of "<microseconds>.<36 of [0-9a-f-]>"
    .tuple(
      fc.bigInt({ min: 0n, max: 10n ** 17n - 1n }),
      fc
        .array(fc.constantFrom(...'0123456789abcdef-'), { minLength: 36, maxLength: 36 })
        .map((cs) => cs.join('')),
    )
    .map(([us, id]) => `before=${Buffer.from(`${us}.${id}`).toString('base64url')}`);
  const qs = fc
    .array(fc.oneof({ weight: 5, arbitrary: pair }, { weight: 1, arbitrary: cursor }), {
      minLength: 1,
      maxLength: 3,
    })
    .map((ps) => `?${ps.join('&')}`);
  if (want === 'any' || !r.query) return fc.oneof(fc.constant(''), qs);
  const valid = (q: string) => r.query!.safeParse(parseQuery(q.slice(1))).success;
  return qs.filter((q) => (want === 'valid' ? valid(q) : !valid(q)));
}

const validId = (r: Route): Segment => {
  const v = r.params?.safeParse({ [paramOf(r)]: randomUUID() }).success ? randomUUID() : '424242';
  return { value: v, text: v, routed: true, decoded: v };
};

/** Authorization headers that must get nobody in: missing, malformed, wrong, revoked, near misses. */
function badAuth(revoked: string, keys: Record<Role, string>): fc.Arbitrary<Headers> {
  const token = fc.oneof(
    hostileString.filter((s) => headerSafe(s) && s !== ''),
    nearMiss(ADMIN_TOKEN),
    nearMiss(keys.operator),
    fc.constant(revoked),
    fc.constant(`pk_${randomBytes(32).toString('base64url')}`),
    fc.constant(PROXY_KEY),
    fc.constant(`${ADMIN_TOKEN} ${ADMIN_TOKEN}`),
  );
  return fc.oneof<fc.Arbitrary<Headers>[]>(
    fc.constant({}),
    fc.constantFrom('Bearer', 'Bearer ', 'bearer', 'Basic YWRtaW46YWRtaW4=', 'Token', '').map((a) => ({
      authorization: a,
    })),
    token.map((t) => ({ authorization: `Bearer ${t}` })),
    token.map((t) => ({ authorization: `Basic ${Buffer.from(`admin:${t}`).toString('base64')}` })),
    fc.constant({ authorization: `Token ${ADMIN_TOKEN}` }),
    fc.constant({ authorization: `Bearer ${ADMIN_TOKEN} extra` }),
    // the token where another API puts it: core reads only Authorization
    fc.constantFrom<Headers>(
      { 'x-api-key': ADMIN_TOKEN },
      { 'api-key': ADMIN_TOKEN },
      { cookie: `token=${ADMIN_TOKEN}` },
    ),
    fc.constant({ authorization: ['Bearer wrong-token-0123456789abcdef', `Bearer ${ADMIN_TOKEN}`] }),
  );
}

/** Bodies of every kind, to go with a request refused before its body matters. */
function anyBody(r: Route): fc.Arbitrary<Pick<Parts, 'body' | 'chunked' | 'cutAfter'> & { type?: string }> {
  const sample = SAMPLE_BODIES[key(r)] ?? { a: 1 };
  return fc.oneof(
    fc.constant({}),
    fc.constant({ body: JSON.stringify(sample), type: 'application/json' }),
    hostileJson.map((v) => ({ body: JSON.stringify(v) ?? 'null', type: 'application/json' })),
    malformedJson(fc.constant(JSON.stringify(sample))).map((body) => ({ body, type: 'application/json' })),
    oversized(jsonLimit(r)).map(({ body, chunked }) => ({ body, chunked, type: 'application/json' })),
    fc
      .tuple(fc.constantFrom(...WRONG_TYPES), fc.constant(JSON.stringify(sample)))
      .map(([type, body]) => ({ body, type })),
    fc.integer({ min: 1, max: JSON.stringify(sample).length - 1 }).map((n) => ({
      body: JSON.stringify(sample),
      type: 'application/json',
      cutAfter: n,
    })),
  );
}

const withType = (headers: Headers, type?: string) =>
  type === undefined ? headers : { ...headers, 'content-type': type };

/** Phase 1: requests that are not authenticated (or authenticated with a role the route refuses). */
function unauthenticated(revoked: string, keys: Record<Role, string>): fc.Arbitrary<Case> {
  const perRoute = fc.constantFrom(...api).chain((r) =>
    fc
      .record({
        id: segment(hostileString),
        query: queryArb(r, 'any'),
        auth: badAuth(revoked, keys),
        body: anyBody(r),
        forbidden: fc.boolean(),
      })
      .map(({ id, query, auth, body, forbidden }): Case => {
        // one in two: a real key of a role the route does not allow (403 rather than 401)
        const refusedRole = ROLES.find((role) => role !== 'admin' && !allowedRoles(r).includes(role));
        const asForbidden = forbidden && refusedRole !== undefined;
        const headers = withType(
          asForbidden ? { authorization: `Bearer ${keys[refusedRole]}` } : auth,
          body.type,
        );
        const parts: Parts = { id: paramOf(r) ? id : undefined, query, headers, ...body };
        return {
          label: `${asForbidden ? `${refusedRole} key` : 'no valid key'} → ${key(r)}`,
          probe: probeOf(r, parts),
          expect: 'refused',
          // a path parameter the router cannot decode is refused before anything else
          allow: !routed(parts)
            ? undefined
            : parts.id && parts.id.decoded === undefined
              ? [400]
              : [asForbidden ? 403 : 401],
        };
      }),
  );
  // paths no route has, and methods no route takes
  const unknown = fc
    .record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE'),
      tail: fc.array(segment(hostileString), { minLength: 1, maxLength: 3 }),
      auth: badAuth(revoked, keys),
    })
    .map(({ method, tail, auth }): Case => ({
      label: 'an unknown path',
      probe: { method, path: `/api/v1/${tail.map((s) => s.text).join('/')}`, headers: auth },
      expect: 'refused',
    }));
  const wrongMethod = fc
    .tuple(fc.constantFrom(...api), fc.constantFrom('PUT', 'PATCH'))
    .map(([r, method]): Case => ({
      label: `${method} ${r.path}`,
      probe: {
        method,
        path: r.path.replace(/:\w+/, '1'),
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      },
      expect: 'refused',
      allow: [404],
    }));
  return fc.oneof(
    { weight: 12, arbitrary: perRoute },
    { weight: 2, arbitrary: unknown },
    { weight: 1, arbitrary: wrongMethod },
  );
}

/** A multipart/form-data body. */
function multipart(parts: Array<{ name: string; filename?: string; type?: string; data: string | Buffer }>) {
  const boundary = `----fuzz${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`,
      ),
      Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data),
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

/** Uploads to /api/v1/knowledge/files that must be refused, each for its own reason. */
interface Upload {
  body: Buffer | string;
  type: string;
  allow: number[];
  why: string;
}

function badUploads(maxBytes: number): fc.Arbitrary<Upload> {
  const md = { name: 'file', filename: 'notes.md', type: 'text/markdown', data: '# Notes\n\ntext' };
  const title = hostileString.filter((t) => t.includes('\u0000') || t.trim() === '' || t.length > 500);
  return fc.oneof<fc.Arbitrary<Upload>[]>(
    fc
      .constantFrom(...WRONG_TYPES.filter((t) => !t.startsWith('multipart')), 'application/json')
      .map((type) => ({ body: '{"title":"x"}', type, allow: [415], why: 'not multipart' })),
    fc.constant({ ...multipart([{ name: 'title', data: 'no file' }]), allow: [400], why: 'no file' }),
    fc.constant({ ...multipart([md, { ...md, filename: 'b.md' }]), allow: [400], why: 'two files' }),
    fc.constant({ ...multipart([{ ...md, name: 'document' }]), allow: [400], why: 'file in another field' }),
    fc.constant({
      ...multipart([{ ...md, data: 'x'.repeat(maxBytes + 1) }]),
      allow: [413],
      why: 'file just over the limit',
    }),
    title.map((t) => ({ ...multipart([md, { name: 'title', data: t }]), allow: [400], why: 'bad title' })),
    hostileString
      .filter((m) => {
        try {
          const v: unknown = JSON.parse(m);
          return !isObject(v) || Array.isArray(v);
        } catch {
          return m !== '';
        }
      })
      .map((m) => ({ ...multipart([md, { name: 'metadata', data: m }]), allow: [400], why: 'bad metadata' })),
    fc.constant({
      body: `--x\r\nContent-Disposition: form-data; name="file"; filename="a.md"\r\n\r\ncut`,
      type: 'multipart/form-data; boundary=x',
      allow: [400],
      why: 'multipart cut short',
    }),
    fc.constant({ body: 'garbage', type: 'multipart/form-data', allow: [400], why: 'no boundary' }),
  );
}

/** Phase 2: the admin token, and one thing wrong with the request (or a hostile but valid GET). */
function authenticated(): fc.Arbitrary<Case> {
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const cases: fc.Arbitrary<Case>[] = [];
  for (const r of api) {
    const name = key(r);
    const id = () => (paramOf(r) ? validId(r) : undefined);
    if (r.params)
      cases.push(
        segment(hostileString)
          // a segment that changes the path (`/`, `?`, empty) may name another route: not this case
          .filter(
            (s) =>
              s.routed &&
              (s.decoded === undefined || !r.params!.safeParse({ [paramOf(r)]: s.decoded }).success),
          )
          .map((s): Case => ({
            label: `invalid path parameter → ${name}`,
            probe: probeOf(r, { id: s, query: '', headers: admin }),
            expect: 'refused',
            allow: [400],
          })),
      );
    if (r.query)
      cases.push(
        queryArb(r, 'invalid').map((query): Case => ({
          label: `invalid query → ${name}`,
          probe: probeOf(r, { id: id(), query, headers: admin }),
          expect: 'refused',
          allow: [400],
        })),
      );
    // reads with hostile but well-formed filters: answered, not a 5xx, nothing written
    if (r.method === 'get' && (r.query || r.params))
      cases.push(
        fc
          .record({
            query: r.query ? queryArb(r, 'valid') : fc.constant(''),
            id: r.params
              ? segment(fc.oneof(hostileString, fc.uuid(), fc.nat().map(String))).filter(
                  (s) =>
                    s.routed &&
                    s.decoded !== undefined &&
                    r.params!.safeParse({ [paramOf(r)]: s.decoded }).success,
                )
              : fc.constant(undefined),
          })
          .map(({ query, id: seg }): Case => ({
            label: `hostile but valid read → ${name}`,
            probe: probeOf(r, { id: seg ?? id(), query, headers: admin }),
            expect: 'tolerated',
          })),
      );
    if (r.upload)
      cases.push(
        badUploads(r.upload.maxBytes(deps)).map((u): Case => ({
          label: `upload: ${u.why} → ${name}`,
          probe: probeOf(r, { query: '', headers: { ...admin, 'content-type': u.type }, body: u.body }),
          expect: 'refused',
          allow: u.allow,
        })),
      );
    else if (r.body) {
      const sample = SAMPLE_BODIES[name];
      assert.ok(sample, `${name} has a sample body in SAMPLE_BODIES`);
      const schema = r.body;
      const invalid = (v: unknown) => !isObject(v) || !schema.safeParse(v).success;
      const mutated = fc.oneof(
        hostileField(sample),
        missingField(sample),
        hostileField(sample, hostileString),
        hostileJson,
      );
      const json = (body: string | Buffer, allow: number[], why: string, type = 'application/json') =>
        ({
          label: `${why} → ${name}`,
          probe: probeOf(r, { query: '', headers: { ...admin, 'content-type': type }, body }),
          expect: 'refused',
          allow,
        }) satisfies Case;
      cases.push(
        mutated.filter(invalid).map((v) => json(JSON.stringify(v), [400], 'a body its schema refuses')),
        malformedJson(fc.constant(JSON.stringify(sample))).map((b) => json(b, [400], 'malformed JSON')),
        fc
          .constantFrom(...WRONG_TYPES)
          // JSON in a charset it is not written in: unreadable (400) or unsupported (415)
          .map((t) =>
            json(
              JSON.stringify(sample),
              t.startsWith('application/json') ? [400, 415] : [415],
              `content type ${t}`,
              t,
            ),
          ),
        oversized(jsonLimit(r)).map(({ body, chunked }): Case => ({
          label: `${chunked ? 'chunked ' : ''}body just over the limit → ${name}`,
          probe: probeOf(r, {
            query: '',
            headers: { ...admin, 'content-type': 'application/json' },
            body,
            chunked,
          }),
          expect: 'refused',
          allow: [413],
        })),
        fc.constant(json(jsonOfSize(jsonLimit(r)), [400], 'a body exactly at the limit, of the wrong shape')),
        fc.integer({ min: 1, max: JSON.stringify(sample).length - 1 }).map((n): Case => ({
          label: `client gone after ${n} bytes → ${name}`,
          probe: {
            ...probeOf(r, {
              query: '',
              headers: { ...admin, 'content-type': 'application/json' },
              body: JSON.stringify(sample),
            }),
            cutAfter: n,
          },
          expect: 'refused',
        })),
      );
    }
  }
  return fc.oneof(...cases);
}

/** Every row of every table (a usage hint aside) and every sequence: what "nothing written" means. */
async function snapshot(db: Db): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const tables = await db.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
     WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`,
  );
  for (const { name } of tables.rows) {
    // api_keys.last_used_at is refreshed at most once a minute on use, by design; every other column counts
    const { rows } = await db.query<{ n: number; sum: string }>(
      `SELECT count(*)::int AS n, md5(coalesce(string_agg((to_jsonb(t) - 'last_used_at')::text, E'\\n' ORDER BY (to_jsonb(t) - 'last_used_at')::text), '')) AS sum FROM "${name}" t`,
    );
    out[name] = `${rows[0]!.n} rows, ${rows[0]!.sum}`;
  }
  const seqs = await db.query<{ name: string; v: string | null }>(
    `SELECT sequencename AS name, last_value::text AS v FROM pg_sequences WHERE schemaname = 'public'`,
  );
  for (const s of seqs.rows) out[`sequence ${s.name}`] = String(s.v);
  return out;
}

describe('bad input: core REST API', () => {
  const family = new Family('core API', { batch: BATCH, runsPerPhase: RUNS });
  let t: TestDatabase;
  let core: CoreHandle;
  let logs: string[];
  let client: Client;
  let redis: Redis;
  const prefix = `pincer-test-${randomBytes(6).toString('hex')}`;
  const keys = {} as Record<Role, string>;
  let revoked = '';

  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const a = await client.send({
      method,
      path,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: a!.status, json: JSON.parse(a!.text || 'null') };
  };

  before(async () => {
    t = await createTestDatabase();
    family.onClose(() => t.drop());
    // trust authentication ignores the password, but core must still never log it
    const url = new URL(t.url);
    url.password = DB_PASSWORD;
    const dir = writeConfigDir({
      system: { redis_prefix: prefix, max_concurrency: 4 },
      knowledge: { max_document_bytes: MAX_DOCUMENT },
    });
    family.onClose(() => rmSync(dir, { recursive: true, force: true }));
    // closed after core: what core left under its prefix goes too
    redis = family.redis(prefix);
    const config = loadConfig({
      DATABASE_URL: url.toString(),
      REDIS_URL,
      // nothing here reaches the model: a closed port makes sure of it
      LLM_PROXY_URL: `http://127.0.0.1:${await freePort()}/v1`,
      LLM_PROXY_API_KEY: PROXY_KEY,
      PINCER_ADMIN_TOKEN: ADMIN_TOKEN,
      PINCER_CONFIG_DIR: dir,
    });
    assert.ok(config.secrets.includes(DB_PASSWORD));
    const log = createLogger({ service: 'core', level: 'debug', secrets: [...config.secrets] });
    logs = captureLogs(log);
    // no workers: nothing but the requests under test touches the database or the queues
    core = await startCore(config, log, { host: '127.0.0.1', port: 0, workers: false });
    family.onClose(() => core.shutdown(2000));
    deps = { config: core.configManager.live } as unknown as HttpDeps;
    client = family.connect(core.url);

    // something to read and to protect: keys of every role, a revoked one, a conversation, a memory,
    // a pairing request, a knowledge document (its ingestion stays queued)
    for (const role of ROLES) {
      const r = await call('POST', '/api/v1/keys', ADMIN_TOKEN, { name: `fuzz-${role}`, role });
      assert.equal(r.status, 201);
      keys[role] = r.json.key;
    }
    const gone = await call('POST', '/api/v1/keys', ADMIN_TOKEN, { name: 'fuzz-revoked', role: 'admin' });
    revoked = gone.json.key;
    assert.equal((await call('DELETE', `/api/v1/keys/${gone.json.id}`, ADMIN_TOKEN)).status, 204);
    assert.equal(
      (await call('POST', '/api/v1/memories', keys.user, { content: 'likes green tea' })).status,
      201,
    );
    assert.equal(
      (
        await call('POST', '/api/v1/knowledge/documents', keys.operator, {
          title: 'Doc',
          content: '# Doc\n\ntext',
        })
      ).status,
      202,
    );
    const { userId } = await identify(core.db, {
      platform: 'telegram',
      externalId: 'tg-fuzz',
      displayName: 'Fuzz',
    });
    const conv = await activeConversation(core.db, {
      scope: 'telegram:fuzz',
      platform: 'telegram',
      chatId: 'fuzz',
      chatType: 'direct',
      userId,
    });
    const q = await storeUserMessage(core.db, {
      conversationId: conv.id,
      userId,
      platform: null,
      platformMessageId: null,
      orderKey: 1,
      content: 'hello there',
      sentAt: null,
      status: 'queued',
    });
    await storeReply(
      core.db,
      {
        conversationId: conv.id,
        replyTo: q.id,
        content: 'hi',
        status: 'complete',
        model: 'm',
        promptTokens: 1,
        completionTokens: 1,
        latencyMs: 1,
        ttftMs: 1,
      },
      { userId: null, platform: 'telegram', outcome: 'complete', content: null },
    );
    await pairingCode(core.db, {
      platform: 'telegram',
      externalId: 'tg-fuzz-pairing',
      displayName: 'Pat',
      ttlMinutes: 60,
      maxPending: 10,
    });
    // each key's first use creates its API identity: done now, so the phases start from a settled state
    for (const token of [ADMIN_TOKEN, ...Object.values(keys)])
      assert.equal((await call('GET', '/api/v1/me', token)).status, 200);
  });

  after(() => family.close());

  /** A refusal in core's error shape, and no secret in any answer. */
  const shape = (_c: Case, a: Answer) => {
    if (a.status >= 400) {
      const body = JSON.parse(a.text) as { error?: { code?: unknown; message?: unknown } };
      assert.equal(typeof body.error?.code, 'string', `error body: ${a.text.slice(0, 200)}`);
      assert.equal(typeof body.error?.message, 'string');
    }
    if (a.status === 401) assert.equal(a.headers['www-authenticate'], 'Bearer');
    for (const s of [ADMIN_TOKEN, PROXY_KEY, DB_PASSWORD, ...Object.values(keys)])
      assert.ok(!a.text.includes(s), 'an answer carries a secret');
  };

  /**
   * One phase, and the proof it wrote nothing: every row of the database and every queue's counts as before.
   * The knowledge document's ingestion job queued in before() is among them: the counts are core's queues.
   */
  const writingNothing = async (phase: string, arb: fc.Arbitrary<Case>) => {
    const db0 = await snapshot(core.db);
    const q0 = await queueCounts(redis, prefix);
    assert.ok(
      q0[`${QueueName.Knowledge}.waiting`],
      `the ingestion job queued in before() is seen: ${JSON.stringify(q0)}`,
    );
    await family.fuzz(phase, arb, shape);
    assert.deepEqual(await snapshot(core.db), db0, 'the database changed');
    await assertQueued(redis, prefix, q0);
  };

  it('refuses unauthenticated requests (and roles a route does not allow) to every route, writing nothing', async () => {
    await writingNothing('unauthenticated', unauthenticated(revoked, keys));
  });

  it('refuses authenticated requests with a bad path, query or body before writing anything; hostile reads answer', async () => {
    await writingNothing('authenticated', authenticated());
  });

  it('is still up and logged no secret; no stray rejection or exception in the process', async () => {
    assert.ok(core.server.listening);
    assert.equal((await client.send({ method: 'GET', path: '/healthz' }))!.status, 200);
    assert.equal((await call('GET', '/api/v1/me', ADMIN_TOKEN)).status, 200);
    family.finish({
      what: 'core logs',
      logs,
      secrets: [ADMIN_TOKEN, PROXY_KEY, DB_PASSWORD, ...Object.values(keys), revoked],
    });
  });
});
