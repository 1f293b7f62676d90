import type { IncomingMessage } from 'node:http';
import { AppError } from '@pincer/shared';
import type { Json } from '../repositories/upstream-client.ts';

/** Reads a JSON object body under a size limit, refusing early on a declared oversized length. */
export function readJsonBody(req: IncomingMessage, limit: number): Promise<Json> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        parts.length = 0;
        reject(tooLarge(limit));
        return;
      }
      parts.push(chunk);
    });
    req.on('error', () => {
      if (!failed) reject(new AppError(400, 'invalid_request', 'The request body could not be read.'));
      failed = true;
    });
    req.on('end', () => {
      if (failed) return;
      const text = parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        reject(
          new AppError(
            400,
            'invalid_json',
            'We could not parse the JSON body of your request. Send valid JSON.',
          ),
        );
        return;
      }
      if (!body || typeof body !== 'object' || Array.isArray(body)) {
        reject(new AppError(400, 'invalid_request', 'The request body must be a JSON object.'));
        return;
      }
      resolve(body as Json);
    });
  });
}

function tooLarge(limit: number): AppError {
  return new AppError(413, 'request_too_large', `The request body exceeds the limit of ${limit} bytes.`);
}
