import { AppError } from '@pincer/shared';
import { z } from 'zod';
import type { Json } from '../repositories/upstream-client.ts';

const nullableNumber = (min: number, max: number) => z.number().min(min).max(max).nullable().optional();
const positive = z.number().int().positive().nullable().optional();

const Content = z.union([z.string(), z.array(z.looseObject({ type: z.string() })), z.null()]);

const Message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: Content.optional(),
});

const ChatRequest = z.looseObject({
  model: z.string().optional(),
  messages: z.array(Message).min(1, 'messages must not be empty'),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: positive,
  max_completion_tokens: positive,
  temperature: nullableNumber(0, 2),
  top_p: nullableNumber(0, 1),
  n: z.number().int().min(1).max(16).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  stop: z
    .union([z.string(), z.array(z.string()).max(16)])
    .nullable()
    .optional(),
  tools: z
    .array(z.looseObject({ type: z.string(), function: z.looseObject({ name: z.string().min(1) }) }))
    .optional(),
  response_format: z
    .looseObject({ type: z.enum(['text', 'json_object', 'json_schema']) })
    .nullable()
    .optional(),
});

const EmbeddingsRequest = z.looseObject({
  model: z.string().optional(),
  input: z.union([
    z.string(),
    z.array(z.string()).min(1, 'input must not be empty').max(2048),
    z.array(z.number().int()).min(1),
    z.array(z.array(z.number().int()).min(1)).min(1).max(2048),
  ]),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.number().int().positive().optional(),
});

function check(schema: z.ZodType, body: Json, required: string[]): Json {
  for (const name of required) {
    if (body[name] === undefined)
      throw new AppError(400, 'missing_required_parameter', `Missing required parameter: '${name}'.`, {
        param: name,
      });
  }
  const r = schema.safeParse(body);
  if (r.success) return body;
  const issue = r.error.issues[0]!;
  const param = issue.path
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[');
  throw new AppError(400, 'invalid_value', `Invalid value for '${param}': ${issue.message}.`, { param });
}

export const validateChat = (body: Json): Json => check(ChatRequest, body, ['messages']);
export const validateEmbeddings = (body: Json): Json => check(EmbeddingsRequest, body, ['input']);
