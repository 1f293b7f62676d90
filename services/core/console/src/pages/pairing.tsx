// People who asked to talk to the bot (direct chats that need approval): approve or deny them.
import { useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import type { PairingRequest } from '../types.ts';
import {
  ActionOutcome,
  type Decision,
  DecisionCells,
  fmtTime,
  Listing,
  PageHeader,
  Table,
  useAction,
  useResource,
} from '../ui.tsx';

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
  const action = useAction();

  async function decide(r: PairingRequest, d: Decision) {
    await action.run(r.id, async () => {
      await api('POST', `/api/v1/pairing/${r.id}/${d.decision}`);
      return `${r.display_name} (${r.platform}) was ${d.done}.`;
    });
    list.reload();
  }

  const rows = list.data?.data ?? [];
  const pending = status === 'pending';
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
      <ActionOutcome action={action} listError={list.error} />
      <Listing
        loading={list.loading && !list.data}
        error={list.error}
        count={rows.length}
        empty={`No ${status} pairing requests.`}
      >
        <Table
          label={`${status} pairing requests`}
          columns={[
            'Name',
            'Platform',
            'Platform id',
            'Code',
            'Asked',
            pending ? 'Expires' : 'Decided',
            ...(pending ? ['Decision'] : []),
          ]}
        >
          {rows.map((r) => (
            <tr key={r.id}>
              <td>{r.display_name}</td>
              <td>{r.platform}</td>
              <td class="mono">{r.external_id}</td>
              <td class="mono">
                <strong>{r.code}</strong>
              </td>
              <td>{fmtTime(r.created_at)}</td>
              <DecisionCells
                pending={pending}
                request={r}
                what={`${r.display_name} (code ${r.code})`}
                busy={action.busy === r.id}
                onDecide={(d) => decide(r, d)}
              />
            </tr>
          ))}
        </Table>
      </Listing>
    </section>
  );
}
