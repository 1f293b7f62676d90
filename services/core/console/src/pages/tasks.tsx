// Reminders and recurring tasks: everyone's for admins and operators, the key's own for others; cancel them.
import { api, query } from '../api.ts';
import type { Me, Task, TaskStatus } from '../types.ts';
import {
  ACTIONS,
  ActionOutcome,
  ConfirmButton,
  Field,
  FilterForm,
  fmtTime,
  numeric,
  PageHeader,
  PagedTable,
  useAction,
  UserIdField,
  useFilters,
  usePages,
} from '../ui.tsx';

const STATUSES: TaskStatus[] = ['active', 'done', 'cancelled', 'failed'];
const NO_FILTERS = { status: 'active', user_id: '' };

const statusTone = (s: TaskStatus) => (s === 'active' ? 'ok' : s === 'failed' ? 'bad' : 'warn');

/** What a task does, in a few words. */
function what(t: Task): string {
  if (t.action === 'workflow') return `Run workflow ${t.workflow}`;
  return t.action === 'prompt' ? `Ask: ${t.text}` : `Remind: ${t.text}`;
}

function schedule(t: Task): string {
  return t.kind === 'once' ? `Once, ${fmtTime(t.run_at)}` : `${t.cron} (${t.timezone})`;
}

export function TasksPage({ me }: { me: Me }) {
  const everyone = me.role === 'admin' || me.role === 'operator';
  const filters = useFilters(NO_FILTERS);
  const tasks = usePages<Task>(
    (before) =>
      `/api/v1/tasks${query({ status: filters.applied.status, user_id: everyone ? filters.applied.user_id : undefined, limit: 100, before })}`,
    [filters.applied],
  );
  const action = useAction();

  async function cancel(t: Task) {
    await action.run(t.id, async () => {
      await api('DELETE', `/api/v1/tasks/${t.id}`);
      return `Cancelled: ${what(t)}.`;
    });
    tasks.reload();
  }

  return (
    <section>
      <PageHeader title="Scheduled tasks">
        <button type="button" class="secondary" onClick={tasks.reload}>
          Refresh
        </button>
      </PageHeader>
      <p class="muted">
        {everyone
          ? 'Reminders and recurring tasks of every user, and the schedules of workflows.yaml (made by config).'
          : 'Your reminders and recurring tasks.'}{' '}
        People make them in a chat ("remind me tomorrow at 9 …") and list or cancel them with /tasks.
      </p>
      <FilterForm label="Filter the tasks" filters={filters}>
        <Field id="tf-status" label="Status">
          <select id="tf-status" {...filters.bind('status')}>
            <option value="">Any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s[0]!.toUpperCase() + s.slice(1)}
              </option>
            ))}
          </select>
        </Field>
        {everyone && <UserIdField id="tf-user" filters={filters} />}
      </FilterForm>
      <ActionOutcome action={action} listError={tasks.error} />
      <PagedTable
        list={tasks}
        label="Scheduled tasks"
        empty="No tasks match."
        columns={[
          'Task',
          ...(everyone ? ['Owner'] : []),
          'Reports to',
          'Schedule',
          'Next run',
          numeric('Runs'),
          'Last run',
          'Status',
          ACTIONS,
        ]}
        row={(t) => (
          <tr key={t.id} class={t.status === 'active' ? '' : 'dim'}>
            <td class="wrap">
              {what(t)}
              {t.created_by === 'config' && <span class="badge">config</span>}
              <div class="muted small mono">{t.id.slice(0, 8)}</div>
            </td>
            {everyone && <td>{t.user_id === null ? '—' : `${t.user_name || 'User'} (#${t.user_id})`}</td>}
            <td>{t.platform ? `${t.platform} ${t.chat_id}` : '—'}</td>
            <td class="mono small">{schedule(t)}</td>
            <td class="nowrap">{fmtTime(t.next_run_at)}</td>
            <td class="num">{t.runs}</td>
            <td>
              {fmtTime(t.last_run_at)}
              {t.last_error && <div class="bad-text small">{t.last_error}</div>}
            </td>
            <td>
              <span class={`badge ${statusTone(t.status)}`}>{t.status}</span>
            </td>
            <td class="row-actions">
              {t.status === 'active' && t.created_by !== 'config' && (
                <ConfirmButton
                  label={`Cancel ${what(t)}`}
                  question={`Cancel this task? ${what(t)} — it will not run again.`}
                  onConfirm={() => void cancel(t)}
                >
                  Cancel
                </ConfirmButton>
              )}
            </td>
          </tr>
        )}
      />
    </section>
  );
}
