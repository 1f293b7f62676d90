/**
 * The project's performance table, from one command: the whole stack as separate processes from dist/
 * (bench/stack-processes.ts), simulated Telegram and Feishu users (bench/chat-users.ts), and
 *  1. llm-proxy: added latency (through the proxy minus straight to the mock) and streaming throughput;
 *  2. per platform, closed loop: N users each write, wait for the whole answer, write again → turns/s,
 *     message → finished reply p50/p99, duplicates and losses;
 *  3. per platform, open loop at 50 turns/s: the latency the stack adds (the model's own time, from
 *     the mock's records, subtracted turn by turn);
 *  4. RSS of every service: idle after start, peak under load; with BENCH_SOAK_MIN=<minutes>, a soak at
 *     50 turns/s (both platforms) and whether RSS stays flat.
 * Prints the table and the details; writes bench/results/summary.{json,md}.
 *
 *   npm run bench            about 3 minutes
 *   BENCH_QUICK=1            a short run (about a minute)
 *   BENCH_SOAK_MIN=10        adds the 10-minute soak
 *   BENCH_USERS=200          closed-loop users per platform
 *   BENCH_CPU_PROF=core,feishu-bot   CPU profiles of those services in bench/results/profiles/
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ChatPlatform,
  feishu,
  ModelTimes,
  type PlatformName,
  telegram,
  type Turn,
  turnText,
} from './chat-users.ts';
import {
  addedAt,
  ascending,
  compareRuns,
  cpuMs,
  cpuMsOf,
  fmt,
  load,
  type LoadRun,
  mean,
  pct,
  root,
  rssMB,
} from './lib.ts';
import { overrides, type RunningStack, SERVICE_NAMES, startStack } from './stack-processes.ts';

const quick = process.env.BENCH_QUICK === '1';
const soakMin = Number(process.env.BENCH_SOAK_MIN ?? 0) || 0;
const USERS = Number(process.env.BENCH_USERS) || 200;
const CLOSED_S = quick ? 6 : 20;
const RATE = 50;
const OPEN_S = quick ? 8 : 20;
/** Open-loop and soak users per platform: each writes every POOL / RATE seconds or so. */
const POOL = quick ? 200 : 500;
const TURN_TIMEOUT_MS = 30_000;
/** After a phase, before the chats are checked: time for a late duplicate to show up. */
const GRACE_MS = 2000;
const TARGET = { turnsPerS: 300, addedP99Ms: 100, idleRssMB: 100, soakSlopeMBPerMin: 1 };

const say = (line: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** Resolves with whether `p` settled within `ms`. */
async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

interface Stats {
  p50: number;
  p99: number;
  max: number;
  n: number;
}
const stats = (a: number[]): Stats => {
  const s = ascending(a);
  return { p50: pct(s, 50), p99: pct(s, 99), max: s.at(-1) ?? Number.NaN, n: s.length };
};

/** RSS of each service, sampled twice a second; the peak per phase. */
class RssWatch {
  phase = 'idle';
  readonly peaks: Record<string, Record<string, number>> = {};
  private readonly timer: NodeJS.Timeout;
  private readonly stack: RunningStack;

  constructor(stack: RunningStack) {
    this.stack = stack;
    this.timer = setInterval(() => this.sample(), 500);
  }

  now(): Record<string, number> {
    return Object.fromEntries(SERVICE_NAMES.map((n) => [n, rssMB(this.stack.procs.get(n)!.pid!)]));
  }

  private sample(): void {
    const peak = (this.peaks[this.phase] ??= {});
    for (const [n, mb] of Object.entries(this.now())) peak[n] = Math.max(peak[n] ?? 0, mb);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** CPU ms used so far by each process of the stack, this load generator, and Postgres and Redis. */
function cpuNow(stack: RunningStack): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, p] of stack.procs) out[name] = cpuMs(p.pid!);
  const own = process.cpuUsage();
  out['load generator'] = (own.user + own.system) / 1000;
  // every backend on the machine: other work on the same Postgres and Redis counts too
  out.postgres = cpuMsOf((comm) => comm.startsWith('postgres'));
  out.redis = cpuMsOf((comm) => comm.startsWith('redis-server'));
  return out;
}

interface PhaseResult {
  name: string;
  platform: PlatformName | 'both';
  kind: 'closed loop' | 'open loop' | 'soak';
  users: number;
  seconds: number;
  turns: number;
  answered: number;
  turns_per_s: number;
  /** Open loop: the rate asked for, and how late the latest message went out. */
  rate?: number;
  send_lag_max_ms?: number;
  /** Message → finished reply. */
  e2e_ms: Stats;
  /** The model's own time (the mock's records); `n` turns matched. */
  model_ms: Stats;
  /** Message → finished reply minus the model's own time (all of it when no record matched). */
  added_ms: Stats;
  duplicates: number;
  lost: number;
  limited_calls: number;
  failed_calls: number;
  cpu_ms_per_turn: Record<string, number>;
  cpu_cores: Record<string, number>;
}

class Bench {
  readonly phases: PhaseResult[] = [];
  private readonly stack: RunningStack;
  private readonly models: ModelTimes;
  readonly rss: RssWatch;

  constructor(stack: RunningStack, models: ModelTimes, rss: RssWatch) {
    this.stack = stack;
    this.models = models;
    this.rss = rss;
  }

  /** Runs `drive`, then waits for the replies, checks the chats, and sums it all up. */
  private async phase(
    name: string,
    kind: PhaseResult['kind'],
    platforms: ChatPlatform[],
    users: number,
    drive: () => Promise<{ turns: Turn[]; rate?: number; lag?: number }>,
  ): Promise<PhaseResult> {
    say(`${name}: ${kind}, ${users} users per platform`);
    this.rss.phase = name;
    const refused0 = platforms.map((p) => p.refused());
    const cpu0 = cpuNow(this.stack);
    const t0 = Date.now();
    const { turns, rate, lag } = await drive();
    await Promise.all(turns.map((t) => within(t.done, TURN_TIMEOUT_MS)));
    const elapsed = (Math.max(...turns.map((t) => t.doneAt ?? 0), t0 + 1) - t0) / 1000;
    const cpu1 = cpuNow(this.stack);
    await sleep(GRACE_MS);
    await this.models.read().catch(() => {});
    let duplicates = 0;
    let lost = 0;
    for (const p of platforms) {
      const d = await p.check(turns.filter((t) => t.platform === p.name));
      duplicates += d.duplicates;
      lost += d.lost;
    }
    const refused = platforms.map((p, i) => ({
      limited: p.refused().limited - refused0[i]!.limited,
      errors: p.refused().errors - refused0[i]!.errors,
    }));
    const answered = turns.filter((t) => t.doneAt !== undefined);
    const e2e: number[] = [];
    const model: number[] = [];
    const added: number[] = [];
    for (const t of answered) {
      const total = t.doneAt! - t.sentAt;
      const m = this.models.get(t.text);
      e2e.push(total);
      if (m !== undefined) model.push(m);
      added.push(total - (m ?? 0));
    }
    const r: PhaseResult = {
      name,
      platform: platforms.length === 1 ? platforms[0]!.name : 'both',
      kind,
      users,
      seconds: elapsed,
      turns: turns.length,
      answered: answered.length,
      turns_per_s: answered.length / elapsed,
      ...(rate !== undefined ? { rate, send_lag_max_ms: lag } : {}),
      e2e_ms: stats(e2e),
      model_ms: stats(model),
      added_ms: stats(added),
      duplicates,
      lost,
      limited_calls: refused.reduce((s, x) => s + x.limited, 0),
      failed_calls: refused.reduce((s, x) => s + x.errors, 0),
      cpu_ms_per_turn: Object.fromEntries(
        Object.keys(cpu1).map((k) => [k, (cpu1[k]! - cpu0[k]!) / Math.max(1, answered.length)]),
      ),
      cpu_cores: Object.fromEntries(
        Object.keys(cpu1).map((k) => [k, (cpu1[k]! - cpu0[k]!) / 1000 / elapsed]),
      ),
    };
    say(
      `${name}: ${r.answered}/${r.turns} answered, ${fmt(r.turns_per_s)} turns/s, ` +
        `p50/p99 ${fmt(r.e2e_ms.p50, 0)}/${fmt(r.e2e_ms.p99, 0)} ms, duplicates ${duplicates}, lost ${lost}`,
    );
    this.phases.push(r);
    return r;
  }

  /** Every user writes once and waits for the answer (their account and conversation exist afterwards). */
  warmUp(p: ChatPlatform, users: number[]): Promise<PhaseResult> {
    return this.phase(`${p.name} warm-up`, 'closed loop', [p], users.length, async () => {
      const turns = await Promise.all(users.map((u) => p.send(u, turnText(`w${p.name[0]}`, u, 0))));
      return { turns };
    });
  }

  /** Each user writes, waits for the whole answer, writes again, for `seconds`. */
  closedLoop(p: ChatPlatform, users: number[], seconds: number): Promise<PhaseResult> {
    return this.phase(`${p.name} closed loop`, 'closed loop', [p], users.length, async () => {
      const turns: Turn[] = [];
      const stopAt = Date.now() + seconds * 1000;
      await Promise.all(
        users.map(async (u) => {
          for (let n = 0; Date.now() < stopAt; n++) {
            const t = await p.send(u, turnText(`c${p.name[0]}`, u, n));
            turns.push(t);
            await within(t.done, TURN_TIMEOUT_MS);
          }
        }),
      );
      return { turns };
    });
  }

  /**
   * Messages at a fixed rate whatever the answers do, taking the platforms and their users in turn;
   * each user's next message comes users × platforms / rate seconds after the last.
   */
  openLoop(
    name: string,
    kind: 'open loop' | 'soak',
    platforms: ChatPlatform[],
    users: number[],
    rate: number,
    seconds: number,
    tick?: () => void,
  ): Promise<PhaseResult> {
    return this.phase(name, kind, platforms, users.length, async () => {
      const turns: Turn[] = [];
      const sending: Promise<void>[] = [];
      const total = Math.round(rate * seconds);
      const t0 = performance.now();
      let lag = 0;
      for (let i = 0; i < total; i++) {
        const due = t0 + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        lag = Math.max(lag, performance.now() - due);
        const p = platforms[i % platforms.length]!;
        const k = Math.floor(i / platforms.length);
        const u = users[k % users.length]!;
        const phase = `${kind === 'soak' ? 's' : 'o'}${p.name[0]}`;
        sending.push(
          p.send(u, turnText(phase, u, Math.floor(k / users.length))).then((t) => {
            turns.push(t);
          }),
        );
        if (i % rate === 0) tick?.();
      }
      await Promise.all(sending);
      return { turns, rate, lag };
    });
  }
}

interface ProxyResult {
  concurrency1: Record<string, number>;
  sustained: { seconds: number; concurrency: number; direct_rps: number; proxy_rps: number; ratio: number };
  cpu_us_per_request: number;
  errors: number;
}

/** llm-proxy alone: the same streaming request straight to the mock and through the proxy. */
async function proxyBench(stack: RunningStack, rss: RssWatch): Promise<ProxyResult> {
  rss.phase = 'llm-proxy';
  const body = (model: string, stream = true) =>
    JSON.stringify({
      model,
      stream,
      max_tokens: 16,
      messages: [{ role: 'user', content: 'Say something short.' }],
    });
  const direct = [`${stack.urls.mock}/v1/chat/completions`, body(stack.model.upstreamId)] as const;
  const via = [`${stack.urls.proxy}/v1/chat/completions`, body(stack.model.id)] as const;
  const key = stack.proxyKey;
  say('llm-proxy: warm-up');
  await load(...direct, { concurrency: 8, requests: 1000, stream: true });
  await load(...via, { concurrency: 8, requests: 2000, stream: true, key });
  const n = quick ? 300 : 1000;
  say(`llm-proxy: ${n} streams one at a time, direct then through the proxy`);
  const d1 = await load(...direct, { concurrency: 1, requests: n, stream: true });
  const p1 = await load(...via, { concurrency: 1, requests: n, stream: true, key });
  const seconds = quick ? 3 : 10;
  // sustained: whole (non-streamed) answers 64 at a time, as bench:proxy measures its ≥ 50 % target
  say(`llm-proxy: requests 64 at a time for ${seconds} s, direct then through the proxy`);
  const dS = await load(direct[0], body(stack.model.upstreamId, false), { concurrency: 64, seconds });
  const cpu0 = cpuMs(stack.procs.get('llm-proxy')!.pid!);
  const pS = await load(via[0], body(stack.model.id, false), { concurrency: 64, seconds, key });
  const cpu = cpuMs(stack.procs.get('llm-proxy')!.pid!) - cpu0;
  const runs: LoadRun[] = [d1, p1, dS, pS];
  return {
    concurrency1: {
      ...compareRuns(d1, p1),
      added_ttft_p50_ms: addedAt(d1, p1, 50, 'ttfts'),
      added_ttft_p99_ms: addedAt(d1, p1, 99, 'ttfts'),
    },
    sustained: { seconds, concurrency: 64, direct_rps: dS.rps, proxy_rps: pS.rps, ratio: pS.rps / dS.rps },
    cpu_us_per_request: (cpu * 1000) / Math.max(1, pS.latencies.length),
    errors: runs.reduce((s, r) => s + r.errors, 0),
  };
}

interface SoakResult {
  minutes: number;
  /** Minutes since the soak began, and each service's RSS then. */
  samples: Array<{ min: number; rss: Record<string, number> }>;
  per_service: Record<
    string,
    {
      first_min_mb: number;
      last_min_mb: number;
      slope_mb_per_min: number;
      /** Over the second half only: growth that stopped (a cache filled) shows here as about 0, a leak does not. */
      second_half_slope_mb_per_min: number;
      flat: boolean;
    }
  >;
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const mx = mean(xs);
  const my = mean(ys);
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den ? num / den : Number.NaN;
}

function soakVerdict(samples: SoakResult['samples'], minutes: number): SoakResult['per_service'] {
  // the first minute is warm-up (pools, JIT, caches filling); flat = the rest grows < 1 MB/min
  const settled = samples.filter((s) => s.min >= 1);
  return Object.fromEntries(
    SERVICE_NAMES.map((n) => {
      const first = samples.filter((s) => s.min < 1).map((s) => s.rss[n]!);
      const last = samples.filter((s) => s.min >= minutes - 1).map((s) => s.rss[n]!);
      const k = slope(
        settled.map((s) => s.min),
        settled.map((s) => s.rss[n]!),
      );
      const late = samples.filter((s) => s.min >= minutes / 2);
      const k2 = slope(
        late.map((s) => s.min),
        late.map((s) => s.rss[n]!),
      );
      return [
        n,
        {
          first_min_mb: mean(first),
          last_min_mb: mean(last),
          slope_mb_per_min: k,
          second_half_slope_mb_per_min: k2,
          flat: k < TARGET.soakSlopeMBPerMin,
        },
      ];
    }),
  );
}

interface Row {
  figure: string;
  measured: string;
  target: string;
  met: boolean | null;
}

const ms2 = (a: number, b: number, d = 0) => `${fmt(a, d)} / ${fmt(b, d)} ms`;
const metText = (m: boolean | null) => (m === null ? '—' : m ? 'yes' : '**no**');
const mdTable = (head: string[], rows: string[][]) =>
  [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

async function main(): Promise<void> {
  const began = Date.now();
  const results = path.join(root, 'bench/results');
  mkdirSync(results, { recursive: true });
  const cpuProf = process.env.BENCH_CPU_PROF?.split(',').filter(Boolean) ?? [];
  say(`starting the stack${quick ? ' (quick run)' : ''}`);
  const stack = await startStack({ cpuProf, profileDir: path.join(results, 'profiles') });
  const tg = telegram(stack.urls.telegramEmulator);
  const fs = feishu(stack.urls.feishuEmulator);
  const models = new ModelTimes(stack.urls.mock);
  const rss = new RssWatch(stack);
  let ok = false;
  const stop = async () => {
    rss.stop();
    await Promise.all([tg.close(), fs.close(), models.stop()]);
    await stack.close(!ok);
  };
  const interrupted = () => {
    say('interrupted: stopping the stack');
    void stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    await sleep(quick ? 3000 : 5000);
    const idleSamples: Array<Record<string, number>> = [];
    for (let i = 0; i < 3; i++) {
      idleSamples.push(rss.now());
      await sleep(500);
    }
    const idle = Object.fromEntries(SERVICE_NAMES.map((n) => [n, mean(idleSamples.map((s) => s[n]!))]));
    say(`idle RSS: ${SERVICE_NAMES.map((n) => `${n} ${fmt(idle[n]!, 0)} MB`).join(', ')}`);

    const proxy = await proxyBench(stack, rss);
    say(
      `llm-proxy: added p50/p99 ${fmt(proxy.concurrency1.added_p50_ms!, 2)}/${fmt(proxy.concurrency1.added_p99_ms!, 2)} ms, ` +
        `${fmt(proxy.sustained.proxy_rps, 0)} req/s through vs ${fmt(proxy.sustained.direct_rps, 0)} direct`,
    );

    const bench = new Bench(stack, models, rss);
    const closedUsers = Array.from({ length: USERS }, (_, i) => i + 1);
    const pool = Array.from({ length: POOL }, (_, i) => 100_000 + i);
    for (const p of [tg, fs]) await bench.warmUp(p, [...closedUsers, ...pool]);
    const tgClosed = await bench.closedLoop(tg, closedUsers, CLOSED_S);
    const fsClosed = await bench.closedLoop(fs, closedUsers, CLOSED_S);
    const tgOpen = await bench.openLoop('telegram open loop', 'open loop', [tg], pool, RATE, OPEN_S);
    const fsOpen = await bench.openLoop('feishu open loop', 'open loop', [fs], pool, RATE, OPEN_S);

    let soak: SoakResult | undefined;
    if (soakMin > 0) {
      const samples: SoakResult['samples'] = [];
      let t0 = 0;
      let nextAt = 0;
      // sampled from the sending loop (once a second it looks whether 15 s went by)
      const tick = () => {
        const now = Date.now();
        if (!t0) t0 = nextAt = now;
        if (now < nextAt) return;
        nextAt += 15_000;
        samples.push({ min: (now - t0) / 60_000, rss: rss.now() });
      };
      await bench.openLoop(`soak ${soakMin} min`, 'soak', [tg, fs], pool, RATE, soakMin * 60, tick);
      samples.push({ min: (Date.now() - t0) / 60_000, rss: rss.now() });
      soak = { minutes: soakMin, samples, per_service: soakVerdict(samples, soakMin) };
    }
    const end = rss.now();

    // ---------------------------------------------------------------- the table
    const loaded = Object.fromEntries(
      SERVICE_NAMES.map((n) => [
        n,
        Math.max(
          ...Object.entries(rss.peaks)
            .filter(([ph]) => ph !== 'idle')
            .map(([, v]) => v[n] ?? 0),
        ),
      ]),
    );
    const all = bench.phases;
    const deliveries = (p: PlatformName) => {
      const mine = all.filter((r) => r.platform === p || r.platform === 'both');
      return {
        duplicates: mine.reduce((s, r) => s + r.duplicates, 0),
        lost: mine.reduce((s, r) => s + r.lost, 0),
      };
    };
    const rows: Row[] = [];
    for (const [label, r, limits] of [
      ['Telegram', tgClosed, 'flood limits lifted'],
      ['Feishu', fsClosed, 'rate limits lifted'],
    ] as const)
      rows.push(
        {
          figure: `${label}: full-stack turns/s, closed loop (${r.users} users; ${limits})`,
          measured: fmt(r.turns_per_s, 0),
          target: `≥ ${TARGET.turnsPerS}`,
          met: r.turns_per_s >= TARGET.turnsPerS,
        },
        {
          figure: `${label}: message → finished reply p50 / p99 at that load, model subtracted`,
          measured: ms2(r.added_ms.p50, r.added_ms.p99),
          target: '',
          met: null,
        },
      );
    for (const [label, r] of [
      ['Telegram', tgOpen],
      ['Feishu', fsOpen],
    ] as const)
      rows.push({
        figure: `${label}: added latency p50 / p99 at ${RATE} turns/s, open loop (message → finished reply − model)`,
        measured: ms2(r.added_ms.p50, r.added_ms.p99),
        target: `p99 ≤ ${TARGET.addedP99Ms} ms`,
        met: r.added_ms.p99 <= TARGET.addedP99Ms,
      });
    for (const [label, p] of [
      ['Telegram', 'telegram'],
      ['Feishu', 'feishu'],
    ] as const) {
      const d = deliveries(p);
      rows.push({
        figure: `${label}: duplicates / losses, all runs`,
        measured: `${d.duplicates} / ${d.lost}`,
        target: '0 / 0',
        met: d.duplicates === 0 && d.lost === 0,
      });
    }
    const c1 = proxy.concurrency1;
    rows.push(
      {
        figure: 'llm-proxy: added latency p50 / p99, whole stream, one at a time',
        measured: ms2(c1.added_p50_ms!, c1.added_p99_ms!, 2),
        target: '',
        met: null,
      },
      {
        figure: 'llm-proxy: added time to first token p50 / p99 (bench:proxy target)',
        measured: ms2(c1.added_ttft_p50_ms!, c1.added_ttft_p99_ms!, 2),
        target: 'p99 ≤ 3 ms',
        met: c1.added_ttft_p99_ms! <= 3,
      },
      {
        figure: `llm-proxy: requests/s through the proxy vs direct, ${proxy.sustained.concurrency} at a time (bench:proxy target)`,
        measured: `${fmt(proxy.sustained.proxy_rps, 0)} vs ${fmt(proxy.sustained.direct_rps, 0)} (${fmt(proxy.sustained.ratio * 100, 0)} %)`,
        target: '≥ 50 % of direct',
        met: proxy.sustained.ratio >= 0.5,
      },
    );
    for (const n of SERVICE_NAMES)
      rows.push({
        figure: `RSS ${n}: idle / loaded peak`,
        measured: `${fmt(idle[n]!, 0)} / ${fmt(loaded[n]!, 0)} MB`,
        target: `idle ≤ ${TARGET.idleRssMB} MB`,
        met: idle[n]! <= TARGET.idleRssMB,
      });
    if (soak)
      for (const n of SERVICE_NAMES) {
        const v = soak.per_service[n]!;
        rows.push({
          figure: `RSS ${n} over a ${soak.minutes}-min soak at ${RATE} turns/s: slope after minute 1 (first → last minute; slope over the second half)`,
          measured: `${fmt(v.slope_mb_per_min, 2)} MB/min (${fmt(v.first_min_mb, 0)} → ${fmt(v.last_min_mb, 0)} MB; ${fmt(v.second_half_slope_mb_per_min, 2)} MB/min)`,
          target: `flat: < ${TARGET.soakSlopeMBPerMin} MB/min`,
          met: v.flat,
        });
      }
    else
      rows.push({
        figure: 'RSS flat over a 10-minute soak',
        measured: 'not run (BENCH_SOAK_MIN=10 runs it)',
        target: `flat: < ${TARGET.soakSlopeMBPerMin} MB/min`,
        met: null,
      });

    // ---------------------------------------------------------------- the details
    const seconds = (Date.now() - began) / 1000;
    const machine = `${os.cpus().length} cores, Node ${process.version}`;
    const table = mdTable(
      ['figure', 'measured', 'target', 'met?'],
      rows.map((r) => [r.figure, r.measured, r.target, metText(r.met)]),
    );
    const phaseTable = mdTable(
      [
        'phase',
        'turns answered',
        'turns/s',
        'message → reply p50 / p99',
        'model p50 / p99 (turns matched)',
        'added p50 / p99',
        'dup / lost',
        '429s / failed calls',
      ],
      all.map((r) => [
        r.kind === 'closed loop'
          ? `${r.name} (${r.users} users)`
          : `${r.name} (${r.rate}/s, send lag ≤ ${fmt(r.send_lag_max_ms!, 0)} ms)`,
        `${r.answered} / ${r.turns}`,
        fmt(r.turns_per_s, 0),
        ms2(r.e2e_ms.p50, r.e2e_ms.p99),
        `${ms2(r.model_ms.p50, r.model_ms.p99)} (${r.model_ms.n})`,
        ms2(r.added_ms.p50, r.added_ms.p99),
        `${r.duplicates} / ${r.lost}`,
        `${r.limited_calls} / ${r.failed_calls}`,
      ]),
    );
    const procs = Object.keys(all[0]?.cpu_ms_per_turn ?? {});
    const measured = all.filter((r) => !r.name.endsWith('warm-up'));
    const cpuTable = mdTable(
      ['phase', ...procs],
      measured.flatMap((r) => [
        [`${r.name}: CPU ms per turn`, ...procs.map((k) => fmt(r.cpu_ms_per_turn[k]!, 2))],
        [`${r.name}: cores busy`, ...procs.map((k) => fmt(r.cpu_cores[k]!, 2))],
      ]),
    );
    const phaseNames = Object.keys(rss.peaks).filter((ph) => ph !== 'idle');
    const rssTable = mdTable(
      ['service', 'idle', ...phaseNames.map((ph) => `peak: ${ph}`), 'end'],
      SERVICE_NAMES.map((n) => [
        n,
        fmt(idle[n]!, 0),
        ...phaseNames.map((ph) => fmt(rss.peaks[ph]![n]!, 0)),
        fmt(end[n]!, 0),
      ]),
    );
    const proxyTable = mdTable(
      ['llm-proxy', 'value'],
      [
        ['one at a time: direct p50 / p99', ms2(c1.direct_p50_ms!, c1.direct_p99_ms!, 2)],
        ['one at a time: through the proxy p50 / p99', ms2(c1.proxy_p50_ms!, c1.proxy_p99_ms!, 2)],
        [
          'self-reported overhead (x-pincer-overhead-ms) p50 / p99',
          ms2(c1.self_reported_overhead_p50_ms!, c1.self_reported_overhead_p99_ms!, 2),
        ],
        ['CPU per request (64 at a time)', `${fmt(proxy.cpu_us_per_request, 0)} µs`],
        ['errors', String(proxy.errors)],
      ],
    );
    const setup = [
      `Machine: ${machine}; everything below shares it (services, mock, emulators, Postgres, Redis, this load generator).`,
      'Each service runs as its own process from dist/ with the environment scripts/local-stack.ts gives it; the emulators run as processes too and the adapters reach them over HTTP (Telegram webhook, straight to the adapter, no nginx) and the long connection (Feishu).',
      'Model: the mock (vLLM flavour, zero delay) for every model in config/models.yml. config/config.yaml as shipped, with: ' +
        Object.entries(overrides)
          .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
          .join('; ') +
        '.',
      "Platform limits lifted: Telegram's flood limits (1 message/s per chat, ~30/s per bot) would cap any bot at about 30 sends/s and Feishu's (50/s per API) at 50 cards/s, so the emulators run with --no-flood / --no-limits and the adapters' pacing is raised to match.",
      `Closed loop: ${USERS} users per platform for ${CLOSED_S} s, each waiting for the whole answer (Telegram: the sendMessage/editMessageText carrying the whole text; Feishu: the CardKit card closed) before writing again. Open loop: ${RATE} messages/s for ${OPEN_S} s over ${POOL} users. Every user wrote once before (warm-up), so accounts and conversations exist.`,
      "Model subtracted: per turn, the mock's own time for the request carrying that turn's text (arrival to end of the streamed answer, from /_mock/requests); where no record matched, nothing is subtracted. The model calls that answer no turn (memory extraction) are not counted against any turn.",
      `Times: from just before the user's message went to the emulator to the emulator's timestamp of the finishing call.${soakMin ? '' : ' No soak in this run (BENCH_SOAK_MIN=10 adds one).'}`,
    ];
    const soakText = soak
      ? `\n### Soak\n\n${mdTable(
          ['minute', ...SERVICE_NAMES],
          soak.samples.map((s) => [fmt(s.min, 2), ...SERVICE_NAMES.map((n) => fmt(s.rss[n]!, 1))]),
        )}\n\nFlat = least-squares slope of RSS over the samples after the first minute (warm-up) below ${TARGET.soakSlopeMBPerMin} MB/min. The slope over the second half alone tells growth that stopped (a plateau) from growth that goes on (a leak).\n`
      : '';
    const md = [
      `## Pincer stack benchmark${quick ? ' (quick run)' : ''}`,
      '',
      `${new Date().toISOString()}, ${machine}, run took ${fmt(seconds, 0)} s.`,
      '',
      table,
      '',
      '### Setup',
      '',
      ...setup.map((l) => `- ${l}`),
      '',
      '### Phases',
      '',
      phaseTable,
      '',
      '### CPU (ms per answered turn, and cores busy on average)',
      '',
      cpuTable,
      '',
      '### RSS (MB)',
      '',
      rssTable,
      '',
      '### llm-proxy',
      '',
      proxyTable,
      soakText,
    ].join('\n');
    process.stdout.write(`\n${md}\n`);
    writeFileSync(path.join(results, 'summary.md'), `${md}\n`);
    writeFileSync(
      path.join(results, 'summary.json'),
      `${JSON.stringify(
        {
          at: new Date().toISOString(),
          quick,
          machine: { cpus: os.cpus().length, node: process.version },
          seconds,
          table: rows,
          setup: {
            users: USERS,
            closed_s: CLOSED_S,
            rate: RATE,
            open_s: OPEN_S,
            pool: POOL,
            config_overrides: overrides,
          },
          rss_mb: { idle, loaded_peak: loaded, peaks_by_phase: rss.peaks, end },
          llm_proxy: proxy,
          phases: all,
          model_calls_answering_no_turn: models.other,
          model_records_missed: models.missed,
          soak: soak ?? null,
        },
        null,
        2,
      )}\n`,
    );
    const bad = (['telegram', 'feishu'] as const).some((p) => deliveries(p).duplicates || deliveries(p).lost);
    if (bad) {
      say('duplicates or losses: failing the run');
      process.exitCode = 1;
    }
    ok = true;
  } catch (err) {
    process.stderr.write(`${stack.logTails()}\n`);
    throw err;
  } finally {
    await stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
