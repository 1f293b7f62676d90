import { z } from 'zod';

/** Timestamps as they appear in responses. */
export const Timestamp = z.iso.datetime({ offset: true });

/** A range bound in a query: a date (whole day) or a date-time with offset. */
export const TimeBound = z
  .union([z.iso.datetime({ offset: true }), z.iso.date()])
  .describe('ISO 8601 date (2025-01-31) or date-time with offset (2025-01-31T12:00:00Z)');

/** A range start: a bare date means the start of that day (UTC). */
export function rangeStart(s: string | undefined): Date | undefined {
  return s === undefined ? undefined : new Date(s);
}

/** A range end (exclusive): a bare date includes that whole day (UTC). */
export function rangeEnd(s: string | undefined): Date | undefined {
  if (s === undefined) return undefined;
  const d = new Date(s);
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) d.setUTCDate(d.getUTCDate() + 1);
  return d;
}

export const limitParam = (max: number, fallback: number) =>
  z.coerce.number().int().min(1).max(max).default(fallback).describe(`Rows per page (at most ${max}).`);

/** A bigint id in a path or query: positive and exact in JavaScript (Postgres would refuse larger). */
export const IdParam = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);
export const UserIdParam = IdParam;

/** Text that Postgres can store: it refuses NUL characters (they end C strings). */
export const StoredText = z.string().refine((s) => !s.includes('\u0000'), 'must not contain NUL characters');

export const UuidPath = z.object({ id: z.uuid() });
export const UserIdPath = z.object({ id: UserIdParam });

export const ErrorBody = z.object({
  error: z.object({ code: z.string(), message: z.string() }),
});
