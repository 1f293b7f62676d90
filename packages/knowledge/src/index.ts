export { chunkDocument, type Chunk, type ChunkOptions } from './chunk.ts';
export { ExtractionError, type ExtractionErrorCode } from './errors.ts';
export {
  DEFAULT_MAX_BYTES,
  detectFormat,
  extractText,
  type DocumentFormat,
  type ExtractedText,
  type ExtractOptions,
  type SourceFile,
} from './extract.ts';
export { fuseRankings, type Fused, type FuseOptions, type Ranked } from './fuse.ts';
export { ftsDocument, ftsQuery, ftsQueryTerms } from './search-text.ts';
export { indexableText } from './indexable.ts';
export {
  EVAL_DIR,
  evaluateRetrieval,
  loadEvalSet,
  type EvalQuestion,
  type EvalResult,
  type EvalSet,
  type RetrievedChunk,
} from './eval.ts';
export { MemoryIndex, type Hit, type IndexedChunk } from './memory-index.ts';
export { prepareDocument, type PrepareInput, type PreparedChunk, type PreparedDocument } from './prepare.ts';
export {
  cosine,
  VectorScanIndex,
  wasmSimdAvailable,
  type ScanEngine,
  type VectorMatch,
  type VectorScanOptions,
} from './vector-scan.ts';
