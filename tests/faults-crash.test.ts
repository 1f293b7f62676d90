/**
 * Fault suite, crashes: a service SIGKILLed while work is in flight, restarted, and every accepted
 * message still gets exactly one finished reply. Every service runs as its own process (tests/fault-kit.ts).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  type Expectation,
  type FaultStack,
  feishuOutcome,
  feishuBurst,
  report,
  startFaultStack,
  telegramBurst,
  telegramOutcome,
  telegramStrays,
  until,
} from './fault-kit.ts';

/** Sends `n` Telegram messages from `n` new users; what each must see. */
const sendTelegram = (s: FaultStack, n: number, tag: string): Expectation[] =>
  telegramBurst(s, n, tag).map((m) => ({ key: m.uid, reply: `Mock reply: ${m.text}` }));

/** Sends `n` Feishu direct messages from `n` new users; what each must see under its message. */
const sendFeishu = (s: FaultStack, n: number, tag: string): Array<Expectation & { chat: string }> =>
  feishuBurst(s, n, tag).map((m) => ({ key: m.message_id, chat: m.chat_id, reply: `Mock reply: ${m.text}` }));

const finishedOn = (s: FaultStack, e: Expectation[]) =>
  e.filter((x) => s.tg.chat(Number(x.key)).botMessages.some((m) => m.text === x.reply)).length;

describe('faults: crashes (Telegram long polling, Feishu long connection)', { timeout: 900_000 }, () => {
  let s: FaultStack;
  before(async () => {
    s = await startFaultStack({
      // about 60 tokens at 10 tokens/s: every reply streams for 6 s
      mocks: [{ tokenRate: 10 }],
      config: { system: { max_concurrency: 200, job_lock_ms: 5000 } },
      telegram: { flood: false },
      feishu: { limits: false },
    });
  });
  after(async () => {
    await s?.close();
  });

  it('core SIGKILLed with 200 streamed replies in flight: each of the 200 gets one finished reply', async () => {
    const expect = sendTelegram(s, 200, 'core-crash');
    // wait until the model is streaming most of them, then kill core
    await until(() => (s.mocks[0]!.active >= 120 ? true : undefined), '120 streams in flight', 60_000);
    const streaming = s.mocks[0]!.active;
    const answered = finishedOn(s, expect);
    await s.procs.core.kill('SIGKILL');
    await s.procs.core.start();
    const out = await telegramOutcome(s.tg, expect, 180_000);
    assert.equal(out.missing.length + out.extra.length, 0, report(out, s));
    console.log(
      `# core: ${streaming} streams in flight and ${answered} replies finished at the kill; all 200 finished ${out.ms} ms after the restart`,
    );
  });

  it('telegram-adapter SIGKILLed mid-poll, and again mid-reply: one finished reply each', async () => {
    const adapter = s.procs['telegram-adapter'];
    const polls = () => s.tg.calls.filter((c) => c.method === 'getUpdates').length;
    const before = polls();
    const first = sendTelegram(s, 60, 'poll-crash');
    // killed as soon as it has polled again: updates fetched, maybe not yet queued nor confirmed
    await until(() => (polls() > before ? true : undefined), 'a poll after the burst', 30_000);
    await adapter.kill('SIGKILL');
    // messages that arrive while the adapter is down wait at Telegram
    const whileDown = sendTelegram(s, 20, 'poll-down');
    await sleep(1000);
    await adapter.start();
    // and killed again while replies are being sent and edited
    await until(
      () => (s.tg.chat(Number(first[0]!.key)).botMessages.length > 0 ? true : undefined),
      'replies on screen',
      60_000,
    );
    const shownAtKill = finishedOn(s, [...first, ...whileDown]);
    const killedAt = Date.now();
    await adapter.kill('SIGKILL');
    await sleep(500);
    await adapter.start();
    const all = [...first, ...whileDown];
    const out = await telegramOutcome(s.tg, all, 180_000);
    assert.equal(out.missing.length, 0, report(out, s));
    // A sendMessage Telegram stored just before the kill, whose answer the adapter never read, stays
    // behind as an unfinished beginning of the reply (no idempotency key in the Bot API). Only those
    // may be extra, at most one per send in flight at the kill, and each chat still has one finished reply.
    const stray = telegramStrays(s.tg, all);
    assert.deepEqual(stray.other, [], report(out, s));
    const sendsInFlight = s.tg.calls.filter(
      (c) => c.method === 'sendMessage' && c.ok && c.at >= killedAt - 2000 && c.at <= killedAt,
    ).length;
    assert.ok(
      stray.strays <= sendsInFlight,
      `${stray.strays} stray fragments, more than the ${sendsInFlight} sendMessage calls in the 2 s before the kill`,
    );
    console.log(
      `# telegram-adapter: killed twice (${shownAtKill}/80 finished at the second kill); 80 with one finished reply each; ` +
        `${stray.strays} unfinished fragments left by sends in flight at the kill (${sendsInFlight} sendMessage calls in its last 2 s)`,
    );
  });

  it('feishu-bot SIGKILLed while its cards stream: one finished card each', async () => {
    const bot = s.procs['feishu-bot'];
    const expect = sendFeishu(s, 40, 'feishu-crash');
    await until(
      () => (expect.filter((e) => s.fs.chat(e.chat).botMessages.length > 0).length >= 10 ? true : undefined),
      'cards on screen',
      60_000,
    );
    await bot.kill('SIGKILL');
    const whileDown = sendFeishu(s, 10, 'feishu-down');
    await sleep(500);
    await bot.start();
    const out = await feishuOutcome(s.fs, [...expect, ...whileDown], 180_000);
    assert.equal(out.missing.length + out.extra.length, 0, report(out, s));
  });

  it('llm-proxy SIGKILLed mid-stream: core asks again and each user gets one finished reply', async () => {
    const proxy = s.procs['llm-proxy'];
    const asked = s.mocks[0]!.requests.length;
    const expect = sendTelegram(s, 50, 'proxy-crash');
    await until(() => (s.mocks[0]!.active >= 30 ? true : undefined), '30 streams in flight', 60_000);
    await proxy.kill('SIGKILL');
    await sleep(1000);
    await proxy.start();
    const out = await telegramOutcome(s.tg, expect, 180_000);
    assert.equal(out.missing.length + out.extra.length, 0, report(out, s));
    const broken = s.mocks[0]!.requests.slice(asked).filter((r) => r.aborted).length;
    assert.ok(broken >= 30, `streams cut by the kill: ${broken}`);
  });
});

describe('faults: crashes (Telegram and Feishu webhooks)', { timeout: 600_000 }, () => {
  let s: FaultStack;
  before(async () => {
    s = await startFaultStack({
      mocks: [{ tokenRate: 20 }],
      config: { system: { max_concurrency: 64, job_lock_ms: 5000 } },
      telegramMode: 'webhook',
      feishuMode: 'webhook',
      telegram: { flood: false, webhookRetryDelaysMs: [500, 1000, 2000, 4000, 8000] },
      // Feishu's own schedule (15 s, then minutes) compressed: the case is about the bot, not the wait
      feishu: { limits: false, redeliveryDelaysMs: [1000, 2000, 4000, 8000, 16000] },
    });
  });
  after(async () => {
    await s?.close();
  });

  it('telegram-adapter SIGKILLed mid-webhook: Telegram delivers again and each message is answered once', async () => {
    const adapter = s.procs['telegram-adapter'];
    const delivered = () => s.tg.state().webhook?.delivered ?? 0;
    const at = delivered();
    const expect = sendTelegram(s, 60, 'hook-crash');
    // killed while updates are being pushed to it (a request in flight)
    await until(
      () => ((s.tg.state().webhook?.in_flight ?? 0) > 0 ? true : undefined),
      'a delivery in flight',
      30_000,
    );
    await adapter.kill('SIGKILL');
    const whileDown = sendTelegram(s, 10, 'hook-down');
    await sleep(1000);
    await adapter.start();
    const out = await telegramOutcome(s.tg, [...expect, ...whileDown], 180_000);
    assert.equal(out.missing.length + out.extra.length, 0, report(out, s));
    const error = s.tg.state().webhook?.last_error_message;
    assert.ok(error, 'a delivery failed when the adapter died, and was made again');
    console.log(`# telegram webhook: ${delivered() - at} deliveries for 70 messages; last error "${error}"`);
  });

  it('feishu-bot SIGKILLed mid-webhook: Feishu delivers again and each message is answered once', async () => {
    const bot = s.procs['feishu-bot'];
    const pushed = () => s.fs.deliveries.filter((d) => d.transport === 'webhook').length;
    const at = pushed();
    const expect = sendFeishu(s, 40, 'fhook-crash');
    await until(() => (pushed() > at ? true : undefined), 'the first webhook delivery', 30_000);
    await bot.kill('SIGKILL');
    const whileDown = sendFeishu(s, 10, 'fhook-down');
    await sleep(500);
    await bot.start();
    const out = await feishuOutcome(s.fs, [...expect, ...whileDown], 180_000);
    assert.equal(out.missing.length + out.extra.length, 0, report(out, s));
    const failed = s.fs.deliveries.slice(at).filter((d) => !d.ok).length;
    console.log(
      `# feishu webhook: ${pushed() - at} deliveries (${failed} failed and redelivered) for 50 messages`,
    );
  });
});
