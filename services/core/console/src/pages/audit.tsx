// The audit log: who did what (model calls, pairing decisions, key changes), filtered, and as CSV.
import { useState } from 'preact/hooks';
import { api, download, query } from '../api.ts';
import type { AuditEntry, Page } from '../types.ts';
import {
  Empty,
  ErrorBanner,
  fmtMs,
  fmtNum,
  fmtTime,
  Loading,
  LoadMore,
  PageHeader,
  Table,
  usePaged,
} from '../ui.tsx';

interface Filters {
  from: string;
  to: string;
  user_id: string;
  kind: string;
  outcome: string;
}

const NO_FILTERS: Filters = { from: '', to: '', user_id: '', kind: '', outcome: '' };

const outcomeTone = (o: string) =>
  o === 'ok' || o === 'complete' ? 'ok' : /fail|error|denied|invalid|refused/.test(o) ? 'bad' : 'warn';

export function AuditPage() {
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [exporting, setExporting] = useState(false);
  const [exportError, setExportError] = useState<unknown>();
  const entries = usePaged(
    async (before, signal) => {
      const page = await api<Page<AuditEntry>>(
        'GET',
        `/api/v1/audit${query({ ...filters, limit: 100, before })}`,
        undefined,
        signal,
      );
      return { data: page.data, next: page.next_cursor };
    },
    [filters],
  );

  async function exportCsv() {
    setExporting(true);
    setExportError(undefined);
    try {
      const day = new Date().toISOString().slice(0, 10);
      await download(
        `/api/v1/audit${query({ ...filters, format: 'csv', limit: 1000 })}`,
        `pincer-audit-${day}.csv`,
      );
    } catch (err) {
      setExportError(err);
    } finally {
      setExporting(false);
    }
  }

  const field = (k: keyof Filters) => ({
    value: draft[k],
    onInput: (e: Event) => setDraft({ ...draft, [k]: (e.currentTarget as HTMLInputElement).value }),
  });

  return (
    <section>
      <PageHeader title="Audit log">
        <button type="button" class="secondary" disabled={exporting} onClick={exportCsv}>
          {exporting ? 'Exporting…' : 'Export CSV'}
        </button>
      </PageHeader>
      <form
        class="filters"
        aria-label="Filter the audit log"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters({ ...draft });
        }}
      >
        <div class="field">
          <label for="af-from">From</label>
          <input id="af-from" type="date" {...field('from')} />
        </div>
        <div class="field">
          <label for="af-to">To</label>
          <input id="af-to" type="date" {...field('to')} />
        </div>
        <div class="field">
          <label for="af-user">User id</label>
          <input id="af-user" type="number" min={1} inputMode="numeric" {...field('user_id')} />
        </div>
        <div class="field">
          <label for="af-kind">Kind</label>
          <input id="af-kind" list="audit-kinds" placeholder="model.invoke" {...field('kind')} />
          <datalist id="audit-kinds">
            {[
              'model.invoke',
              'pairing.approve',
              'pairing.deny',
              'key.create',
              'key.revoke',
              'knowledge.add',
              'knowledge.delete',
            ].map((k) => (
              <option key={k} value={k} />
            ))}
          </datalist>
        </div>
        <div class="field">
          <label for="af-outcome">Outcome</label>
          <input id="af-outcome" placeholder="ok" {...field('outcome')} />
        </div>
        <div class="field buttons">
          <button type="submit">Search</button>
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setDraft(NO_FILTERS);
              setFilters(NO_FILTERS);
            }}
          >
            Clear
          </button>
        </div>
      </form>
      <ErrorBanner error={exportError} onDismiss={() => setExportError(undefined)} />
      <ErrorBanner error={entries.error} />
      {entries.loading ? (
        <Loading />
      ) : entries.rows.length === 0 ? (
        !entries.error && <Empty>No audit entries match.</Empty>
      ) : (
        <>
          <Table label="Audit entries">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Kind</th>
                <th scope="col">Outcome</th>
                <th scope="col">Actor</th>
                <th scope="col" class="num">
                  User
                </th>
                <th scope="col">Platform</th>
                <th scope="col">Model</th>
                <th scope="col" class="num">
                  Duration
                </th>
                <th scope="col" class="num">
                  Tokens in / out
                </th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {entries.rows.map((a) => (
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
              ))}
            </tbody>
          </Table>
          <LoadMore list={entries} />
        </>
      )}
    </section>
  );
}
