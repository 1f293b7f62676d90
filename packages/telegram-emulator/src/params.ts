// Bot API parameters arrive as strings (query, urlencoded, multipart) or JSON values (JSON body);
// structured ones may be JSON-encoded strings. These readers accept both, like the real server.

import { badRequest } from './errors.ts';

export type Params = Record<string, unknown>;

export interface UploadedFile {
  upload: true;
  filename: string;
  mimeType: string;
  data: Buffer;
}

export const isUpload = (v: unknown): v is UploadedFile =>
  typeof v === 'object' && v !== null && (v as { upload?: unknown }).upload === true;

const JSON_FIELDS = new Set([
  'entities',
  'caption_entities',
  'reply_parameters',
  'link_preview_options',
  'reply_markup',
  'allowed_updates',
  'commands',
  'scope',
  'reaction',
]);
const INT_FIELDS = new Set([
  'chat_id',
  'from_chat_id',
  'message_id',
  'message_thread_id',
  'reply_to_message_id',
  'offset',
  'limit',
  'timeout',
  'max_connections',
  'draft_id',
  'duration',
  'user_id',
  'cache_time',
]);
const BOOL_FIELDS = new Set([
  'disable_notification',
  'protect_content',
  'allow_sending_without_reply',
  'disable_web_page_preview',
  'drop_pending_updates',
  'show_alert',
  'is_big',
]);

/** Decodes what the wire carried into the values a test wants to read back in CallRecord.params. */
export function normalizeParams(raw: Params): Params {
  const out: Params = {};
  for (const [key, value] of Object.entries(raw)) {
    if (isUpload(value)) {
      out[key] = value;
      continue;
    }
    if (typeof value === 'string') {
      if (JSON_FIELDS.has(key)) {
        try {
          out[key] = JSON.parse(value);
          continue;
        } catch {
          // Left as sent; the method answers with its own "can't parse" error.
        }
      } else if (INT_FIELDS.has(key) && /^-?\d{1,19}$/.test(value.trim())) {
        out[key] = Number(value.trim());
        continue;
      } else if (BOOL_FIELDS.has(key) && /^(true|false|1|0)$/i.test(value)) {
        out[key] = /^(true|1)$/i.test(value);
        continue;
      }
    }
    out[key] = value;
  }
  return out;
}

/** Params as recorded: uploads summarised instead of their bytes. */
export function recordableParams(p: Params): Params {
  const out: Params = {};
  for (const [key, value] of Object.entries(p)) {
    out[key] = isUpload(value)
      ? { filename: value.filename, mime_type: value.mimeType, size: value.data.length }
      : value;
  }
  return out;
}

export function int(p: Params, name: string): number | undefined {
  const v = p[name];
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === 'string' && /^\s*-?\d{1,19}\s*$/.test(v)) return Number(v.trim());
  if (typeof v === 'boolean') return v ? 1 : 0;
  return undefined;
}

export function str(p: Params, name: string): string | undefined {
  const v = p[name];
  if (v === undefined || v === null || isUpload(v)) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function bool(p: Params, name: string): boolean {
  const v = p[name];
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return /^(true|1)$/i.test(v.trim());
  return false;
}

/** A structured parameter (object or array), JSON-decoded when sent as a string. */
export function json<T>(p: Params, name: string, what: string): T | undefined {
  const v = p[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'object' && !isUpload(v)) return v as T;
  if (typeof v === 'string') {
    try {
      const parsed = JSON.parse(v) as unknown;
      if (typeof parsed === 'object' && parsed !== null) return parsed as T;
    } catch {
      // Falls through to the server's wording.
    }
  }
  throw badRequest(`can't parse ${what} JSON object`);
}
