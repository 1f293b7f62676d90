// Bad input against the Telegram adapter's webhook (POST /webhook/telegram, authenticated by the
// X-Telegram-Bot-Api-Secret-Token header): refused with a 4xx, never a 5xx or a hang, nothing queued,
// a redelivered update queued once, no secret logged.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import {
  newUserId,
  startTelegramStack,
  type TelegramStack,
} from '../services/telegram-adapter/test/harness.ts';
import {
  type Answer,
  assertQueued,
  assertQueuedOnce,
  type Case,
  type Client,
  Family,
  type Headers,
  headerSafe,
  hostileJson,
  hostileString,
  jsonOfSize,
  malformedJson,
  nearMiss,
  oversized,
  segment,
  WRONG_TYPES,
} from './bad-input-kit.ts';

const PATH = '/webhook/telegram';
const SECRET_HEADER = 'x-telegram-bot-api-secret-token';
const MAX_BODY = 64 * 1024;
const BATCH = 12;
const RUNS = 900; // 900 × 12 = 10,800 cases

let updateIds = 900_000_000 + Math.floor(Math.random() * 1_000_000);

/** An update Telegram could send: a direct message from a fresh user. */
function validUpdate(uid = newUserId()) {
  return {
    update_id: updateIds++,
    message: {
      message_id: 1,
      from: { id: uid, is_bot: false, first_name: 'Fuzz' },
      chat: { id: uid, type: 'private' },
      date: Math.floor(Date.now() / 1000),
      text: 'hello',
    },
  };
}

const isSafeInt = (v: unknown) => Number.isSafeInteger(v);

/** A message broken in what makes it a message: it must never become a job. */
const brokenMessage: fc.Arbitrary<unknown> = (() => {
  const base = validUpdate(1).message as Record<string, unknown>;
  const notObject = hostileJson.filter((v) => v === null || typeof v !== 'object' || Array.isArray(v));
  const notInt = hostileJson.filter((v) => !isSafeInt(v));
  const notString = hostileJson.filter((v) => typeof v !== 'string');
  return fc.oneof(
    notObject,
    fc.constant({}),
    fc.constantFrom('chat', 'message_id', 'date').map((k) => {
      const { [k]: _gone, ...rest } = base;
      return rest;
    }),
    notObject.map((chat) => ({ ...base, chat })),
    notInt.map((id) => ({ ...base, chat: { id, type: 'private' } })),
    hostileString
      .filter((t) => !['private', 'group', 'supergroup', 'channel'].includes(t))
      .map((type) => ({ ...base, chat: { id: 1, type } })),
    notInt.map((message_id) => ({ ...base, message_id })),
    hostileJson.filter((v) => typeof v !== 'number').map((date) => ({ ...base, date })),
    notString.map((text) => ({ ...base, text })),
    fc
      .record({ text: notString, caption: notString })
      .map(({ text, caption }) => ({ ...base, text, caption })),
    notObject.map((from) => ({ ...base, from })),
    notInt.map((id) => ({ ...base, from: { id, first_name: 'Fuzz' } })),
    // broken optional parts of a message with no text: the parts themselves must not make a job
    fc
      .tuple(
        fc.constantFrom(
          'entities',
          'caption_entities',
          'photo',
          'reply_to_message',
          'document',
          'sticker',
          'voice',
        ),
        hostileJson,
      )
      .map(([k, v]) => ({ ...base, text: undefined, [k]: v })),
    fc
      .tuple(fc.constantFrom('entities', 'caption_entities', 'photo'), hostileJson)
      .map(([k, v]) => ({ ...base, text: undefined, [k]: [v] })),
  );
})();

describe('bad input: Telegram webhook', () => {
  const family = new Family('webhook telegram', { batch: BATCH, runsPerPhase: RUNS / 2 });
  let t: TelegramStack;
  let client: Client;
  let redis: Redis;
  let secret = '';

  before(async () => {
    // no core workers: a job that got in stays in the queue, where the test can see it
    t = await startTelegramStack({
      mode: 'webhook',
      stack: { workers: false },
      telegram: { webhook: { max_body_bytes: MAX_BODY } },
    });
    family.onClose(() => t.close());
    secret = t.env.TELEGRAM_WEBHOOK_SECRET!;
    client = family.connect(t.adapter.url);
    redis = family.redis();
  });

  after(() => family.close());

  const withSecret = (headers: Headers = {}) => ({
    ...headers,
    [SECRET_HEADER]: secret,
  });
  const json = { 'content-type': 'application/json' };

  const unauthenticated = (): fc.Arbitrary<Case> => {
    const wrong = fc.oneof(
      hostileString.filter((s) => headerSafe(s) && s !== ''),
      nearMiss(secret),
      fc.constant(t.emu.token),
      fc.constant(`${secret}, ${secret}`),
    );
    const header = fc.oneof<fc.Arbitrary<Headers>[]>(
      fc.constant({}),
      wrong.map((w) => ({ [SECRET_HEADER]: w })),
      // a repeated header arrives joined ("a, b"): never the secret
      wrong.map((w) => ({ [SECRET_HEADER]: [w, secret] })),
      fc.constant({ [SECRET_HEADER]: [secret, secret] }),
      fc.constant({ authorization: `Bearer ${secret}` }),
      fc.constant({ 'x-telegram-bot-api-secret': secret }),
    );
    const body = fc.oneof(
      // a perfectly good update is worth nothing without the secret
      fc.constant({ body: JSON.stringify(validUpdate()), type: 'application/json' }),
      hostileJson.map((v) => ({ body: JSON.stringify(v) ?? 'null', type: 'application/json' })),
      malformedJson(fc.constant(JSON.stringify(validUpdate(1)))).map((b) => ({
        body: b,
        type: 'application/json',
      })),
      oversized(MAX_BODY).map(({ body: b, chunked }) => ({ body: b, type: 'application/json', chunked })),
      fc.constantFrom(...WRONG_TYPES).map((type) => ({ body: JSON.stringify(validUpdate()), type })),
      fc.constant({ body: undefined, type: undefined }),
    );
    return fc
      .record({
        header,
        body,
        tail: fc.constantFrom('', '', '', '/', '?x=1'),
        cut: fc.oneof(
          { weight: 8, arbitrary: fc.constant(null) },
          { weight: 1, arbitrary: fc.integer({ min: 1, max: 20 }) },
        ),
      })
      .map(({ header, body: b, tail, cut }): Case => ({
        label: 'a webhook call without the secret',
        probe: {
          method: 'POST',
          path: PATH + tail,
          headers: {
            ...header,
            ...(b.type ? { 'content-type': b.type } : {}),
            ...('chunked' in b && b.chunked ? { 'transfer-encoding': 'chunked' } : {}),
          },
          body: b.body,
          cutAfter: cut !== null && b.body && b.body.length > cut ? cut : undefined,
        },
        expect: 'refused',
        allow: [401],
      }));
  };

  const authenticated = (): fc.Arbitrary<Case> => {
    const post = (body: string | Buffer, headers: Headers = json) => ({
      method: 'POST',
      path: PATH,
      headers: withSecret(headers),
      body,
    });
    const noUpdateId = fc.oneof(
      hostileJson.filter(
        (v) => v === null || typeof v !== 'object' || !isSafeInt((v as { update_id?: unknown }).update_id),
      ),
      hostileJson.filter((v) => !isSafeInt(v)).map((update_id) => ({ ...validUpdate(1), update_id })),
    );
    return fc.oneof(
      malformedJson(fc.constant(JSON.stringify(validUpdate(1)))).map((b): Case => ({
        label: 'malformed JSON',
        probe: post(b),
        expect: 'refused',
        allow: [400],
      })),
      noUpdateId
        .map((v) => JSON.stringify(v) ?? 'null')
        .map((b): Case => ({
          label: 'not an update (no safe-integer update_id)',
          probe: post(b),
          expect: 'refused',
          allow: [Buffer.byteLength(b) > MAX_BODY ? 413 : 400],
        })),
      oversized(MAX_BODY).map(({ body, chunked }): Case => ({
        label: `${chunked ? 'chunked ' : ''}body just over the limit`,
        probe: post(body, { ...json, ...(chunked ? { 'transfer-encoding': 'chunked' } : {}) }),
        expect: 'refused',
        allow: [413],
      })),
      fc.constant<Case>({
        label: 'a body exactly at the limit, not an update',
        probe: post(jsonOfSize(MAX_BODY)),
        expect: 'refused',
        allow: [400],
      }),
      // well-formed updates with nothing a message is made of: acknowledged or refused, never queued
      fc
        .dictionary(
          hostileString.filter(
            (k) => !['message', 'edited_message', 'my_chat_member', 'update_id'].includes(k),
          ),
          hostileJson,
          { maxKeys: 4 },
        )
        .map((extra): Case => ({
          label: 'an update of no kind the adapter handles',
          probe: post(JSON.stringify({ ...extra, update_id: updateIds++ })),
          expect: 'tolerated',
        })),
      fc
        .tuple(fc.constantFrom('message', 'edited_message', 'my_chat_member'), brokenMessage)
        .map(([kind, m]): Case => ({
          label: `a broken ${kind}`,
          probe: post(JSON.stringify({ update_id: updateIds++, [kind]: m })),
          expect: 'tolerated',
        })),
      fc.constantFrom(...WRONG_TYPES).map((type): Case => ({
        label: `content type ${type}, not an update`,
        probe: post(JSON.stringify({ ok: true }), { 'content-type': type }),
        expect: 'refused',
        allow: [400, 415],
      })),
      fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH').map((method): Case => ({
        label: `${method} on the webhook`,
        probe: { method, path: PATH, headers: withSecret() },
        expect: 'refused',
        allow: [404],
      })),
      fc.array(segment(hostileString), { minLength: 1, maxLength: 3 }).map((segs): Case => ({
        label: 'an unknown path',
        probe: {
          method: 'POST',
          path: `/webhook/${segs.map((s) => s.text).join('/')}`,
          headers: withSecret(json),
          body: JSON.stringify(validUpdate(1)),
        },
        expect: 'refused',
      })),
    );
  };

  /** The adapter's own answer shape, and no secret in it. */
  const shape = (_c: Case, a: Answer) => {
    if (a.status >= 400)
      assert.equal((JSON.parse(a.text) as { ok?: unknown }).ok, false, a.text.slice(0, 200));
    for (const s of [secret, t.emu.token]) assert.ok(!a.text.includes(s), 'an answer carries a secret');
  };

  it('refuses every call without the right secret token, and queues nothing', async () => {
    await family.fuzz('without the secret', unauthenticated(), shape);
    await assertQueued(redis, t.stack.prefix, {});
  });

  it('with the secret: refuses what is not an update, acknowledges what carries no message, queues nothing', async () => {
    await family.fuzz('with the secret', authenticated(), shape);
    await assertQueued(redis, t.stack.prefix, {});
  });

  it('queues a redelivered update once, however often and however concurrently it comes', async () => {
    const update = JSON.stringify(validUpdate());
    const send = () => client.send({ method: 'POST', path: PATH, headers: withSecret(json), body: update });
    const answers = [...(await Promise.all(Array.from({ length: 10 }, send)))];
    for (let i = 0; i < 10; i++) answers.push(await send());
    await assertQueuedOnce(answers, redis, t.stack.prefix);
  });

  it('is still up and logged no secret; no stray rejection or exception in the process', async () => {
    assert.equal((await client.send({ method: 'GET', path: '/healthz' }))?.status, 200);
    family.finish({
      what: 'telegram-adapter and core logs',
      logs: [...t.logs, ...t.stack.logs],
      secrets: [secret, t.emu.token],
    });
  });
});
