// The workflows of workflows.yaml: their steps and schedules, a Run button, and recent runs step by step.
import { useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import type { RunStatus, Workflow, WorkflowRun, WorkflowStep } from '../types.ts';
import {
  ActionOutcome,
  Field,
  FilterForm,
  fmtMs,
  fmtTime,
  Listing,
  PageHeader,
  PagedTable,
  useAction,
  useFilters,
  useInterval,
  usePages,
  useResource,
} from '../ui.tsx';

const RUN_STATUSES: RunStatus[] = ['queued', 'running', 'succeeded', 'failed'];
const NO_FILTERS = { workflow: '', status: '' };

const tone = (s: string) => (s === 'ok' || s === 'succeeded' ? 'ok' : s === 'failed' ? 'bad' : 'warn');

export function WorkflowsPage() {
  const workflows = useResource(
    (signal) => api<{ data: Workflow[] }>('GET', '/api/v1/workflows', undefined, signal),
    [],
  );
  const filters = useFilters(NO_FILTERS);
  const runs = usePages<WorkflowRun>(
    (before) => `/api/v1/workflows/runs${query({ ...filters.applied, limit: 50, before })}`,
    [filters.applied],
  );
  const action = useAction();
  // runs in flight change by themselves: look again while there are any
  const inFlight = runs.rows.some((r) => r.status === 'queued' || r.status === 'running');
  useInterval(runs.reload, inFlight ? 3000 : null);

  const list = workflows.data?.data ?? [];
  return (
    <section>
      <PageHeader title="Workflows">
        <button type="button" class="secondary" onClick={workflows.reload}>
          Refresh
        </button>
      </PageHeader>
      <p class="muted">
        Defined in workflows.yaml. A run is started by its schedule, a routing rule, or the Run button here.
      </p>
      <ActionOutcome action={action} listError={workflows.error} />
      <Listing
        loading={workflows.loading && !workflows.data}
        error={workflows.error}
        count={list.length}
        empty="No workflows: define them in workflows.yaml in the config folder."
      >
        {list.map((w) => (
          <WorkflowCard
            key={w.name}
            w={w}
            busy={action.busy === w.name}
            onRun={(input) =>
              action.run(w.name, async () => {
                const run = await api<WorkflowRun>(
                  'POST',
                  `/api/v1/workflows/${encodeURIComponent(w.name)}/run`,
                  {
                    input,
                    wait: true,
                  },
                );
                runs.reload();
                if (run.status === 'succeeded') return `${w.name}: run ${run.id.slice(0, 8)} succeeded.`;
                if (run.status === 'failed')
                  throw new Error(
                    `${w.name}: run ${run.id.slice(0, 8)} failed — ${run.error ?? 'see its steps'}.`,
                  );
                return `${w.name}: run ${run.id.slice(0, 8)} is ${run.status}; it shows below when it ends.`;
              })
            }
          />
        ))}
      </Listing>

      <h2>Recent runs</h2>
      <FilterForm label="Filter the runs" filters={filters}>
        <Field id="rf-workflow" label="Workflow">
          <select id="rf-workflow" {...filters.bind('workflow')}>
            <option value="">Any</option>
            {list.map((w) => (
              <option key={w.name} value={w.name}>
                {w.name}
              </option>
            ))}
          </select>
        </Field>
        <Field id="rf-status" label="Status">
          <select id="rf-status" {...filters.bind('status')}>
            <option value="">Any</option>
            {RUN_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </Field>
      </FilterForm>
      <PagedTable
        list={runs}
        label="Workflow runs"
        empty="No runs yet."
        columns={['Started', 'Workflow', 'Trigger', 'By', 'Status', 'Steps', 'Took']}
        row={(r) => (
          <tr key={r.id}>
            <td class="nowrap">
              {fmtTime(r.created_at)}
              <div class="muted small mono">{r.id.slice(0, 8)}</div>
            </td>
            <td>{r.workflow}</td>
            <td>{r.trigger}</td>
            <td>{r.started_by}</td>
            <td>
              <span class={`badge ${tone(r.status)}`}>{r.status}</span>
              {r.error && <div class="bad-text small">{r.error}</div>}
            </td>
            <td class="wrap">
              <ol class="plain-list">
                {r.steps.map((s) => (
                  <li key={s.id}>
                    <details>
                      <summary>
                        <span class="mono">{s.id}</span> {s.kind}{' '}
                        <span class={`badge ${tone(s.status)}`}>{s.status}</span>{' '}
                        <span class="muted small">{fmtMs(s.duration_ms)}</span>
                      </summary>
                      {s.error && <p class="bad-text small">{s.error}</p>}
                      {s.output && <pre class="json">{s.output}</pre>}
                    </details>
                  </li>
                ))}
              </ol>
            </td>
            <td class="num nowrap">
              {r.started_at && r.finished_at
                ? fmtMs(new Date(r.finished_at).getTime() - new Date(r.started_at).getTime())
                : '—'}
            </td>
          </tr>
        )}
      />
    </section>
  );
}

function describeStep(s: WorkflowStep): string {
  if (s.kind === 'tool') return `${s.tool} ${JSON.stringify(s.args ?? {})}`;
  if (s.kind === 'prompt') return `${s.model ? `[${s.model}] ` : ''}${s.prompt}`;
  const to = s.to ? `${s.to.platform} ${s.to.chat_id}` : 'the chat that started it';
  return `to ${to}: ${s.message}`;
}

function WorkflowCard(props: {
  w: Workflow;
  busy: boolean;
  onRun: (input: Record<string, unknown>) => Promise<void>;
}) {
  const { w } = props;
  const [input, setInput] = useState('');
  const [invalid, setInvalid] = useState<string>();
  const id = `wf-${w.name}`;

  function run(e: Event) {
    e.preventDefault();
    let parsed: unknown = {};
    if (input.trim()) {
      try {
        parsed = JSON.parse(input);
      } catch {
        setInvalid('The input is not valid JSON.');
        return;
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
        setInvalid('The input must be a JSON object, e.g. {"city": "Berlin"}.');
        return;
      }
    }
    setInvalid(undefined);
    void props.onRun(parsed as Record<string, unknown>);
  }

  return (
    <article class="card workflow" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{w.name}</h2>
      {w.description && <p>{w.description}</p>}
      <p class="muted small">
        Runs as {w.role}
        {w.schedule
          ? ` · schedule ${w.schedule.cron} (${w.schedule.timezone}) · next ${fmtTime(w.next_run_at)}`
          : ' · no schedule'}
      </p>
      <ol>
        {w.steps.map((s) => (
          <li key={s.id}>
            <span class="mono">{s.id}</span> <strong>{s.kind}</strong>{' '}
            <span class="wrap">{describeStep(s)}</span>
            {s.on_error === 'continue' && <span class="badge">continues on error</span>}
          </li>
        ))}
      </ol>
      <form class="filters" onSubmit={run} aria-label={`Run ${w.name}`}>
        <Field id={`${id}-input`} label="Input (JSON object, optional)" grow>
          <textarea
            id={`${id}-input`}
            rows={2}
            placeholder='{"text": "…"}'
            value={input}
            aria-invalid={invalid ? true : undefined}
            onInput={(e) => setInput(e.currentTarget.value)}
          />
        </Field>
        <div class="field buttons">
          <button type="submit" disabled={props.busy}>
            {props.busy ? 'Running…' : 'Run'}
          </button>
        </div>
      </form>
      {invalid && (
        <p class="bad-text small" role="alert">
          {invalid}
        </p>
      )}
    </article>
  );
}
