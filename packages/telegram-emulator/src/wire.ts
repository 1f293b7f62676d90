// Request bodies as the Bot API accepts them: query string, JSON, urlencoded or multipart (files
// included), merged into one parameter record. Oversized bodies end in 413.

import type { IncomingMessage, ServerResponse } from 'node:http';
import busboy from 'busboy';
import { ApiError } from './errors.ts';
import type { Params, UploadedFile } from './params.ts';

/** Non-multipart bodies above this are refused (a text message is at most a few hundred KB). */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;
/** Uploads up to the real 50 MB limit. */
export const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;

const tooLarge = (): ApiError => new ApiError(413, 'Request Entity Too Large');

/** Reads the body up to `limit` bytes; beyond it keeps draining (so the client sees the 413) and throws. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) over = true;
      if (!over) chunks.push(chunk);
      // A client that keeps streaming far past the limit is cut off.
      if (size > limit * 4) req.destroy();
    });
    req.on('end', () => (over ? reject(tooLarge()) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(over ? tooLarge() : new Error('client closed the request'));
    });
  });
}

function readMultipart(req: IncomingMessage, into: Params): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed: ApiError | undefined;
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: req.headers,
        limits: { fileSize: MAX_UPLOAD_BYTES, fieldSize: MAX_BODY_BYTES },
      });
    } catch {
      reject(new ApiError(400, 'Bad Request: invalid multipart/form-data request'));
      return;
    }
    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) failed = tooLarge();
      into[name] = value;
    });
    bb.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => (failed = tooLarge()));
      stream.on('close', () => {
        const file: UploadedFile = {
          upload: true,
          filename: info.filename || name,
          mimeType: info.mimeType || 'application/octet-stream',
          data: Buffer.concat(chunks),
        };
        into[name] = file;
      });
    });
    bb.on('error', () =>
      reject(failed ?? new ApiError(400, 'Bad Request: invalid multipart/form-data request')),
    );
    bb.on('close', () => (failed ? reject(failed) : resolve()));
    req.pipe(bb);
  });
}

/** Parameters of one Bot API call: query string first, then the body on top. */
export async function readParams(req: IncomingMessage, url: URL): Promise<Params> {
  const params: Params = {};
  for (const [k, v] of url.searchParams) params[k] = v;
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('multipart/form-data')) {
    await readMultipart(req, params);
    return params;
  }
  const body = await readBody(req, MAX_BODY_BYTES);
  if (body.length === 0) return params;
  if (type.startsWith('application/json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new ApiError(400, "Bad Request: can't parse JSON object");
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new ApiError(400, 'Bad Request: expected a JSON object');
    Object.assign(params, parsed);
  } else {
    // The real server reads urlencoded bodies whatever the content type says.
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) params[k] = v;
  }
  return params;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}
