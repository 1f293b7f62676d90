import { AppError } from '@pincer/shared';
import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { Role } from '../repositories/keys.ts';
import type { Caller, HttpDeps } from './types.ts';

/** Returned by a handler that wrote the response itself (streams, CSV, metrics). */
export const RESPONDED = Symbol('responded');

export interface RouteContext<P, Q, B, C> {
  params: P;
  query: Q;
  body: B;
  caller: C;
  deps: HttpDeps;
  req: Request;
  res: Response;
  requestId: string;
}

export interface RouteResponse {
  /** Success status (default 200). */
  status?: number;
  description: string;
  /** The application/json body. */
  schema?: z.ZodType;
  /** Other media types this route can answer with, and when. */
  alternatives?: Record<string, string>;
}

interface RouteSpecBase<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: 'get' | 'post' | 'delete';
  /** Express path syntax (`/api/v1/keys/:id`). */
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  params?: P;
  query?: Q;
  body?: B;
  response: RouteResponse;
  /** Largest JSON body accepted (default 1 MB), or a function of the config. */
  maxBodyBytes?: (deps: HttpDeps) => number;
  /**
   * multipart/form-data with one file in `field` (kept in memory up to maxBytes); the other form
   * fields are validated by `body`.
   */
  upload?: { field: string; maxBytes: (deps: HttpDeps) => number };
  /** Error statuses particular to this route (400/401/403/404 are listed automatically). */
  errors?: Record<number, string>;
}

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

/** One entry of the route table: the router and the OpenAPI document are both built from these. */
export interface Route extends RouteSpecBase<z.ZodType, z.ZodType, z.ZodType> {
  /** Roles allowed besides admin, or 'public' for unauthenticated routes. */
  roles: readonly Role[] | 'public';
  handler(ctx: RouteContext<unknown, unknown, unknown, Caller | undefined>): Promise<unknown>;
}

/** A route that needs a bearer token; admin is always allowed in addition to `roles`. */
export function route<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(
  spec: RouteSpecBase<P, Q, B> & {
    roles: readonly Role[];
    handler(ctx: RouteContext<Out<P>, Out<Q>, Out<B>, Caller>): Promise<unknown>;
  },
): Route {
  return spec as unknown as Route;
}

/** A route anyone may call (health, metrics, the API description). */
export function publicRoute(
  spec: RouteSpecBase<z.ZodType, z.ZodType, z.ZodType> & {
    handler(ctx: RouteContext<undefined, undefined, undefined, undefined>): Promise<unknown>;
  },
): Route {
  return { ...spec, roles: 'public' } as unknown as Route;
}

export function allowedRoles(r: Route): Role[] {
  return r.roles === 'public' ? [] : ['admin', ...r.roles.filter((x) => x !== 'admin')];
}

/** Validates one part of a request, turning zod issues into one clear 400. */
export function parsePart<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: 'body' | 'query' | 'path',
): z.output<S> {
  // a filter or an id with a NUL in it is never meant, and Postgres refuses NUL in text: one rule for
  // every query and path parameter (a body field decides for itself: chat text is stored without them)
  if (where !== 'body' && value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      const texts = Array.isArray(v) ? v : [v];
      if (key.includes('\u0000') || texts.some((t) => typeof t === 'string' && t.includes('\u0000')))
        throw new AppError(400, 'invalid_request', `${where}.${key}: must not contain NUL characters`);
    }
  }
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.slice(0, 5).map((i) => {
    const at = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
    return `${where}${at}: ${i.message}`;
  });
  throw new AppError(400, 'invalid_request', problems.join('; '));
}
