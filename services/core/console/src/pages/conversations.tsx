// Every conversation the key may read (all for staff, its own for a user key), searchable, and one opened.
import { getConversation, getMessages, query } from '../api.ts';
import { href } from '../router.ts';
import type { Conversation, Me } from '../types.ts';
import {
  conversationName,
  DateRange,
  ErrorBanner,
  Facts,
  Field,
  FilterForm,
  fmtTime,
  Listing,
  numeric,
  PageHeader,
  PagedTable,
  UserIdField,
  useFilters,
  usePages,
  useResource,
} from '../ui.tsx';
import { Bubble, itemOf } from './chat.tsx';

const NO_FILTERS = { user_id: '', platform: '', q: '', from: '', to: '' };

export function ConversationsPage({ me, conversationId }: { me: Me; conversationId?: string }) {
  return conversationId ? <ConversationView id={conversationId} /> : <ConversationList me={me} />;
}

function ConversationList({ me }: { me: Me }) {
  const filters = useFilters(NO_FILTERS);
  const list = usePages<Conversation>(
    (before) => `/api/v1/conversations${query({ ...filters.applied, limit: 50, before })}`,
    [filters.applied],
  );

  return (
    <section>
      <PageHeader title="Conversations" />
      <FilterForm label="Filter conversations" filters={filters}>
        {me.role !== 'user' && <UserIdField id="cf-user" filters={filters} />}
        <Field id="cf-platform" label="Platform">
          <select id="cf-platform" {...filters.bind('platform')}>
            <option value="">Any</option>
            <option value="telegram">Telegram</option>
            <option value="feishu">Feishu</option>
            <option value="api">API</option>
          </select>
        </Field>
        <Field id="cf-q" label="Text" grow>
          <input id="cf-q" type="search" placeholder="Words a message contains" {...filters.bind('q')} />
        </Field>
        <DateRange id="cf" filters={filters} />
      </FilterForm>
      <ErrorBanner error={list.error} />
      <PagedTable
        list={list}
        label="Conversations"
        empty="No conversations match."
        columns={['Title', 'Platform', 'User', 'Model', numeric('Messages'), 'Updated']}
        row={(c) => (
          <tr key={c.id}>
            <td>
              <a href={href('conversations', c.id)}>{conversationName(c)}</a>
            </td>
            <td>{c.platform}</td>
            <td>
              {c.user_display_name ?? '—'}
              {c.user_id !== null && <span class="muted small"> #{c.user_id}</span>}
            </td>
            <td>{c.model ?? '—'}</td>
            <td class="num">{c.message_count}</td>
            <td>{fmtTime(c.updated_at)}</td>
          </tr>
        )}
      />
    </section>
  );
}

function ConversationView({ id }: { id: string }) {
  const conv = useResource((signal) => getConversation(id, signal), [id]);
  const messages = useResource((signal) => getMessages(id, signal), [id]);
  const c = conv.data;
  return (
    <section>
      <p>
        <a href={href('conversations')}>← All conversations</a>
      </p>
      <PageHeader title={c ? conversationName(c) : 'Conversation'} />
      <ErrorBanner error={conv.error} />
      {c && (
        <Facts
          kind="summary"
          facts={{
            Platform: `${c.platform} (${c.chat_type})`,
            User: `${c.user_display_name ?? '—'}${c.user_id !== null ? ` #${c.user_id}` : ''}`,
            Model: c.model ?? '—',
            Messages: c.message_count,
            Started: fmtTime(c.created_at),
            Updated: fmtTime(c.updated_at),
          }}
        />
      )}
      <ErrorBanner error={messages.error} />
      <Listing
        loading={messages.loading && !messages.data}
        error={messages.error}
        count={messages.data?.data.length ?? 0}
        what="Loading messages"
        empty="This conversation has no messages."
      >
        <div class="messages transcript" role="log" aria-label="Messages">
          {messages.data?.data.map((m) => (
            <Bubble key={m.id} item={itemOf(m)} />
          ))}
        </div>
      </Listing>
      {messages.data?.next_cursor && <p class="muted">Only the first 1000 messages are shown.</p>}
    </section>
  );
}
