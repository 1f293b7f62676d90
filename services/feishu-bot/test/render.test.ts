import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitForCard, splitForPost, toCardMarkdown, toPostMd } from '../src/services/render.ts';

const ZWSP = '\u200b';

/** Prose of the output: fenced code blocks and inline code removed (their content is shown verbatim). */
function prose(markdown: string): string {
  return markdown.replace(/^(`{3,})[^\n]*\n[\s\S]*?\n\1$/gm, '').replace(/(`+)[^`]*?\1/g, '');
}

/** Tables a GFM renderer would see: a delimiter row under a header row with as many cells. */
function cardTables(markdown: string): number {
  const cells = (line: string) =>
    line
      .replace(/\\\|/g, '')
      .replace(/^\||\|$/g, '')
      .split('|').length;
  const lines = prose(markdown).split('\n');
  return lines.filter(
    (line, i) => i > 0 && /^\|(?:\s*:?-+:?\s*\|)+$/.test(line) && cells(line) === cells(lines[i - 1]!),
  ).length;
}

/** Prose with block structure removed: quote markers and the rules the renderer writes itself. */
function inlineText(markdown: string): string {
  return prose(markdown)
    .replace(/^<hr>$/gm, '')
    .replace(/^[ \t]*(?:>[ \t]?)+/gm, '');
}

function assertCardSafe(markdown: string): void {
  const text = inlineText(markdown);
  assert.doesNotMatch(text, /[<>]/, `raw angle bracket in card markdown: ${JSON.stringify(markdown)}`);
  assert.ok(cardTables(markdown) <= 3, `more than 3 tables: ${JSON.stringify(markdown)}`);
}

function assertPostSafe(markdown: string): void {
  const text = prose(markdown);
  assert.doesNotMatch(text, new RegExp(`<(?!${ZWSP})`), `live tag in post md: ${JSON.stringify(markdown)}`);
  assert.equal(cardTables(markdown), 0, `table left in post md: ${JSON.stringify(markdown)}`);
}

const SAMPLE = `# Weekly report

Hello <at id=all></at>, status is **green** with *one* ~~blocker~~ and \`a < b\`.
Details: [dashboard](https://grafana.example/d?x=1&y=(2)) and <https://example.com>.

## Items

1. Parser
    - [x] tables
    - [ ] <font color=red>streaming</font>
2. Renderer

> Quote with **bold**
> > nested

\`\`\`ts
const tag = "<at id=all></at>";
\`\`\`

| Name | Qty |
|:-----|----:|
| 苹果 | 3 |

---

![chart](https://img.example/c.png) Note:OK: at 10:30:00 \\*literal\\*`;

describe('toCardMarkdown', () => {
  it('re-serializes the Markdown the card supports', () => {
    assert.equal(
      toCardMarkdown(SAMPLE),
      [
        '# Weekly report',
        '',
        'Hello &#60;at id=all&#62;&#60;/at&#62;, status is **green** with *one* ~~blocker~~ and `a < b`.',
        'Details: [dashboard](https://grafana.example/d?x=1&y=%282%29) and [https://example.com](https://example.com/).',
        '',
        '## Items',
        '',
        '1. Parser',
        '    - ☑ tables',
        '    - ☐ &#60;font color=red&#62;streaming&#60;/font&#62;',
        '2. Renderer',
        '',
        '> Quote with **bold**',
        '>',
        '> > nested',
        '',
        '```typescript',
        'const tag = "<at id=all></at>";',
        '```',
        '',
        '| Name | Qty |',
        '|:---|---:|',
        '| 苹果 | 3 |',
        '',
        '<hr>',
        '',
        '[chart](https://img.example/c.png) Note&#58;OK: at 10:30:00 \\*literal\\*',
      ].join('\n'),
    );
  });

  it('escapes the card’s own tags and emoji codes, leaving code verbatim', () => {
    assert.equal(
      toCardMarkdown('Hi <at id=all></at> <text_tag color="red">t</text_tag> :DONE: `<at id=all>` \\<b>'),
      'Hi &#60;at id=all&#62;&#60;/at&#62; &#60;text_tag color="red"&#62;t&#60;/text_tag&#62; &#58;DONE: `<at id=all>` &#60;b&#62;',
    );
    assert.equal(
      toCardMarkdown('<div>\nblock <b>html</b>\n</div>'),
      '&#60;div&#62;\nblock &#60;b&#62;html&#60;/b&#62;\n&#60;/div&#62;',
    );
  });

  it('keeps only http(s) links and turns images into links', () => {
    assert.equal(
      toCardMarkdown(
        '[a](https://a.example) [b](ftp://b.example) [c](javascript:alert(1)) ![](https://i.example/q.png) ![alt](img_v3_key)',
      ),
      '[a](https://a.example/) b c [https://i.example/q.png](https://i.example/q.png) alt',
    );
  });

  it('renders code blocks with Feishu language names and fences longer than the code’s backticks', () => {
    assert.equal(
      toCardMarkdown('```py\nx = 1\n```\n\n```C#\ny\n```\n\n```brainfuck\n+\n```\n\n```\nuse ``` here\n```'),
      '```python\nx = 1\n```\n\n```c_sharp\ny\n```\n\n```\n+\n```\n\n````\nuse ``` here\n````',
    );
  });

  it('nests lists by four spaces, as the card expects', () => {
    assert.equal(
      toCardMarkdown('- one\n  - two\n    - three\n\n3. c\n4. d'),
      '- one\n    - two\n        - three\n\n3. c\n4. d',
    );
  });

  it('renders the first three tables as tables and the rest as code blocks', () => {
    const tables = Array.from({ length: 5 }, (_, i) => `| t${i} | v |\n|---|---|\n| ${i} | x |`).join('\n\n');
    const card = toCardMarkdown('```\n| in | code |\n|---|---|\n```\n\n' + tables);
    assert.equal(cardTables(card), 3);
    assert.ok(card.endsWith('```\nt3 | v\n---+--\n3  | x\n```\n\n```\nt4 | v\n---+--\n4  | x\n```'), card);
    assert.ok(card.includes('| t2 | v |\n|---|---|\n| 2 | x |'));
    assert.equal(
      toCardMarkdown('| a | b |\n|---|:-:|\n| `x\\|y` | **2** |'),
      '| a | b |\n|---|:---:|\n| `x\\|y` | **2** |',
    );
  });

  it('closes an unclosed fence and keeps dangling markers as text (streaming)', () => {
    assert.equal(toCardMarkdown('Intro\n\n```js\nlet a = 1;'), 'Intro\n\n```javascript\nlet a = 1;\n```');
    assert.equal(toCardMarkdown('**half bold and <at'), '**half bold and &#60;at');
    assert.equal(toCardMarkdown('# '), '');
  });

  it('never lets a tag through, for every prefix of a rich document', () => {
    const doc =
      SAMPLE + '\n\n' + Array.from({ length: 4 }, (_, i) => `| x${i} |\n|---|\n| <b>${i}</b> |`).join('\n\n');
    for (let end = 1; end <= doc.length; end++) assertCardSafe(toCardMarkdown(doc.slice(0, end)));
  });
});

describe('toPostMd', () => {
  it('renders what post md supports: bold headings, code-block tables, link images', () => {
    assert.equal(
      toPostMd(SAMPLE),
      [
        '**Weekly report**',
        '',
        `Hello <${ZWSP}at id=all><${ZWSP}/at>, status is **green** with *one* ~~blocker~~ and \`a < b\`.`,
        'Details: [dashboard](https://grafana.example/d?x=1&y=%282%29) and [https://example.com](https://example.com/).',
        '',
        '**Items**',
        '',
        '1. Parser',
        '    - ☑ tables',
        `    - ☐ <${ZWSP}font color=red>streaming<${ZWSP}/font>`,
        '2. Renderer',
        '',
        '> Quote with **bold**',
        '>',
        '> nested',
        '',
        '```typescript',
        'const tag = "<at id=all></at>";',
        '```',
        '',
        '```',
        'Name | Qty',
        '-----+----',
        '苹果 |   3',
        '```',
        '',
        '---',
        '',
        '[chart](https://img.example/c.png) Note:OK: at 10:30:00 *literal*',
      ].join('\n'),
    );
  });

  it('does not double bold inside a heading', () => {
    assert.equal(toPostMd('## Sub **bold** *it*'), '**Sub bold *it***');
    assert.equal(toPostMd('# '), '');
  });

  it('never lets a tag or table through, for every prefix of a rich document', () => {
    for (let end = 1; end <= SAMPLE.length; end++) assertPostSafe(toPostMd(SAMPLE.slice(0, end)));
  });
});

describe('splitForCard / splitForPost', () => {
  const code = Array.from({ length: 600 }, (_, i) => `print("line ${i} <at id=all>")`).join('\n');
  const answer = `# Answer\n\n${'Some text with <tags> & more. '.repeat(400)}\n\n\`\`\`python\n${code}\n\`\`\`\n\nDone.`;

  it('returns Markdown parts whose post rendering stays within 3500 characters, fences reopened', () => {
    const parts = splitForPost(answer);
    assert.ok(parts.length >= 8, `${parts.length} parts`);
    for (const part of parts) {
      const post = toPostMd(part);
      assert.ok(post.length <= 3500, `post part of ${post.length}`);
      assertPostSafe(post);
    }
    const codeParts = parts.filter((p) => p.includes('print("line'));
    assert.ok(codeParts.length >= 3);
    for (const part of codeParts.slice(1)) assert.ok(part.startsWith('```python\n'), part.slice(0, 20));
    for (const part of codeParts.slice(0, -1)) assert.ok(part.endsWith('\n```'));
  });

  it('cuts finer when escaping grows a card part past the budget', () => {
    const angles = '<b> '.repeat(3000);
    const parts = splitForCard(angles, 4000);
    assert.ok(parts.length >= 5, `${parts.length} parts`);
    for (const part of parts) {
      const card = toCardMarkdown(part);
      assert.ok(card.length <= 4000, `card part of ${card.length}`);
      assertCardSafe(card);
    }
    assert.equal(parts.join(' ').replace(/\s+/g, ''), angles.replace(/\s+/g, ''));
  });

  it('keeps a normal answer in one card by default, with CJK and emoji intact', () => {
    const text = '中文段落，带表情😀。'.repeat(1000);
    assert.deepEqual(splitForCard(text), [text]);
    const posts = splitForPost(text);
    assert.ok(posts.length >= 3);
    assert.equal(posts.join(''), text);
    for (const part of posts) assert.ok(toPostMd(part).length <= 3500);
  });
});
