import { useState } from 'preact/hooks';
import { whoIs } from '../api.ts';
import type { Me } from '../types.ts';
import { ErrorBanner, Notice } from '../ui.tsx';

export function SignIn(props: {
  notice?: string;
  error?: unknown;
  onSignedIn(me: Me, token: string, remember: boolean): void;
}) {
  const [token, setToken] = useState('');
  const [remember, setRemember] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(props.error);

  async function submit(e: Event) {
    e.preventDefault();
    const t = token.trim();
    if (!t) return setError('Paste the admin token or an API key.');
    setBusy(true);
    setError(undefined);
    try {
      props.onSignedIn(await whoIs(t), t, remember);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return (
    <main class="signin">
      <form class="card" onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Pincer console</h1>
        <p class="muted">Sign in with the admin token (PINCER_ADMIN_TOKEN) or an API key.</p>
        {props.notice && !error && <Notice>{props.notice}</Notice>}
        <ErrorBanner error={error} />
        <label for="token">Admin token or API key</label>
        <input
          id="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
          required
        />
        <label class="check">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.currentTarget.checked)} />
          Remember on this device
        </label>
        <p class="hint">
          Otherwise the key is forgotten when this tab closes. Only tick this on a device you alone use.
        </p>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
