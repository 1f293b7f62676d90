import { timingSafeEqual } from 'node:crypto';

/** Whether a presented secret (a header, a token in a body) is the expected one, in constant time. */
export function sameSecret(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
