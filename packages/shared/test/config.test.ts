/* eslint-disable no-template-curly-in-string -- config text with ${VAR} expressions */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import {
  ConfigError,
  type ConfigProblem,
  deepFreeze,
  formatProblems,
  interpolateString,
  readYamlConfig,
  validateConfig,
} from '../src/index.ts';

function file(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pincer-cfg-'));
  const f = path.join(dir, 'c.yml');
  writeFileSync(f, text);
  return f;
}

describe('interpolation', () => {
  const env = { HOST: 'db', PORT: '5433', EMPTY: '', FLAG: 'true' };
  const run = (s: string) => {
    const errors: string[] = [];
    return { value: interpolateString(s, env, (m) => errors.push(m)), errors };
  };
  it('substitutes ${VAR}, defaults and typed whole-expression scalars', () => {
    assert.deepEqual(run('postgres://${HOST}:${PORT}/x'), { value: 'postgres://db:5433/x', errors: [] });
    assert.deepEqual(run('${PORT}'), { value: 5433, errors: [] });
    assert.deepEqual(run('${FLAG}'), { value: true, errors: [] });
    assert.deepEqual(run('${NOPE:-fallback}'), { value: 'fallback', errors: [] });
    assert.deepEqual(
      run('${EMPTY:-fallback}'),
      { value: 'fallback', errors: [] },
      ':- replaces empty values',
    );
    assert.deepEqual(run('${EMPTY-fallback}'), { value: '', errors: [] }, '- keeps empty values');
    assert.deepEqual(run('${NOPE:-8000}'), { value: 8000, errors: [] });
    assert.deepEqual(run('price: $${HOST}'), { value: 'price: ${HOST}', errors: [] }, '$${ escapes');
  });
  it('reports unset variables and :? messages', () => {
    assert.deepEqual(run('${NOPE}').errors, ['environment variable NOPE is not set']);
    assert.deepEqual(run('${NOPE:?set the API key}').errors, ['NOPE: set the API key']);
    assert.deepEqual(run('${EMPTY:?}').errors, ['environment variable EMPTY is required']);
  });
});

describe('readYamlConfig + validateConfig', () => {
  const schema = z.strictObject({
    port: z.number().int(),
    name: z.string(),
    nested: z.strictObject({ size: z.number() }),
  });

  it('returns typed data', () => {
    const problems: ConfigProblem[] = [];
    const src = readYamlConfig(file('port: ${P:-80}\nname: x\nnested: { size: 2 }\n'), {}, problems);
    assert.deepEqual(validateConfig(schema, src, problems), { port: 80, name: 'x', nested: { size: 2 } });
    assert.deepEqual(problems, []);
  });

  it('lists every problem with its line, and calls unknown keys typos', () => {
    const problems: ConfigProblem[] = [];
    const f = file('port: eighty\nname: ${MISSING}\nnested:\n  size: 1\n  sise: 2\n');
    const src = readYamlConfig(f, {}, problems);
    validateConfig(schema, src, problems);
    const lines = problems.map((p) => `${p.line} ${p.path}: ${p.message}`);
    assert.equal(problems.length, 3, lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith('2 name: environment variable MISSING is not set')));
    assert.ok(lines.some((l) => l.startsWith('1 port:')));
    assert.ok(lines.some((l) => l === '5 nested: unknown key "sise" (a typo?)'));
    const text = new ConfigError(problems).message;
    assert.match(text, /^invalid configuration \(3 problems\):/);
    assert.ok(text.includes(`${f}:1: port:`));
  });

  it('reports YAML syntax errors and duplicate keys with their line, and a missing required file', () => {
    const problems: ConfigProblem[] = [];
    readYamlConfig(file('a: 1\nb: [1, 2\nc: 3\n'), {}, problems);
    readYamlConfig(file('a: 1\na: 2\n'), {}, problems);
    readYamlConfig('/nonexistent/models.yml', {}, problems, { required: true });
    assert.equal(problems.length, 3, formatProblems(problems));
    assert.match(problems[0]!.message, /^YAML:/);
    assert.equal(problems[1]!.line, 2);
    assert.equal(problems[2]!.message, 'file not found');
    const optional: ConfigProblem[] = [];
    assert.deepEqual(readYamlConfig('/nonexistent/config.yaml', {}, optional).data, {});
    assert.deepEqual(optional, []);
  });

  it('never takes structure from the environment', () => {
    const problems: ConfigProblem[] = [];
    const src = readYamlConfig(file('name: ${EVIL}\n'), { EVIL: 'x\nport: 1' }, problems);
    assert.deepEqual(src.data, { name: 'x\nport: 1' });
  });

  it('freezes config deeply', () => {
    const c = deepFreeze({ a: { b: [1] } });
    assert.throws(() => {
      (c.a.b as number[]).push(2);
    });
  });
});
