// Talking to core: every call carries the signed-in key; a 401 anywhere ends the session.
import { createParser } from 'eventsource-parser';
import type { ChatResult, Conversation, Me, Message, Page } from './types.ts';

const STORAGE_KEY = 'pincer.console.token';

/** An error the API answered with (`{ error: { code, message } }`), or a network failure (status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** The whole error body (config reload puts its problems next to `error`). */
  readonly body: unknown;
  constructor(status: number, code: string, message: string, body?: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

let token: string | null = null;
let onUnauthorized: (() => void) | undefined;

/** The key kept from an earlier visit: this tab's first, then the one remembered on this device. */
export function storedToken(): string | null {
  return sessionStorage.getItem(STORAGE_KEY) ?? localStorage.getItem(STORAGE_KEY);
}

export function keepToken(t: string, remember: boolean): void {
  token = t;
  forgetToken();
  (remember ? localStorage : sessionStorage).setItem(STORAGE_KEY, t);
}

/** Uses a stored key again (after checking it still works). */
export function resumeToken(t: string): void {
  token = t;
}

export function forgetToken(): void {
  sessionStorage.removeItem(STORAGE_KEY);
  localStorage.removeItem(STORAGE_KEY);
}

export function signOut(): void {
  token = null;
  forgetToken();
}

/** Called once by the app: what to do when the key stops working. */
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  return { ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra };
}

async function errorFrom(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const err = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
  return new ApiError(
    res.status,
    err?.code ?? 'http_error',
    err?.message ?? `The server answered ${res.status} ${res.statusText}.`.trim(),
    body,
  );
}

async function send(path: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'Could not reach the server. Check your connection and try again.');
  }
  if (res.ok) return res;
  const error = await errorFrom(res);
  if (res.status === 401 && token) onUnauthorized?.();
  throw error;
}

/** Who a key belongs to, without touching the session (sign-in checks a key before keeping it). */
export async function whoIs(t: string): Promise<Me> {
  let res: Response;
  try {
    res = await fetch('/api/v1/me', { headers: { authorization: `Bearer ${t}` } });
  } catch {
    throw new ApiError(0, 'network', 'Could not reach the server. Check your connection and try again.');
  }
  if (res.status === 401) throw new ApiError(401, 'unauthorized', 'Invalid or revoked key.');
  if (!res.ok) throw await errorFrom(res);
  return (await res.json()) as Me;
}

/** A JSON API call; undefined for 204. */
export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const res = await send(path, {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

const conversationPath = (id: string) => `/api/v1/conversations/${encodeURIComponent(id)}`;

export const getConversation = (id: string, signal?: AbortSignal) =>
  api<Conversation>('GET', conversationPath(id), undefined, signal);

/** A conversation's messages: the first 1000 (next_cursor is set when there are more). */
export const getMessages = (id: string, signal?: AbortSignal) =>
  api<Page<Message>>('GET', `${conversationPath(id)}/messages?limit=1000`, undefined, signal);

/** `?a=1&b=2` from the fields that are set. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export interface ChatStreamHandlers {
  /** The message is stored: its conversation (a new one has its id from here on, even if stopped). */
  onStart?(ids: { conversation_id: string; message_id: number }): void;
  onDelta(text: string): void;
}

/**
 * POST /api/v1/chat with stream: true, read as server-sent events (EventSource cannot POST or send
 * headers). Resolves with the `done` event; an `error` event rejects with its message.
 */
export async function streamChat(
  body: { message: string; model?: string; conversation_id?: string },
  handlers: ChatStreamHandlers,
  signal: AbortSignal,
): Promise<ChatResult> {
  const res = await send('/api/v1/chat', {
    method: 'POST',
    headers: headers({ 'content-type': 'application/json', accept: 'text/event-stream' }),
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  if (!res.body) throw new ApiError(0, 'no_stream', 'The browser could not read the answer as a stream.');
  let done: ChatResult | undefined;
  let failure: ApiError | undefined;
  const parser = createParser({
    onEvent(ev) {
      if (ev.event === 'delta') handlers.onDelta((JSON.parse(ev.data) as { text: string }).text);
      else if (ev.event === 'start')
        handlers.onStart?.(JSON.parse(ev.data) as { conversation_id: string; message_id: number });
      else if (ev.event === 'done') done = JSON.parse(ev.data) as ChatResult;
      else if (ev.event === 'error') {
        const e = (JSON.parse(ev.data) as { error: { code: string; message: string } }).error;
        failure = new ApiError(200, e.code, e.message);
      }
    },
  });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    parser.feed(value);
  }
  if (failure) throw failure;
  if (!done) throw new ApiError(0, 'stream_ended', 'The answer stopped before it was finished.');
  return done;
}

/** multipart upload with progress events (fetch cannot report upload progress). */
export function upload<T>(path: string, form: FormData, onProgress: (fraction: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'The upload failed: could not reach the server.'));
    xhr.onload = () => {
      let body: unknown;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body as T);
      const err = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
      if (xhr.status === 401 && token) onUnauthorized?.();
      reject(
        new ApiError(
          xhr.status,
          err?.code ?? 'http_error',
          err?.message ?? `The server answered ${xhr.status}.`,
          body,
        ),
      );
    };
    xhr.send(form);
  });
}

/** Fetches a file with the bearer header (a plain link cannot carry it) and saves it. */
export async function download(path: string, filename: string): Promise<void> {
  const res = await send(path, { headers: headers() });
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
