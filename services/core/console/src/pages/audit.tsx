// The audit log: who did what (model calls, pairing decisions, key changes), filtered, and as CSV.
import { download, query } from '../api.ts';
import type { AuditEntry } from '../types.ts';
import {
  DateRange,
  ErrorBanner,
  Field,
  FilterForm,
  fmtMs,
  fmtNum,
  fmtTime,
  numeric,
  PageHeader,
  PagedTable,
  useAction,
  UserIdField,
  useFilters,
  usePages,
} from '../ui.tsx';

const NO_FILTERS = { from: '', to: '', user_id: '', kind: '', outcome: '' };

const KINDS = [
  'model.invoke',
  'pairing.approve',
  'pairing.deny',
  'key.create',
  'key.revoke',
  'knowledge.add',
  'knowledge.delete',
];

const outcomeTone = (o: string) =>
  o === 'ok' || o === 'complete' ? 'ok' : /fail|error|denied|invalid|refused/.test(o) ? 'bad' : 'warn';

export function AuditPage() {
  const filters = useFilters(NO_FILTERS);
  const exporting = useAction();
  const entries = usePages<AuditEntry>(
    (before) => `/api/v1/audit${query({ ...filters.applied, limit: 100, before })}`,
    [filters.applied],
  );

  const exportCsv = () =>
    exporting.run('export', () =>
      download(
        `/api/v1/audit${query({ ...filters.applied, format: 'csv', limit: 1000 })}`,
        `pincer-audit-${new Date().toISOString().slice(0, 10)}.csv`,
      ),
    );

  return (
    <section>
      <PageHeader title="Audit log">
        <button type="button" class="secondary" disabled={exporting.busy !== undefined} onClick={exportCsv}>
          {exporting.busy ? 'Exporting…' : 'Export CSV'}
        </button>
      </PageHeader>
      <FilterForm label="Filter the audit log" filters={filters}>
        <DateRange id="af" filters={filters} />
        <UserIdField id="af-user" filters={filters} />
        <Field id="af-kind" label="Kind">
          <input id="af-kind" list="audit-kinds" placeholder="model.invoke" {...filters.bind('kind')} />
          <datalist id="audit-kinds">
            {KINDS.map((k) => (
              <option key={k} value={k} />
            ))}
          </datalist>
        </Field>
        <Field id="af-outcome" label="Outcome">
          <input id="af-outcome" placeholder="ok" {...filters.bind('outcome')} />
        </Field>
      </FilterForm>
      <ErrorBanner error={exporting.error} onDismiss={exporting.dismiss} />
      <ErrorBanner error={entries.error} />
      <PagedTable
        list={entries}
        label="Audit entries"
        empty="No audit entries match."
        columns={[
          'When',
          'Kind',
          'Outcome',
          'Actor',
          numeric('User'),
          'Platform',
          'Model',
          numeric('Duration'),
          numeric('Tokens in / out'),
          'Detail',
        ]}
        row={(a) => (
          <tr key={a.id}>
            <td class="nowrap">{fmtTime(a.at)}</td>
            <td class="mono">{a.kind}</td>
            <td>
              <span class={`badge ${outcomeTone(a.outcome)}`}>{a.outcome}</span>
            </td>
            <td>{a.actor ?? '—'}</td>
            <td class="num">{a.user_id ?? '—'}</td>
            <td>{a.platform ?? '—'}</td>
            <td>{a.model ?? '—'}</td>
            <td class="num">{fmtMs(a.duration_ms)}</td>
            <td class="num nowrap">
              {fmtNum(a.prompt_tokens)} / {fmtNum(a.completion_tokens)}
            </td>
            <td class="mono small wrap">
              {a.detail ? JSON.stringify(a.detail) : ''}
              {a.content && <div class="muted">{a.content}</div>}
            </td>
          </tr>
        )}
      />
    </section>
  );
}
