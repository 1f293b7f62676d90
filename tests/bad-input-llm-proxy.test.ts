// Bad input against llm-proxy's OpenAI API (/v1/chat/completions, /v1/embeddings, /v1/models): refused
// with a 4xx in OpenAI's error shape, never a 5xx or a hang, nothing sent to the model, no secret logged.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type MockServer, startMockServer } from '@pincer/mock-inference';
import fc from 'fast-check';
import { validateChat, validateEmbeddings } from '../services/llm-proxy/src/http/validation.ts';
import { type Harness, singleProvider, startHarness } from '../services/llm-proxy/test/harness.ts';
import {
  type Answer,
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
  raw,
  segment,
  WRONG_TYPES,
} from './bad-input-kit.ts';

const MAX_BODY = 256 * 1024;
const UPSTREAM_KEY = `upstream-${randomBytes(16).toString('hex')}`;
const SCOPED_KEY = `scoped-${randomBytes(16).toString('hex')}`;
const BATCH = 12;
const RUNS = 900; // 900 × 12 = 10,800 cases

const CHAT = '/v1/chat/completions';
const EMBEDDINGS = '/v1/embeddings';
const MODELS = '/v1/models';
const SAMPLES = {
  [CHAT]: { model: 'm', messages: [{ role: 'user', content: 'hello' }] },
  [EMBEDDINGS]: { model: 'm', input: 'hello' },
} as const;
const VALIDATE = { [CHAT]: validateChat, [EMBEDDINGS]: validateEmbeddings };
const MODEL_NAMES = new Set(['m', 'other', '', undefined]);

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
const passes = (path: typeof CHAT | typeof EMBEDDINGS, v: unknown) => {
  if (!isObject(v)) return false;
  try {
    VALIDATE[path](v as never);
    return true;
  } catch {
    return false;
  }
};

/** Query strings and trailing junk the router must see through (or refuse). */
const suffix = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: hostileString.map((s) => `?${pct(s)}=${raw(s)}`) },
  { weight: 1, arbitrary: fc.constantFrom('/', '?', '?stream=true', '#x', '?model=m') },
);

interface AnyBody {
  body?: string | Buffer;
  type?: string;
  chunked?: boolean;
  cutAfter?: number;
}

function headersFor(auth: Headers, type?: string) {
  return type === undefined ? auth : { ...auth, 'content-type': type };
}

describe('bad input: llm-proxy OpenAI API', () => {
  const family = new Family('llm-proxy v1', { batch: BATCH, runsPerPhase: RUNS / 2 });
  let mock: MockServer;
  let h: Harness;
  let client: Client;

  before(async () => {
    mock = await startMockServer({ flavor: 'openai' });
    family.onClose(() => mock.close());
    const models = singleProvider('openai', [`${mock.url}/v1`], { api_key: UPSTREAM_KEY });
    (models.models as Record<string, unknown>).other = { provider: 'p', model_id: 'other' };
    h = await startHarness(models, {
      max_body_bytes: MAX_BODY,
      keys: [{ name: 'scoped', key: SCOPED_KEY, models: ['other'] }],
    });
    // the proxy's Redis keys go once it is closed
    family.redis(h.prefix);
    family.onClose(() => h.close());
    client = family.connect(h.url);
  });

  after(() => family.close());

  /** Authorization that must get nobody in. */
  const badAuth = () => {
    const token = fc.oneof(
      hostileString.filter((s) => headerSafe(s) && s !== '' && !/\s/.test(s)),
      nearMiss(h.key),
      nearMiss(SCOPED_KEY),
      fc.constant(UPSTREAM_KEY),
      fc.constant(`sk-${randomBytes(24).toString('hex')}`),
    );
    return fc.oneof<fc.Arbitrary<Headers>[]>(
      fc.constant({}),
      fc
        .constantFrom('Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Token x', '', `Bearer ${h.key} ${h.key}`)
        .map((a): Headers => ({ authorization: a })),
      token.map((t) => ({ authorization: `Bearer ${t}` })),
      token.map((t) => ({ 'api-key': t })),
      // Authorization wins over api-key: a wrong one is refused even beside the right key
      token.map((t) => ({ authorization: `Bearer ${t}`, 'api-key': h.key })),
      fc.constant({ 'api-key': [h.key, h.key] }),
      fc.constant({ 'x-api-key': h.key }),
    );
  };

  /** Any body at all (the request is refused before it is read). */
  const anyBody = fc.oneof<fc.Arbitrary<AnyBody>[]>(
    fc.constant({}),
    fc
      .constantFrom(CHAT, EMBEDDINGS)
      .map((p) => ({ body: JSON.stringify(SAMPLES[p]), type: 'application/json' })),
    hostileJson.map((v) => ({ body: JSON.stringify(v) ?? 'null', type: 'application/json' })),
    malformedJson(fc.constant(JSON.stringify(SAMPLES[CHAT]))).map((body) => ({
      body,
      type: 'application/json',
    })),
    oversized(MAX_BODY).map(({ body, chunked }) => ({ body, chunked, type: 'application/json' })),
    fc
      .integer({ min: 1, max: JSON.stringify(SAMPLES[CHAT]).length - 1 })
      .map((n) => ({ body: JSON.stringify(SAMPLES[CHAT]), cutAfter: n })),
  );

  const unauthenticated = (): fc.Arbitrary<Case> =>
    fc
      .record({
        target: fc.constantFrom<[string, string]>(
          ['POST', CHAT],
          ['POST', EMBEDDINGS],
          ['GET', MODELS],
          ['GET', '/status'],
        ),
        suffix,
        auth: badAuth(),
        body: anyBody,
      })
      .map(({ target: [method, path], suffix: tail, auth, body }): Case => {
        const headers = headersFor(auth, body.type);
        if (body.chunked) headers['transfer-encoding'] = 'chunked';
        return {
          label: `no valid key → ${method} ${path}`,
          probe: { method, path: path + tail, headers, body: body.body, cutAfter: body.cutAfter },
          expect: 'refused',
          // a fragment or a stray `/` may leave the route: then 404 is as good a refusal
          allow: tail === '' || tail.startsWith('?') ? [401] : [401, 404],
        };
      });

  const authenticated = (): fc.Arbitrary<Case> => {
    const auth = fc.constantFrom<Headers>(
      { authorization: `Bearer ${h.key}` },
      { authorization: `bearer  ${h.key}` },
      { 'api-key': h.key },
    );
    const perEndpoint = fc.constantFrom(CHAT, EMBEDDINGS).chain((path) => {
      const sample = SAMPLES[path] as Record<string, unknown>;
      const mutated = fc.oneof(
        hostileField(sample),
        missingField(sample),
        // a field OpenAI defines, out of its range or of the wrong type
        hostileField(
          sample,
          fc.constantFrom(
            'max_tokens',
            'max_completion_tokens',
            'temperature',
            'top_p',
            'n',
            'seed',
            'stop',
            'stream',
            'tools',
            'response_format',
            'encoding_format',
            'dimensions',
          ),
        ),
        // one message broken
        hostileField({ role: 'user', content: 'hi' }).map((m) => ({ ...sample, messages: [m] })),
        hostileJson,
      );
      const probe = (body: string | Buffer, headers: Headers, tail = '') => ({
        method: 'POST',
        path: path + tail,
        headers,
        body,
      });
      return fc.oneof(
        fc
          .tuple(
            mutated.filter((v) => !passes(path, v)),
            auth,
            suffix.filter((s) => s === '' || s.startsWith('?')),
          )
          .map(([v, a, tail]): Case => ({
            label: `a body the schema refuses → ${path}`,
            probe: probe(JSON.stringify(v) ?? 'null', headersFor(a, 'application/json'), tail),
            expect: 'refused',
            allow: [400],
          })),
        fc.tuple(malformedJson(fc.constant(JSON.stringify(sample))), auth).map(([b, a]): Case => ({
          label: `malformed JSON → ${path}`,
          probe: probe(b, headersFor(a, 'application/json')),
          expect: 'refused',
          allow: [400],
        })),
        fc.tuple(oversized(MAX_BODY), auth).map(([{ body, chunked }, a]): Case => ({
          label: `${chunked ? 'chunked ' : ''}body just over the limit → ${path}`,
          probe: probe(body, {
            ...headersFor(a, 'application/json'),
            ...(chunked ? { 'transfer-encoding': 'chunked' } : {}),
          }),
          expect: 'refused',
          allow: [413],
        })),
        auth.map((a): Case => ({
          label: `a body exactly at the limit, of the wrong shape → ${path}`,
          probe: probe(jsonOfSize(MAX_BODY), headersFor(a, 'application/json')),
          expect: 'refused',
          allow: [400],
        })),
        // the body is what counts, whatever the declared type: an invalid one stays invalid
        fc
          .tuple(
            fc.constantFrom(...WRONG_TYPES),
            auth,
            mutated.filter((v) => !passes(path, v)),
          )
          .map(([type, a, v]): Case => ({
            label: `content type ${type} → ${path}`,
            probe: probe(JSON.stringify(v) ?? 'null', headersFor(a, type)),
            expect: 'refused',
            allow: [400],
          })),
        // a valid request for a model that does not exist, or one this key may not use
        fc
          .tuple(
            hostileString.filter((m) => !MODEL_NAMES.has(m)),
            auth,
          )
          .map(([model, a]): Case => ({
            label: `unknown model → ${path}`,
            probe: probe(JSON.stringify({ ...sample, model }), headersFor(a, 'application/json')),
            expect: 'refused',
            allow: [404],
          })),
        fc.constant<Case>({
          label: `a model the key may not use → ${path}`,
          probe: probe(JSON.stringify(sample), {
            authorization: `Bearer ${SCOPED_KEY}`,
            'content-type': 'application/json',
          }),
          expect: 'refused',
          allow: [403],
        }),
        fc
          .tuple(fc.integer({ min: 1, max: JSON.stringify(sample).length - 1 }), auth)
          .map(([n, a]): Case => ({
            label: `client gone after ${n} bytes → ${path}`,
            probe: { ...probe(JSON.stringify(sample), headersFor(a, 'application/json')), cutAfter: n },
            expect: 'refused',
          })),
      );
    });
    const elsewhere = fc.oneof(
      // the model list with junk in its query: read-only, answered
      fc.tuple(hostileString, auth).map(([s, a]): Case => ({
        label: 'hostile query → GET /v1/models',
        probe: { method: 'GET', path: `${MODELS}?${pct(s)}=${pct(s)}`, headers: a },
        expect: 'tolerated',
      })),
      fc
        .tuple(
          fc.constantFrom(
            ['GET', CHAT],
            ['GET', EMBEDDINGS],
            ['POST', MODELS],
            ['PUT', CHAT],
            ['DELETE', MODELS],
            ['PATCH', EMBEDDINGS],
          ),
          auth,
        )
        .map(([[method, path], a]): Case => ({
          label: `${method} ${path}`,
          probe: { method, path, headers: a },
          expect: 'refused',
          allow: [404],
        })),
      fc
        .tuple(fc.array(segment(hostileString), { minLength: 1, maxLength: 3 }), auth)
        .map(([segs, a]): Case => ({
          label: 'an unknown path under /v1',
          probe: {
            method: 'POST',
            path: `/v1/${segs.map((s) => s.text).join('/')}`,
            headers: a,
            body: JSON.stringify(SAMPLES[CHAT]),
          },
          expect: 'refused',
        })),
    );
    return fc.oneof({ weight: 8, arbitrary: perEndpoint }, { weight: 1, arbitrary: elsewhere });
  };

  /** OpenAI's error shape on every refusal, and no secret in any answer. */
  const shape = (_c: Case, a: Answer) => {
    if (a.status >= 400) {
      const body = JSON.parse(a.text) as { error?: Record<string, unknown> };
      assert.deepEqual(
        Object.keys(body.error ?? {}).sort(),
        ['code', 'message', 'param', 'type'],
        a.text.slice(0, 200),
      );
    }
    for (const s of [h.key, SCOPED_KEY, UPSTREAM_KEY])
      assert.ok(!a.text.includes(s), 'an answer carries a secret');
  };

  it('refuses requests without a valid key, whatever they carry, and sends nothing upstream', async () => {
    await family.fuzz('no valid key', unauthenticated(), shape);
    assert.deepEqual(mock.requests.slice(0, 3), [], 'a request reached the model');
  });

  it('refuses invalid requests with a valid key before anything is sent upstream', async () => {
    await family.fuzz('valid key', authenticated(), shape);
    assert.deepEqual(mock.requests.slice(0, 3), [], 'a request reached the model');
  });

  it('is still up and logged no secret; no stray rejection or exception in the process', async () => {
    assert.ok(h.proxy.server.listening);
    const ok = await client.send({
      method: 'POST',
      path: CHAT,
      headers: { authorization: `Bearer ${h.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(SAMPLES[CHAT]),
    });
    assert.equal(ok?.status, 200, 'a valid request still works');
    // and it reached the model: the mock records what gets through, so its empty record above means something
    assert.equal(mock.requests.length, 1, 'the valid request recorded upstream');
    family.finish({ what: 'llm-proxy logs', logs: h.logs, secrets: [h.key, SCOPED_KEY, UPSTREAM_KEY] });
  });
});
