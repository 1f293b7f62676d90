// Everything CPU-bound about ingesting a document — extraction, chunking, full-text segmentation — in
// one call, so a service can run it off its event loop (see prepare-thread.ts).
import { chunkDocument, type ChunkOptions } from './chunk.ts';
import { extractText, type DocumentFormat } from './extract.ts';
import { indexableText } from './indexable.ts';
import { ftsDocument } from './search-text.ts';

export interface PrepareInput {
  name: string;
  mime?: string;
  data: Uint8Array;
  maxBytes: number;
  chunking: ChunkOptions;
}

export interface PreparedChunk {
  position: number;
  /** The headings above the chunk, joined with ' › '. */
  heading: string;
  content: string;
  /** What is embedded: the headings the text does not show, then the text. */
  indexable: string;
  /** Segmented lexemes for to_tsvector('simple', …). */
  fts: string;
  tokens: number;
}

export interface PreparedDocument {
  format: DocumentFormat;
  title?: string;
  characters: number;
  chunks: PreparedChunk[];
}

/** Throws ExtractionError for a file that cannot be read or holds no text (see extractText). */
export async function prepareDocument(input: PrepareInput): Promise<PreparedDocument> {
  const extracted = await extractText(
    { name: input.name, mime: input.mime, data: input.data },
    { maxBytes: input.maxBytes },
  );
  const chunks = chunkDocument(extracted.text, input.chunking).map((c) => {
    const indexable = indexableText(c);
    return {
      position: c.index,
      heading: c.heading_path.join(' › '),
      content: c.text,
      indexable,
      fts: ftsDocument(indexable),
      tokens: c.tokens,
    };
  });
  return { format: extracted.format, title: extracted.title, characters: extracted.text.length, chunks };
}
