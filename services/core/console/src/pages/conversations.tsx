// Every conversation the key may read (all for staff, its own for a user key), searchable, and one opened.
import { useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import { href } from '../router.ts';
import type { Conversation, Me, Message, Page } from '../types.ts';
import {
  conversationName,
  Empty,
  ErrorBanner,
  fmtTime,
  Loading,
  LoadMore,
  PageHeader,
  Table,
  usePaged,
  useResource,
} from '../ui.tsx';
import { Bubble, itemOf } from './chat.tsx';

interface Filters {
  user_id: string;
  platform: string;
  q: string;
  from: string;
  to: string;
}

const NO_FILTERS: Filters = { user_id: '', platform: '', q: '', from: '', to: '' };

export function ConversationsPage({ me, conversationId }: { me: Me; conversationId?: string }) {
  return conversationId ? <ConversationView id={conversationId} /> : <ConversationList me={me} />;
}

function ConversationList({ me }: { me: Me }) {
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const list = usePaged(
    async (before, signal) => {
      const page = await api<Page<Conversation>>(
        'GET',
        `/api/v1/conversations${query({ ...filters, limit: 50, before })}`,
        undefined,
        signal,
      );
      return { data: page.data, next: page.next_cursor };
    },
    [filters],
  );
  const rows = list.rows;
  const field = (k: keyof Filters) => ({
    value: draft[k],
    onInput: (e: Event) => setDraft({ ...draft, [k]: (e.currentTarget as HTMLInputElement).value }),
  });

  return (
    <section>
      <PageHeader title="Conversations" />
      <form
        class="filters"
        aria-label="Filter conversations"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters({ ...draft });
        }}
      >
        {me.role !== 'user' && (
          <div class="field">
            <label for="cf-user">User id</label>
            <input id="cf-user" type="number" min={1} inputMode="numeric" {...field('user_id')} />
          </div>
        )}
        <div class="field">
          <label for="cf-platform">Platform</label>
          <select
            id="cf-platform"
            value={draft.platform}
            onChange={(e) => setDraft({ ...draft, platform: e.currentTarget.value })}
          >
            <option value="">Any</option>
            <option value="telegram">Telegram</option>
            <option value="feishu">Feishu</option>
            <option value="api">API</option>
          </select>
        </div>
        <div class="field grow">
          <label for="cf-q">Text</label>
          <input id="cf-q" type="search" placeholder="Words a message contains" {...field('q')} />
        </div>
        <div class="field">
          <label for="cf-from">From</label>
          <input id="cf-from" type="date" {...field('from')} />
        </div>
        <div class="field">
          <label for="cf-to">To</label>
          <input id="cf-to" type="date" {...field('to')} />
        </div>
        <div class="field buttons">
          <button type="submit">Search</button>
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setDraft(NO_FILTERS);
              setFilters(NO_FILTERS);
            }}
          >
            Clear
          </button>
        </div>
      </form>
      <ErrorBanner error={list.error} />
      {list.loading ? (
        <Loading />
      ) : rows.length === 0 ? (
        !list.error && <Empty>No conversations match.</Empty>
      ) : (
        <>
          <Table label="Conversations">
            <thead>
              <tr>
                <th scope="col">Title</th>
                <th scope="col">Platform</th>
                <th scope="col">User</th>
                <th scope="col">Model</th>
                <th scope="col" class="num">
                  Messages
                </th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((c) => (
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
              ))}
            </tbody>
          </Table>
          <LoadMore list={list} />
        </>
      )}
    </section>
  );
}

function ConversationView({ id }: { id: string }) {
  const conv = useResource(
    (signal) =>
      api<Conversation>('GET', `/api/v1/conversations/${encodeURIComponent(id)}`, undefined, signal),
    [id],
  );
  const messages = useResource(
    (signal) =>
      api<Page<Message>>(
        'GET',
        `/api/v1/conversations/${encodeURIComponent(id)}/messages?limit=1000`,
        undefined,
        signal,
      ),
    [id],
  );
  const c = conv.data;
  return (
    <section>
      <p>
        <a href={href('conversations')}>← All conversations</a>
      </p>
      <PageHeader title={c ? conversationName(c) : 'Conversation'} />
      <ErrorBanner error={conv.error} />
      {c && (
        <dl class="summary">
          <div>
            <dt>Platform</dt>
            <dd>
              {c.platform} ({c.chat_type})
            </dd>
          </div>
          <div>
            <dt>User</dt>
            <dd>
              {c.user_display_name ?? '—'}
              {c.user_id !== null && ` #${c.user_id}`}
            </dd>
          </div>
          <div>
            <dt>Model</dt>
            <dd>{c.model ?? '—'}</dd>
          </div>
          <div>
            <dt>Messages</dt>
            <dd>{c.message_count}</dd>
          </div>
          <div>
            <dt>Started</dt>
            <dd>{fmtTime(c.created_at)}</dd>
          </div>
          <div>
            <dt>Updated</dt>
            <dd>{fmtTime(c.updated_at)}</dd>
          </div>
        </dl>
      )}
      <ErrorBanner error={messages.error} />
      {messages.loading && !messages.data ? (
        <Loading what="Loading messages" />
      ) : messages.data?.data.length ? (
        <div class="messages transcript" role="log" aria-label="Messages">
          {messages.data.data.map((m) => (
            <Bubble key={m.id} item={itemOf(m)} />
          ))}
        </div>
      ) : (
        !messages.error && <Empty>This conversation has no messages.</Empty>
      )}
      {messages.data?.next_cursor && <p class="muted">Only the first 1000 messages are shown.</p>}
    </section>
  );
}
