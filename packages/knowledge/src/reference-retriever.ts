// The evaluation set indexed in memory: documents chunked, embedded by a given function, searchable in
// three modes. Used by the `eval` command and the tests.
import { chunkDocument, type ChunkOptions } from './chunk.ts';
import type { EvalSet, Retrieve } from './eval.ts';
import { indexableText } from './indexable.ts';
import { MemoryIndex } from './memory-index.ts';

export type Embed = (text: string) => Float32Array;
export type SearchMode = 'vector' | 'text' | 'hybrid';

export const EVAL_CHUNKING: ChunkOptions = { maxTokens: 200, overlapTokens: 40 };

export function indexEvalSet(
  set: EvalSet,
  embed: Embed,
  chunking: ChunkOptions = EVAL_CHUNKING,
): MemoryIndex {
  const index = new MemoryIndex();
  for (const doc of set.documents) {
    for (const chunk of chunkDocument(doc.text, chunking)) {
      const text = indexableText(chunk);
      index.add(
        { id: `${doc.name}#${chunk.index}`, document: doc.name, text: chunk.text, embedding: embed(text) },
        text,
      );
    }
  }
  return index;
}

export function retriever(index: MemoryIndex, embed: Embed, mode: SearchMode): Retrieve {
  return async (query, k) => {
    if (mode === 'vector') return index.searchVector(embed(query), k);
    if (mode === 'text') return index.searchText(query, k);
    return index.searchHybrid(query, embed(query), k);
  };
}
