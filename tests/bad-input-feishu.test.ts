// Bad input against the Feishu bot's webhook (POST /webhook/feishu: AES-encrypted bodies, X-Lark-Signature
// over timestamp + nonce + Encrypt Key + body, the verification token inside): refused with a 4xx, never a
// 5xx or a hang, replays refused or queued once, nothing queued from forged or broken events, no secret logged.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { encryptBody, signBody } from '@pincer/feishu-emulator';
import { QueueName } from '@pincer/shared';
import { Queue } from 'bullmq';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { type FeishuStack, newUser, startFeishuStack } from '../services/feishu-bot/test/harness.ts';
import {
  type Answer,
  assertQueued,
  assertQueuedOnce,
  type Case,
  type Client,
  Family,
  headerSafe,
  hostileJson,
  hostileString,
  malformedJson,
  nearMiss,
  oversized,
  queueCounts,
  segment,
  WRONG_TYPES,
} from './bad-input-kit.ts';

const PATH = '/webhook/feishu';
const MAX_BODY = 64 * 1024;
const MAX_SKEW_S = 300;
const BATCH = 12;
const RUNS = 900; // 900 × 12 = 10,800 cases

/** Message ids of good messages with a junk parent_id (the one broken part the bot may ignore). */
const REPLY_TO_JUNK = 'om_reply_to_junk_';
const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' };
const notObject = hostileJson.filter((v) => v === null || typeof v !== 'object' || Array.isArray(v));
const notString = hostileJson.filter((v) => typeof v !== 'string');

/** A hostile value can make a body too large before it is anything else: then only 413 is right. */
const sized = (p: Case['probe'], allow: number[]) =>
  p.body !== undefined && Buffer.byteLength(p.body) > MAX_BODY ? [413] : allow;

describe('bad input: Feishu webhook', () => {
  const family = new Family('webhook feishu', { batch: BATCH, runsPerPhase: RUNS / 2 });
  let t: FeishuStack;
  let client: Client;
  let redis: Redis;
  let encryptKey = '';
  let token = '';

  before(async () => {
    // no core workers: a job that got in stays in the queue, where the test can see it
    t = await startFeishuStack({
      mode: 'webhook',
      stack: { workers: false },
      feishu: { webhook: { max_body_bytes: MAX_BODY, max_clock_skew_s: MAX_SKEW_S } },
    });
    family.onClose(() => t.close());
    encryptKey = t.emu.encryptKey!;
    token = t.emu.verificationToken;
    client = family.connect(t.webhookUrl.replace(PATH, ''));
    redis = family.redis();
  });

  after(() => family.close());

  /** A push as Feishu makes it: `plaintext` encrypted, then signed (with `sigKey`, at `ts`). */
  function push(
    plaintext: string,
    o: { ts?: string; nonce?: string; key?: string; sigKey?: string; headers?: Record<string, string> } = {},
  ) {
    const body = JSON.stringify({ encrypt: encryptBody(plaintext, o.key ?? encryptKey) });
    const ts = o.ts ?? String(Math.floor(Date.now() / 1000));
    const nonce = o.nonce ?? randomBytes(8).toString('hex');
    return {
      method: 'POST',
      path: PATH,
      headers: {
        ...JSON_TYPE,
        'x-lark-request-timestamp': ts,
        'x-lark-request-nonce': nonce,
        'x-lark-signature': signBody(ts, nonce, o.sigKey ?? encryptKey, body),
        ...o.headers,
      },
      body,
    };
  }

  /** A 2.0 envelope with the right token (or `tok`). */
  const envelope = (eventType: unknown, event: unknown, tok: unknown = token) => ({
    schema: '2.0',
    header: {
      event_id: randomBytes(16).toString('hex'),
      event_type: eventType,
      create_time: String(Date.now()),
      token: tok,
      app_id: t.emu.appId,
      tenant_key: t.emu.tenantKey,
    },
    event,
  });

  /** Values that are not the token, though String() makes them read as it. */
  const readsAsToken = () => fc.constantFrom<unknown>([token], [[token]]);

  const message = () =>
    t.emu.messageEnvelope({ chat: { type: 'p2p' }, sender: { open_id: newUser() }, text: 'hello' });

  const unauthenticated = (): fc.Arbitrary<Case> => {
    const now = (up = false) => (up ? Math.ceil : Math.floor)(Date.now() / 1000);
    const refused = (label: string, probe: Case['probe'], allow: number[]): Case => ({
      label,
      probe,
      expect: 'refused',
      allow: sized(probe, allow),
    });
    return fc.oneof(
      // a real event, signed with something other than the Encrypt Key
      fc
        .oneof(
          nearMiss(encryptKey),
          hostileString.filter((s) => s !== encryptKey),
          fc.constant(token),
        )
        .map((k) =>
          refused('signed with the wrong key', push(JSON.stringify(message()), { sigKey: k }), [401]),
        ),
      // a real event, with a signature that is not one
      fc
        .oneof(
          hostileString.filter((s) => headerSafe(s)),
          fc.constant(''),
          fc.constant('0'.repeat(64)),
          fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }),
        )
        .map((sig) =>
          refused(
            'a forged signature',
            push(JSON.stringify(message()), { headers: { 'x-lark-signature': sig } }),
            [401],
          ),
        ),
      // the signed headers missing
      fc
        .subarray(['x-lark-request-timestamp', 'x-lark-request-nonce', 'x-lark-signature'], { minLength: 1 })
        .map((drop) => {
          const p = push(JSON.stringify(message()));
          const headers: Record<string, string> = { ...p.headers };
          for (const h of drop) delete headers[h];
          return refused('signature headers missing', { ...p, headers }, [401]);
        }),
      // replays: a genuine, consistently signed push, delivered too late (or dated in the future)
      fc
        .oneof(
          fc.integer({ min: MAX_SKEW_S + 1, max: 30 * 86_400 }).map((age) => String(now() - age)),
          // ahead of the next whole second: the server's clock may tick over before it checks
          fc.integer({ min: MAX_SKEW_S + 1, max: 30 * 86_400 }).map((ahead) => String(now(true) + ahead)),
          fc.constantFrom('', 'abc', 'NaN', 'Infinity', '1e309', '-1', '0', `${now()}.5x`, ' '),
        )
        .map((ts) => refused(`a replay (timestamp ${ts})`, push(JSON.stringify(message()), { ts }), [401])),
      // signed and fresh, but not for this app: the verification token is wrong or missing
      fc
        .oneof(
          nearMiss(token),
          hostileJson.filter((v) => v !== token),
          fc.constant(undefined),
          // only the string itself is the token: not a value that reads as it through String()
          readsAsToken(),
        )
        .map((tok) => {
          const e = message();
          return refused(
            'a wrong verification token',
            push(JSON.stringify({ ...e, header: { ...e.header, token: tok } })),
            [401],
          );
        }),
      fc.constant(0).map(() => {
        const { header: _h, ...rest } = message();
        return refused('no header and no token', push(JSON.stringify(rest)), [401]);
      }),
      // not encrypted at all: never signed, so never accepted
      fc
        .constant(0)
        .map(() =>
          refused(
            'a plaintext event',
            { method: 'POST', path: PATH, headers: JSON_TYPE, body: JSON.stringify(message()) },
            [401],
          ),
        ),
      // encrypted with another key, or not really encrypted
      fc
        .oneof(nearMiss(encryptKey), fc.constant('another-encrypt-key'))
        .map((k) =>
          refused('encrypted with the wrong key', push(JSON.stringify(message()), { key: k }), [400, 401]),
        ),
      hostileJson.map((enc) =>
        refused(
          'an encrypt field that is not ciphertext',
          { method: 'POST', path: PATH, headers: JSON_TYPE, body: JSON.stringify({ encrypt: enc }) },
          typeof enc === 'string' ? [400] : [401],
        ),
      ),
      // the challenge, with a wrong token: no echo
      fc
        .tuple(
          fc.oneof(
            hostileJson.filter((v) => v !== token),
            readsAsToken(),
          ),
          fc.boolean(),
        )
        .map(([tok, encrypted]) => {
          const plain = JSON.stringify({ type: 'url_verification', challenge: 'c', token: tok });
          return refused(
            'a challenge with a wrong token',
            encrypted ? push(plain) : { method: 'POST', path: PATH, headers: JSON_TYPE, body: plain },
            [401],
          );
        }),
      malformedJson(fc.constant(JSON.stringify({ encrypt: 'abc' }))).map((b) =>
        refused('malformed JSON', { method: 'POST', path: PATH, headers: JSON_TYPE, body: b }, [400]),
      ),
      fc
        .constantFrom(null, 1, 'x', true)
        .map((v) =>
          refused(
            'not a JSON object',
            { method: 'POST', path: PATH, headers: JSON_TYPE, body: JSON.stringify(v) },
            [400],
          ),
        ),
      oversized(MAX_BODY).map(({ body, chunked }) =>
        refused(
          `${chunked ? 'chunked ' : ''}body just over the limit`,
          {
            method: 'POST',
            path: PATH,
            headers: { ...JSON_TYPE, ...(chunked ? { 'transfer-encoding': 'chunked' } : {}) },
            body,
          },
          [413],
        ),
      ),
      fc
        .constantFrom(...WRONG_TYPES)
        .map((type) =>
          refused(
            `content type ${type}, unsigned`,
            { ...push(JSON.stringify(message())), headers: { 'content-type': type } },
            [401],
          ),
        ),
      fc.integer({ min: 1, max: 40 }).map((n): Case => ({
        label: `client gone after ${n} bytes`,
        probe: { ...push(JSON.stringify(message())), cutAfter: n },
        expect: 'refused',
      })),
      fc
        .constantFrom('GET', 'PUT', 'DELETE')
        .map((method) => refused(`${method} on the webhook`, { method, path: PATH }, [404])),
      fc
        .array(segment(hostileString), { minLength: 1, maxLength: 3 })
        .map((segs) => segs.map((s) => s.text).join('/'))
        .filter((tail) => !/^feishu\/?$/i.test(tail))
        .map((tail) =>
          refused('an unknown path', { ...push(JSON.stringify(message())), path: `/webhook/${tail}` }, [404]),
        ),
    );
  };

  const authenticated = (): fc.Arbitrary<Case> => {
    const tolerated = (label: string, plain: unknown): Case => ({
      label,
      probe: push(JSON.stringify(plain) ?? 'null'),
      expect: 'tolerated',
      detail: `plaintext: ${JSON.stringify(plain)}`,
    });
    const base = () => message() as { header: Record<string, unknown>; event: Record<string, any> };
    const brokenMessageEvent = fc.oneof(
      notObject.map((event) => ({ ...base(), event })),
      notObject.map((m) => {
        const e = base();
        return { ...e, event: { ...e.event, message: m } };
      }),
      fc.tuple(fc.constantFrom('message_id', 'chat_id'), notString).map(([k, v]) => {
        const e = base();
        return { ...e, event: { ...e.event, message: { ...e.event.message, [k]: v } } };
      }),
      fc.tuple(fc.constantFrom('sender', 'sender_id'), notObject).map(([k, v]) => {
        const e = base();
        return {
          ...e,
          event: { ...e.event, sender: k === 'sender' ? v : { ...e.event.sender, sender_id: v } },
        };
      }),
      notString.map((id) => {
        const e = base();
        return { ...e, event: { ...e.event, sender: { ...e.event.sender, sender_id: { open_id: id } } } };
      }),
      hostileString
        // an empty sender_type is no sender_type
        .filter((s) => s !== 'user' && s !== '')
        .map((st) => {
          const e = base();
          return { ...e, event: { ...e.event, sender: { ...e.event.sender, sender_type: st } } };
        }),
      hostileString
        .filter((s) => !['text', 'post', 'image', 'file', 'audio', 'media', 'sticker'].includes(s))
        .map((mt) => {
          const e = base();
          return { ...e, event: { ...e.event, message: { ...e.event.message, message_type: mt } } };
        }),
      // content that carries no text: unparsable, not an object, or no string `text`
      fc
        .oneof(
          hostileString.filter((s) => !s.trim().startsWith('{')),
          notString.map((v) => JSON.stringify({ text: v })),
          notString,
        )
        .map((content) => {
          const e = base();
          return { ...e, event: { ...e.event, message: { ...e.event.message, content } } };
        }),
      // an event id that is not one (null or missing would be no event id: a message like any other)
      hostileJson
        .filter((v) => v != null && typeof v !== 'string')
        .map((id) => {
          const e = base();
          return { ...e, header: { ...e.header, event_id: id } };
        }),
      // a message in a group replying to a parent that is no message id: the message is good, the
      // parent is ignored (these, and only these, may be queued: their message ids say so)
      notString
        .filter((v) => v != null)
        .map((parent_id) => {
          const e = base();
          const message_id = `${REPLY_TO_JUNK}${randomBytes(12).toString('hex')}`;
          return {
            ...e,
            event: { ...e.event, message: { ...e.event.message, message_id, chat_type: 'group', parent_id } },
          };
        }),
      // mentions that are not a list of mentions (with no text to answer either)
      fc
        .oneof(
          hostileJson.filter((v) => !Array.isArray(v)),
          notObject.map((m) => [m]),
        )
        .map((mentions) => {
          const e = base();
          return {
            ...e,
            event: { ...e.event, message: { ...e.event.message, mentions, content: '{"text":""}' } },
          };
        }),
    );
    const brokenBotAdded = fc.oneof(
      notObject,
      fc.record({ chat_id: notString, event_id: notString, name: notString }, { requiredKeys: [] }),
    );
    return fc.oneof(
      // the decrypted body is not an object
      notObject
        .map((plain) => ({ plain, probe: push(JSON.stringify(plain) ?? 'null') }))
        .map(({ plain, probe }): Case => ({
          label: 'a signed body whose plaintext is not an object',
          probe,
          expect: 'refused',
          allow: sized(probe, [400, 401]),
          detail: `plaintext: ${JSON.stringify(plain)}`,
        })),
      fc
        .tuple(
          hostileString.filter((s) => !s.startsWith('im.')),
          hostileJson,
        )
        .map(([type, event]) =>
          tolerated('a signed event of a type the bot does not handle', envelope(type, event)),
        ),
      brokenMessageEvent.map((e) => tolerated('a signed, broken message event', e)),
      brokenBotAdded.map((event) =>
        tolerated('a signed, broken bot-added event', envelope('im.chat.member.bot.added_v1', event)),
      ),
      // schema 1.0 shapes and other envelopes, with the right token
      fc
        .dictionary(hostileString, hostileJson, { maxKeys: 4 })
        .map((extra) => tolerated('a signed envelope of no known shape', { ...extra, token })),
    );
  };

  /** The bot's answer shape, and no secret in it. */
  const shape = (_c: Case, a: Answer) => {
    if (a.status >= 400)
      assert.equal(typeof (JSON.parse(a.text) as { code?: unknown }).code, 'number', a.text.slice(0, 200));
    for (const s of [encryptKey, token, t.emu.appSecret])
      assert.ok(!a.text.includes(s), 'an answer carries a secret');
  };

  it('refuses forged, unsigned, stale and malformed pushes, and queues nothing', async () => {
    await family.fuzz('unsigned or forged', unauthenticated(), shape);
    await assertQueued(redis, t.stack.prefix, {});
  });

  it('signed pushes that are not events the bot can take: acknowledged or refused, never a 5xx, nothing queued', async () => {
    await family.fuzz('signed', authenticated(), shape);
    const inbound = new Queue(QueueName.Inbound, { connection: redis, prefix: t.stack.prefix });
    try {
      const { [`${QueueName.Inbound}.waiting`]: waiting = 0, ...others } = await queueCounts(
        redis,
        t.stack.prefix,
      );
      assert.deepEqual(others, {}, 'something was queued');
      // the look at each waiting job below sees every one of them (not an empty list of the wrong queue)
      const jobs = await inbound.getJobs(['waiting']);
      assert.equal(jobs.length, waiting, 'the waiting jobs listed');
      const junk = jobs.filter(
        (j) => !String((j.data as { message_id?: unknown }).message_id).startsWith(REPLY_TO_JUNK),
      );
      assert.deepEqual(
        junk.map((j) => j.data),
        [],
        'a broken event was queued',
      );
      // start the next test from an empty queue
      await inbound.obliterate({ force: true });
    } finally {
      await inbound.close();
    }
  });

  it('queues a redelivered event once (the same push again, or the same message under a new event_id)', async () => {
    const e = message();
    const again = push(JSON.stringify(e));
    // at once: a push that meets the first one still being taken in is refused for now (503), as Feishu
    // would then push it again; pushed again, it is acknowledged
    const atOnce = await Promise.all(Array.from({ length: 10 }, () => client.send(again)));
    const held = atOnce.filter((a) => a?.status === 503).length;
    assert.deepEqual(
      atOnce.filter((a) => a?.status !== 503).map((a) => a?.status),
      Array.from({ length: 10 - held }, () => 200),
    );
    assert.ok(held < 10, 'one push was taken in');
    const answers = [];
    for (let i = 0; i < held + 5; i++) answers.push(await client.send(again));
    for (let i = 0; i < 5; i++)
      answers.push(
        await client.send(
          push(JSON.stringify({ ...e, header: { ...e.header, event_id: randomBytes(16).toString('hex') } })),
        ),
      );
    await assertQueuedOnce(answers, redis, t.stack.prefix);
  });

  it('is still up and logged no secret; no stray rejection or exception in the process', async () => {
    assert.equal((await client.send({ method: 'GET', path: '/healthz' }))?.status, 200);
    family.finish({
      what: 'feishu-bot and core logs',
      logs: [...t.logs, ...t.stack.logs],
      secrets: [encryptKey, token, t.emu.appSecret],
    });
  });
});
