// `node --conditions=pincer-source bench/kb-eval-memory.ts [--json] [--dims N]`: retrieval
// quality on the evaluation set with the mock model's embeddings, for each search mode.
import { parseArgs } from 'node:util';
import { embedText } from '@pincer/mock-inference';
import { evaluateRetrieval, loadEvalSet } from '../packages/knowledge/src/eval.ts';
import { indexEvalSet, retriever, type SearchMode } from '../packages/knowledge/src/reference-retriever.ts';
import { printRetrieval, retrievalRow } from './lib.ts';

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
for (const mode of modes)
  rows.push(retrievalRow(mode, await evaluateRetrieval(retriever(index, embed, mode), set)));

printRetrieval({
  json: values.json,
  facts: { documents: set.documents.length, questions: set.questions.length, chunks: index.size, dims },
  context: `${set.documents.length} documents, ${index.size} chunks, ${set.questions.length} questions; mock embeddings (${dims} dims)`,
  rows,
});
