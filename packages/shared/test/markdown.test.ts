import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { alignTable, displayWidth, splitMarkdown } from '../src/index.ts';

const FENCE_LINE = /^[ \t]*(`{3,}|~{3,})/;

/** The input's words, in order: what a reader must get back across all parts. */
function words(text: string): string {
  return text
    .split('\n')
    .filter((line) => !FENCE_LINE.test(line))
    .join('\n')
    .replace(/\s+/g, '');
}

/** Every fence line in a part is matched: each part renders on its own. */
function fencesBalanced(part: string): boolean {
  let open: string | null = null;
  for (const line of part.split('\n')) {
    const m = FENCE_LINE.exec(line);
    if (!m) continue;
    const marker = m[1]!;
    if (open === null) open = marker;
    else if (marker[0] === open[0] && marker.length >= open.length && line.trim() === marker) open = null;
  }
  return open === null;
}

function check(text: string, max: number): string[] {
  const parts = splitMarkdown(text, max);
  for (const part of parts) {
    assert.ok(part.length <= max, `part of ${part.length} > ${max}: ${JSON.stringify(part)}`);
    assert.ok(part.trim() !== '', 'empty part');
    assert.ok(!/^[\udc00-\udfff]/.test(part) && !/[\ud800-\udbff]$/.test(part), 'split surrogate pair');
  }
  assert.equal(words(parts.join('\n')), words(text), 'reassembled content differs');
  return parts;
}

describe('splitMarkdown', () => {
  it('returns short text whole and blank text as no parts', () => {
    assert.deepEqual(splitMarkdown('Hello *world*', 100), ['Hello *world*']);
    assert.deepEqual(splitMarkdown('', 10), []);
    assert.deepEqual(splitMarkdown('  \n\n \t', 3), []);
    assert.throws(() => splitMarkdown('x', 0), RangeError);
    assert.throws(() => splitMarkdown('x', 1.5), RangeError);
  });

  it('prefers paragraph breaks, dropping the blank lines at the cut', () => {
    assert.deepEqual(check('First paragraph is here.\n\nSecond paragraph is a bit longer.\n\nThird.', 40), [
      'First paragraph is here.',
      'Second paragraph is a bit longer.',
      'Third.',
    ]);
  });

  it('falls back to line breaks, then spaces', () => {
    assert.deepEqual(check('line one is here\nline two is here\nline three is here', 36), [
      'line one is here\nline two is here',
      'line three is here',
    ]);
    assert.deepEqual(check('alpha beta gamma delta epsilon zeta eta theta', 20), [
      'alpha beta gamma',
      'delta epsilon zeta',
      'eta theta',
    ]);
  });

  it('hard-cuts only a word longer than a part', () => {
    assert.deepEqual(check('abcdefghijklmnopqrstuvwxyz', 10), ['abcdefghij', 'klmnopqrst', 'uvwxyz']);
    assert.deepEqual(check('see https://example.com/' + 'a'.repeat(30) + ' end', 20), [
      'see',
      'https://example.com/',
      'aaaaaaaaaaaaaaaaaaaa',
      'aaaaaaaaaa end',
    ]);
  });

  it('cuts an over-long line of words at spaces, every part within the limit', () => {
    const line = Array.from({ length: 2000 }, (_, i) => `word${i}`).join(' ');
    const parts = check(line, 500);
    assert.ok(parts.length >= 25);
    assert.ok(parts.every((p) => !p.startsWith(' ') && !p.endsWith(' ')));
  });

  it('never splits a surrogate pair and counts UTF-16 units', () => {
    assert.deepEqual(check('😀😀😀😀😀😀', 5), ['😀😀', '😀😀', '😀😀']);
    const emoji = '👍🏽'.repeat(50);
    for (const max of [3, 5, 7, 10, 33]) check(emoji, max);
  });

  it('cuts CJK text after sentence punctuation', () => {
    assert.deepEqual(check('这是第一句话。这是第二句话。这是第三句话。', 16), [
      '这是第一句话。这是第二句话。',
      '这是第三句话。',
    ]);
  });

  it('closes a cut code block and reopens it with the same fence and language', () => {
    const text = 'Intro.\n\n```python\ndef f():\n    return 1\n\nprint(f())\n```\n\nDone.';
    assert.deepEqual(check(text, 40), [
      'Intro.\n\n```python\ndef f():\n```',
      '```python\n    return 1\n\nprint(f())\n```',
      'Done.',
    ]);
  });

  it('keeps tilde and long backtick fences, info strings and list indentation', () => {
    assert.deepEqual(check('~~~~js title="x"\nlet a = 1;\nlet b = 2;\n~~~~\nafter', 40), [
      '~~~~js title="x"\nlet a = 1;\n~~~~',
      '~~~~js title="x"\nlet b = 2;\n~~~~\nafter',
    ]);
    assert.deepEqual(check('~~~~js title="x"\nlet a = 1;\nlet b = 2;\n~~~~\nafter', 30), [
      '~~~~js title="x"\nlet a =\n~~~~',
      '~~~~js title="x"\n1;\n~~~~',
      '~~~~js title="x"\nlet b =\n~~~~',
      '~~~~js title="x"\n2;\n~~~~\nafter',
    ]);
    // A ``` line inside a ```` block is code, not a fence.
    assert.deepEqual(check('````md\n```\ninner\n```\nmore text\n````', 26), [
      '````md\n```\ninner\n```\n````',
      '````md\nmore text\n````',
    ]);
    assert.deepEqual(check('- item\n  ```sh\n  echo one\n  echo two\n  ```\n- next', 34), [
      '- item\n  ```sh\n  echo one\n  ```',
      '  ```sh\n  echo two\n  ```\n- next',
    ]);
  });

  it('does not leave a part holding an empty code block', () => {
    const parts = check('Some text before the code.\n```js\nconst a = 1;\nconst b = 2;\n```', 40);
    for (const part of parts) assert.doesNotMatch(part, /```js\n```/);
    assert.deepEqual(parts, ['Some text before the code.', '```js\nconst a = 1;\nconst b = 2;\n```']);
  });

  it('splits a 20 000-character answer with a long code block into balanced parts', () => {
    const code = Array.from({ length: 400 }, (_, i) => `    total += values[${i}] * weight  # step ${i}`);
    const text = [
      '# Report',
      'Intro paragraph. '.repeat(40),
      '```python\ndef compute(values, weight):\n    total = 0\n' +
        code.join('\n') +
        '\n    return total\n```',
      'After the code, a closing paragraph with **bold** text. '.repeat(20),
    ].join('\n\n');
    assert.ok(text.length > 20000);
    const parts = check(text, 4000);
    assert.ok(parts.length >= 5);
    for (const part of parts) assert.ok(fencesBalanced(part), `unbalanced fences in ${part.slice(0, 60)}`);
    const inCode = parts.filter((p) => p.includes('total += values'));
    assert.ok(inCode.length >= 3);
    for (const part of inCode.slice(1)) assert.ok(part.startsWith('```python\n'), part.slice(0, 30));
    for (const part of inCode.slice(0, -1)) assert.ok(part.endsWith('\n```'));
  });

  it('keeps every part within the limit for many documents and sizes', () => {
    const blocks = [
      '## Heading',
      'A paragraph with *emphasis*, `code` and a [link](https://example.com).',
      '- one\n- two\n  - nested item with more words',
      '```ts\nconst x: number = 1;\nfunction f(a: string) {\n  return a.length;\n}\n```',
      '> quoted text that goes on for a while and then a bit longer still',
      '| a | b |\n|---|---|\n| 1 | 2 |',
      '中文段落，包含标点符号。还有更多的内容在这里！😀',
      'x'.repeat(120),
    ];
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let doc = 0; doc < 40; doc++) {
      const text = Array.from({ length: 3 + random(12) }, () => blocks[random(blocks.length)]).join('\n\n');
      for (const max of [20, 45, 80, 150, 400]) {
        const parts = check(text, max);
        if (max >= 80) for (const part of parts) assert.ok(fencesBalanced(part), JSON.stringify(part));
      }
    }
  });

  it('runs in linear time on huge input', () => {
    const oneLine = 'abcdefg '.repeat(500_000);
    const lines = 'a line of text\n'.repeat(250_000);
    const noBreaks = 'x'.repeat(2_000_000);
    const started = performance.now();
    for (const text of [oneLine, lines, noBreaks]) assert.ok(splitMarkdown(text, 4000).length >= 500);
    assert.ok(performance.now() - started < 3000, `took ${performance.now() - started} ms`);
  });
});

describe('alignTable', () => {
  it('pads columns by display width, honouring alignment', () => {
    assert.equal(
      alignTable(
        ['Name', '数量', 'Note'],
        [
          ['Apple', '3', 'ok'],
          ['香蕉', '12', ''],
        ],
        ['left', 'right', 'center'],
      ),
      ['Name  | 数量 | Note', '------+------+-----', 'Apple |    3 |  ok', '香蕉  |   12 |'].join('\n'),
    );
  });

  it('fills missing cells and flattens whitespace', () => {
    assert.equal(
      alignTable(['a', 'b'], [['x\ny'], ['1', '2', '3']]),
      'a   | b |\n----+---+--\nx y |   |\n1   | 2 | 3',
    );
  });

  it('measures wide and zero-width characters', () => {
    assert.equal(displayWidth('abc'), 3);
    assert.equal(displayWidth('中文'), 4);
    assert.equal(displayWidth('😀'), 2);
    assert.equal(displayWidth('✅🚀'), 4);
    assert.equal(displayWidth('e\u0301'), 1);
  });
});
