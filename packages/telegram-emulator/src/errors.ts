/** An answer of the Bot API with ok:false; the HTTP status equals error_code, as on api.telegram.org. */
export class ApiError extends Error {
  readonly code: number;
  readonly description: string;
  readonly parameters: { retry_after?: number; migrate_to_chat_id?: number } | undefined;

  constructor(
    code: number,
    description: string,
    parameters?: { retry_after?: number; migrate_to_chat_id?: number },
  ) {
    super(description);
    this.code = code;
    this.description = description;
    this.parameters = parameters;
  }

  body(): Record<string, unknown> {
    const out: Record<string, unknown> = { ok: false, error_code: this.code, description: this.description };
    if (this.parameters) out['parameters'] = this.parameters;
    return out;
  }
}

export const badRequest = (what: string): ApiError => new ApiError(400, `Bad Request: ${what}`);

/** Formatting failures carry the parser's own words after this prefix. */
export const cantParseEntities = (detail: string): ApiError => badRequest(`can't parse entities: ${detail}`);

export const notFound = (): ApiError => new ApiError(404, 'Not Found');
export const unauthorized = (): ApiError => new ApiError(401, 'Unauthorized');
export const tooManyRequests = (retryAfter: number): ApiError =>
  new ApiError(429, `Too Many Requests: retry after ${retryAfter}`, { retry_after: retryAfter });

/** Thrown by a parser; the caller wraps it with the right prefix. */
export class ParseFailure extends Error {}
