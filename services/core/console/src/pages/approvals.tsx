// Tool calls waiting for a yes (commands, REST calls the model wants to make): approve or deny them.
import { useState } from 'preact/hooks';
import { api, ApiError, query } from '../api.ts';
import type { Approval, ApprovalStatus } from '../types.ts';
import {
  ActionOutcome,
  type Decision,
  DecisionCells,
  fmtTime,
  Listing,
  PageHeader,
  Table,
  useAction,
  useInterval,
  useResource,
} from '../ui.tsx';

const STATUSES: ApprovalStatus[] = ['pending', 'approved', 'denied', 'expired'];
/** Pending calls wait for a short time only (tools.approval_timeout_s): look often. */
const POLL_MS = 3000;

export function ApprovalsPage() {
  const [status, setStatus] = useState<ApprovalStatus>('pending');
  const list = useResource(
    (signal) => api<{ data: Approval[] }>('GET', `/api/v1/approvals${query({ status })}`, undefined, signal),
    [status],
  );
  const pending = status === 'pending';
  useInterval(list.reload, pending ? POLL_MS : null);
  const action = useAction();

  async function decide(a: Approval, d: Decision) {
    await action.run(a.id, async () => {
      try {
        await api('POST', `/api/v1/approvals/${a.id}/${d.decision}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 409)
          throw new Error(`That call is no longer waiting: ${err.message}`, { cause: err });
        throw err;
      }
      return `${a.tool} was ${d.done}: ${a.summary}`;
    });
    list.reload();
  }

  const rows = list.data?.data ?? [];
  return (
    <section>
      <PageHeader title="Approvals">
        <label for="approvals-status" class="inline">
          Status
        </label>
        <select
          id="approvals-status"
          value={status}
          onChange={(e) => setStatus(e.currentTarget.value as ApprovalStatus)}
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
        Tool calls that need a yes before they run. A call asked of an operator waits here; one asked of the
        user can be answered by them in their chat or here. Unanswered calls expire and count as no.
      </p>
      <ActionOutcome action={action} listError={list.error} />
      <Listing
        loading={list.loading && !list.data}
        error={list.error}
        count={rows.length}
        empty={`No ${status} tool calls.`}
      >
        <Table
          label={`${status} approvals`}
          columns={[
            'Tool',
            'Call',
            'Asked of',
            'User',
            'Chat',
            'Asked',
            pending ? 'Expires' : 'Decided',
            ...(pending ? ['Decision'] : []),
          ]}
        >
          {rows.map((a) => (
            <tr key={a.id}>
              <td class="mono">{a.tool}</td>
              <td class="wrap">{a.summary}</td>
              <td>{a.requested_of}</td>
              <td>{a.user_id === null ? '—' : `${a.user_name || 'User'} (#${a.user_id})`}</td>
              <td>{a.platform ? `${a.platform} ${a.chat_id ?? ''}` : '—'}</td>
              <td class="nowrap">{fmtTime(a.created_at)}</td>
              <DecisionCells
                pending={pending}
                request={a}
                what={`${a.tool}: ${a.summary}`}
                busy={action.busy === a.id}
                cellClass="nowrap"
                onDecide={(d) => decide(a, d)}
              />
            </tr>
          ))}
        </Table>
      </Listing>
    </section>
  );
}
