import assert from 'node:assert/strict';
import { test } from 'node:test';
import { embedText } from '@pincer/mock-inference';
import { chunkDocument, evaluateRetrieval, loadEvalSet } from '../src/index.ts';
import { EVAL_CHUNKING, indexEvalSet, retriever } from '../src/reference-retriever.ts';

const embed = (text: string): Float32Array => embedText(text, 256);
const set = await loadEvalSet();

test('the evaluation set is sound: both languages, each passage in its document and in one chunk', () => {
  assert.ok(set.documents.length >= 6);
  assert.ok(set.questions.length >= 30);
  const zh = set.documents.filter((d) => /[\u4e00-\u9fff]{50}/.test(d.text.replace(/[^\u4e00-\u9fff]/g, '')));
  assert.ok(zh.length >= 3 && set.documents.length - zh.length >= 3);
  for (const q of set.questions) {
    const doc = set.documents.find((d) => d.name === q.document);
    assert.ok(doc, `${q.id}: document ${q.document}`);
    assert.ok(doc.text.includes(q.passage), `${q.id}: passage not in the document`);
    const chunks = chunkDocument(doc.text, EVAL_CHUNKING);
    assert.ok(
      chunks.some((c) => c.text.includes(q.passage)),
      `${q.id}: the passage is cut between chunks`,
    );
  }
});

test('hybrid retrieval reaches recall@5 ≥ 0.9 and is at least as good as either half', async () => {
  const index = indexEvalSet(set, embed);
  const [vector, text, hybrid] = await Promise.all(
    (['vector', 'text', 'hybrid'] as const).map((mode) =>
      evaluateRetrieval(retriever(index, embed, mode), set),
    ),
  );
  assert.ok(hybrid!.recall_at_5 >= 0.9, `hybrid recall@5 ${hybrid!.recall_at_5}`);
  assert.ok(
    hybrid!.recall_at_5 >= vector!.recall_at_5,
    `hybrid ${hybrid!.recall_at_5} < vector ${vector!.recall_at_5}`,
  );
  assert.ok(
    hybrid!.recall_at_5 >= text!.recall_at_5,
    `hybrid ${hybrid!.recall_at_5} < text ${text!.recall_at_5}`,
  );
});

test('evaluateRetrieval scores ranks, documents and whitespace as specified', async () => {
  const questions = [
    { id: 'a', question: 'qa', document: 'x.md', passage: 'the  answer\nhere' },
    { id: 'b', question: 'qb', document: 'x.md', passage: 'other' },
  ];
  const result = await evaluateRetrieval(
    async (q) =>
      q === 'qa'
        ? [
            { text: 'the answer here', document: 'y.md' },
            { text: 'noise', document: 'x.md' },
            { text: 'so the answer   here it is', document: 'x.md' },
          ]
        : [],
    { questions },
  );
  assert.deepEqual(result.per_question, [
    { id: 'a', rank: 3 },
    { id: 'b', rank: null },
  ]);
  assert.equal(result.recall_at_5, 0.5);
  assert.ok(Math.abs(result.mrr - 1 / 6) < 1e-12);
});
