// What the bad-input suites (tests/bad-input-*.test.ts) share: a raw HTTP client that can send what
// fetch refuses to (unnormalised paths, lying Content-Length, bodies cut off mid-upload), hostile
// values for every kind of parameter, and the run of a family (Family): its phases, the checks every
// family makes (4xx only, nothing queued, no secret or error logged, no stray process-level error,
// at least 10,000 cases) and its teardown.
import assert from 'node:assert/strict';
import { Agent, type IncomingHttpHeaders, request } from 'node:http';
import { QueueName } from '@pincer/shared';
import { Queue } from 'bullmq';
import fc from 'fast-check';
import { Redis } from 'ioredis';

export type Headers = Record<string, string | string[]>;

/** One request as it goes on the wire. */
export interface Probe {
  method: string;
  /** Sent as is: not normalised, not re-encoded (the client only refuses control characters). */
  path: string;
  headers?: Headers;
  body?: string | Buffer;
  /** Send only this many bytes of the body, then drop the connection (a client giving up mid-upload). */
  cutAfter?: number;
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/**
 * A generated case: the request, and what a correct service may answer.
 * `refused`: bad input, so a 4xx (one of `allow` when given). `tolerated`: well-formed but hostile input
 * the service may accept or refuse (a search for `'; DROP TABLE users;--`), anything but a 5xx.
 */
export interface Case {
  label: string;
  probe: Probe;
  expect: 'refused' | 'tolerated';
  allow?: readonly number[];
  /** What the request means when its bytes do not show it (an encrypted body's plaintext). */
  detail?: string;
}

const REQUEST_TIMEOUT_MS = 10_000;

/** HTTP/1.1 over a keep-alive pool; every request has a deadline, so a hang fails the case. */
export class Client {
  private readonly agent: Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(base: string, sockets = 8) {
    const u = new URL(base);
    this.host = u.hostname;
    this.port = Number(u.port);
    this.agent = new Agent({ keepAlive: true, maxSockets: sockets });
  }

  /** The answer, or undefined when the probe cut its own body short and the server had not answered yet. */
  send(p: Probe): Promise<Answer | undefined> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | undefined, a?: Answer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(a);
      };
      const body = p.body === undefined ? undefined : Buffer.isBuffer(p.body) ? p.body : Buffer.from(p.body);
      const headers: Headers = { ...p.headers };
      const named = (h: string) => Object.keys(headers).some((k) => k.toLowerCase() === h);
      if (body && !named('content-length') && !named('transfer-encoding'))
        headers['content-length'] = String(body.length);
      const cut = p.cutAfter !== undefined;
      const req = request({
        host: this.host,
        port: this.port,
        method: p.method,
        path: p.path,
        headers,
        // a request dropped half-way takes its own connection down: never one from the pool
        agent: cut ? false : this.agent,
      });
      const timer = setTimeout(() => {
        req.destroy();
        finish(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          finish(undefined, {
            status: res.statusCode!,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', (err) => finish(cut ? undefined : err));
      });
      req.on('error', (err) => finish(cut ? undefined : err));
      if (cut) {
        req.flushHeaders();
        req.write(body!.subarray(0, p.cutAfter), () => setImmediate(() => req.destroy()));
        req.on('close', () => finish(undefined, undefined));
      } else req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Per-family tally: cases sent and the statuses seen. */
export class Tally {
  cases = 0;
  readonly statuses = new Map<string, number>();

  record(status: number | 'cut'): void {
    this.cases++;
    const k = String(status);
    this.statuses.set(k, (this.statuses.get(k) ?? 0) + 1);
  }

  summary(): string {
    return [...this.statuses.entries()]
      .sort()
      .map(([k, n]) => `${k}×${n}`)
      .join(' ');
  }
}

/** Sends a case and asserts its answer; `extra` adds a family's own checks of a refusal. */
export async function check(
  client: Client,
  c: Case,
  tally: Tally,
  extra?: (c: Case, a: Answer) => void,
): Promise<void> {
  let a: Answer | undefined;
  try {
    a = await client.send(c.probe);
  } catch (err) {
    throw new Error(`${c.label}: ${(err as Error).message}\n${describe(c.probe, c.detail)}`, { cause: err });
  }
  if (!a) {
    assert.ok(c.probe.cutAfter !== undefined, `${c.label}: no answer\n${describe(c.probe, c.detail)}`);
    tally.record('cut');
    return;
  }
  tally.record(a.status);
  const where = `${c.label}: answered ${a.status} ${a.text.slice(0, 300)}\n${describe(c.probe, c.detail)}`;
  assert.ok(a.status < 500, `server error for bad input — ${where}`);
  if (c.expect === 'refused') {
    assert.ok(a.status >= 400, `bad input accepted — ${where}`);
    if (c.allow) assert.ok(c.allow.includes(a.status), `expected one of ${c.allow.join('/')} — ${where}`);
  }
  extra?.(c, a);
}

/** A failing case, readable: the request line, headers and the start of the body. */
export function describe(p: Probe, detail?: string): string {
  const body = p.body === undefined ? '' : Buffer.isBuffer(p.body) ? p.body.toString('latin1') : p.body;
  return `${p.method} ${p.path.slice(0, 300)}\n${JSON.stringify(p.headers ?? {})}\nbody (${body.length} bytes): ${JSON.stringify(body.slice(0, 300))}${p.cutAfter !== undefined ? ` cut after ${p.cutAfter} bytes` : ''}${detail ? `\n${detail.slice(0, 1500)}` : ''}`;
}

/** A case as fast-check prints a counterexample: the request in brief, not a megabyte of padding. */
const readable = (c: Case): Case =>
  Object.assign({}, c, { [fc.toStringMethod]: () => `${c.label}: ${describe(c.probe, c.detail)}` });

/** Runs `numRuns` batches of cases, each batch concurrently: throughput without losing fast-check's shrinking. */
async function fuzz(
  client: Client,
  arb: fc.Arbitrary<Case>,
  o: { numRuns: number; batch: number; tally: Tally; extra?: (c: Case, a: Answer) => void },
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(
      fc.array(arb.map(readable), { minLength: o.batch, maxLength: o.batch }),
      async (cases) => {
        // every request of a batch ends before the next batch (or the verdict): none is left in flight
        const results = await Promise.allSettled(cases.map((c) => check(client, c, o.tally, o.extra)));
        const failed = results.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
      },
    ),
    // FC_SEED=<the seed a failure printed> replays that run's cases
    { numRuns: o.numRuns, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) },
  );
}

/** Collects every unhandledRejection and uncaughtException of this process while a suite runs. */
function watchProcess(): { errors: string[]; stop(): void } {
  const errors: string[] = [];
  const onRejection = (err: unknown) => errors.push(`unhandledRejection: ${(err as Error)?.stack ?? err}`);
  const onException = (err: Error) => errors.push(`uncaughtException: ${err?.stack ?? err}`);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return {
    errors,
    stop() {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    },
  };
}

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** What every family must send in all. */
const MIN_CASES = 10_000;

/**
 * One family of cases (one service's surface), from its `describe` to its last check: watches the process
 * for stray rejections and exceptions from the start, runs and counts its phases, makes the checks every
 * family ends with, and closes what it opened (last opened first).
 */
export class Family {
  private readonly watch = watchProcess();
  private readonly startedAt = performance.now();
  private readonly phases = new Map<string, { tally: Tally; planned: number }>();
  private readonly closers: Array<() => unknown> = [];
  private finished = false;
  private http: Client | undefined;

  private readonly name: string;
  private readonly batch: number;
  private readonly runsPerPhase: number;

  /** `runsPerPhase` batches of `batch` concurrent cases in every phase. */
  constructor(name: string, o: { batch: number; runsPerPhase: number }) {
    this.name = name;
    this.batch = o.batch;
    this.runsPerPhase = o.runsPerPhase;
  }

  /** The client that sends the cases (and any other request of the tests), closed with the family. */
  connect(base: string): Client {
    const client = new Client(base, 8);
    this.http = client;
    this.onClose(() => client.close());
    return client;
  }

  /** A Redis connection for the checks, closed with the family; with `prefix`, the keys under it are deleted first. */
  redis(prefix?: string): Redis {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    this.onClose(async () => {
      const keys = prefix ? await redis.keys(`${prefix}:*`) : [];
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    });
    return redis;
  }

  /** Something to undo when the family closes (before what was registered earlier). */
  onClose(fn: () => unknown): void {
    this.closers.push(fn);
  }

  /** One phase: every case sent and checked (with `extra`, the family's own checks of an answer), and counted. */
  async fuzz(phase: string, arb: fc.Arbitrary<Case>, extra?: (c: Case, a: Answer) => void): Promise<void> {
    assert.ok(this.http, 'connect() first');
    assert.ok(!this.phases.has(phase), `phase ${phase} runs once`);
    const tally = new Tally();
    this.phases.set(phase, { tally, planned: this.runsPerPhase * this.batch });
    await fuzz(this.http, arb, { numRuns: this.runsPerPhase, batch: this.batch, tally, extra });
  }

  /**
   * The checks that end every family: no secret and no error-level line in `logs` (everything the services
   * wrote while the cases ran), no stray rejection or exception in the process so far, every phase run in
   * full and at least 10,000 cases in all. Prints the family's figures.
   */
  finish(o: { what: string; logs: readonly string[]; secrets: readonly string[] }): void {
    assertNoSecrets(o.what, o.logs, o.secrets);
    const error = o.logs.find((l) => /"level":"error"/.test(l));
    assert.equal(error, undefined, `an error was logged: ${error}`);
    assert.deepEqual(this.watch.errors, []);
    this.finished = true;
    const phases = [...this.phases];
    const cases = phases.reduce((n, [, p]) => n + p.tally.cases, 0);
    console.log(
      `${this.name}: ${cases} cases in ${((performance.now() - this.startedAt) / 1000).toFixed(1)} s (` +
        phases.map(([phase, p]) => `${phase} ${p.tally.cases}: ${p.tally.summary()}`).join('; ') +
        ')',
    );
    for (const [phase, p] of phases)
      assert.ok(p.tally.cases >= p.planned, `${phase}: ${p.tally.cases} of ${p.planned} cases sent`);
    assert.ok(cases >= MIN_CASES, `${cases} cases in all, fewer than ${MIN_CASES}`);
  }

  /**
   * Closes everything, last opened first (each closer runs even if one before it failed), then stops
   * watching: a stray rejection or exception after finish() (a request still being handled while the
   * services shut down) fails the family too.
   */
  async close(): Promise<void> {
    const failures: unknown[] = [];
    for (const fn of this.closers.reverse()) {
      try {
        await fn();
      } catch (err) {
        failures.push(err);
      }
    }
    this.watch.stop();
    if (failures.length) throw failures[0];
    if (this.finished) assert.deepEqual(this.watch.errors, [], 'while the services shut down');
  }
}

/** Asserts that no secret appears in any captured log line (or any other text given). */
export function assertNoSecrets(what: string, lines: readonly string[], secrets: readonly string[]): void {
  assert.ok(lines.length > 0, `${what}: nothing captured (the scan would prove nothing)`);
  for (const secret of secrets) {
    assert.ok(secret.length >= 8, 'a secret to look for is long enough not to match by chance');
    const hit = lines.find((l) => l.includes(secret));
    assert.equal(
      hit?.split(secret).join('[THE SECRET]').slice(0, 400),
      undefined,
      `${what} contains a secret (${secret.slice(0, 4)}…)`,
    );
  }
}

/** Jobs of every Pincer queue under a Redis prefix, by queue and state. */
export async function queueCounts(connection: Redis, prefix: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of Object.values(QueueName)) {
    const q = new Queue(name, { connection, prefix });
    try {
      const counts = await q.getJobCounts();
      for (const [state, n] of Object.entries(counts)) if (n) out[`${name}.${state}`] = n;
    } finally {
      await q.close();
    }
  }
  return out;
}

/** Asserts what the queues under `prefix` hold, by queue and state: `{}` when nothing may be queued at all. */
export async function assertQueued(
  connection: Redis,
  prefix: string,
  expected: Record<string, number>,
  message = 'something was queued',
): Promise<void> {
  assert.deepEqual(await queueCounts(connection, prefix), expected, message);
}

/** What a redelivery must come to: every delivery acknowledged, and one inbound job in all. */
export async function assertQueuedOnce(
  answers: ReadonlyArray<Answer | undefined>,
  connection: Redis,
  prefix: string,
): Promise<void> {
  assert.deepEqual(
    answers.map((a) => a?.status),
    answers.map(() => 200),
  );
  await assertQueued(connection, prefix, { [`${QueueName.Inbound}.waiting`]: 1 }, 'not queued once');
}

// ---- hostile values ----

/** What an attacker tries in any parameter: injection, traversal, encodings, odd numbers, odd text. */
export const NASTY: readonly string[] = [
  "1' OR '1'='1",
  "'; DROP TABLE users;--",
  '1; DROP TABLE api_keys',
  "' UNION SELECT key_hash FROM api_keys--",
  '1 OR 1=1',
  '"',
  "'",
  '\\',
  '../../etc/passwd',
  '..\\..\\windows\\win.ini',
  '%2e%2e%2f',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '..%2f..%2f',
  '%252e%252e%252f',
  '.',
  '..',
  '/',
  '//',
  '\u0000',
  'a\u0000b',
  '%00',
  '1%00',
  '%',
  '%zz',
  '%E0%A4%A',
  '%C0%AE',
  '0',
  '-1',
  '-0',
  '1.5',
  '1e309',
  '-1e309',
  '1e21',
  'NaN',
  'Infinity',
  '0x10',
  '010',
  ' 1',
  '1 ',
  '+1',
  '9007199254740991',
  '9007199254740993',
  '99999999999999999999999999999999',
  '-99999999999999999999999999999999',
  '2147483648',
  '18446744073709551616',
  '１２３',
  '٣',
  '𝕏',
  'é',
  'e\u0301',
  '\u202e',
  '\u200b',
  '\ufeff',
  '😀',
  '\ud800',
  '\udfff',
  'null',
  'undefined',
  'true',
  '[]',
  '{}',
  '__proto__',
  'constructor',
  '<script>alert(1)</script>',
  // eslint-disable-next-line no-template-curly-in-string -- a template injection, literally
  '${7*7}',
  '{{7*7}}',
  '$(id)',
  '`id`',
  '\r\nX-Injected: 1',
  '\t',
  ' ',
  '',
  'a'.repeat(201),
  'a'.repeat(4097),
  '0'.repeat(400),
];

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 24 }) },
  {
    weight: 1,
    arbitrary: fc
      .oneof(fc.integer(), fc.double(), fc.bigInt({ min: -(2n ** 90n), max: 2n ** 90n }))
      .map(String),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.uuid(), fc.constantFrom("'", '%00', '/..', "' OR 1=1--")).map(([u, s]) => u + s),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(...NASTY), fc.constantFrom(...NASTY)).map(([a, b]) => a + b),
  },
);

/** Any JSON value, with a bias toward the values that break validators. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: hostileString },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<unknown>(
      null,
      true,
      false,
      0,
      -1,
      1.5,
      1e308,
      -1e308,
      2 ** 53,
      2 ** 53 + 2,
      Number.MIN_VALUE,
      [],
      {},
      [null],
      { '': null },
      // objects that break String(), template literals and `+`: what a careless `${value}` meets
      { toString: 1 },
      { toString: null, valueOf: null },
      // an own "__proto__" key on the wire (the literal `{ __proto__: null }` only sets a prototype, and
      // JSON.stringify drops it): a copy made with Object.assign or `o[k] = v` has no prototype, no String()
      JSON.parse('{"__proto__":null,"length":-1}') as unknown,
      'x'.repeat(100_001),
      'x'.repeat(501),
    ),
  },
);

/** `sample` with one field, named by `names` (by default one of its own), set to a hostile JSON value. */
export const hostileField = <T extends object>(
  sample: T,
  names: fc.Arbitrary<string> = fc.constantFrom(...Object.keys(sample)),
): fc.Arbitrary<Record<string, unknown>> =>
  fc.tuple(names, hostileJson).map(([k, v]) => ({ ...sample, [k]: v }));

/** `sample` with one of its fields missing. */
export const missingField = <T extends object>(sample: T): fc.Arbitrary<Record<string, unknown>> =>
  fc.constantFrom(...Object.keys(sample)).map((k) => {
    const { [k]: _gone, ...rest } = sample as Record<string, unknown>;
    return rest;
  });

/** Percent-encodes every byte but the unreserved ones (a lone surrogate becomes U+FFFD, as UTF-8 does). */
export function pct(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** As typed into a URL by hand: printable ASCII kept raw (`/`, `%`, `'`, `..`), everything else encoded. */
export function raw(s: string): string {
  let out = '';
  for (const ch of s) out += /^[\x21-\x7e]$/.test(ch) && ch !== '#' ? ch : pct(ch);
  return out;
}

/** A path segment: how it was written, and what the router makes of it. */
export interface Segment {
  value: string;
  text: string;
  /** One non-empty segment: the route's pattern still matches (no `/`, `?` or `#` to change the path). */
  routed: boolean;
  /** The parameter the router hands over, or undefined when it cannot be decoded (`%zz`). */
  decoded: string | undefined;
}

const decode = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
};

export const segment = (values: fc.Arbitrary<string>): fc.Arbitrary<Segment> =>
  fc.tuple(values, fc.constantFrom('pct', 'pct', 'raw', 'double')).map(([value, how]) => {
    const text = how === 'pct' ? pct(value) : how === 'double' ? pct(pct(value)) : raw(value);
    return { value, text, routed: text !== '' && !/[/?#]/.test(text), decoded: decode(text) };
  });

/** Header values an HTTP client can send at all (no control characters, no line breaks). */
export const headerSafe = (s: string) => /^[\t\x20-\x7e\x80-\xff]*$/.test(s) && s.trim() === s;

const isJson = (s: string) => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};

/** Bodies that are not JSON at all: cut short, single-quoted, commented, binary. */
export function malformedJson(valid: fc.Arbitrary<string>): fc.Arbitrary<string | Buffer> {
  return fc
    .oneof(
      fc.constantFrom(
        '{',
        '[',
        '{"a":',
        '{"a":1,}',
        "{'a':1}",
        '{"a":NaN}',
        '{"a":undefined}',
        '{a:1}',
        '[1,2',
        'nul',
        'tru',
        '{"a":1}}',
        '{"a":1}{"b":2}',
        '{"a":"\\x"}',
        '{"a":"\u0000"}',
        '{"a":"\n"}',
        '/*c*/{}',
        '{"a":01}',
        '{"a":-}',
        '{"a":.5}',
        '{"a":1e}',
        '{"__proto__":',
        '\u0000',
        '1 2',
        '}{',
        '{"a":"\\ud800',
      ),
      // a real body, cut short
      valid
        .filter((t) => t.length > 1)
        .chain((t) => fc.integer({ min: 1, max: t.length - 1 }).map((k) => t.slice(0, k))),
      // a real body with one byte changed
      valid
        .filter((t) => t.length > 0)
        .chain((t) =>
          fc
            .tuple(
              fc.integer({ min: 0, max: t.length - 1 }),
              fc.constantFrom('"', '{', '}', ',', ':', '\\', "'"),
            )
            .map(([i, c]) => t.slice(0, i) + c + t.slice(i + 1)),
        ),
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)),
    )
    .filter((b) => !isJson(Buffer.isBuffer(b) ? b.toString('utf8') : b));
}

/** A JSON object of exactly `bytes` bytes (the smallest body a limit of bytes − 1 must refuse). */
export function jsonOfSize(bytes: number): string {
  const shell = '{"pad":""}';
  return `{"pad":"${'x'.repeat(bytes - shell.length)}"}`;
}

/** A body just over `limit`, declared honestly, or streamed chunked so only counting catches it. */
export const oversized = (limit: number): fc.Arbitrary<{ body: string; chunked: boolean }> =>
  fc.record({
    body: fc.integer({ min: 1, max: 64 }).map((over) => jsonOfSize(limit + over)),
    chunked: fc.boolean(),
  });

/** Content types that are not JSON (or not JSON a server should read). */
export const WRONG_TYPES: readonly string[] = [
  'text/plain',
  'text/html',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/octet-stream',
  'application/jsonx',
  'application/merge-patch+json',
  'application/json; charset=utf-16',
  'application/json; charset=latin2',
  'image/png',
  'json',
  '*/*',
];

/** `valid` with one character changed, one removed or one added: close, but wrong. */
export const nearMiss = (valid: string): fc.Arbitrary<string> =>
  fc
    .oneof(
      fc
        .tuple(fc.integer({ min: 0, max: valid.length - 1 }), fc.constantFrom('a', 'Z', '0', '_', '-'))
        .map(([i, c]) => valid.slice(0, i) + (valid[i] === c ? 'b' : c) + valid.slice(i + 1)),
      fc.integer({ min: 0, max: valid.length - 1 }).map((i) => valid.slice(0, i) + valid.slice(i + 1)),
      fc.constantFrom(valid.toUpperCase(), valid.toLowerCase(), `${valid}0`, `0${valid}`, valid.slice(0, -1)),
    )
    .filter((s) => s !== valid);
