// API keys (create, revoke) and the users Pincer knows, with their platform identities. Admin only.
import { useRef, useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import type { ApiKey, Me, NewApiKey, Role, User } from '../types.ts';
import {
  ACTIONS,
  ActionOutcome,
  ConfirmButton,
  ErrorBanner,
  Field,
  fmtTime,
  Listing,
  numeric,
  PageHeader,
  PagedTable,
  Table,
  useAction,
  usePages,
  useResource,
} from '../ui.tsx';

const ROLES: { role: Role; what: string }[] = [
  { role: 'user', what: 'chat and its own conversations' },
  { role: 'auditor', what: 'conversations and the audit log' },
  { role: 'operator', what: 'chat, conversations, users, pairing, models, knowledge base' },
  { role: 'admin', what: 'everything, keys included' },
];

export function KeysPage({ me }: { me: Me }) {
  return (
    <section>
      <PageHeader title="Users & keys" />
      <Keys me={me} />
      <Users />
    </section>
  );
}

function Keys({ me }: { me: Me }) {
  const keys = useResource((signal) => api<{ data: ApiKey[] }>('GET', '/api/v1/keys', undefined, signal), []);
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('user');
  const [created, setCreated] = useState<NewApiKey>();
  const action = useAction();
  const creating = action.busy === 'create';

  function create(e: Event) {
    e.preventDefault();
    void action.run('create', async () => {
      setCreated(await api<NewApiKey>('POST', '/api/v1/keys', { name: name.trim(), role }));
      setName('');
      keys.reload();
    });
  }

  async function revoke(k: ApiKey) {
    await action.run(`revoke ${k.id}`, async () => {
      await api('DELETE', `/api/v1/keys/${k.id}`);
      if (created?.id === k.id) setCreated(undefined);
      return `The key "${k.name}" is revoked.`;
    });
    keys.reload();
  }

  const rows = keys.data?.data ?? [];
  return (
    <>
      <h2>API keys</h2>
      <form class="filters" onSubmit={create} aria-label="Create an API key">
        <Field id="key-name" label="Name" grow>
          <input
            id="key-name"
            required
            maxLength={100}
            placeholder="Who or what uses it (shown in the audit log)"
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </Field>
        <Field id="key-role" label="Role">
          <select id="key-role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
            {ROLES.map((r) => (
              <option key={r.role} value={r.role}>
                {r.role} — {r.what}
              </option>
            ))}
          </select>
        </Field>
        <div class="field buttons">
          <button type="submit" disabled={creating || !name.trim()}>
            {creating ? 'Creating…' : 'Create key'}
          </button>
        </div>
      </form>
      {created && <NewKey k={created} onDone={() => setCreated(undefined)} />}
      <ActionOutcome action={action} listError={keys.error} />
      <Listing
        loading={keys.loading && !keys.data}
        error={keys.error}
        count={rows.length}
        empty="No API keys yet: create one for each person or program that needs access."
      >
        <Table label="API keys" columns={['Name', 'Role', 'Created', 'Last used', 'Status', ACTIONS]}>
          {rows.map((k) => (
            <tr key={k.id} class={k.revoked_at ? 'dim' : ''}>
              <td>
                {k.name}
                {k.id === me.id && <span class="badge">this key</span>}
              </td>
              <td>
                <span class={`role role-${k.role}`}>{k.role}</span>
              </td>
              <td>{fmtTime(k.created_at)}</td>
              <td>{fmtTime(k.last_used_at)}</td>
              <td>{k.revoked_at ? `Revoked ${fmtTime(k.revoked_at)}` : 'Active'}</td>
              <td class="row-actions">
                {!k.revoked_at && (
                  <ConfirmButton
                    label={`Revoke ${k.name}`}
                    question={`Revoke the key "${k.name}" (${k.role})? Anything using it stops working at once.`}
                    onConfirm={() => void revoke(k)}
                  >
                    Revoke
                  </ConfirmButton>
                )}
              </td>
            </tr>
          ))}
        </Table>
      </Listing>
    </>
  );
}

/** The secret, shown this once: Pincer keeps only its hash. */
function NewKey({ k, onDone }: { k: NewApiKey; onDone: () => void }) {
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<string>();

  async function copy() {
    try {
      await navigator.clipboard.writeText(k.key);
      setCopied('Copied.');
    } catch {
      // no clipboard API outside secure contexts (plain http on a LAN address): select it instead
      input.current?.select();
      setCopied('Select all and copy it by hand (Ctrl+C or ⌘C).');
    }
  }

  return (
    <div class="secret" role="region" aria-labelledby="secret-title">
      <h3 id="secret-title">
        New {k.role} key “{k.name}”
      </h3>
      <p>
        <strong>Copy it now: you will not see it again.</strong> Pincer keeps only a hash of it.
      </p>
      <div class="secret-row">
        <label for="new-key" class="visually-hidden">
          New API key
        </label>
        <input
          id="new-key"
          ref={input}
          class="mono"
          readOnly
          value={k.key}
          onFocus={(e) => e.currentTarget.select()}
        />
        <button type="button" onClick={copy}>
          Copy
        </button>
      </div>
      {copied && (
        <p class="small" role="status">
          {copied}
        </p>
      )}
      <button type="button" class="secondary" onClick={onDone}>
        I have saved it
      </button>
    </div>
  );
}

function Users() {
  const users = usePages<User>((before) => `/api/v1/users${query({ limit: 50, before })}`, []);
  return (
    <>
      <h2>Users</h2>
      <ErrorBanner error={users.error} />
      <PagedTable
        list={users}
        label="Users"
        empty="No users yet."
        columns={[numeric('Id'), 'Name', 'Identities', 'Since']}
        row={(u) => (
          <tr key={u.id}>
            <td class="num">{u.id}</td>
            <td>{u.display_name}</td>
            <td>
              <ul class="plain-list">
                {u.identities.map((i) => (
                  <li key={`${i.platform}:${i.external_id}`}>
                    <span class="badge">{i.platform}</span> <span class="mono">{i.external_id}</span>
                    {i.username && <span class="muted"> @{i.username}</span>}
                    {!i.approved && i.platform !== 'api' && <span class="badge warn">not approved</span>}
                  </li>
                ))}
              </ul>
            </td>
            <td>{fmtTime(u.created_at)}</td>
          </tr>
        )}
      />
    </>
  );
}
