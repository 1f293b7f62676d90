import type { HttpAllowSettings, Role, ToolsSettings } from '../../config.ts';
import { type Confirmation, roleAllows, type Tool, type ToolContext, ToolError } from './types.ts';

const MAX_REDIRECTS = 3;
/**
 * The only headers taken from the model: content negotiation and conditional requests. Anything else
 * is dropped — connection and credential headers, and the X-HTTP-Method-Override / X-Original-URL
 * kind that would make a backend act outside the allowed method or path.
 */
const MODEL_HEADERS = new Set([
  'accept',
  'accept-language',
  'content-type',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'range',
]);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const MAX_MODEL_HEADERS = 32;
const MAX_HEADER_VALUE = 4096;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** An allowlist entry that permits a request, with the URL as it will be sent. */
export interface AllowedRequest {
  entry: HttpAllowSettings;
  url: URL;
}

/**
 * http_request: REST calls to the URL prefixes the operator allowed under tools.http.allow, with the
 * credentials configured there added by core. Undefined when nothing is allowed.
 */
export function httpRequestTool(tools: ToolsSettings, deps: { fetch?: typeof fetch } = {}): Tool | undefined {
  const allow = tools.http.allow;
  if (allow.length === 0) return undefined;
  const send = deps.fetch ?? fetch;
  const methods = [...new Set(allow.flatMap((a) => a.methods))];
  const secrets = secretValues(allow);

  return {
    name: 'http_request',
    description: describeAllowList(allow),
    parameters: {
      type: 'object',
      properties: {
        method: { type: 'string', enum: methods },
        url: { type: 'string', description: 'the full URL, starting with one of the allowed prefixes' },
        headers: {
          type: 'object',
          additionalProperties: { type: 'string' },
          description: 'extra request headers (credentials are added for you)',
        },
        body: {
          type: ['string', 'object'],
          description: 'the request body; an object is sent as JSON',
        },
      },
      required: ['method', 'url'],
      additionalProperties: false,
    },
    source: 'builtin',
    role: 'user',
    offeredTo: (caller) => allow.some((a) => roleAllows(caller.role, a.role)),
    // a URL or method not allowed is refused before anyone is asked to approve it
    authorize(args, caller) {
      const found = matchRequest(tools, String(args.method).toUpperCase(), String(args.url), caller.role);
      return found.ok ? undefined : found.reason;
    },
    confirm(args, caller): Confirmation {
      const method = String(args.method).toUpperCase();
      const found = matchRequest(tools, method, String(args.url), caller.role);
      // no entry: run refuses it, there is nothing to approve
      if (!found.ok) return 'none';
      return (found.entry.confirm_methods as readonly string[]).includes(method)
        ? found.entry.confirm
        : 'none';
    },
    // what the person approving reads: the URL as it will be sent, and the body (its size when long)
    describe(args) {
      let url = String(args.url);
      try {
        url = new URL(url).href;
      } catch {
        // refused before anyone is asked
      }
      const text =
        args.body === undefined ? '' : typeof args.body === 'string' ? args.body : JSON.stringify(args.body);
      const body = text ? ` with body (${Buffer.byteLength(text)} bytes) ${clip(text, 1000)}` : '';
      return `${String(args.method).toUpperCase()} ${url}${body}`;
    },
    run: (args, ctx) => request(tools, send, secrets, args, ctx),
  };
}

/**
 * The allowlist entry that lets `role` send `method` to `url`, or ToolError('refused') saying what is
 * not allowed. With several matching entries the one with the longest path prefix wins (its headers
 * are the ones sent).
 */
export function allowEntryFor(tools: ToolsSettings, method: string, url: string, role: Role): AllowedRequest {
  const found = matchRequest(tools, method, url, role);
  if (!found.ok) throw new ToolError('refused', found.reason);
  return { entry: found.entry, url: found.url };
}

type Match = { ok: true; entry: HttpAllowSettings; url: URL } | { ok: false; reason: string };

function matchRequest(tools: ToolsSettings, method: string, raw: string, role: Role): Match {
  const no = (reason: string): Match => ({ ok: false, reason });
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return no(`"${clip(raw, 200)}" is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return no('only http and https URLs are allowed');
  if (url.username || url.password)
    return no('URLs with a user name or password (user:pass@) are not allowed');
  // the URL parser turns %2e%2e into a ".." segment and resolves it, and servers may decode %2f or %5c
  // into separators: a path is taken only as written, plainly
  const rawPath = raw.split(/[?#]/, 1)[0]!;
  if (/%(?:25)*(?:2e|2f|5c)/i.test(rawPath))
    return no('encoded dots or slashes (%2e, %2f, %5c) in the path are not allowed');
  const port = effectivePort(url);
  const fits = tools.http.allow
    .map((entry) => ({ entry, base: new URL(entry.url) }))
    .filter(
      ({ base }) =>
        base.protocol === url.protocol &&
        base.hostname === url.hostname &&
        effectivePort(base) === port &&
        underPrefix(url.pathname, base.pathname),
    )
    .sort((a, b) => b.base.pathname.length - a.base.pathname.length);
  const where = clip(`${url.origin}${url.pathname}`, 200);
  if (fits.length === 0) return no(`${where} is not under any allowed URL prefix`);
  const withMethod = fits.filter(({ entry }) => (entry.methods as readonly string[]).includes(method));
  if (withMethod.length === 0) {
    const allowed = [...new Set(fits.flatMap(({ entry }) => entry.methods))].join(', ');
    return no(`${method} is not allowed for ${where} (allowed: ${allowed})`);
  }
  const permitted = withMethod.find(({ entry }) => roleAllows(role, entry.role));
  if (!permitted)
    return no(
      `${method} ${where} needs the role ${withMethod[0]!.entry.role}; this user has the role ${role}`,
    );
  return { ok: true, entry: permitted.entry, url };
}

function effectivePort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

/** On a segment boundary: the prefix /v2/ (or /v2) covers /v2 and /v2/items, never /v2evil. */
function underPrefix(path: string, prefix: string): boolean {
  const base = prefix.replace(/\/+$/, '');
  return path === base || path.startsWith(`${base}/`);
}

async function request(
  tools: ToolsSettings,
  send: typeof fetch,
  secrets: readonly string[],
  args: Record<string, unknown>,
  ctx: ToolContext,
): Promise<string> {
  let method = String(args.method ?? '').toUpperCase();
  let allowed = allowEntryFor(tools, method, String(args.url ?? ''), ctx.caller.role);
  const { headers: modelHeaders, dropped } = headersFromModel(args.headers);
  let body = requestBody(args.body, modelHeaders);
  if (body !== undefined && (method === 'GET' || method === 'HEAD'))
    throw new ToolError('invalid', `a ${method} request cannot have a body`);

  const timeoutMs = tools.http.timeout_ms;
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
  const failed = (err: unknown): never => {
    if (ctx.signal.aborted) throw ctx.signal.reason ?? err;
    if (signal.aborted)
      throw new ToolError('timeout', `no complete answer within ${timeoutMs} ms; the request was stopped`);
    // a message about a header (an invalid value, say) could quote a configured credential
    if (err instanceof ToolError) throw new ToolError(err.code, redact(err.message, secrets, false));
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new ToolError(
      'failed',
      redact(`the request to ${allowed.url.origin} failed: ${why}`, secrets, false),
    );
  };

  try {
    let redirects = 0;
    for (;;) {
      const headers = new Headers(modelHeaders);
      // core's configured headers win over anything of the same name the model sent
      for (const [name, value] of Object.entries(allowed.entry.headers)) headers.set(name, value);
      const res = await send(allowed.url.href, {
        method,
        headers,
        body,
        redirect: 'manual',
        signal,
      });
      const location = res.headers.get('location');
      if (!REDIRECTS.has(res.status) || location === null) {
        return await present(
          res,
          method,
          allowed.url,
          redirects > 0,
          tools.http.max_response_bytes,
          secrets,
          dropped,
        );
      }
      await res.body?.cancel();
      if (++redirects > MAX_REDIRECTS)
        throw new ToolError('failed', `the server redirected more than ${MAX_REDIRECTS} times`);
      let target: string;
      try {
        target = new URL(location, allowed.url).href;
      } catch {
        throw new ToolError('failed', `the server redirected to an invalid URL`);
      }
      // as browsers do: 303 becomes GET, and so does a POST answered with 301 or 302
      if (
        (res.status === 303 && method !== 'HEAD') ||
        ((res.status === 301 || res.status === 302) && method === 'POST')
      ) {
        method = 'GET';
        body = undefined;
        modelHeaders.delete('content-type');
      }
      const next = matchRequest(tools, method, target, ctx.caller.role);
      if (!next.ok)
        throw new ToolError(
          'refused',
          `the server redirected to ${clip(target, 200)}, which is not allowed: ${next.reason}`,
        );
      // a request that still carries its method and body may not be moved to a place whose rules ask
      // for an approval this call did not get (or from another person)
      const needed = (e: HttpAllowSettings) =>
        (e.confirm_methods as readonly string[]).includes(method) ? e.confirm : 'none';
      const rank = { none: 0, user: 1, operator: 2 } as const;
      if (rank[needed(next.entry)] > rank[needed(allowed.entry)])
        throw new ToolError(
          'refused',
          `the server redirected to ${clip(target, 200)}, which needs an approval this call did not have`,
        );
      allowed = { entry: next.entry, url: next.url };
    }
  } catch (err) {
    return failed(err);
  }
}

/** The model's headers, minus those core owns; the names dropped are reported with the result. */
function headersFromModel(given: unknown): { headers: Headers; dropped: string[] } {
  const headers = new Headers();
  const dropped: string[] = [];
  if (given === undefined || given === null) return { headers, dropped };
  if (typeof given !== 'object' || Array.isArray(given))
    throw new ToolError('invalid', 'headers must be an object of header names and string values');
  const entries = Object.entries(given);
  if (entries.length > MAX_MODEL_HEADERS)
    throw new ToolError('invalid', `at most ${MAX_MODEL_HEADERS} headers`);
  for (const [name, value] of entries) {
    if (!HEADER_NAME.test(name)) throw new ToolError('invalid', `"${clip(name, 60)}" is not a header name`);
    if (typeof value !== 'string') throw new ToolError('invalid', `header ${name} must be a string`);
    if (/[\0\r\n]/.test(value) || value.length > MAX_HEADER_VALUE)
      throw new ToolError('invalid', `header ${name}: one line of at most ${MAX_HEADER_VALUE} characters`);
    const lower = name.toLowerCase();
    if (!MODEL_HEADERS.has(lower)) dropped.push(lower);
    else headers.set(name, value);
  }
  return { headers, dropped };
}

function requestBody(body: unknown, headers: Headers): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (typeof body === 'object') {
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    return JSON.stringify(body);
  }
  throw new ToolError('invalid', 'body must be a string or an object');
}

/** The response as the model reads it: status, content type, then the body (cut, and without secrets). */
async function present(
  res: Response,
  method: string,
  url: URL,
  redirected: boolean,
  maxBytes: number,
  secrets: readonly string[],
  dropped: readonly string[],
): Promise<string> {
  const type = res.headers.get('content-type');
  const lines = [`HTTP ${res.status} ${res.statusText}`.trimEnd(), `content-type: ${type ?? '(none)'}`];
  if (redirected) lines.push(`final url: ${url.href}`);
  if (dropped.length) lines.push(`headers not sent (set by core or not allowed): ${dropped.join(', ')}`);
  lines.push('');
  const { bytes, truncated } =
    method === 'HEAD' ? { bytes: new Uint8Array(), truncated: false } : await readCapped(res, maxBytes);
  if (bytes.length > 0) {
    const text = textOf(bytes, type);
    lines.push(
      text === undefined
        ? `[${truncated ? 'more than ' : ''}${bytes.length} bytes of ${type ?? 'binary data'}]`
        : redact(text, secrets, truncated),
    );
  }
  if (truncated) lines.push(`[response cut at ${maxBytes} bytes]`);
  return redact(lines.join('\n'), secrets, false);
}

async function readCapped(
  res: Response,
  maxBytes: number,
): Promise<{ bytes: Uint8Array; truncated: boolean }> {
  if (!res.body) return { bytes: new Uint8Array(), truncated: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (size + value.length > maxBytes) {
        chunks.push(value.subarray(0, maxBytes - size));
        size = maxBytes;
        truncated = true;
        break;
      }
      chunks.push(value);
      size += value.length;
    }
  } finally {
    if (truncated) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  return { bytes: Buffer.concat(chunks), truncated };
}

const TEXT_TYPE =
  /^(?:text\/|application\/(?:[\w.+-]*\+)?(?:json|xml|yaml|javascript|x-www-form-urlencoded|csv|graphql)\b)/i;

/** The body as text when the content type says text (or, with none, when it decodes as UTF-8). */
function textOf(bytes: Uint8Array, type: string | null): string | undefined {
  if (type === null) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return undefined;
    }
  }
  if (!TEXT_TYPE.test(type.trim())) return undefined;
  const charset = /;\s*charset="?([\w.:-]+)/i.exec(type)?.[1];
  try {
    return new TextDecoder(charset ?? 'utf-8').decode(bytes);
  } catch {
    // a charset Node does not know: UTF-8 shows most of it
    return new TextDecoder('utf-8').decode(bytes);
  }
}

/** Configured headers that describe content, not who calls: their values are not hidden. */
const PLAIN_HEADERS = /^(?:accept(?:-[\w-]+)?|content-type|user-agent)$/i;

/** Configured header values (and their token without a "Bearer " scheme) that must never reach the model. */
function secretValues(allow: readonly HttpAllowSettings[]): string[] {
  const out = new Set<string>();
  for (const a of allow) {
    for (const [name, v] of Object.entries(a.headers)) {
      if (PLAIN_HEADERS.test(name)) continue;
      const token = v.replace(/^\s*(?:Bearer|Basic|Token)\s+/i, '').trim();
      // a value under 8 characters is no credential, and hiding it would blank out ordinary words
      if (v.trim().length >= 8) out.add(v.trim());
      if (token.length >= 8) out.add(token);
    }
  }
  // longest first so a full "Bearer …" value is replaced before its token
  return [...out].sort((a, b) => b.length - a.length);
}

/**
 * An echoing endpoint must not hand a configured credential to the model. When the text was cut, the
 * cut may have gone through a credential: a tail that begins one is removed too.
 */
function redact(text: string, secrets: readonly string[], cut: boolean): string {
  for (const s of secrets) text = text.replaceAll(s, '[redacted]');
  if (cut) {
    for (const s of secrets) {
      for (let n = Math.min(s.length - 1, text.length); n >= 4; n--) {
        if (text.endsWith(s.slice(0, n))) {
          text = `${text.slice(0, -n)}[redacted]`;
          break;
        }
      }
    }
  }
  return text;
}

function describeAllowList(allow: readonly HttpAllowSettings[]): string {
  const lines = [
    'Send an HTTP request to an allowed REST API and read the answer. Only these URL prefixes (and the listed methods) can be used:',
  ];
  for (const a of allow) {
    const ask = a.confirm_methods.filter((m) => a.methods.includes(m));
    const notes = [
      ...(ask.length ? [`${ask.join(', ')} must be approved first`] : []),
      ...(a.role === 'user' ? [] : [`only for the role ${a.role}`]),
    ];
    lines.push(`- ${a.url} (${a.methods.join(', ')})${notes.length ? ` — ${notes.join('; ')}` : ''}`);
  }
  lines.push('Credentials are added automatically; do not send Authorization or cookies.');
  return lines.join('\n');
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
