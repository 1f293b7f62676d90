/** An error that is safe to show to a client: an HTTP status, a stable code and a message without internals. */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  /** OpenAI-style error type (`invalid_request_error`, `rate_limit_error`, …) for APIs that mimic OpenAI. */
  readonly type: string;
  readonly param: string | null;
  readonly headers: Record<string, string> | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    opts: { type?: string; param?: string | null; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.type = opts.type ?? defaultType(status);
    this.param = opts.param ?? null;
    this.headers = opts.headers;
  }
}

function defaultType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** Anything thrown becomes an AppError; unknown errors become a 500 that leaks nothing. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as {
    type?: string;
    status?: number;
    statusCode?: number;
    expose?: boolean;
    message?: string;
  };
  // body-parser style errors carry a status and are safe to show when `expose` is set
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500 && e.expose) {
    const code = e.type === 'entity.too.large' ? 'request_too_large' : 'invalid_request';
    return new AppError(status, code, e.message ?? 'Bad request', { cause: err });
  }
  return new AppError(500, 'internal_error', 'Internal server error', { cause: err });
}

/** The OpenAI error body: `{ error: { message, type, param, code } }`. */
export function openAIErrorBody(err: AppError): {
  error: { message: string; type: string; param: string | null; code: string };
} {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.code } };
}
