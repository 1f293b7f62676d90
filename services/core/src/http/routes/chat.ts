import { AppError, toAppError } from '@pincer/shared';
import { z } from 'zod';
import { RESPONDED, type Route, route } from '../route.ts';
import { EventStream } from '../sse.ts';
import type { RestChatRequest } from '../types.ts';

const MAX_TEXT = 100_000;
const MAX_MESSAGES = 500;

const notBlank = (s: string) => s.trim().length > 0;

const ChatBody = z
  .strictObject({
    model: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe(
        "A model id from llm-proxy's registry (default: the routing rule's, the conversation's or the configured one). " +
          'It becomes the conversation’s model, as /model does on the chat platforms.',
      ),
    message: z
      .string()
      .max(MAX_TEXT)
      .refine(notBlank, 'must not be empty')
      .optional()
      .describe('The new user message.'),
    messages: z
      .array(
        z.strictObject({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(MAX_TEXT) }),
      )
      .min(1, 'must not be empty')
      .max(MAX_MESSAGES)
      .optional()
      .describe('A whole history starting a new conversation; the last message must have role user.'),
    conversation_id: z
      .uuid()
      .optional()
      .describe('Continue this conversation (one you started through this API).'),
    stream: z.boolean().default(false).describe('Answer as server-sent events: `delta` events, then `done`.'),
  })
  .superRefine((b, ctx) => {
    if (b.message !== undefined && b.messages !== undefined)
      ctx.addIssue({ code: 'custom', message: 'send either message or messages, not both' });
    else if (b.message === undefined && b.messages === undefined)
      ctx.addIssue({
        code: 'custom',
        message: 'send message (the new user message) or messages (a whole history)',
      });
    if (b.messages && b.conversation_id !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['messages'],
        message: 'messages starts a new conversation; to continue conversation_id send message',
      });
    const last = b.messages?.at(-1);
    if (last && last.role !== 'user')
      ctx.addIssue({
        code: 'custom',
        path: ['messages', b.messages!.length - 1, 'role'],
        message: 'the last message must have role user',
      });
    else if (last && !notBlank(last.content))
      ctx.addIssue({
        code: 'custom',
        path: ['messages', b.messages!.length - 1, 'content'],
        message: 'must not be empty',
      });
  });

export const ChatResult = z.object({
  conversation_id: z.uuid(),
  message_id: z.number().int(),
  reply: z.object({
    content: z.string(),
    status: z.enum(['complete', 'stopped', 'failed']),
    model: z.string().nullable(),
    usage: z.object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int() }).nullable(),
    latency_ms: z.number(),
    ttft_ms: z.number().nullable(),
  }),
});

export const chatRoutes: Route[] = [
  route({
    method: 'post',
    path: '/api/v1/chat',
    operationId: 'chat',
    tag: 'chat',
    summary: 'Send a message and get the reply',
    description:
      'Starts or continues a conversation of the caller. With `stream: true` the answer is a server-sent event stream: ' +
      '`event: start` with `{"conversation_id", "message_id"}` once the message is stored, ' +
      '`event: delta` with `{"text": "..."}` per piece of text, `event: approval` with `{"id", "tool", "summary", "expires_at"}` when a tool call waits for the caller to approve it (POST /api/v1/approvals/{id}/approve or /deny), then `event: done` with the same object the non-streaming ' +
      'call returns, or `event: error` with `{"error": {...}}` if it fails after the stream started.',
    roles: ['operator', 'user'],
    body: ChatBody,
    response: {
      description: 'The reply, and the conversation to continue with conversation_id.',
      schema: ChatResult,
      alternatives: { 'text/event-stream': 'with stream: true' },
    },
    errors: { 413: 'Request body larger than 1 MB.' },
    async handler({ body, caller, deps, res, requestId }) {
      // the client leaving cancels the reply, which cancels the model request
      const controller = new AbortController();
      const onClose = () => {
        if (!res.writableFinished)
          controller.abort(new AppError(499, 'client_closed', 'client closed the connection'));
      };
      res.on('close', onClose);
      const request: RestChatRequest = {
        caller: {
          userId: caller.userId,
          isAdmin: caller.role === 'admin',
          role: caller.role,
          name: caller.name,
        },
        conversationId: body.conversation_id,
        model: body.model,
        message: body.message,
        messages: body.messages,
        requestId,
      };
      if (!body.stream) return deps.chat.chat(request, undefined, controller.signal);

      const events = new EventStream(res);
      request.onApproval = (a) => events.send('approval', a);
      try {
        const result = await deps.chat.chat(
          request,
          (text) => events.send('delta', { text }),
          controller.signal,
          (ids) => events.send('start', ids),
        );
        events.send('done', result);
      } catch (err) {
        if (!events.started) throw err;
        const e = toAppError(err);
        if (e.status >= 500 && !controller.signal.aborted)
          deps.log.error('chat failed mid-stream', {
            requestId,
            code: e.code,
            error: (err as Error)?.message,
          });
        events.send('error', { error: { code: e.code, message: e.message } });
      } finally {
        events.end();
        res.off('close', onClose);
      }
      return RESPONDED;
    },
  }),
];
