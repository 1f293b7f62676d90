import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import winston from 'winston';
import { AppError, createLogger, openAIErrorBody, redact, requestIdFrom, toAppError } from '../src/index.ts';

function capture(opts: Parameters<typeof createLogger>[0]) {
  const lines: string[] = [];
  const log = createLogger(opts);
  log.clear();
  log.add(
    new winston.transports.Stream({
      stream: new Writable({
        write: (c, _e, cb) => {
          lines.push(String(c));
          cb();
        },
      }),
    }),
  );
  return { log, lines };
}

describe('logger', () => {
  it('writes JSON with service, and redacts secrets, credential-shaped values and chat content', () => {
    const { log, lines } = capture({ service: 'svc', secrets: ['hunter2-the-password'] });
    log.info('calling with Bearer abcdefghijklmnop and hunter2-the-password', {
      requestId: 'r1',
      apiKey: 'k-123',
      headers: { authorization: 'Bearer xyz12345678', accept: 'json' },
      text: 'my private message',
      telegram: 'bot 123456789:AAfake-redaction-test-0000000000000 failed',
      count: 3,
    });
    const line = JSON.parse(lines[0]!);
    assert.equal(line.service, 'svc');
    assert.equal(line.requestId, 'r1');
    assert.equal(line.count, 3);
    assert.equal(line.apiKey, '[redacted]');
    assert.equal(line.headers.authorization, '[redacted]');
    assert.equal(line.headers.accept, 'json');
    assert.equal(line.text, '[content redacted, 18 chars]');
    assert.equal(line.telegram, 'bot [redacted] failed');
    assert.equal(line.message, 'calling with Bearer [redacted] and [redacted]');
    assert.ok(line.timestamp);
  });

  it('keeps content when content logging is explicitly enabled, but still hides secrets', () => {
    const { log, lines } = capture({ service: 'svc', logContent: true });
    log.info('x', { text: 'hello', token: 'abc' });
    const line = JSON.parse(lines[0]!);
    assert.equal(line.text, 'hello');
    assert.equal(line.token, '[redacted]');
  });

  it('redacts nested arrays and errors', () => {
    const out = redact(
      { list: [{ password: 'p' }], err: new Error('failed with Bearer abcdefghijk') },
      false,
      [],
    ) as any;
    assert.deepEqual(out.list, [{ password: '[redacted]' }]);
    assert.equal(out.err.message, 'failed with Bearer [redacted]');
    assert.ok(!out.err.stack.includes('abcdefghijk'));
  });

  it('accepts well-formed request ids only', () => {
    assert.equal(
      requestIdFrom('abc-123', () => 'fresh'),
      'abc-123',
    );
    assert.equal(
      requestIdFrom('bad id\nwith newline', () => 'fresh'),
      'fresh',
    );
    assert.equal(
      requestIdFrom(undefined, () => 'fresh'),
      'fresh',
    );
  });
});

describe('errors', () => {
  it('shapes AppErrors like OpenAI and hides unknown errors', () => {
    const e = new AppError(429, 'rate_limit_exceeded', 'slow down');
    assert.deepEqual(openAIErrorBody(e), {
      error: { message: 'slow down', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' },
    });
    const unknown = toAppError(new Error('connection string postgres://user:pw@db'));
    assert.equal(unknown.status, 500);
    assert.equal(unknown.message, 'Internal server error');
  });
});
