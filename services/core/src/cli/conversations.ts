/** `pincer conversations export`: every conversation with its messages, as JSON lines or CSV. */
import { toCsv } from '../http/csv.ts';
import { connect } from './client.ts';
import type { Command } from './command.ts';

interface Conversation {
  id: string;
  platform: string;
  chat_id: string;
  chat_type: string;
  user_id: number | null;
  user_display_name: string | null;
  title: string;
  model: string | null;
  created_at: string;
  updated_at: string;
}

interface Message {
  id: number;
  role: string;
  content: string;
  status: string;
  user_id: number | null;
  model: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  latency_ms: number | null;
  created_at: string;
}

const CSV_COLUMNS = [
  'conversation_id',
  'platform',
  'chat_id',
  'chat_type',
  'conversation_user_id',
  'user_display_name',
  'title',
  'message_id',
  'role',
  'status',
  'user_id',
  'model',
  'prompt_tokens',
  'completion_tokens',
  'latency_ms',
  'created_at',
  'content',
] as const;

const DATE = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/;

export const conversationCommands: Command[] = [
  {
    path: ['conversations', 'export'],
    args: '[--format jsonl|csv] [--user-id ID] [--platform P] [--from DATE] [--to DATE]',
    summary: 'Export conversations and their messages to stdout',
    details: `jsonl (default): one conversation per line, its messages (oldest first) in "messages".
csv: one row per message with its conversation's columns (RFC 4180, a header line).
--from: active since (inclusive); --to: started before (a bare date includes that day).
Dates are 2025-01-31 or 2025-01-31T12:00:00Z. Example:
  pincer conversations export --format csv --from 2025-01-01 > conversations.csv`,
    options: {
      format: { type: 'string' },
      'user-id': { type: 'string' },
      platform: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
    },
    async run(ctx) {
      if (ctx.positionals.length) return ctx.usage(`unexpected argument "${ctx.positionals[0]}"`);
      const format = (ctx.values.format as string | undefined) ?? 'jsonl';
      if (format !== 'jsonl' && format !== 'csv') return ctx.usage('--format must be jsonl or csv');
      const userId = ctx.values['user-id'] as string | undefined;
      if (userId !== undefined && !/^\d+$/.test(userId)) return ctx.usage('--user-id must be a number');
      for (const bound of ['from', 'to'])
        if (ctx.values[bound] !== undefined && !DATE.test(ctx.values[bound] as string))
          ctx.usage(`--${bound} must be a date (2025-01-31) or a date-time with offset`);

      const api = connect(ctx);
      if (format === 'csv') ctx.stdout.write(`${CSV_COLUMNS.join(',')}\r\n`);
      let before: string | undefined;
      let count = 0;
      do {
        const page = await api.request<{ data: Conversation[]; next_cursor: string | null }>(
          'GET',
          '/api/v1/conversations',
          {
            query: {
              user_id: userId,
              platform: ctx.values.platform as string | undefined,
              from: ctx.values.from as string | undefined,
              to: ctx.values.to as string | undefined,
              limit: 200,
              before,
            },
          },
        );
        for (const c of page.data) {
          const messages: Message[] = [];
          let after: string | undefined;
          do {
            const m = await api.request<{ data: Message[]; next_cursor: string | null }>(
              'GET',
              `/api/v1/conversations/${c.id}/messages`,
              { query: { limit: 1000, after } },
            );
            messages.push(...m.data);
            after = m.next_cursor ?? undefined;
          } while (after);
          if (format === 'jsonl') {
            ctx.stdout.write(`${JSON.stringify({ ...c, messages })}\n`);
          } else if (messages.length) {
            const rows = messages.map((m) => ({
              ...m,
              conversation_id: c.id,
              platform: c.platform,
              chat_id: c.chat_id,
              chat_type: c.chat_type,
              conversation_user_id: c.user_id,
              user_display_name: c.user_display_name,
              title: c.title,
              message_id: m.id,
            }));
            // toCsv starts with the header, already written once
            ctx.stdout.write(toCsv(CSV_COLUMNS, rows).replace(/^[^\n]*\n/, ''));
          }
          count++;
        }
        before = page.next_cursor ?? undefined;
      } while (before);
      ctx.stderr.write(`exported ${count} conversation${count === 1 ? '' : 's'}\n`);
    },
  },
];
