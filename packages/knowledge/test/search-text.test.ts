import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ftsDocument, ftsQuery, fuseRankings } from '../src/index.ts';

test('mixed Chinese and English text: Han bigrams plus the run end, Latin words normalised', () => {
  assert.equal(
    ftsDocument('知识库支持 PDF 和 Ｗｏｒｄ files, café policies。茶'),
    '知识 识库 库支 支持 持 pdf 和 word file cafe policy 茶',
  );
  assert.equal(ftsDocument('The H4’s RAID-6 array'), 'the h4 s raid 6 array');
});

test('queries OR their lexemes, drop question words and use a prefix for one character', () => {
  // question phrases are cut out before bigrams: no 有多 or 少天, which no document has
  assert.equal(ftsQuery('年假有多少天？'), '年假 | 假有 | 天:*');
  assert.equal(ftsQuery('虚位密码是什么？'), '虚位 | 位密 | 密码');
  assert.equal(ftsQuery('How many leave days do I get?'), 'leave | day | get');
  assert.equal(ftsQuery('茶'), '茶:*');
  assert.equal(ftsQuery('what is it'), 'what | is | it');
  assert.equal(ftsQuery('？！'), '');
});

test('reciprocal rank fusion rewards agreement and respects weights', () => {
  const vector = [
    { id: 'a', score: 0.9 },
    { id: 'b', score: 0.8 },
    { id: 'c', score: 0.7 },
  ];
  const text = [
    { id: 'c', score: 12 },
    { id: 'b', score: 3 },
    { id: 'd', score: 1 },
    { id: 'c', score: 0.5 },
  ];
  const fused = fuseRankings([vector, text], { k: 60 });
  assert.deepEqual(
    fused.map((f) => f.id),
    ['c', 'b', 'a', 'd'],
  );
  // c: 1/63 + 1/61 edges out b: 1/62 + 1/62; agreement beats one strong rank (a: 1/61).
  assert.deepEqual(fused[0]!.ranks, [3, 1]);
  assert.deepEqual(fused.find((f) => f.id === 'd')!.ranks, [0, 3]);
  assert.ok(Math.abs(fused[1]!.score - 2 / 62) < 1e-12);
  const weighted = fuseRankings([vector, text], { k: 60, weights: [0, 1] });
  assert.deepEqual(
    weighted.map((f) => f.id),
    ['c', 'b', 'd', 'a'],
  );
  assert.throws(() => fuseRankings([vector], { weights: [1, 2] }), RangeError);
});
