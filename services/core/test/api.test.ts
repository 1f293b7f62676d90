import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { z } from 'zod';
import { openApiPath } from '../src/http/openapi.ts';
import { allowedRoles, type Route } from '../src/http/route.ts';
import { routes } from '../src/http/routes/index.ts';
import { writeAudit } from '../src/repositories/audit.ts';
import { activeConversation } from '../src/repositories/conversations.ts';
import { ROLES } from '../src/repositories/keys.ts';
import { storeReply, storeUserMessage } from '../src/repositories/messages.ts';
import { pairingCode } from '../src/repositories/pairing.ts';
import { identify } from '../src/repositories/people.ts';
import { type ApiHarness, eventually, REPLY_PIECES, startApi } from './api-harness.ts';

const tag = () => randomBytes(4).toString('hex');

/** A concrete URL for a route: path parameters filled with values its schema accepts. */
function sampleUrl(r: Route): string {
  const id = r.params?.safeParse({ id: randomUUID() }).success ? randomUUID() : '999999';
  return r.path.replace(/:id\b/, id);
}

/** Asserts a successful answer has the shape the OpenAPI document declares for it. */
function assertDocumented(method: string, path: string, body: unknown): void {
  const r = routes.find((x) => x.method === method && x.path === path);
  assert.ok(r?.response.schema, `${method} ${path} declares a response schema`);
  const parsed = (r.response.schema as z.ZodType).safeParse(body);
  assert.ok(parsed.success, `${method} ${path} answers as documented: ${parsed.error?.message}`);
}

/** Server-sent events of a body, in order. */
function parseSse(text: string): { event: string; data: any }[] {
  return text
    .split('\n\n')
    .filter((f) => f.trim() && !f.startsWith(':'))
    .map((frame) => {
      const lines = frame.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))!.slice(7);
      const data = lines
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      return { event, data: JSON.parse(data) };
    });
}

describe('core HTTP API', () => {
  let h: ApiHarness;
  before(async () => {
    h = await startApi();
  });
  after(async () => {
    await h?.close();
  });

  describe('every route in the route table', () => {
    it('refuses a missing or wrong token with 401, a role it does not allow with 403, and lets allowed roles in', async () => {
      const guarded = routes.filter((r) => r.roles !== 'public');
      assert.ok(guarded.length >= 13);
      for (const r of guarded) {
        const url = sampleUrl(r);
        const method = r.method.toUpperCase();
        const body = r.body ? {} : undefined;
        const none = await h.call(method, url, { token: null, body });
        assert.equal(none.status, 401, `${method} ${r.path} without a token`);
        assert.equal(none.json.error.code, 'unauthorized');
        assert.equal(none.headers.get('www-authenticate'), 'Bearer');
        const wrong = await h.call(method, url, {
          token: `pk_${randomBytes(32).toString('base64url')}`,
          body,
        });
        assert.equal(wrong.status, 401, `${method} ${r.path} with an unknown key`);

        const allowed = allowedRoles(r);
        assert.ok(allowed.includes('admin'));
        for (const role of ROLES) {
          const res = await h.call(method, url, { token: h.keys[role].key, body });
          if (allowed.includes(role))
            assert.ok(
              ![401, 403].includes(res.status),
              `${method} ${r.path} as ${role}: ${res.status} ${res.text}`,
            );
          else {
            assert.equal(res.status, 403, `${method} ${r.path} as ${role}`);
            assert.equal(res.json.error.code, 'forbidden');
            assert.match(res.json.error.message, new RegExp(`role ${role}`));
          }
        }
      }
      // the bootstrap token is admin
      assert.equal((await h.call('GET', '/api/v1/keys')).status, 200);
    });

    it('serves exactly the routes the OpenAPI document describes, each with its security and roles', async () => {
      const res = await h.call('GET', '/api/openapi.json', { token: null });
      assert.equal(res.status, 200);
      const doc = res.json;
      assert.equal(doc.openapi, '3.1.0');
      assert.deepEqual(doc.components.securitySchemes.bearer, {
        type: 'http',
        scheme: 'bearer',
        description: doc.components.securitySchemes.bearer.description,
      });

      const documented = new Set<string>();
      for (const [path, ops] of Object.entries<Record<string, any>>(doc.paths))
        for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${path}`);
      const served = new Set<string>();
      for (const layer of (h.app as any).router.stack)
        if (layer.route)
          for (const method of Object.keys(layer.route.methods))
            served.add(`${method.toUpperCase()} ${openApiPath(layer.route.path)}`);
      assert.deepEqual(
        [...served].filter((x) => !documented.has(x)),
        [],
        'served but not documented',
      );
      assert.deepEqual(
        [...documented].filter((x) => !served.has(x)),
        [],
        'documented but not served',
      );
      assert.equal(served.size, routes.length);

      for (const r of routes) {
        const op = doc.paths[openApiPath(r.path)][r.method];
        assert.ok(op.operationId && op.summary, `${r.path} has an operationId and summary`);
        assert.deepEqual(op['x-roles'], allowedRoles(r));
        if (r.roles === 'public') assert.deepEqual(op.security, []);
        else {
          assert.deepEqual(op.security, [{ bearer: [] }], `${r.method} ${r.path} declares bearer security`);
          assert.ok(op.responses['401'] && op.responses['403']);
          assert.match(op.description, /Roles: admin/);
        }
        if (r.body) {
          const media = r.upload ? 'multipart/form-data' : 'application/json';
          assert.equal(op.requestBody.content[media].schema.type, 'object');
          if (r.upload)
            assert.equal(op.requestBody.content[media].schema.properties[r.upload.field].format, 'binary');
        }
      }
      // parameters come from the zod schemas
      const list = doc.paths['/api/v1/conversations'].get;
      const limit = list.parameters.find((p: any) => p.name === 'limit');
      assert.deepEqual([limit.in, limit.required, limit.schema.maximum], ['query', false, 200]);
      const id = doc.paths['/api/v1/conversations/{id}'].get.parameters[0];
      assert.deepEqual([id.name, id.in, id.required, id.schema.format], ['id', 'path', true, 'uuid']);
      const chat = doc.paths['/api/v1/chat'].post;
      assert.ok(chat.requestBody.content['application/json'].schema.properties.messages);
      assert.ok(chat.responses['200'].content['text/event-stream']);
    });
  });

  describe('API keys', () => {
    it('creates a key shown once, stores only its hash, lists without secrets, and refuses it once revoked', async () => {
      const created = await h.call('POST', '/api/v1/keys', {
        body: { name: `ci-${tag()}`, role: 'operator' },
      });
      assert.equal(created.status, 201);
      assertDocumented('post', '/api/v1/keys', created.json);
      const { id, key, name } = created.json;
      assert.match(key, /^pk_[A-Za-z0-9_-]{43}$/);
      assert.equal(created.json.role, 'operator');

      const stored = await h.t.db.query('SELECT key_hash FROM api_keys WHERE id = $1', [id]);
      assert.equal(stored.rows[0].key_hash, createHash('sha256').update(key).digest('hex'));

      const use = await h.call('GET', '/api/v1/users', { token: key });
      assert.equal(use.status, 200);
      const lastUsed = await eventually(async () => {
        const r = await h.t.db.query('SELECT last_used_at FROM api_keys WHERE id = $1', [id]);
        return r.rows[0].last_used_at as Date | null;
      });
      assert.ok(lastUsed instanceof Date);

      const list = await h.call('GET', '/api/v1/keys');
      assert.equal(list.status, 200);
      assertDocumented('get', '/api/v1/keys', list.json);
      const listed = list.json.data.find((k: any) => k.id === id);
      assert.deepEqual(Object.keys(listed).sort(), [
        'created_at',
        'id',
        'last_used_at',
        'name',
        'revoked_at',
        'role',
      ]);
      assert.equal(listed.name, name);
      assert.ok(!list.text.includes(key) && !list.text.includes(stored.rows[0].key_hash));

      assert.equal((await h.call('DELETE', `/api/v1/keys/${id}`)).status, 204);
      const refused = await h.call('GET', '/api/v1/users', { token: key });
      assert.equal(refused.status, 401);
      assert.equal(refused.json.error.message, 'Invalid or revoked API key.');
      assert.equal((await h.call('DELETE', `/api/v1/keys/${id}`)).status, 204, 'revoking twice is harmless');
      assert.equal((await h.call('DELETE', `/api/v1/keys/${randomUUID()}`)).status, 404);
      assert.equal((await h.call('DELETE', '/api/v1/keys/not-a-uuid')).status, 400);

      const audit = await h.t.db.query(
        `SELECT kind, actor, outcome FROM audit_log WHERE detail->>'key_id' = $1 ORDER BY id`,
        [id],
      );
      assert.deepEqual(audit.rows, [
        { kind: 'key.create', actor: 'admin-token', outcome: 'ok' },
        { kind: 'key.revoke', actor: 'admin-token', outcome: 'ok' },
      ]);
    });

    it('refuses bad key requests with a clear 400', async () => {
      const badRole = await h.call('POST', '/api/v1/keys', { body: { name: 'x', role: 'root' } });
      assert.equal(badRole.status, 400);
      assert.match(badRole.json.error.message, /^body\.role: /);
      const noName = await h.call('POST', '/api/v1/keys', { body: { name: '  ', role: 'user' } });
      assert.equal(noName.status, 400);
      assert.match(noName.json.error.message, /body\.name: must not be empty/);
    });
  });

  describe('pairing', () => {
    const request = async (displayName: string) => {
      const externalId = `tg-${tag()}`;
      const out = await pairingCode(h.t.db, {
        platform: 'telegram',
        externalId,
        displayName,
        ttlMinutes: 60,
        maxPending: 100,
      });
      assert.equal(out.kind, 'code');
      const { rows } = await h.t.db.query(
        'SELECT id FROM pairing_requests WHERE platform = $1 AND external_id = $2',
        ['telegram', externalId],
      );
      return { id: rows[0].id as string, externalId, code: (out as { code: string }).code };
    };
    const approved = async (externalId: string) =>
      (
        await h.t.db.query('SELECT approved FROM identities WHERE platform = $1 AND external_id = $2', [
          'telegram',
          externalId,
        ])
      ).rows[0]?.approved;

    it('lists pending requests and approves one: the identity is approved, a second decision is 409', async () => {
      const op = h.keys.operator;
      const alice = await request('Alice');
      const list = await h.call('GET', '/api/v1/pairing?status=pending', { token: op.key });
      assert.equal(list.status, 200);
      assertDocumented('get', '/api/v1/pairing', list.json);
      const listed = list.json.data.find((p: any) => p.id === alice.id);
      assert.equal(listed.code, alice.code);
      assert.equal(listed.status, 'pending');
      assert.equal(await approved(alice.externalId), undefined, 'no identity before approval');

      const ok = await h.call('POST', `/api/v1/pairing/${alice.id}/approve`, { token: op.key });
      assert.equal(ok.status, 200);
      assertDocumented('post', '/api/v1/pairing/:id/approve', ok.json);
      assert.equal(ok.json.status, 'approved');
      assert.equal(ok.json.decided_by, op.name);
      assert.equal(await approved(alice.externalId), true);

      const again = await h.call('POST', `/api/v1/pairing/${alice.id}/approve`, { token: op.key });
      assert.equal(again.status, 409);
      assert.equal(again.json.error.code, 'pairing_decided');
      assert.equal((await h.call('POST', `/api/v1/pairing/${alice.id}/deny`, { token: op.key })).status, 409);
      assert.equal(
        (await h.call('POST', `/api/v1/pairing/${randomUUID()}/approve`, { token: op.key })).status,
        404,
      );

      const audit = await h.t.db.query(
        `SELECT kind, actor, outcome, platform, user_id FROM audit_log WHERE detail->>'pairing_id' = $1`,
        [alice.id],
      );
      assert.equal(audit.rows.length, 1);
      assert.deepEqual(
        { ...audit.rows[0], user_id: undefined },
        {
          kind: 'pairing.approve',
          actor: op.name,
          outcome: 'ok',
          platform: 'telegram',
          user_id: undefined,
        },
      );
      assert.ok(audit.rows[0].user_id > 0);
    });

    it('approves a sender who already has an unapproved identity', async () => {
      const bob = await request('Bob');
      const before = await identify(h.t.db, {
        platform: 'telegram',
        externalId: bob.externalId,
        displayName: 'Bob',
      });
      assert.equal(before.approved, false);
      assert.equal((await h.call('POST', `/api/v1/pairing/${bob.id}/approve`)).status, 200);
      assert.equal(await approved(bob.externalId), true);
    });

    it('denies a request without approving anyone, and refuses to decide an expired one', async () => {
      const carol = await request('Carol');
      const denied = await h.call('POST', `/api/v1/pairing/${carol.id}/deny`, { token: h.keys.operator.key });
      assert.equal(denied.status, 200);
      assert.equal(denied.json.status, 'denied');
      assert.notEqual(await approved(carol.externalId), true);
      assert.equal((await h.call('POST', `/api/v1/pairing/${carol.id}/approve`)).status, 409);

      const dave = await request('Dave');
      await h.t.db.query(
        `UPDATE pairing_requests SET expires_at = now() - interval '1 minute' WHERE id = $1`,
        [dave.id],
      );
      const expired = await h.call('POST', `/api/v1/pairing/${dave.id}/approve`);
      assert.equal(expired.status, 409);
      assert.equal(expired.json.error.code, 'pairing_expired');
      assert.notEqual(await approved(dave.externalId), true);
      const list = await h.call('GET', '/api/v1/pairing?status=expired');
      assert.ok(list.json.data.some((p: any) => p.id === dave.id));
      assert.ok(
        !(await h.call('GET', '/api/v1/pairing?status=pending')).json.data.some((p: any) => p.id === dave.id),
      );
      assert.equal((await h.call('GET', '/api/v1/pairing?status=maybe')).status, 400);

      const kinds = await h.t.db.query(
        `SELECT kind FROM audit_log WHERE detail->>'pairing_id' = ANY($1) ORDER BY id`,
        [[carol.id, dave.id]],
      );
      assert.deepEqual(kinds.rows, [{ kind: 'pairing.deny' }]);
    });
  });

  describe('conversations', () => {
    const word = `zebra${tag()}`;
    const long = `supercalifragilistic${tag()}`;
    let own: string;
    let other: string;
    let old: string;
    let otherUser: number;
    let ownUser: number;

    before(async () => {
      const db = h.t.db;
      ownUser = (
        await identify(db, { platform: 'api', externalId: h.keys.user.id, displayName: h.keys.user.name })
      ).userId;
      otherUser = (
        await identify(db, { platform: 'telegram', externalId: `tg-${tag()}`, displayName: 'Erin' })
      ).userId;
      const conv = async (scope: string, platform: string, userId: number) =>
        (await activeConversation(db, { scope, platform, chatId: scope, chatType: 'direct', userId })).id;
      own = await conv(`api:${tag()}`, 'api', ownUser);
      other = await conv(`telegram:${tag()}`, 'telegram', otherUser);
      old = await conv(`telegram:${tag()}`, 'telegram', otherUser);
      const exchange = async (conversationId: string, userId: number, question: string, answer: string) => {
        const q = await storeUserMessage(db, {
          conversationId,
          userId,
          platform: null,
          platformMessageId: null,
          orderKey: Date.now(),
          content: question,
          sentAt: null,
          status: 'queued',
        });
        await storeReply(
          db,
          {
            conversationId,
            replyTo: q.id,
            content: answer,
            status: 'complete',
            model: 'qwen2.5',
            promptTokens: 11,
            completionTokens: 22,
            latencyMs: 333,
            ttftMs: 44,
          },
          { userId: null, platform: 'api', outcome: 'complete', content: null },
        );
      };
      await exchange(own, ownUser, `hello ${word} world`, 'hi there');
      await exchange(other, otherUser, `the quick brown fox ${word}`, `今天天气很好 ${word}x`);
      await exchange(old, otherUser, `${long} expialidocious`, 'ok');
      await db.query(
        `UPDATE conversations SET created_at = '2020-01-10T12:00:00Z', updated_at = '2020-01-10T13:00:00Z' WHERE id = $1`,
        [old],
      );
    });

    const ids = (res: { json: any }) => res.json.data.map((c: any) => c.id).sort();

    it('searches message text by word, by part of a word and in CJK text, with filters', async () => {
      const byWord = await h.call('GET', `/api/v1/conversations?q=${word}`);
      assert.equal(byWord.status, 200);
      assertDocumented('get', '/api/v1/conversations', byWord.json);
      assert.deepEqual(ids(byWord), [own, other].sort());
      const found = byWord.json.data.find((c: any) => c.id === other);
      assert.equal(found.user_display_name, 'Erin');
      assert.equal(found.message_count, 2);
      assert.equal(found.platform, 'telegram');

      const partial = await h.call('GET', `/api/v1/conversations?q=${long.slice(5)}`);
      assert.deepEqual(ids(partial), [old]);
      const words = await h.call(
        'GET',
        `/api/v1/conversations?q=${encodeURIComponent(`expialidocious ${long}`)}`,
      );
      assert.deepEqual(ids(words), [old], 'words in any order (full-text search)');
      const cjk = await h.call(
        'GET',
        `/api/v1/conversations?q=${encodeURIComponent('天气')}&user_id=${otherUser}`,
      );
      assert.deepEqual(ids(cjk), [other]);

      const filtered = await h.call('GET', `/api/v1/conversations?user_id=${otherUser}&platform=telegram`);
      assert.deepEqual(ids(filtered), [old, other].sort());
      assert.deepEqual(
        ids(await h.call('GET', `/api/v1/conversations?user_id=${otherUser}&platform=api`)),
        [],
      );

      const range = await h.call('GET', '/api/v1/conversations?from=2020-01-01&to=2020-01-10');
      assert.deepEqual(ids(range), [old], 'a bare `to` date includes that day');
      const before = await h.call('GET', '/api/v1/conversations?from=2020-01-01&to=2020-01-10T12:00:00Z');
      assert.deepEqual(ids(before), []);
    });

    it('pages with a cursor, without overlap', async () => {
      const first = await h.call('GET', `/api/v1/conversations?user_id=${otherUser}&limit=1`);
      assert.equal(first.json.data.length, 1);
      assert.equal(first.json.data[0].id, other, 'most recently active first');
      assert.ok(first.json.next_cursor);
      const second = await h.call(
        'GET',
        `/api/v1/conversations?user_id=${otherUser}&limit=1&before=${encodeURIComponent(first.json.next_cursor)}`,
      );
      assert.deepEqual(ids(second), [old]);
      assert.equal(second.json.next_cursor, null);

      for (const bad of ['limit=201', 'limit=0', 'before=nonsense', 'from=yesterday', 'user_id=abc']) {
        const res = await h.call('GET', `/api/v1/conversations?${bad}`);
        assert.equal(res.status, 400, bad);
        assert.match(res.json.error.message, /^query\./, bad);
      }
    });

    it('shows a conversation and its messages with model, usage and latency', async () => {
      const conv = await h.call('GET', `/api/v1/conversations/${other}`, { token: h.keys.auditor.key });
      assert.equal(conv.status, 200);
      assertDocumented('get', '/api/v1/conversations/:id', conv.json);
      assert.equal(conv.json.message_count, 2);

      const msgs = await h.call('GET', `/api/v1/conversations/${other}/messages`, {
        token: h.keys.auditor.key,
      });
      assert.equal(msgs.status, 200);
      assertDocumented('get', '/api/v1/conversations/:id/messages', msgs.json);
      const [q, a] = msgs.json.data;
      assert.deepEqual([q.role, q.status, q.content], ['user', 'answered', `the quick brown fox ${word}`]);
      assert.deepEqual(
        [
          a.role,
          a.status,
          a.model,
          a.prompt_tokens,
          a.completion_tokens,
          a.latency_ms,
          a.ttft_ms,
          a.reply_to,
        ],
        ['assistant', 'complete', 'qwen2.5', 11, 22, 333, 44, q.id],
      );
      const page = await h.call('GET', `/api/v1/conversations/${other}/messages?limit=1`);
      assert.equal(page.json.next_cursor, String(q.id));
      const rest = await h.call(
        'GET',
        `/api/v1/conversations/${other}/messages?after=${page.json.next_cursor}`,
      );
      assert.deepEqual(
        rest.json.data.map((m: any) => m.id),
        [a.id],
      );

      assert.equal((await h.call('GET', `/api/v1/conversations/${randomUUID()}`)).status, 404);
      const invalid = await h.call('GET', '/api/v1/conversations/123/messages');
      assert.equal(invalid.status, 400);
      assert.match(invalid.json.error.message, /^path\.id: /);
    });

    it('shows a key with the role user only its own conversations', async () => {
      const token = h.keys.user.key;
      const list = await h.call('GET', '/api/v1/conversations', { token });
      assert.equal(list.status, 200);
      assert.ok(list.json.data.length >= 1);
      assert.ok(list.json.data.every((c: any) => c.user_id === ownUser));
      assert.ok(list.json.data.some((c: any) => c.id === own));
      assert.equal((await h.call('GET', `/api/v1/conversations?q=${word}`, { token })).json.data.length, 1);
      assert.equal(
        (await h.call('GET', `/api/v1/conversations?user_id=${otherUser}`, { token })).status,
        403,
      );
      assert.equal((await h.call('GET', `/api/v1/conversations/${own}`, { token })).status, 200);
      assert.equal((await h.call('GET', `/api/v1/conversations/${own}/messages`, { token })).status, 200);
      assert.equal((await h.call('GET', `/api/v1/conversations/${other}`, { token })).status, 404);
      assert.equal((await h.call('GET', `/api/v1/conversations/${other}/messages`, { token })).status, 404);
    });
  });

  describe('users', () => {
    it('lists users with their identities and shows one', async () => {
      const name = `Frank ${tag()}`;
      const { userId } = await identify(h.t.db, {
        platform: 'feishu',
        externalId: `ou_${tag()}`,
        displayName: name,
      });
      const list = await h.call('GET', `/api/v1/users?q=${encodeURIComponent(name)}`, {
        token: h.keys.operator.key,
      });
      assert.equal(list.status, 200);
      assertDocumented('get', '/api/v1/users', list.json);
      assert.deepEqual(
        list.json.data.map((u: any) => u.id),
        [userId],
      );
      const one = await h.call('GET', `/api/v1/users/${userId}`);
      assert.equal(one.status, 200);
      assertDocumented('get', '/api/v1/users/:id', one.json);
      assert.deepEqual(
        one.json.identities.map((i: any) => [i.platform, i.display_name, i.approved]),
        [['feishu', name, false]],
      );
      assert.equal((await h.call('GET', '/api/v1/users/99999999')).status, 404);
      assert.equal((await h.call('GET', '/api/v1/users/abc')).status, 400);
    });
  });

  describe('audit log', () => {
    it('filters by kind, outcome, user and time, pages by id, and exports CSV', async () => {
      const kind = `test.${tag()}`;
      const db = h.t.db;
      await writeAudit(db, { kind, userId: 1, outcome: 'complete', model: 'qwen2.5', durationMs: 10 });
      await writeAudit(db, { kind, userId: 2, outcome: 'failed', detail: { reason: 'timeout' } });
      await writeAudit(db, {
        kind,
        userId: 1,
        outcome: 'complete',
        content: '=HYPERLINK("x"), "quoted"\nline two',
      });
      await writeAudit(db, { kind, userId: 1, outcome: 'complete' });
      await db.query(
        `UPDATE audit_log SET at = '2021-06-01T00:00:00Z' WHERE kind = $1 AND id = (SELECT max(id) FROM audit_log WHERE kind = $1)`,
        [kind],
      );
      const token = h.keys.auditor.key;

      const all = await h.call('GET', `/api/v1/audit?kind=${kind}`, { token });
      assert.equal(all.status, 200);
      assertDocumented('get', '/api/v1/audit', all.json);
      assert.equal(all.json.data.length, 4);
      assert.ok(all.json.data[0].id > all.json.data[1].id, 'newest first');
      assert.equal(
        (await h.call('GET', `/api/v1/audit?kind=${kind}&outcome=failed`, { token })).json.data[0].detail
          .reason,
        'timeout',
      );
      assert.equal(
        (await h.call('GET', `/api/v1/audit?kind=${kind}&user_id=1`, { token })).json.data.length,
        3,
      );
      assert.equal(
        (await h.call('GET', `/api/v1/audit?kind=${kind}&from=2021-05-31&to=2021-06-01`, { token })).json.data
          .length,
        1,
      );
      assert.equal(
        (await h.call('GET', `/api/v1/audit?kind=${kind}&from=2022-01-01`, { token })).json.data.length,
        3,
      );

      const p1 = await h.call('GET', `/api/v1/audit?kind=${kind}&limit=3`, { token });
      assert.equal(p1.json.data.length, 3);
      const p2 = await h.call('GET', `/api/v1/audit?kind=${kind}&limit=3&before=${p1.json.next_cursor}`, {
        token,
      });
      assert.equal(p2.json.data.length, 1);
      assert.equal(p2.json.next_cursor, null);
      assert.equal((await h.call('GET', '/api/v1/audit?limit=1001', { token })).status, 400);

      const csv = await h.call('GET', `/api/v1/audit?kind=${kind}&format=csv&limit=3`, { token });
      assert.equal(csv.status, 200);
      assert.match(csv.headers.get('content-type')!, /^text\/csv/);
      assert.equal(csv.headers.get('x-next-cursor'), p1.json.next_cursor);
      const lines = csv.text.split('\r\n');
      assert.equal(
        lines[0],
        'id,at,kind,actor,user_id,platform,conversation_id,model,duration_ms,prompt_tokens,completion_tokens,outcome,detail,content',
      );
      assert.ok(
        csv.text.includes(`,"'=HYPERLINK(""x""), ""quoted""\nline two"`),
        'quoted, escaped, formula defused',
      );
      assert.equal(lines.at(-1), '', 'ends with a line break');
    });
  });

  describe('POST /api/v1/chat', () => {
    const chat = (body: unknown, token = h.keys.user.key, headers?: Record<string, string>) =>
      h.call('POST', '/api/v1/chat', { token, body, headers });

    it('refuses invalid requests with a clear 400 and never calls the engine', async () => {
      const calls = h.chat.calls.length;
      const cases: [unknown, RegExp][] = [
        [
          { message: 'hi', messages: [{ role: 'user', content: 'hi' }] },
          /either message or messages, not both/,
        ],
        [{}, /send message .* or messages/],
        [{ messages: [] }, /body\.messages: must not be empty/],
        [{ message: '   ' }, /body\.message: must not be empty/],
        [
          {
            messages: [
              { role: 'user', content: 'a' },
              { role: 'assistant', content: 'b' },
            ],
          },
          /body\.messages\[1\]\.role: the last message must have role user/,
        ],
        [{ messages: [{ role: 'robot', content: 'a' }] }, /body\.messages\[0\]\.role/],
        [
          { conversation_id: randomUUID(), messages: [{ role: 'user', content: 'a' }] },
          /messages starts a new conversation/,
        ],
        [{ conversation_id: 'abc', message: 'hi' }, /body\.conversation_id/],
        [{ message: 'hi', temperature: 2 }, /Unrecognized key/],
        [{ message: 'x'.repeat(100_001) }, /body\.message/],
        [[{ message: 'hi' }], /body: /],
      ];
      for (const [body, message] of cases) {
        const res = await chat(body);
        assert.equal(res.status, 400, JSON.stringify(body).slice(0, 80));
        assert.equal(res.json.error.code, 'invalid_request');
        assert.match(res.json.error.message, message);
      }
      assert.equal(h.chat.calls.length, calls);
    });

    it('passes a non-streaming request through to the engine and returns its result', async () => {
      const requestId = `req-${tag()}`;
      const res = await chat({ message: 'Hello?', model: 'qwen2.5' }, h.keys.user.key, {
        'x-request-id': requestId,
      });
      assert.equal(res.status, 200);
      assertDocumented('post', '/api/v1/chat', res.json);
      assert.equal(res.headers.get('x-request-id'), requestId);
      assert.equal(res.json.reply.content, REPLY_PIECES.join(''));
      assert.equal(res.json.reply.model, 'qwen2.5');
      const call = h.chat.calls.at(-1)!;
      const { userId } = await identify(h.t.db, {
        platform: 'api',
        externalId: h.keys.user.id,
        displayName: h.keys.user.name,
      });
      assert.deepEqual(call.req, {
        caller: { userId, isAdmin: false, role: 'user', name: 'test-user' },
        conversationId: undefined,
        model: 'qwen2.5',
        message: 'Hello?',
        messages: undefined,
        requestId,
      });
      assert.equal(call.streamed, false);

      const history = [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ];
      await chat({ messages: history }, h.keys.admin.key);
      assert.deepEqual(h.chat.calls.at(-1)!.req.messages, history);
      assert.equal(h.chat.calls.at(-1)!.req.caller.isAdmin, true);
    });

    it("passes the engine's client errors through and hides unexpected ones", async () => {
      const missing = await chat({ message: 'fail-404', conversation_id: randomUUID() });
      assert.equal(missing.status, 404);
      assert.deepEqual(missing.json, {
        error: { code: 'conversation_not_found', message: 'No such API conversation.' },
      });
      const crash = await chat({ message: 'crash' });
      assert.equal(crash.status, 500);
      assert.deepEqual(crash.json, { error: { code: 'internal_error', message: 'Internal server error' } });
      assert.ok(!crash.text.includes('hunter2'));
      const streamed = await chat({ message: 'fail-404', stream: true });
      assert.equal(streamed.status, 404, 'an error before the first event is a plain JSON error');
    });

    it('streams deltas as server-sent events, then done with the result', async () => {
      const res = await chat({ message: 'Stream please', stream: true });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
      assert.equal(res.headers.get('x-accel-buffering'), 'no');
      const events = parseSse(res.text);
      assert.deepEqual(
        events.map((e) => e.event),
        ['delta', 'delta', 'delta', 'done'],
      );
      assert.deepEqual(
        events.slice(0, 3).map((e) => e.data),
        REPLY_PIECES.map((text) => ({ text })),
      );
      assertDocumented('post', '/api/v1/chat', events[3]!.data);
      assert.equal(events[3]!.data.reply.content, REPLY_PIECES.join(''));
      assert.ok(res.text.startsWith('event: delta\ndata: {"text":"Hello "}\n\n'));
      assert.equal(h.chat.calls.at(-1)!.streamed, true);

      const failed = parseSse((await chat({ message: 'fail-mid-stream', stream: true })).text);
      assert.deepEqual(failed.at(-1), {
        event: 'error',
        data: { error: { code: 'model_unavailable', message: 'The model is not answering.' } },
      });
    });

    it('aborts the engine call when the client disconnects mid-stream', async () => {
      const controller = new AbortController();
      const res = await fetch(`${h.url}/api/v1/chat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.keys.operator.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ message: 'hang', stream: true }),
        signal: controller.signal,
      });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      const first = await reader.read();
      assert.match(new TextDecoder().decode(first.value), /^event: delta\n/);
      const call = h.chat.calls.at(-1)!;
      assert.equal(call.aborted, false);
      controller.abort();
      await reader.read().catch(() => undefined);
      await eventually(async () => call.aborted);
    });
  });

  describe('HTTP basics', () => {
    it('answers malformed JSON with 400, oversized bodies with 413, other media types with 415', async () => {
      const bad = await h.call('POST', '/api/v1/keys', {
        rawBody: '{"name": "x",',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(bad.status, 400);
      assert.deepEqual(bad.json, {
        error: { code: 'invalid_json', message: 'The request body is not valid JSON.' },
      });
      const big = await h.call('POST', '/api/v1/chat', { body: { message: 'x'.repeat(1_100_000) } });
      assert.equal(big.status, 413);
      assert.equal(big.json.error.code, 'request_too_large');
      const text = await h.call('POST', '/api/v1/keys', {
        rawBody: 'name=x',
        headers: { 'content-type': 'text/plain' },
      });
      assert.equal(text.status, 415);
    });

    it('answers unknown routes with a JSON 404', async () => {
      const res = await h.call('GET', '/api/v1/nothing-here');
      assert.equal(res.status, 404);
      assert.deepEqual(res.json, {
        error: { code: 'not_found', message: 'No route for GET /api/v1/nothing-here.' },
      });
      assert.equal((await h.call('PUT', '/api/v1/keys')).status, 404);
    });

    it('reports health of Postgres and Redis, and serves metrics', async () => {
      const ok = await h.call('GET', '/healthz', { token: null });
      assert.equal(ok.status, 200);
      assert.deepEqual(ok.json, { status: 'ok', postgres: true, redis: true });
      h.health.redis = false;
      try {
        const down = await h.call('GET', '/healthz', { token: null });
        assert.equal(down.status, 503);
        assert.deepEqual(down.json, { status: 'unavailable', postgres: true, redis: false });
      } finally {
        h.health.redis = true;
      }
      const metrics = await h.call('GET', '/metrics', { token: null });
      assert.equal(metrics.status, 200);
      assert.match(
        metrics.text,
        /pincer_http_requests_total\{method="GET",route="\/api\/v1\/keys",status="200",service="core"\} \d+/,
      );
    });
  });
});
