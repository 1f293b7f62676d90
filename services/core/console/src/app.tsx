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
import { AuditPage } from './pages/audit.tsx';
import { ChatPage } from './pages/chat.tsx';
import { ConfigPage } from './pages/config.tsx';
import { ConversationsPage } from './pages/conversations.tsx';
import { KeysPage } from './pages/keys.tsx';
import { KnowledgePage } from './pages/knowledge.tsx';
import { ModelsPage } from './pages/models.tsx';
import { PairingPage } from './pages/pairing.tsx';
import { SignIn } from './pages/signin.tsx';
import { href, navigate, PAGES, pagesFor, type PageId, useLocation } from './router.ts';
import type { Me } from './types.ts';
import { ErrorBanner, Loading } from './ui.tsx';

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
        {!page ? (
          allowed.length === 0 ? (
            <ErrorBanner error={`The role ${me.role} has no pages in this console.`} />
          ) : (
            <Loading />
          )
        ) : !page.roles.includes(me.role) ? (
          <NotAllowed title={page.title} role={me.role} />
        ) : (
          <PageView id={page.id} rest={loc.rest} me={me} />
        )}
      </main>
    </div>
  );
}

function NotAllowed({ title, role }: { title: string; role: string }) {
  return (
    <section>
      <h1>Not allowed</h1>
      <div class="banner error" role="alert">
        You are not allowed to open {title}: a key with the role {role} cannot use it.
      </div>
    </section>
  );
}

function PageView({ id, rest, me }: { id: PageId; rest: string; me: Me }) {
  switch (id) {
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
  }
}
