/** Why an upstream call failed, and what the caller may do about it. */
export type UpstreamFailure =
  | 'connect' // could not connect, or the connection broke
  | 'timeout' // connect / first token / idle gap / total time exceeded
  | 'status' // the upstream answered with an HTTP error
  | 'stream_error' // the upstream sent an error inside the stream
  | 'protocol'; // the upstream sent something we cannot read

export class UpstreamError extends Error {
  readonly failure: UpstreamFailure;
  /** HTTP status the upstream answered, if it answered. */
  readonly status: number | undefined;
  /** Another node or a fallback model may succeed. */
  readonly retryable: boolean;
  /** The failure says the node is unwell (counts toward its circuit breaker). */
  readonly nodeFault: boolean;
  /** The upstream's error, already in OpenAI's shape, when it is the client's to see (a 400 about its request). */
  readonly clientError:
    { message: string; type: string; param: string | null; code: string | null } | undefined;

  constructor(
    failure: UpstreamFailure,
    message: string,
    opts: {
      status?: number;
      retryable: boolean;
      nodeFault: boolean;
      clientError?: UpstreamError['clientError'];
      cause?: unknown;
    },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'UpstreamError';
    this.failure = failure;
    this.status = opts.status;
    this.retryable = opts.retryable;
    this.nodeFault = opts.nodeFault;
    this.clientError = opts.clientError;
  }
}

/** Turns any upstream error body (OpenAI nested, vLLM/SGLang flat, Ollama string) into OpenAI's error object. */
export function normalizeErrorBody(
  text: string,
  status: number,
): { message: string; type: string; param: string | null; code: string | null } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // a non-JSON body (an HTML page from a proxy in front of the node) may hold internal details
    return {
      message: `upstream answered HTTP ${status}`,
      type: 'upstream_error',
      param: null,
      code: null,
    };
  }
  const p = parsed as Record<string, unknown>;
  const inner = (p?.error && typeof p.error === 'object' ? p.error : p) as Record<string, unknown>;
  const message =
    typeof p?.error === 'string'
      ? p.error
      : typeof inner?.message === 'string'
        ? inner.message
        : `upstream answered HTTP ${status}`;
  return {
    message: message.slice(0, 2000),
    type: typeof inner?.type === 'string' ? inner.type : 'upstream_error',
    param: typeof inner?.param === 'string' ? inner.param : null,
    code: typeof inner?.code === 'string' ? inner.code : null,
  };
}

/** Classifies an upstream HTTP error status. */
export function statusError(status: number, text: string): UpstreamError {
  const body = normalizeErrorBody(text, status);
  const msg = `upstream HTTP ${status}: ${body.message}`;
  if (status === 429) return new UpstreamError('status', msg, { status, retryable: true, nodeFault: false });
  // a model missing on one node may be present on another, or in a fallback
  if (status === 404) return new UpstreamError('status', msg, { status, retryable: true, nodeFault: false });
  if (status === 401 || status === 403)
    return new UpstreamError('status', `upstream rejected the proxy's credentials (HTTP ${status})`, {
      status,
      retryable: true,
      nodeFault: true,
    });
  if (status >= 500 || status === 408)
    return new UpstreamError('status', msg, { status, retryable: true, nodeFault: true });
  // 400, 413, 422…: the request itself is wrong; the client should see why
  return new UpstreamError('status', msg, { status, retryable: false, nodeFault: false, clientError: body });
}

/** Maps a transport error (undici, abort) to an UpstreamError. */
export function transportError(err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e = err as { code?: string; name?: string; message?: string };
  const code = e?.code ?? e?.name ?? 'unknown';
  if (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'TimeoutError'
  ) {
    return new UpstreamError('timeout', `upstream timed out (${code})`, {
      retryable: true,
      nodeFault: true,
      cause: err,
    });
  }
  return new UpstreamError(
    'connect',
    `upstream connection failed (${code}${e?.message ? `: ${e.message}` : ''})`,
    { retryable: true, nodeFault: true, cause: err },
  );
}
