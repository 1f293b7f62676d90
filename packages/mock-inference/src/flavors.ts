// Per-flavor wire details: error shapes, ids, reasoning field names.

import { randomBytes, randomUUID } from 'node:crypto';
import type { MockFlavor } from './types.ts';

const VLLM_TYPES: Record<number, string> = {
  400: 'BadRequestError',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFoundError',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  501: 'NotImplementedError',
  503: 'ServiceUnavailableError',
};

const LLAMACPP_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  501: 'not_supported_error',
  503: 'unavailable_error',
};

function openaiType(status: number): string {
  if (status === 429) return 'requests';
  if (status === 401) return 'invalid_request_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

function ollamaType(status: number): string {
  if (status === 400) return 'invalid_request_error';
  if (status === 404) return 'not_found_error';
  return 'api_error';
}

/** Error body of an OpenAI-compatible endpoint in the flavor's shape. */
export function errorBody(flavor: MockFlavor, status: number, message: string, code?: string): unknown {
  switch (flavor) {
    case 'openai':
      return { error: { message, type: openaiType(status), param: null, code: code ?? null } };
    case 'ollama':
      return { error: { message, type: ollamaType(status), param: null, code: null } };
    case 'vllm':
      return {
        error: { message, type: VLLM_TYPES[status] ?? 'InternalServerError', param: null, code: status },
      };
    case 'sglang':
      // SGLang keeps the pre-0.10.1 vLLM flat shape.
      return {
        object: 'error',
        message,
        type: VLLM_TYPES[status] ?? 'InternalServerError',
        param: null,
        code: status,
      };
    case 'llamacpp':
      return { error: { code: status, message, type: LLAMACPP_TYPES[status] ?? 'server_error' } };
  }
}

/** Field carrying reasoning text in OpenAI-compatible messages/deltas; undefined = hidden. */
export function reasoningField(flavor: MockFlavor): string | undefined {
  switch (flavor) {
    case 'openai':
      return undefined;
    case 'ollama':
    case 'vllm':
      return 'reasoning';
    case 'sglang':
    case 'llamacpp':
      return 'reasoning_content';
  }
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
let pool = randomBytes(4096);
let poolPos = 0;

/** Random alphanumeric string from a refilled byte pool (cheaper than a crypto call per id). */
export function randomAlnum(n: number): string {
  if (poolPos + n > pool.length) {
    pool = randomBytes(4096);
    poolPos = 0;
  }
  let out = '';
  for (let i = 0; i < n; i++) out += ALNUM[pool[poolPos++]! % 62];
  return out;
}

export function completionId(flavor: MockFlavor): string {
  switch (flavor) {
    case 'ollama':
      // Ollama's /v1 uses rand.Intn(999): ids collide across requests.
      return 'chatcmpl-' + Math.floor(Math.random() * 999);
    case 'sglang':
      return randomUUID().replaceAll('-', '');
    case 'vllm':
      return 'chatcmpl-' + randomUUID().replaceAll('-', '');
    default:
      return 'chatcmpl-' + randomAlnum(29);
  }
}

export function toolCallId(flavor: MockFlavor): string {
  return flavor === 'ollama' ? 'call_' + randomAlnum(8).toLowerCase() : 'call_' + randomAlnum(24);
}

export function systemFingerprint(flavor: MockFlavor): string | undefined {
  if (flavor === 'openai') return 'fp_mock0001';
  if (flavor === 'ollama') return 'fp_ollama';
  if (flavor === 'llamacpp') return 'b6500-mock';
  return undefined;
}
