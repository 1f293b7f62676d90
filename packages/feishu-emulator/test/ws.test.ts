// The long connection through the real SDK WSClient and EventDispatcher.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { decodeFrame, encodeFrame } from '../src/frame.ts';
import type { Frame } from '../src/frame.ts';
import type { FeishuEmulator, FeishuEmulatorOptions } from '../src/index.ts';
import { startFeishuEmulator } from '../src/index.ts';
import { lark, silentLogger } from './helpers.ts';

type Received = Record<string, any>;

let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

async function emulator(opts: FeishuEmulatorOptions = {}): Promise<FeishuEmulator> {
  const emu = await startFeishuEmulator(opts);
  cleanup.push(() => emu.close());
  return emu;
}

/** A WSClient connected to the emulator; `handler` runs for every im.message.receive_v1. */
function connect(
  emu: FeishuEmulator,
  handler: (data: Received) => unknown = () => undefined,
  appSecret = emu.appSecret,
) {
  const received: Received[] = [];
  const added: Received[] = [];
  const errors: Error[] = [];
  const dispatcher = new lark.EventDispatcher({ logger: silentLogger }).register({
    'im.message.receive_v1': async (data: Received) => {
      received.push(data);
      return handler(data);
    },
    'im.chat.member.bot.added_v1': async (data: Received) => {
      added.push(data);
    },
  });
  const ws = new lark.WSClient({
    appId: emu.appId,
    appSecret,
    domain: emu.url,
    logger: silentLogger,
    onError: (e: Error) => errors.push(e),
  });
  void ws.start({ eventDispatcher: dispatcher });
  cleanup.push(() => ws.close({ force: true }));
  return { ws, received, added, errors };
}

describe('long connection', () => {
  it('delivers a message event exactly as documented and records the ack', async () => {
    const emu = await emulator();
    const client = connect(emu);
    await emu.waitFor(() => emu.wsConnections() === 1, 5000, 'connection');
    const sent = emu.userSend({
      chat: { type: 'group', id: 'oc_team', name: 'Team' },
      sender: { open_id: 'ou_alice', name: 'Alice', union_id: 'on_alice', user_id: 'alice' },
      text: '@Pincer what is 2+2? cc @Bob',
      mentions: [
        { open_id: emu.bot.open_id, name: 'Pincer' },
        { open_id: 'ou_bob', name: 'Bob' },
      ],
    });
    const data = await emu.waitFor(() => client.received[0], 5000, 'event');
    assert.equal(data.schema, '2.0');
    assert.equal(data.event_id, sent.event_id);
    assert.equal(data.event_type, 'im.message.receive_v1');
    assert.equal(data.app_id, emu.appId);
    assert.equal(data.token, emu.verificationToken);
    assert.equal(data.tenant_key, emu.tenantKey);
    assert.match(data.create_time, /^\d{13}$/);
    assert.deepEqual(data.sender, {
      sender_id: { open_id: 'ou_alice', union_id: 'on_alice', user_id: 'alice' },
      sender_type: 'user',
      tenant_key: emu.tenantKey,
    });
    const m = data.message;
    assert.equal(m.message_id, sent.message_id);
    assert.equal(m.chat_id, 'oc_team');
    assert.equal(m.chat_type, 'group');
    assert.equal(m.message_type, 'text');
    assert.equal(m.content, JSON.stringify({ text: '@_user_1 what is 2+2? cc @_user_2' }));
    assert.equal(m.mentions[0].key, '@_user_1');
    assert.equal(m.mentions[0].id.open_id, emu.bot.open_id);
    assert.equal(m.mentions[0].name, 'Pincer');
    assert.equal(m.mentions[1].id.open_id, 'ou_bob');
    await emu.waitFor(() => emu.deliveries.find((d) => d.event_id === sent.event_id), 5000, 'ack');
    assert.deepEqual(
      emu.deliveries.map((d) => [d.transport, d.attempt, d.status, d.ok]),
      [['ws', 0, 200, true]],
    );
  });

  it('sends large events in several frames the SDK reassembles', async () => {
    const emu = await emulator({ wsFragmentBytes: 64 });
    const client = connect(emu);
    const long = 'streaming is fun, '.repeat(200) + '结尾';
    const sent = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_frag' }, text: long });
    const data = await emu.waitFor(() => client.received[0], 5000, 'fragmented event');
    assert.equal(JSON.parse(data.message.content).text, long);
    await emu.waitFor(() => emu.deliveries.length === 1, 5000, 'ack');
    assert.equal(emu.deliveries[0]?.event_id, sent.event_id);
    assert.equal(emu.deliveries[0]?.ok, true);
    assert.equal(client.received.length, 1);
  });

  it('holds events until a client connects', async () => {
    const emu = await emulator();
    const a = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_early' }, text: 'one' });
    const b = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_early' }, text: 'two' });
    assert.equal(emu.deliveries.length, 0);
    const client = connect(emu);
    await emu.waitFor(() => client.received.length === 2, 5000, 'held events');
    assert.deepEqual(client.received.map((d) => d.event_id).sort(), [a.event_id, b.event_id].sort());
  });

  it('redelivers when the handler fails (ack code 500) and when the ack is late', async () => {
    const emu = await emulator({ ackTimeoutMs: 800, redeliveryDelaysMs: [50, 50, 50, 50] });
    let calls = 0;
    const client = connect(emu, async () => {
      calls++;
      if (calls === 1) throw new Error('handler crashed');
      if (calls === 2) await new Promise((r) => setTimeout(r, 1200)); // past the 800 ms ack deadline
    });
    const sent = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_retry' }, text: 'please' });
    await emu.waitFor(() => emu.deliveries.some((d) => d.ok), 5000, 'a successful delivery');
    const attempts = emu.deliveries
      .filter((d) => d.event_id === sent.event_id)
      .map((d) => [d.attempt, d.status, d.ok]);
    assert.deepEqual(attempts, [
      [0, 500, false],
      [1, 0, false],
      [2, 200, true],
    ]);
    assert.match(emu.deliveries[1]?.error ?? '', /no ack within 800 ms/);
    assert.ok(client.received.every((d) => d.event_id === sent.event_id));
    assert.ok(client.received.length >= 3, 'the same event_id arrived again: consumers must dedup');
  });

  it('gives up after four redeliveries', async () => {
    const emu = await emulator({ redeliveryDelaysMs: [10, 10, 10, 10] });
    connect(emu, () => {
      throw new Error('always broken');
    });
    emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_broken' }, text: 'x' });
    await emu.waitFor(() => emu.deliveries.find((d) => d.gaveUp), 5000, 'giving up');
    assert.deepEqual(
      emu.deliveries.map((d) => d.attempt),
      [0, 1, 2, 3, 4],
    );
  });

  it('reconnects after dropConnections and delivers what came in between', async () => {
    const emu = await emulator();
    const client = connect(emu);
    await emu.waitFor(() => emu.wsConnections() === 1, 5000, 'connection');
    emu.dropConnections();
    const gap = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_gap' }, text: 'while away' });
    await emu.waitFor(
      () => client.received.find((d) => d.event_id === gap.event_id),
      5000,
      'event after reconnect',
    );
    assert.equal(emu.wsConnections(), 1);
    const endpointCalls = emu.calls.filter((c) => c.api === 'ws.endpoint');
    assert.equal(endpointCalls.length, 2, 'the client asked for a fresh endpoint to reconnect');
  });

  it('pushes duplicates: the same event_id, or the same message under a new one', async () => {
    const emu = await emulator();
    const client = connect(emu);
    const sent = emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_dup' }, text: 'hello' });
    await emu.waitFor(() => client.received.length === 1, 5000, 'first');
    emu.duplicate(sent.event_id);
    const replay = emu.duplicate(sent.event_id, { newEventId: true });
    await emu.waitFor(() => client.received.length === 3, 5000, 'duplicates');
    const ids = client.received.map((d) => d.event_id);
    assert.deepEqual(ids.slice(0, 2), [sent.event_id, sent.event_id]);
    assert.equal(ids[2], replay.event_id);
    assert.notEqual(replay.event_id, sent.event_id);
    assert.ok(client.received.every((d) => d.message.message_id === sent.message_id));
  });

  it('sends each event to one of several clients', async () => {
    const emu = await emulator();
    const a = connect(emu);
    const b = connect(emu);
    await emu.waitFor(() => emu.wsConnections() === 2, 5000, 'two connections');
    for (let i = 0; i < 20; i++)
      emu.userSend({ chat: { type: 'p2p' }, sender: { open_id: 'ou_many' }, text: `m${i}` });
    await emu.waitFor(() => a.received.length + b.received.length === 20, 5000, 'all events');
    const ids = new Set([...a.received, ...b.received].map((d) => d.event_id));
    assert.equal(ids.size, 20);
    assert.ok(a.received.length > 0 && b.received.length > 0, 'both clients got some');
  });

  it('pushes im.chat.member.bot.added_v1 and then the group’s messages', async () => {
    const emu = await emulator({ groupMessages: 'mentions' });
    const client = connect(emu);
    const added = emu.botAddedToGroup({ id: 'oc_new', name: 'New group' }, { open_id: 'ou_owner' });
    const data = await emu.waitFor(() => client.added[0], 5000, 'bot added');
    assert.equal(data.event_id, added.event_id);
    assert.equal(data.chat_id, 'oc_new');
    assert.equal(data.name, 'New group');
    assert.equal(data.operator_id.open_id, 'ou_owner');
    emu.userSend({
      chat: { type: 'group', id: 'oc_new' },
      sender: { open_id: 'ou_owner' },
      text: 'not for the bot',
    });
    const mention = emu.userSend({
      chat: { type: 'group', id: 'oc_new' },
      sender: { open_id: 'ou_owner' },
      text: '@Pincer hi',
      mentions: [{ open_id: emu.bot.open_id, name: 'Pincer' }],
    });
    await emu.waitFor(() => client.received[0], 5000, 'mention');
    assert.equal(client.received.length, 1, 'without the all-messages scope only mentions arrive');
    assert.equal(client.received[0]?.event_id, mention.event_id);
    assert.equal(emu.chat('oc_new').messages.length, 2);
  });

  it('refuses wrong credentials with a non-retryable code', async () => {
    const emu = await emulator();
    const client = connect(emu, undefined, 'wrong-secret');
    const err = await emu.waitFor(() => client.errors[0], 5000, 'onError');
    assert.match(err.message, /1000040345/);
    assert.equal(emu.wsConnections(), 0);
  });
});

describe('pbbp2 frames on the wire', () => {
  it('discovers the endpoint, pongs with ClientConfig, frames events and takes acks', async () => {
    const emu = await emulator({ wsFragmentBytes: 50, wsClientConfig: { PingInterval: 30 } });
    const res = await fetch(`${emu.url}/callback/ws/endpoint`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ AppID: emu.appId, AppSecret: emu.appSecret }),
    });
    const { code, data } = (await res.json()) as {
      code: number;
      data: { URL: string; ClientConfig: Record<string, number> };
    };
    assert.equal(code, 0);
    assert.deepEqual(data.ClientConfig, {
      PingInterval: 30,
      ReconnectCount: -1,
      ReconnectInterval: 1,
      ReconnectNonce: 0.2,
    });
    const params = [...new URL(data.URL).searchParams.keys()];
    assert.ok(
      params.indexOf('device_id') > 0 && params.indexOf('service_id') > 0,
      'neither id is the first query parameter',
    );
    const serviceId = Number(new URL(data.URL).searchParams.get('service_id'));

    const socket = new WebSocket(data.URL);
    cleanup.push(() => socket.terminate());
    const frames: Frame[] = [];
    socket.on('message', (buf: Buffer) => frames.push(decodeFrame(buf)));
    await once(socket, 'open');
    socket.send(
      encodeFrame({
        SeqID: 0,
        LogID: 0,
        service: serviceId,
        method: 0,
        headers: [{ key: 'type', value: 'ping' }],
      }),
    );
    const pong = await emu.waitFor(() => frames.find((f) => f.method === 0), 2000, 'pong');
    assert.deepEqual(pong.headers, [{ key: 'type', value: 'pong' }]);
    assert.equal(pong.service, serviceId);
    assert.deepEqual(JSON.parse(Buffer.from(pong.payload ?? []).toString()), data.ClientConfig);

    const sent = emu.userSend({
      chat: { type: 'p2p' },
      sender: { open_id: 'ou_wire' },
      text: 'a message long enough to need several frames',
    });
    const parts = await emu.waitFor(
      () => {
        const data = frames.filter((f) => f.method === 1);
        const sum = Number(data[0]?.headers.find((h) => h.key === 'sum')?.value ?? 0);
        return sum > 1 && data.length === sum ? data : undefined;
      },
      2000,
      'all fragments',
    );
    const head = (f: Frame, k: string) => f.headers.find((h) => h.key === k)?.value;
    assert.ok(
      parts.every(
        (f) => head(f, 'type') === 'event' && head(f, 'message_id') === head(parts[0] as Frame, 'message_id'),
      ),
    );
    assert.deepEqual(
      parts.map((f) => head(f, 'seq')),
      parts.map((_, i) => String(i)),
    );
    assert.ok(head(parts[0] as Frame, 'trace_id'));
    const payload = JSON.parse(Buffer.concat(parts.map((f) => Buffer.from(f.payload ?? []))).toString());
    assert.equal(payload.header.event_id, sent.event_id);
    assert.equal(emu.deliveries.length, 0, 'no ack yet');

    const last = parts[parts.length - 1] as Frame;
    socket.send(
      encodeFrame({
        ...last,
        headers: [...last.headers, { key: 'biz_rt', value: '1' }],
        payload: Buffer.from('{"code":200}'),
      }),
    );
    await emu.waitFor(() => emu.deliveries[0], 2000, 'ack');
    assert.deepEqual([emu.deliveries[0]?.status, emu.deliveries[0]?.ok], [200, true]);

    const reused = new WebSocket(data.URL);
    const [err] = (await once(reused, 'error')) as [Error];
    assert.match(err.message, /403/, 'a ticket opens one connection');
  });
});
