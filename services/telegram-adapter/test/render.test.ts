import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderTelegram, visibleLength } from '../src/services/render.ts';

/** Joined HTML of all parts (most inputs here fit one part). */
const html = (markdown: string): string =>
  renderTelegram(markdown)
    .map((p) => p.html)
    .join('\n=====\n');

const ALLOWED = new Set(['b', 'i', 'u', 's', 'a', 'code', 'pre', 'blockquote', 'tg-spoiler']);

/**
 * What Telegram's HTML parse mode accepts: only its tags, balanced and properly nested, attributes only where
 * it defines them, every `<`, `>` and `&` of text escaped with the entities it knows.
 */
function validateTelegramHtml(input: string): void {
  const stack: string[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new assert.AssertionError({ message: `${why} at ${i} in ${JSON.stringify(input)}` });
  };
  while (i < input.length) {
    const ch = input[i]!;
    if (ch === '<') {
      const end = input.indexOf('>', i);
      if (end === -1) fail('unterminated tag');
      const tag = /^<(\/?)([a-z-]+)((?: [^<>]*)?)>$/.exec(input.slice(i, end + 1));
      if (!tag) fail('malformed tag');
      const [, closing, name, attrs] = tag!;
      if (!ALLOWED.has(name!)) fail(`tag <${name}> not allowed`);
      if (closing) {
        if (attrs) fail('attributes on a closing tag');
        if (stack.pop() !== name) fail(`</${name}> does not close the open tag`);
      } else {
        const okAttrs =
          name === 'a'
            ? /^ href="[^"<>]+"$/.test(attrs!)
            : name === 'code'
              ? attrs === '' || /^ class="language-[^"<>\s]+"$/.test(attrs!)
              : name === 'blockquote'
                ? attrs === '' || attrs === ' expandable'
                : attrs === '';
        if (!okAttrs) fail(`bad attributes on <${name}>`);
        const parent = stack.at(-1);
        if (parent === 'code') fail('tag inside <code>');
        if (parent === 'pre' && name !== 'code') fail('only <code> may sit inside <pre>');
        if (name === 'pre' && stack.length > 0) fail(`<pre> inside <${stack.join('><')}>`);
        if (name === 'a' && stack.includes('a')) fail('link inside a link');
        if (name === 'code' && stack.includes('a')) fail('code inside a link');
        if (name === 'blockquote' && stack.includes('blockquote')) fail('nested blockquote');
        stack.push(name!);
      }
      i = end + 1;
    } else if (ch === '&') {
      const entity = /^&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);/.exec(input.slice(i, i + 12));
      if (!entity) fail('unescaped &');
      i += entity![0].length;
    } else if (ch === '>') {
      fail('unescaped >');
    } else i++;
  }
  if (stack.length > 0) fail(`unclosed <${stack.join('>, <')}>`);
  if (/[ \t]\n/.test(input.replace(/<pre>[\s\S]*?<\/pre>/g, ''))) fail('trailing whitespace');
}

const SAMPLE = `# Release notes for *v2.1*

This release brings **faster _startup_**, ~~old flags~~ removed, and \`a < b && c > d\` fixes.
See [the guide](https://example.com/guide?x=1&y=2 "Guide") or <https://example.com>.

## Changes

1. Parser
   - handles \`<tags>\` & entities like &amp; and &#169;
   - [ ] streaming
   - [x] tables
2. Renderer
   > quoted **inside** a list

> A quote with a [link](http://example.org) and code:
> \`\`\`bash
> echo "<hi>"
> \`\`\`
> > nested quote

\`\`\`python
def f(a, b):
    return a < b and b > 0  # "&"
\`\`\`

| Feature | Status | 说明 |
|:--------|:------:|-----:|
| **Bold** | ✅ | 中文 |
| \`code\` | ❌ | [x](https://x.y) |

---

Inline <span class="x">raw html</span> and <at id=all></at> and ![img](https://example.com/i.png)
Last line with a dangling **star and [open link](https://exa`;

describe('renderTelegram: formatting', () => {
  it('renders headings, emphasis, strikethrough and inline code', () => {
    assert.equal(
      html('## Setup *now*\n\nUse **bold _and italic_** with ~~old~~ and `a < b && c`.'),
      '<b>Setup <i>now</i></b>\n\nUse <b>bold <i>and italic</i></b> with <s>old</s> and <code>a &lt; b &amp;&amp; c</code>.',
    );
  });

  it('renders fenced and indented code, escaping < > & and keeping the language', () => {
    assert.equal(
      html('```python\nif x < 1 and y > 2:\n    print("a & b")\n```'),
      '<pre><code class="language-python">if x &lt; 1 and y &gt; 2:\n    print("a &amp; b")</code></pre>',
    );
    assert.equal(
      html('    indented <code>\n    line 2'),
      '<pre><code>indented &lt;code&gt;\nline 2</code></pre>',
    );
    assert.equal(html('```"><script>\nx\n```'), '<pre><code>x</code></pre>');
  });

  it('renders nested, ordered and task lists', () => {
    assert.equal(
      html('- one\n- two\n  1. sub one\n  2. sub two\n     - deep\n- three'),
      '• one\n• two\n  1. sub one\n  2. sub two\n     • deep\n• three',
    );
    assert.equal(html('3. three\n4. four'), '3. three\n4. four');
    assert.equal(html('- [ ] todo\n- [x] done'), '☐ todo\n☑ done');
    assert.equal(
      html('- item\n\n  ```js\n  let a = 1;\n  ```\n- second'),
      '• item\n\n<pre><code class="language-js">let a = 1;</code></pre>\n\n• second',
    );
  });

  it('renders quotes, flattening nested ones and keeping code blocks out of them', () => {
    assert.equal(
      html('> A quote with **bold**\n> and a second line'),
      '<blockquote>A quote with <b>bold</b>\nand a second line</blockquote>',
    );
    assert.equal(html('> outer\n> > inner'), '<blockquote>outer\n\ninner</blockquote>');
    assert.equal(
      html('> before\n> ```\n> x\n> ```\n> after'),
      '<blockquote>before</blockquote>\n\n<pre><code>x</code></pre>\n\n<blockquote>after</blockquote>',
    );
  });

  it('renders tables as aligned monospace text', () => {
    assert.equal(
      html('| Name | Qty |\n|:-----|----:|\n| **Apple** | 3 |\n| 香蕉 | 12 |'),
      '<pre>Name  | Qty\n------+----\nApple |   3\n香蕉  |  12</pre>',
    );
  });

  it('renders links, autolinks and images, dropping unsafe schemes', () => {
    assert.equal(
      html(
        '[click](javascript:alert(1)) [ok](https://a.example/x?q=1&r="2") <https://auto.example> mail@example.com [tg](tg://user?id=42)',
      ),
      'click <a href="https://a.example/x?q=1&amp;r=%222%22">ok</a> <a href="https://auto.example/">https://auto.example</a> ' +
        '<a href="mailto:mail@example.com">mail@example.com</a> <a href="tg://user?id=42">tg</a>',
    );
    assert.equal(
      html(
        '![diagram](https://img.example/d.png) and [![badge](https://img.example/b.svg)](https://ci.example)',
      ),
      '<a href="https://img.example/d.png">diagram</a> and <a href="https://ci.example/">badge</a>',
    );
    assert.equal(
      html('[`code` link](https://x.example) [](https://e.example)'),
      '<a href="https://x.example/">code link</a> <a href="https://e.example/">https://e.example</a>',
    );
    assert.equal(html('[file](file:///etc/passwd) [rel](/docs)'), 'file rel');
  });

  it('escapes HTML from the source instead of passing it through', () => {
    assert.equal(
      html('Text with <b>html</b> & <script>alert(1)</script> and &copy; &amp; &#x1F600;'),
      'Text with &lt;b&gt;html&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt; and &amp;copy; &amp; 😀',
    );
    assert.equal(html('<div class="x">\nblock\n</div>'), '&lt;div class="x"&gt;\nblock\n&lt;/div&gt;');
  });

  it('keeps line breaks, rules and paragraphs, with no trailing whitespace', () => {
    assert.equal(html('Line one\nLine two  \nLine three'), 'Line one\nLine two\nLine three');
    assert.equal(html('a\n\n***\n\nb'), 'a\n\n———\n\nb');
    assert.equal(html('para one   \n\n\n\npara two\n\n'), 'para one\n\npara two');
  });

  it('renders a rich document exactly', () => {
    assert.equal(
      html(SAMPLE),
      [
        '<b>Release notes for <i>v2.1</i></b>',
        '',
        'This release brings <b>faster <i>startup</i></b>, <s>old flags</s> removed, and <code>a &lt; b &amp;&amp; c &gt; d</code> fixes.',
        'See <a href="https://example.com/guide?x=1&amp;y=2">the guide</a> or <a href="https://example.com/">https://example.com</a>.',
        '',
        '<b>Changes</b>',
        '',
        '1. Parser',
        '   • handles <code>&lt;tags&gt;</code> &amp; entities like &amp; and ©',
        '   ☐ streaming',
        '   ☑ tables',
        '2. Renderer',
        '   <blockquote>quoted <b>inside</b> a list</blockquote>',
        '',
        '<blockquote>A quote with a <a href="http://example.org/">link</a> and code:</blockquote>',
        '',
        '<pre><code class="language-bash">echo "&lt;hi&gt;"</code></pre>',
        '',
        '<blockquote>nested quote</blockquote>',
        '',
        '<pre><code class="language-python">def f(a, b):',
        '    return a &lt; b and b &gt; 0  # "&amp;"</code></pre>',
        '',
        '<pre>Feature | Status | 说明',
        '--------+--------+-----',
        'Bold    |   ✅   | 中文',
        'code    |   ❌   |    x</pre>',
        '',
        '———',
        '',
        'Inline &lt;span class="x"&gt;raw html&lt;/span&gt; and &lt;at id=all&gt;&lt;/at&gt; and <a href="https://example.com/i.png">img</a>',
        'Last line with a dangling **star and [open link](<a href="https://exa/">https://exa</a>',
      ].join('\n'),
    );
  });
});

describe('renderTelegram: partial Markdown while streaming', () => {
  it('closes an unclosed fence and leaves dangling markers as text', () => {
    assert.equal(html('```js\nlet a = 1;'), '<pre><code class="language-js">let a = 1;</code></pre>');
    assert.equal(html('Trailing **bold'), 'Trailing **bold');
    assert.equal(html('Trailing _it'), 'Trailing _it');
    assert.equal(html('Half [a link'), 'Half [a link');
    assert.equal(html('Tag <b'), 'Tag &lt;b');
    assert.equal(html('Entity &am'), 'Entity &amp;am');
  });

  it('leaves out parts with nothing visible', () => {
    assert.deepEqual(renderTelegram('```py'), []);
    assert.deepEqual(renderTelegram('# '), []);
    assert.deepEqual(renderTelegram(''), []);
  });

  it('produces valid Telegram HTML for every prefix of a rich document', () => {
    for (let end = 1; end <= SAMPLE.length; end++) {
      for (const part of renderTelegram(SAMPLE.slice(0, end))) validateTelegramHtml(part.html);
    }
  });

  it('produces valid Telegram HTML for generated documents, whole and cut anywhere', () => {
    const atoms = [
      '**',
      '*',
      '_',
      '__',
      '~~',
      '`',
      '```',
      '```js\n',
      '~~~\n',
      '[',
      ']',
      '(',
      ')',
      '](https://e.x/?a=1&b=2)',
      '![',
      '<',
      '>',
      '&',
      '&amp;',
      '&#60;',
      '<b>',
      '</i>',
      '<a href="x">',
      '\n',
      '\n\n',
      '- ',
      '1. ',
      '> ',
      '# ',
      '| a | b |\n|---|---|\n| 1 | 2 |\n',
      '    ',
      'word',
      ' ',
      '中文',
      '😀',
      '\\*',
      '- [ ] ',
      '<https://a.b>',
      'x@y.io',
      '***',
      '\n---\n',
      '<!-- c -->',
      '&nbsp;',
      '"',
    ];
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let doc = 0; doc < 400; doc++) {
      let text = '';
      const length = 5 + random(60);
      for (let k = 0; k < length; k++) text += atoms[random(atoms.length)];
      for (const end of [text.length, random(text.length + 1), random(text.length + 1)]) {
        for (const part of renderTelegram(text.slice(0, end), { limit: 50 + random(400) })) {
          validateTelegramHtml(part.html);
        }
      }
    }
  });
});

describe('renderTelegram: splitting', () => {
  const code = Array.from({ length: 500 }, (_, i) => `    total += values[${i}] * weight  # step ${i} <&>`);
  const answer = [
    '# Report',
    'Intro paragraph with **bold** text. '.repeat(60),
    '```python\ndef compute(values, weight):\n    total = 0\n' + code.join('\n') + '\n    return total\n```',
    'Closing paragraph with a [link](https://example.com). '.repeat(40),
  ].join('\n\n');

  it('splits a 20 000-character answer into parts of at most 4000 visible characters', () => {
    assert.ok(answer.length > 20000);
    const parts = renderTelegram(answer);
    assert.ok(parts.length >= 6, `${parts.length} parts`);
    for (const part of parts) {
      validateTelegramHtml(part.html);
      assert.ok(visibleLength(part.html) <= 4000, `visible ${visibleLength(part.html)}`);
      assert.ok(part.plain.length <= 4000);
    }
    // The code block is cut across parts and reopened with its language in each.
    const codeParts = parts.filter((p) => p.html.includes('total += values'));
    assert.ok(codeParts.length >= 4);
    for (const part of codeParts.slice(1)) {
      assert.ok(part.html.startsWith('<pre><code class="language-python">'), part.html.slice(0, 50));
      assert.ok(part.plain.startsWith('```python\n'));
    }
    // Reassembled, the code reads as the original.
    const codeText = codeParts
      .map((p) => /<pre><code class="language-python">([\s\S]*?)<\/code><\/pre>/.exec(p.html)![1]!)
      .join('\n')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
    assert.ok(codeText.includes(code.join('\n')));
  });

  it('gives each part its Markdown source as the plain fallback', () => {
    const parts = renderTelegram(answer);
    const plain = parts.map((p) => p.plain).join('\n');
    for (const line of answer.split('\n')) {
      if (line.trim() !== '') assert.ok(plain.includes(line.trim().slice(0, 40)), line.slice(0, 40));
    }
    assert.deepEqual(renderTelegram('**hi** <b>'), [{ html: '<b>hi</b> &lt;b&gt;', plain: '**hi** <b>' }]);
  });

  it('hard-cuts an over-long single line', () => {
    const line = 'a'.repeat(9000);
    const parts = renderTelegram(line);
    assert.deepEqual(
      parts.map((p) => p.html.length),
      [4000, 4000, 1000],
    );
    assert.equal(parts.map((p) => p.html).join(''), line);
  });

  it('counts UTF-16 units for CJK and emoji, never splitting a pair', () => {
    const text = '中文内容和表情😀。'.repeat(1500);
    const parts = renderTelegram(text, { limit: 1000 });
    assert.ok(parts.length >= 15);
    for (const part of parts) {
      assert.ok(visibleLength(part.html) <= 1000);
      assert.doesNotMatch(part.html, /^[\udc00-\udfff]|[\ud800-\udbff]$/);
    }
    assert.equal(parts.map((p) => p.html).join(''), text);
  });

  it('re-splits a part whose rendering outgrows the limit (padded table columns)', () => {
    const rows = Array.from({ length: 60 }, (_, i) => `| ${i} | x |`).join('\n');
    const table = `| ${'h'.repeat(60)} | b |\n|---|---|\n${rows}`;
    const parts = renderTelegram(table, { limit: 500 });
    assert.ok(parts.length > 1);
    for (const part of parts) {
      validateTelegramHtml(part.html);
      assert.ok(visibleLength(part.html) <= 500, `visible ${visibleLength(part.html)}`);
    }
  });

  it('renders fast enough for every streamed edit', () => {
    const started = performance.now();
    for (let end = 1000; end <= answer.length; end += 1000) renderTelegram(answer.slice(0, end));
    const big = renderTelegram(answer.repeat(10));
    assert.ok(big.length >= 50);
    assert.ok(performance.now() - started < 3000, `took ${performance.now() - started} ms`);
  });
});

describe('visibleLength', () => {
  it('counts text without tags, entities decoded, in UTF-16 units', () => {
    assert.equal(visibleLength('<b>a&lt;b</b> &amp; &#x1F600; &unknown; <a href="x">link</a>'), 23);
    assert.equal(visibleLength('<pre><code class="language-js">x</code></pre>'), 1);
    assert.equal(visibleLength('😀中'), 3);
    assert.equal(visibleLength(''), 0);
  });
});
