import type { KnowledgeBase } from '../knowledge.ts';
import type { MemoryService } from '../memory.ts';
import { type Tool, ToolError } from './types.ts';

const none = () => 'none' as const;

/** The current date and time in the configured (or a named) time zone. */
export function timeTool(): Tool {
  return {
    name: 'current_time',
    description:
      'The current date, time and weekday. Call it before working out dates such as "tomorrow at 9" or "next Monday".',
    parameters: {
      type: 'object',
      properties: {
        timezone: {
          type: 'string',
          description: 'IANA time zone, e.g. Europe/Berlin (default: the configured one)',
        },
      },
      additionalProperties: false,
    },
    source: 'builtin',
    role: 'user',
    confirm: none,
    async run(args, ctx) {
      const timeZone = (args.timezone as string | undefined) ?? ctx.timezone;
      const now = new Date();
      let local: string;
      try {
        local = new Intl.DateTimeFormat('en-GB', {
          timeZone,
          weekday: 'long',
          year: 'numeric',
          month: 'long',
          day: 'numeric',
          hour: '2-digit',
          minute: '2-digit',
          second: '2-digit',
          timeZoneName: 'longOffset',
        }).format(now);
      } catch {
        throw new ToolError('invalid', `unknown time zone ${timeZone}`);
      }
      return JSON.stringify({ time_zone: timeZone, local, iso_utc: now.toISOString() });
    },
  };
}

/** remember / recall: the user's long-term memory (the same facts as /remember and /memories). */
export function memoryTools(memory: MemoryService): Tool[] {
  const userOf = (ctx: { caller: { userId: number | null; chatType?: 'direct' | 'group' } }) => {
    if (!ctx.caller.userId) throw new ToolError('refused', 'memory belongs to a user; this call has none');
    if (!memory.appliesTo(ctx.caller.chatType ?? 'direct'))
      throw new ToolError('refused', 'memories are personal and not used in this chat');
    return ctx.caller.userId;
  };
  return [
    {
      name: 'remember',
      description:
        'Store a durable fact about the user (a preference, their name, a project) in their long-term memory. Only when they ask you to remember something or state a lasting fact.',
      parameters: {
        type: 'object',
        properties: {
          fact: { type: 'string', minLength: 1, maxLength: 500, description: 'the fact, one sentence' },
        },
        required: ['fact'],
        additionalProperties: false,
      },
      source: 'builtin',
      role: 'user',
      confirm: none,
      // memories are personal: offered only where memory applies (by default not in groups)
      offeredTo: (caller) => memory.appliesTo(caller.chatType ?? 'direct'),
      async run(args, ctx) {
        const r = await memory.remember(userOf(ctx), String(args.fact));
        return r.created ? 'Remembered.' : 'Already known; kept.';
      },
    },
    {
      name: 'recall',
      description: "Look up what is stored in the user's long-term memory, most related to a query first.",
      parameters: {
        type: 'object',
        properties: { query: { type: 'string', description: 'what to look for (empty: everything)' } },
        additionalProperties: false,
      },
      source: 'builtin',
      role: 'user',
      confirm: none,
      // memories are personal: offered only where memory applies (by default not in groups)
      offeredTo: (caller) => memory.appliesTo(caller.chatType ?? 'direct'),
      async run(args, ctx) {
        const section = await memory.promptSection(userOf(ctx), String(args.query ?? ''));
        return section ?? 'Nothing is stored about this user.';
      },
    },
  ];
}

/** search_knowledge: the same hybrid search as /kb, with document names for citing. */
export function knowledgeTool(knowledge: KnowledgeBase, topK: number): Tool {
  return {
    name: 'search_knowledge',
    description:
      "Search the organisation's knowledge base (uploaded documents). Returns the most relevant excerpts with their document titles.",
    parameters: {
      type: 'object',
      properties: {
        query: { type: 'string', minLength: 1, maxLength: 2000 },
        top_k: {
          type: 'integer',
          minimum: 1,
          maximum: 20,
          description: `excerpts to return (default ${topK})`,
        },
      },
      required: ['query'],
      additionalProperties: false,
    },
    source: 'builtin',
    role: 'user',
    confirm: none,
    async run(args) {
      const found = await knowledge.search(String(args.query), {
        topK: (args.top_k as number | undefined) ?? topK,
      });
      if (found.hits.length === 0) return 'No excerpt of the knowledge base matches.';
      return found.hits
        .map(
          (h, i) =>
            `[${i + 1}] ${h.title}${h.filename && h.filename !== h.title ? ` (${h.filename})` : ''}${h.heading ? ` — ${h.heading}` : ''}\n${h.content}`,
        )
        .join('\n\n');
    },
  };
}
