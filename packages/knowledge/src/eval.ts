// Retrieval evaluation: recall@5 and MRR of a retriever over the question set in eval/. A question is
// answered by a retrieved chunk when the chunk comes from the right document and contains the passage.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface EvalQuestion {
  id: string;
  question: string;
  /** File name of the document under eval/documents. */
  document: string;
  /** Text that answers the question, exactly as it appears in the document. */
  passage: string;
}

export interface EvalSet {
  documents: Array<{ name: string; text: string }>;
  questions: EvalQuestion[];
}

export interface RetrievedChunk {
  text: string;
  document: string;
}

export type Retrieve = (query: string, k: number) => Promise<RetrievedChunk[]>;

export interface EvalResult {
  recall_at_5: number;
  mrr: number;
  per_question: Array<{ id: string; rank: number | null }>;
}

/** eval/ in the package: two levels up from both src/ and dist/. */
export const EVAL_DIR = fileURLToPath(new URL('../eval/', import.meta.url));

export async function loadEvalSet(dir: string = EVAL_DIR): Promise<EvalSet> {
  const docDir = join(dir, 'documents');
  const names = (await readdir(docDir)).filter((n) => n.endsWith('.md')).sort();
  const documents = await Promise.all(
    names.map(async (name) => ({ name, text: await readFile(join(docDir, name), 'utf8') })),
  );
  const { questions } = JSON.parse(await readFile(join(dir, 'questions.json'), 'utf8')) as {
    questions: EvalQuestion[];
  };
  return { documents, questions };
}

const squash = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** Rank of the first chunk answering each question among the top `depth` (default 10) results. */
export async function evaluateRetrieval(
  retrieve: Retrieve,
  set: Pick<EvalSet, 'questions'>,
  opts: { depth?: number } = {},
): Promise<EvalResult> {
  const depth = opts.depth ?? 10;
  const per_question: EvalResult['per_question'] = [];
  for (const q of set.questions) {
    const passage = squash(q.passage);
    const results = await retrieve(q.question, depth);
    const i = results.findIndex((r) => r.document === q.document && squash(r.text).includes(passage));
    per_question.push({ id: q.id, rank: i < 0 ? null : i + 1 });
  }
  const n = per_question.length || 1;
  return {
    recall_at_5: per_question.filter((p) => p.rank !== null && p.rank <= 5).length / n,
    mrr: per_question.reduce((s, p) => s + (p.rank === null ? 0 : 1 / p.rank), 0) / n,
    per_question,
  };
}
