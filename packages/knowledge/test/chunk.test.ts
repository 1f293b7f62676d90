import assert from 'node:assert/strict';
import { test } from 'node:test';
import { estimateTokens } from '@pincer/shared';
import { chunkDocument, type Chunk } from '../src/index.ts';

const sentence = (i: number): string =>
  `Sentence number ${i} explains one more detail of the backup schedule.`;
const para = (from: number, n: number): string =>
  Array.from({ length: n }, (_, i) => sentence(from + i)).join(' ');

function checkInvariants(text: string, chunks: Chunk[], maxTokens: number): void {
  chunks.forEach((c, i) => {
    assert.equal(c.index, i);
    assert.equal(c.text, text.slice(c.start, c.end));
    assert.ok(c.text.trim().length > 0, 'no empty chunks');
    assert.equal(c.tokens, estimateTokens(c.text));
    assert.ok(c.tokens <= maxTokens, `chunk ${i} has ${c.tokens} tokens > ${maxTokens}`);
  });
}

test('a new chunk starts at each heading and carries its heading path', () => {
  const text = `# Guide\n\n## Install\n\n${para(0, 3)}\n\n## Disks\n\n${para(10, 3)}\n\n### RAID\n\n${para(20, 3)}`;
  const chunks = chunkDocument(text, { maxTokens: 200, overlapTokens: 20 });
  checkInvariants(text, chunks, 200);
  assert.equal(chunks.length, 3);
  // The title alone is tiny, so it goes with the first section instead of making a chunk of its own.
  assert.ok(chunks[0]!.text.startsWith('# Guide\n\n## Install'));
  assert.deepEqual(chunks[0]!.heading_path, ['Guide', 'Install']);
  assert.ok(chunks[1]!.text.startsWith('## Disks'));
  assert.deepEqual(chunks[1]!.heading_path, ['Guide', 'Disks']);
  assert.deepEqual(chunks[2]!.heading_path, ['Guide', 'Disks', 'RAID']);
  assert.ok(!chunks[1]!.text.includes('Sentence number 2 '), 'no overlap across sections');
});

test('long sections are split within the budget with overlap between consecutive chunks', () => {
  const text = `# Schedules\n\n${para(0, 8)}\n\n${para(100, 8)}\n\n${para(200, 30)}`;
  const chunks = chunkDocument(text, { maxTokens: 120, overlapTokens: 30 });
  checkInvariants(text, chunks, 120);
  assert.ok(chunks.length >= 5);
  for (let i = 1; i < chunks.length; i++) {
    assert.ok(chunks[i]!.start < chunks[i - 1]!.end, `chunk ${i} overlaps the previous one`);
    assert.ok(chunks[i]!.start > chunks[i - 1]!.start);
    const overlap = text.slice(chunks[i]!.start, chunks[i - 1]!.end);
    assert.ok(estimateTokens(overlap) <= 30 + 1);
    assert.match(chunks[i]!.text, /^Sentence number \d+/, 'chunks start at a sentence');
  }
  // Every sentence is somewhere.
  for (const i of [0, 7, 100, 107, 200, 229]) assert.ok(chunks.some((c) => c.text.includes(sentence(i))));
});

test('Chinese paragraphs are cut at 。！？', () => {
  const zh = Array.from({ length: 40 }, (_, i) => `第${i}条规定，员工出差须提前申请并经负责人批准。`).join(
    '',
  );
  const text = `# 差旅制度\n\n${zh}`;
  const chunks = chunkDocument(text, { maxTokens: 100, overlapTokens: 20 });
  checkInvariants(text, chunks, 100);
  assert.ok(chunks.length > 5);
  for (const c of chunks) assert.ok(c.text.endsWith('。'), `ends at a sentence: ${c.text.slice(-10)}`);
  // Where a whole sentence is larger than the overlap, the overlap starts at a clause.
  for (const c of chunks.slice(1)) assert.ok(/^第\d+条/.test(c.text) || text[c.start - 1] === '，', c.text);
  assert.ok(
    chunks.slice(1).every((c, i) => c.start < chunks[i]!.end),
    'consecutive chunks overlap',
  );
  assert.ok(chunks.every((c) => c.heading_path[0] === '差旅制度'));
});

test('an unbroken run longer than the budget is still cut to size, and text without headings works', () => {
  const text = 'x'.repeat(2000) + '\n\n' + '长'.repeat(500);
  const chunks = chunkDocument(text, { maxTokens: 64, overlapTokens: 0 });
  checkInvariants(text, chunks, 64);
  assert.equal(chunks.map((c) => c.text).join(''), text.replace('\n\n', ''));
  assert.deepEqual(chunks[0]!.heading_path, []);
});

test('a heading inside a code block is not a heading; bad options are refused', () => {
  const text = '# Real\n\n```sh\n# not a heading\necho hi\n```\n\nAfter.';
  const chunks = chunkDocument(text, { maxTokens: 200, overlapTokens: 10 });
  assert.equal(chunks.length, 1);
  assert.deepEqual(chunks[0]!.heading_path, ['Real']);
  assert.throws(() => chunkDocument(text, { maxTokens: 100, overlapTokens: 60 }), RangeError);
  assert.deepEqual(chunkDocument('', { maxTokens: 100, overlapTokens: 10 }), []);
});
