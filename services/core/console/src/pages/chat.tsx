// Chat with a model through core (POST /api/v1/chat, streamed), and my earlier API conversations.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, getConversation, getMessages, query, streamChat } from '../api.ts';
import { href, navigate } from '../router.ts';
import type { Conversation, Me, Message, ModelList, Page } from '../types.ts';
import {
  conversationName,
  Empty,
  ErrorBanner,
  Facts,
  fmtMs,
  fmtNum,
  Loading,
  PageHeader,
  useResource,
} from '../ui.tsx';

interface ReplyMeta {
  model: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  latency_ms: number | null;
  ttft_ms: number | null;
}

export interface Item {
  key: string;
  role: Message['role'];
  content: string;
  status: string;
  meta?: ReplyMeta;
}

let seq = 0;
export const itemOf = (m: Message): Item => ({
  key: `m${m.id}`,
  role: m.role,
  content: m.content,
  status: m.status,
  meta: m.role === 'assistant' ? m : undefined,
});

/** Chat models only: an embeddings-only model cannot answer. */
const chatModels = (list: ModelList | undefined) =>
  (list?.data ?? []).filter((m) => m.capabilities.includes('chat') || !m.capabilities.includes('embeddings'));

export function ChatPage({ me, conversationId }: { me: Me; conversationId?: string }) {
  const sidebar = useResource(
    (signal) =>
      api<Page<Conversation>>(
        'GET',
        `/api/v1/conversations${query({ user_id: me.user_id, platform: 'api', limit: 50 })}`,
        undefined,
        signal,
      ),
    [me.user_id],
  );
  const models = useResource((signal) => api<ModelList>('GET', '/api/v1/models', undefined, signal), []);
  const choices = useMemo(() => chatModels(models.data), [models.data]);

  const [items, setItems] = useState<Item[]>([]);
  const [loadingHistory, setLoadingHistory] = useState(false);
  const [model, setModel] = useState('');
  const [text, setText] = useState('');
  const [error, setError] = useState<unknown>();
  const [streaming, setStreaming] = useState<AbortController | null>(null);
  // the conversation this page just started: its id arriving in the URL must not reload what is shown
  const started = useRef<string | undefined>(undefined);
  const logRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const streamingRef = useRef(streaming);
  streamingRef.current = streaming;
  // bumped when another conversation is shown: a late answer must not land in it
  const epoch = useRef(0);

  useEffect(() => {
    if (started.current !== undefined && started.current === conversationId) return;
    epoch.current++;
    streamingRef.current?.abort();
    setError(undefined);
    if (!conversationId) {
      started.current = undefined;
      setItems([]);
      return;
    }
    const ctl = new AbortController();
    setLoadingHistory(true);
    setItems([]);
    setModel('');
    // the model picked earlier in this conversation stays picked (it is the conversation's)
    getConversation(conversationId, ctl.signal).then(
      (c) => setModel(c.model ?? ''),
      () => {},
    );
    getMessages(conversationId, ctl.signal).then(
      (page) => {
        if (ctl.signal.aborted) return;
        setItems(page.data.filter((m) => m.role !== 'system').map(itemOf));
        setLoadingHistory(false);
      },
      (err: unknown) => {
        if (ctl.signal.aborted) return;
        setError(err);
        setLoadingHistory(false);
      },
    );
    return () => {
      ctl.abort();
      // another conversation (or a new chat) must not be left "loading" by the one given up
      setLoadingHistory(false);
    };
    // choices only refines the model picked; reloading the history when they arrive is not needed
  }, [conversationId]);

  // leaving the page stops an answer being written (the server keeps what it has)
  useEffect(() => () => streamingRef.current?.abort(), []);

  useEffect(() => {
    const el = logRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [items]);

  async function send() {
    const message = text.trim();
    if (!message || streaming) return;
    const mine = epoch.current;
    const updateLast = (fn: (it: Item) => Item) => {
      if (epoch.current !== mine) return;
      setItems((list) => (list.length ? [...list.slice(0, -1), fn(list[list.length - 1]!)] : list));
    };
    const ctl = new AbortController();
    setStreaming(ctl);
    setError(undefined);
    setText('');
    setItems((list) => [
      ...list,
      { key: `u${++seq}`, role: 'user', content: message, status: 'sent' },
      { key: `a${++seq}`, role: 'assistant', content: '', status: 'streaming' },
    ]);
    try {
      const result = await streamChat(
        { message, model: model || undefined, conversation_id: conversationId },
        {
          // a new conversation is shown under its id at once, so Stop or a failure keeps it
          onStart: ({ conversation_id }) => {
            if (conversation_id !== conversationId && epoch.current === mine) {
              started.current = conversation_id;
              navigate('chat', conversation_id, true);
              sidebar.reload();
            }
          },
          onDelta: (d) => updateLast((it) => ({ ...it, content: it.content + d })),
        },
        ctl.signal,
      );
      const r = result.reply;
      updateLast((it) => ({
        ...it,
        content: r.content,
        status: r.status,
        meta: {
          model: r.model,
          prompt_tokens: r.usage?.prompt_tokens ?? null,
          completion_tokens: r.usage?.completion_tokens ?? null,
          latency_ms: r.latency_ms,
          ttft_ms: r.ttft_ms,
        },
      }));
      if (result.conversation_id !== conversationId && epoch.current === mine) {
        started.current = result.conversation_id;
        navigate('chat', result.conversation_id, true);
      }
    } catch (err) {
      if (ctl.signal.aborted) updateLast((it) => ({ ...it, status: 'stopped' }));
      else {
        updateLast((it) => ({ ...it, status: 'failed' }));
        if (epoch.current === mine) setError(err);
      }
    } finally {
      setStreaming((current) => (current === ctl ? null : current));
      sidebar.reload();
      inputRef.current?.focus();
    }
  }

  function onKeyDown(e: KeyboardEvent) {
    // Enter sends, Shift+Enter is a new line; never while an input method is composing
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void send();
    }
  }

  return (
    <div class="chat">
      <aside class="chat-list" aria-label="My conversations">
        <a
          class="button"
          href={href('chat')}
          onClick={() => {
            started.current = undefined;
            // already on a new chat (say, one stopped before it had an id): start over all the same
            if (!conversationId && !streaming) setItems([]);
          }}
        >
          New chat
        </a>
        <h2>My conversations</h2>
        <ErrorBanner error={sidebar.error} />
        {sidebar.loading && !sidebar.data ? (
          <Loading />
        ) : sidebar.data?.data.length ? (
          <ul>
            {sidebar.data.data.map((c) => (
              <li key={c.id}>
                <a href={href('chat', c.id)} aria-current={c.id === conversationId ? 'page' : undefined}>
                  <span class="title">{conversationName(c)}</span>
                  <span class="muted small">
                    {c.message_count} messages · {new Date(c.updated_at).toLocaleDateString()}
                  </span>
                </a>
              </li>
            ))}
          </ul>
        ) : (
          <Empty>No conversations yet.</Empty>
        )}
      </aside>
      <section class="chat-main" aria-labelledby="chat-title">
        <PageHeader title="Chat" id="chat-title">
          <label for="model" class="inline">
            Model
          </label>
          <select id="model" value={model} onChange={(e) => setModel(e.currentTarget.value)}>
            {/* no model sent: the routing rules and core.default_model choose, as on the chat platforms */}
            <option value="">{models.loading && !choices.length ? 'Loading…' : 'Automatic'}</option>
            {model && !choices.some((m) => m.id === model) && <option value={model}>{model}</option>}
            {choices.map((m) => (
              <option key={m.id} value={m.id}>
                {m.name && m.name !== m.id ? `${m.name} (${m.id})` : m.id}
                {m.default ? ' — default' : ''}
              </option>
            ))}
          </select>
        </PageHeader>
        <ErrorBanner error={models.error} />
        <div
          class="messages"
          ref={logRef}
          role="log"
          aria-label="Messages"
          aria-live="polite"
          aria-busy={streaming ? 'true' : 'false'}
        >
          {loadingHistory ? (
            <Loading what="Loading the conversation" />
          ) : items.length === 0 ? (
            <Empty>Ask anything to start a conversation.</Empty>
          ) : (
            items.map((it) => <Bubble key={it.key} item={it} />)
          )}
        </div>
        <ErrorBanner error={error} onDismiss={() => setError(undefined)} />
        <form
          class="composer"
          onSubmit={(e) => {
            e.preventDefault();
            void send();
          }}
        >
          <label for="message" class="visually-hidden">
            Message
          </label>
          <textarea
            id="message"
            ref={inputRef}
            rows={3}
            placeholder="Write a message (Enter sends, Shift+Enter for a new line)"
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
            onKeyDown={onKeyDown}
          />
          {streaming ? (
            <button type="button" class="danger" onClick={() => streaming.abort()}>
              Stop
            </button>
          ) : (
            <button type="submit" disabled={!text.trim()}>
              Send
            </button>
          )}
        </form>
      </section>
    </div>
  );
}

// Markdown (marked + DOMPurify) is most of the bundle: loaded only once a page shows model output
let renderMarkdown: ((text: string) => string) | undefined;
let markdownLoading: Promise<unknown> | undefined;

function useMarkdown() {
  const [, setLoaded] = useState(false);
  useEffect(() => {
    if (renderMarkdown) return;
    markdownLoading ??= import('../markdown.ts').then((m) => (renderMarkdown = m.renderMarkdown));
    let alive = true;
    void markdownLoading.then(() => alive && setLoaded(true));
    return () => void (alive = false);
  }, []);
  return renderMarkdown;
}

export function Bubble({ item }: { item: Item }) {
  const render = useMarkdown();
  const html = useMemo(
    () => (item.role === 'assistant' && render ? render(item.content) : undefined),
    [item.role, item.content, render],
  );
  const who = item.role === 'assistant' ? 'Assistant' : item.role === 'user' ? 'You' : 'System';
  return (
    <article class={`bubble ${item.role}`} aria-label={`${who} message`}>
      <header class="small muted">
        {who}
        {item.status === 'streaming' && <span class="badge">writing…</span>}
        {item.status === 'stopped' && <span class="badge warn">stopped</span>}
        {item.status === 'failed' && <span class="badge bad">failed</span>}
      </header>
      {html !== undefined ? (
        // sanitized by renderMarkdown (DOMPurify with a small allow-list)
        <div class="md" dangerouslySetInnerHTML={{ __html: html }} />
      ) : (
        <div class="plain">{item.content}</div>
      )}
      {item.meta && (
        <Facts
          kind="facts"
          facts={{
            Model: item.meta.model ?? '—',
            'Prompt tokens': fmtNum(item.meta.prompt_tokens),
            'Completion tokens': fmtNum(item.meta.completion_tokens),
            Latency: fmtMs(item.meta.latency_ms),
            'First token': fmtMs(item.meta.ttft_ms),
          }}
        />
      )}
    </article>
  );
}
