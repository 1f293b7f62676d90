/** core's REST API as the CLI calls it: errors become one line an operator can act on. */
import { CliError, EXIT, type Context, errorReason } from './command.ts';

interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  form?: FormData;
}

export interface ApiClient {
  readonly url: string;
  request<T>(method: string, path: string, opts?: RequestOptions): Promise<T>;
}

/** core answered, with an error status (as opposed to not answering at all). */
export class ApiError extends CliError {
  constructor(message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Where core is and how to authenticate: flags first, then PINCER_URL / PINCER_ADMIN_TOKEN. */
export function connect(ctx: Context): ApiClient {
  const url = (
    (ctx.values.url as string | undefined) ??
    ctx.env.PINCER_URL ??
    `http://127.0.0.1:${ctx.env.PORT || 8080}`
  ).replace(/\/+$/, '');
  if (!/^https?:\/\/\S+$/.test(url))
    throw new CliError(
      `"${url}" is not an http(s) URL: set PINCER_URL or --url to core's address`,
      EXIT.usage,
    );
  const token = (ctx.values.token as string | undefined) ?? ctx.env.PINCER_ADMIN_TOKEN;
  if (!token) throw new CliError('no admin token: set PINCER_ADMIN_TOKEN or pass --token', EXIT.usage);

  return {
    url,
    async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
      const target = new URL(url + path);
      for (const [k, v] of Object.entries(opts.query ?? {}))
        if (v !== undefined) target.searchParams.set(k, String(v));
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (opts.body !== undefined) headers['content-type'] = 'application/json';
      let res: Response;
      try {
        res = await fetch(target, {
          method,
          headers,
          body: opts.form ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
          signal: AbortSignal.timeout(60_000),
        });
      } catch (err) {
        throw new CliError(
          `cannot reach core at ${url} (${errorReason(err)}): is it running? Set PINCER_URL or --url to its address`,
        );
      }
      const text = await res.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      if (res.ok) return json as T;
      const message =
        (json as { error?: { message?: string } } | undefined)?.error?.message ??
        `${method} ${path} answered ${res.status}`;
      if (res.status === 401) throw new ApiError(`${message} (check PINCER_ADMIN_TOKEN or --token)`);
      if (res.status === 403)
        throw new ApiError(`${message} (this command needs an admin token or a key with more rights)`);
      throw new ApiError(message);
    },
  };
}
