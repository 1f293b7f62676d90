// Identifiers shaped like the platform's: prefixes and lengths match what real payloads carry.
import { createHash, randomBytes, randomInt } from 'node:crypto';

export const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** A stable id derived from a seed, so a user's p2p chat or union_id is the same on every call. */
export const derivedHex = (seed: string, chars: number): string =>
  createHash('sha256').update(seed).digest('hex').slice(0, chars);

export const newAppId = (): string => `cli_${hex(8)}`;
export const newOpenId = (): string => `ou_${hex(16)}`;
export const newMessageId = (): string => `om_${hex(16)}`;
export const newChatId = (): string => `oc_${hex(16)}`;
export const newThreadId = (): string => `omt_${hex(6)}`;
export const newEventId = (): string => hex(16);
export const newTenantKey = (): string => hex(8);

const TOKEN_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
export function newTenantToken(): string {
  let s = 't-g1';
  for (let i = 0; i < 38; i++) s += TOKEN_CHARS[randomInt(TOKEN_CHARS.length)];
  return s;
}

/** Card entity ids are 19-digit numbers, as strings. */
export function newCardId(): string {
  let s = '7';
  for (let i = 0; i < 18; i++) s += String(randomInt(10));
  return s;
}

export const newReactionId = (): string => randomBytes(40).toString('base64url');

/** Gateway log ids: a timestamp followed by hex, as in the `error.log_id` of real answers. */
export function newLogId(): string {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const stamp = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
  return stamp + hex(9).toUpperCase();
}
