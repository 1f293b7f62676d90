import { z } from 'zod';
import { allowedRoles, type Route } from './route.ts';
import { ErrorBody } from './schemas.ts';

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

/** An object schema's fields as OpenAPI parameters. */
function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (!schema) return [];
  const s = jsonSchema(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, prop]) => {
    const { description, ...rest } = prop;
    return {
      name,
      in: where,
      required: where === 'path' || (s.required ?? []).includes(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

function operation(r: Route): JsonSchema {
  const roles = allowedRoles(r);
  const isPublic = r.roles === 'public';
  const success: JsonSchema = { description: r.response.description };
  const content: Record<string, JsonSchema> = {};
  if (r.response.schema) content['application/json'] = { schema: jsonSchema(r.response.schema, 'output') };
  for (const [type, when] of Object.entries(r.response.alternatives ?? {}))
    content[type] = { schema: { type: 'string' }, description: when };
  if (Object.keys(content).length) success.content = content;

  const responses: Record<string, JsonSchema> = { [String(r.response.status ?? 200)]: success };
  if (r.params || r.query || r.body) responses['400'] = errorResponse('Invalid input.');
  if (!isPublic) {
    responses['401'] = errorResponse('Missing, unknown or revoked bearer token.');
    responses['403'] = errorResponse(`The key's role is not one of: ${roles.join(', ')}.`);
  }
  if (r.params) responses['404'] = errorResponse('Not found.');
  for (const [status, description] of Object.entries(r.errors ?? {}))
    responses[status] = errorResponse(description);

  const description = [r.description, isPublic ? undefined : `Roles: ${roles.join(', ')}.`]
    .filter(Boolean)
    .join('\n\n');
  return {
    operationId: r.operationId,
    tags: [r.tag],
    summary: r.summary,
    ...(description ? { description } : {}),
    security: isPublic ? [] : [{ bearer: [] }],
    'x-roles': roles,
    ...(r.params || r.query
      ? { parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')] }
      : {}),
    ...(r.body ? { requestBody: { required: true, content: requestContent(r, r.body) } } : {}),
    responses,
  };
}

/** A JSON body, or for an upload the form: the file field plus the body's fields. */
function requestContent(r: Route, body: NonNullable<Route['body']>): JsonSchema {
  const schema = jsonSchema(body, 'input') as { properties?: object; required?: string[] };
  if (!r.upload) return { 'application/json': { schema } };
  return {
    'multipart/form-data': {
      schema: {
        ...schema,
        properties: { [r.upload.field]: { type: 'string', format: 'binary' }, ...schema.properties },
        required: [r.upload.field, ...(schema.required ?? [])],
      },
    },
  };
}

/** Express `/a/:id/b` as OpenAPI `/a/{id}/b`. */
export function openApiPath(path: string): string {
  return path.replace(/:(\w+)/g, '{$1}');
}

/** The OpenAPI 3.1 document of a route table. */
export function openApiDocument(routes: readonly Route[]): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const r of routes) (paths[openApiPath(r.path)] ??= {})[r.method] = operation(r);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Pincer core API',
      version: '1',
      description:
        'Chat with the assistant, and administer it: conversations, pairing requests, users, API keys, audit log. ' +
        'Authenticate with `Authorization: Bearer <key>`: PINCER_ADMIN_TOKEN or a key created through POST /api/v1/keys.',
    },
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'PINCER_ADMIN_TOKEN or an API key (pk_...).' },
      },
      schemas: { Error: jsonSchema(ErrorBody, 'output') },
    },
  };
}
