// The shell: sign-in, the header with who is signed in, the menu the role allows, and the page.
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import {
  ApiError,
  keepToken,
  resumeToken,
  setUnauthorizedHandler,
  signOut,
  storedToken,
  whoIs,
} from './api.ts';
import { ApprovalsPage } from './pages/approvals.tsx';
import { AuditPage } from './pages/audit.tsx';
import { ChatPage } from './pages/chat.tsx';
import { ConfigPage } from './pages/config.tsx';
import { ConversationsPage } from './pages/conversations.tsx';
import { KeysPage } from './pages/keys.tsx';
import { KnowledgePage } from './pages/knowledge.tsx';
import { ModelsPage } from './pages/models.tsx';
import { PairingPage } from './pages/pairing.tsx';
import { SignIn } from './pages/signin.tsx';
import { TasksPage } from './pages/tasks.tsx';
import { WorkflowsPage } from './pages/workflows.tsx';
import { href, navigate, PAGES, type PageInfo, pagesFor, useLocation } from './router.ts';
import type { Me } from './types.ts';
import { ErrorBanner, Loading, Notice } from './ui.tsx';

type Session =
  | { state: 'checking' }
  | { state: 'signed-out'; notice?: string; error?: unknown }
  | { state: 'signed-in'; me: Me };

export function App() {
  const [session, setSession] = useState<Session>(() =>
    storedToken() ? { state: 'checking' } : { state: 'signed-out' },
  );

  const end = useCallback((notice?: string) => {
    signOut();
    setSession({ state: 'signed-out', notice });
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(() => end('Your key is no longer accepted (revoked or invalid). Sign in again.'));
    const t = storedToken();
    if (!t) return;
    whoIs(t).then(
      (me) => {
        resumeToken(t);
        setSession({ state: 'signed-in', me });
      },
      (err: unknown) => {
        if (err instanceof ApiError && err.status === 401) end('Your saved key is no longer accepted.');
        else setSession({ state: 'signed-out', error: err });
      },
    );
  }, [end]);

  if (session.state === 'checking') return <Loading what="Checking your key" />;
  if (session.state === 'signed-out')
    return (
      <SignIn
        notice={session.notice}
        error={session.error}
        onSignedIn={(me, token, remember) => {
          keepToken(token, remember);
          setSession({ state: 'signed-in', me });
        }}
      />
    );
  return <Shell me={session.me} onSignOut={() => end('You are signed out.')} />;
}

function Shell({ me, onSignOut }: { me: Me; onSignOut: () => void }) {
  const loc = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  const allowed = useMemo(() => pagesFor(me.role), [me.role]);
  const page = PAGES.find((p) => p.id === loc.page);

  useEffect(() => {
    if (!page && allowed[0]) navigate(allowed[0].id, undefined, true);
  }, [page, allowed]);
  useEffect(() => setMenuOpen(false), [loc.page, loc.rest]);
  useEffect(() => {
    document.title = page ? `${page.title} · Pincer console` : 'Pincer console';
  }, [page]);

  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href={href(allowed[0]?.id ?? 'conversations')}>
          Pincer
        </a>
        <button
          type="button"
          class="menu-toggle"
          aria-expanded={menuOpen}
          aria-controls="main-nav"
          onClick={() => setMenuOpen(!menuOpen)}
        >
          Menu
        </button>
        <div class="whoami">
          <p>
            <span class="visually-hidden">Signed in as </span>
            <span class="who">{me.name}</span>{' '}
            <span class={`role role-${me.role}`} title="Role">
              {me.role}
            </span>
          </p>
          <button type="button" class="secondary small" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <nav id="main-nav" class={menuOpen ? 'open' : ''} aria-label="Main">
        <ul>
          {allowed.map((p) => (
            <li key={p.id}>
              <a href={href(p.id)} aria-current={p.id === loc.page ? 'page' : undefined}>
                {p.title}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main>
        <PageView page={page} rest={loc.rest} me={me} none={allowed.length === 0} />
      </main>
    </div>
  );
}

/** The page shown; `none` when the role has no page at all (an unknown page is redirected meanwhile). */
function PageView({ page, rest, me, none }: { page?: PageInfo; rest: string; me: Me; none: boolean }) {
  if (!page)
    return none ? <ErrorBanner error={`The role ${me.role} has no pages in this console.`} /> : <Loading />;
  if (!page.roles.includes(me.role))
    return (
      <section>
        <h1>Not allowed</h1>
        <Notice tone="error">
          You are not allowed to open {page.title}: a key with the role {me.role} cannot use it.
        </Notice>
      </section>
    );
  switch (page.id) {
    case 'chat':
      return <ChatPage me={me} conversationId={rest || undefined} />;
    case 'conversations':
      return <ConversationsPage me={me} conversationId={rest || undefined} />;
    case 'models':
      return <ModelsPage />;
    case 'pairing':
      return <PairingPage />;
    case 'keys':
      return <KeysPage me={me} />;
    case 'knowledge':
      return <KnowledgePage />;
    case 'audit':
      return <AuditPage />;
    case 'config':
      return <ConfigPage me={me} />;
    case 'tasks':
      return <TasksPage me={me} />;
    case 'workflows':
      return <WorkflowsPage />;
    case 'approvals':
      return <ApprovalsPage />;
  }
}
