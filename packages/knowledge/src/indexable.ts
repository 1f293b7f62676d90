import type { Chunk } from './chunk.ts';

/**
 * The text embedded and full-text indexed for a chunk: the headings above it that its text does not
 * already show, then its text. A chunk cut from inside a section otherwise loses what it is about.
 */
export function indexableText(chunk: Pick<Chunk, 'text' | 'heading_path'>): string {
  const missing = chunk.heading_path.filter((h) => !chunk.text.includes(h));
  return missing.length > 0 ? `${missing.join(' › ')}\n\n${chunk.text}` : chunk.text;
}
