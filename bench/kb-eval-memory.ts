// `node --conditions=pincer-source bench/kb-eval-memory.ts [--json] [--dims N]`: retrieval
// quality on the evaluation set with the mock model's embeddings, for each search mode.
import { parseArgs } from 'node:util';
import { embedText } from '@pincer/mock-inference';
import { evaluateRetrieval, loadEvalSet } from '../packages/knowledge/src/eval.ts';
import { indexEvalSet, retriever, type SearchMode } from '../packages/knowledge/src/reference-retriever.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { json: { type: 'boolean', default: false }, dims: { type: 'string', default: '256' } },
});

if (positionals[0] !== 'eval') {
  console.error('usage: main.ts eval [--json] [--dims 256]');
  process.exit(2);
}

const dims = Number(values.dims);
const embed = (text: string): Float32Array => embedText(text, dims);
const set = await loadEvalSet();
const index = indexEvalSet(set, embed);
const modes: SearchMode[] = ['vector', 'text', 'hybrid'];
const rows = [];
for (const mode of modes) {
  const r = await evaluateRetrieval(retriever(index, embed, mode), set);
  rows.push({
    mode,
    recall_at_5: r.recall_at_5,
    mrr: r.mrr,
    missed: r.per_question.filter((p) => p.rank === null || p.rank > 5).map((p) => p.id),
  });
}

if (values.json) {
  console.log(
    JSON.stringify(
      {
        documents: set.documents.length,
        questions: set.questions.length,
        chunks: index.size,
        dims,
        results: rows,
      },
      null,
      2,
    ),
  );
} else {
  console.log(
    `${set.documents.length} documents, ${index.size} chunks, ${set.questions.length} questions; mock embeddings (${dims} dims)\n`,
  );
  console.log('mode     recall@5  MRR    missed (rank > 5)');
  for (const r of rows) {
    console.log(
      `${r.mode.padEnd(8)} ${r.recall_at_5.toFixed(3).padStart(8)}  ${r.mrr.toFixed(3)}  ${r.missed.join(', ') || '-'}`,
    );
  }
}
