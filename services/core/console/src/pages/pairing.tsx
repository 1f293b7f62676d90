// People who asked to talk to the bot (direct chats that need approval): approve or deny them.
import { useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import type { PairingRequest } from '../types.ts';
import { Empty, ErrorBanner, fmtTime, Loading, Notice, PageHeader, Table, useResource } from '../ui.tsx';

const STATUSES = ['pending', 'approved', 'denied', 'expired'] as const;

export function PairingPage() {
  const [status, setStatus] = useState<(typeof STATUSES)[number]>('pending');
  const list = useResource(
    (signal) =>
      api<{ data: PairingRequest[] }>(
        'GET',
        `/api/v1/pairing${query({ status, limit: 200 })}`,
        undefined,
        signal,
      ),
    [status],
  );
  const [busy, setBusy] = useState<string>();
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState<string>();

  async function decide(r: PairingRequest, decision: 'approve' | 'deny') {
    setBusy(r.id);
    setError(undefined);
    setDone(undefined);
    try {
      await api('POST', `/api/v1/pairing/${r.id}/${decision}`);
      setDone(`${r.display_name} (${r.platform}) was ${decision === 'approve' ? 'approved' : 'denied'}.`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(undefined);
      list.reload();
    }
  }

  const rows = list.data?.data ?? [];
  return (
    <section>
      <PageHeader title="Pairing requests">
        <label for="pairing-status" class="inline">
          Status
        </label>
        <select
          id="pairing-status"
          value={status}
          onChange={(e) => setStatus(e.currentTarget.value as (typeof STATUSES)[number])}
        >
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s[0]!.toUpperCase() + s.slice(1)}
            </option>
          ))}
        </select>
        <button type="button" class="secondary" onClick={list.reload}>
          Refresh
        </button>
      </PageHeader>
      <p class="muted">
        Someone who writes to the bot in a direct chat that needs approval gets a code. Check the code they
        tell you, then approve them.
      </p>
      {done && <Notice tone="ok">{done}</Notice>}
      <ErrorBanner error={error ?? list.error} onDismiss={error ? () => setError(undefined) : undefined} />
      {list.loading && !list.data ? (
        <Loading />
      ) : rows.length === 0 ? (
        !list.error && <Empty>No {status} pairing requests.</Empty>
      ) : (
        <Table label={`${status} pairing requests`}>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Platform</th>
              <th scope="col">Platform id</th>
              <th scope="col">Code</th>
              <th scope="col">Asked</th>
              <th scope="col">{status === 'pending' ? 'Expires' : 'Decided'}</th>
              {status === 'pending' && <th scope="col">Decision</th>}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id}>
                <td>{r.display_name}</td>
                <td>{r.platform}</td>
                <td class="mono">{r.external_id}</td>
                <td class="mono">
                  <strong>{r.code}</strong>
                </td>
                <td>{fmtTime(r.created_at)}</td>
                <td>
                  {status === 'pending'
                    ? fmtTime(r.expires_at)
                    : r.decided_at
                      ? `${fmtTime(r.decided_at)}${r.decided_by ? ` by ${r.decided_by}` : ''}`
                      : '—'}
                </td>
                {status === 'pending' && (
                  <td class="row-actions">
                    <button
                      type="button"
                      disabled={busy === r.id}
                      aria-label={`Approve ${r.display_name} (code ${r.code})`}
                      onClick={() => decide(r, 'approve')}
                    >
                      Approve
                    </button>
                    <button
                      type="button"
                      class="secondary"
                      disabled={busy === r.id}
                      aria-label={`Deny ${r.display_name} (code ${r.code})`}
                      onClick={() => decide(r, 'deny')}
                    >
                      Deny
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </Table>
      )}
    </section>
  );
}
