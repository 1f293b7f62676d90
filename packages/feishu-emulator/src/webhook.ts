// Webhook push bodies: AES-256-CBC encryption with key SHA256(encryptKey) and a random IV in front,
// and the X-Lark-Signature over timestamp + nonce + encryptKey + body. Bodies are compact JSON because
// the SDK verifies the signature over JSON.stringify of the parsed body.
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import type { WebhookRequest, WebhookTamper } from './types.ts';

export function encryptBody(plaintext: string, encryptKey: string): string {
  const key = createHash('sha256').update(encryptKey).digest();
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  return Buffer.concat([iv, cipher.update(plaintext, 'utf8'), cipher.final()]).toString('base64');
}

export function signBody(timestamp: string, nonce: string, encryptKey: string, body: string): string {
  return createHash('sha256')
    .update(timestamp + nonce + encryptKey + body)
    .digest('hex');
}

export interface WebhookKeys {
  encryptKey?: string | undefined;
  /** Used by the 'token' tamper: header.token is replaced by a wrong one. */
  verificationToken?: string | undefined;
}

/**
 * A push request as the platform sends it. With an encrypt key the body is `{"encrypt":…}` and signed;
 * without one it is the plaintext envelope and unsigned. `tamper` breaks one thing for negative tests:
 * 'signature' (wrong X-Lark-Signature), 'token' (wrong header.token), 'timestamp' (an hour old, signed consistently).
 */
export function buildWebhookRequest(
  envelope: object,
  keys: WebhookKeys,
  tamper?: WebhookTamper,
): WebhookRequest {
  let payload: object = envelope;
  if (tamper === 'token') {
    const e = envelope as { header?: Record<string, unknown>; token?: unknown };
    payload = e.header
      ? { ...e, header: { ...e.header, token: 'tampered-token' } }
      : { ...e, token: 'tampered-token' };
  }
  const plaintext = JSON.stringify(payload);
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  if (!keys.encryptKey) return { headers, body: plaintext };
  const body = JSON.stringify({ encrypt: encryptBody(plaintext, keys.encryptKey) });
  const ageSec = tamper === 'timestamp' ? 3600 : 0;
  const timestamp = String(Math.floor(Date.now() / 1000) - ageSec);
  const nonce = randomBytes(8).toString('hex');
  let signature = signBody(timestamp, nonce, keys.encryptKey, body);
  if (tamper === 'signature') signature = signBody(timestamp, nonce, `${keys.encryptKey}x`, body);
  headers['x-lark-request-timestamp'] = timestamp;
  headers['x-lark-request-nonce'] = nonce;
  headers['x-lark-signature'] = signature;
  return { headers, body };
}
