// The configuration core runs with: routing rules and settings; an admin validates and reloads it.
import { useState } from 'preact/hooks';
import { api, ApiError } from '../api.ts';
import type { ConfigProblem, ConfigView, Me, ValidateResult } from '../types.ts';
import {
  Empty,
  ErrorBanner,
  Facts,
  fmtTime,
  Loading,
  Notice,
  numeric,
  PageHeader,
  Table,
  useAction,
  useResource,
} from '../ui.tsx';

type Outcome =
  | { kind: 'validated'; result: ValidateResult }
  | { kind: 'reloaded'; changes: string[]; restart_required: string[] }
  | { kind: 'invalid'; message: string; problems: ConfigProblem[] };

export function ConfigPage({ me }: { me: Me }) {
  const config = useResource((signal) => api<ConfigView>('GET', '/api/v1/config', undefined, signal), []);
  const [outcome, setOutcome] = useState<Outcome>();
  const action = useAction();
  const busy = action.busy;
  const canChange = me.role === 'admin';

  async function check(what: 'validate' | 'reload'): Promise<Outcome> {
    if (what === 'validate')
      return { kind: 'validated', result: await api<ValidateResult>('POST', '/api/v1/config/validate') };
    const r = await api<{ changes: string[]; restart_required: string[] }>('POST', '/api/v1/config/reload');
    config.reload();
    return { kind: 'reloaded', changes: r.changes ?? [], restart_required: r.restart_required ?? [] };
  }

  const run = (what: 'validate' | 'reload') =>
    action.run(what, async () => {
      setOutcome(undefined);
      try {
        setOutcome(await check(what));
      } catch (err) {
        // 422 config_invalid lists the problems next to the error
        const problems =
          err instanceof ApiError && (err.body as { problems?: unknown } | undefined)?.problems;
        if (!Array.isArray(problems)) throw err;
        setOutcome({ kind: 'invalid', message: (err as ApiError).message, problems });
      }
    });

  const c = config.data;
  return (
    <section>
      <PageHeader title="Configuration">
        {canChange && (
          <>
            <button
              type="button"
              class="secondary"
              disabled={busy !== undefined}
              onClick={() => run('validate')}
            >
              {busy === 'validate' ? 'Validating…' : 'Validate'}
            </button>
            <button type="button" disabled={busy !== undefined} onClick={() => run('reload')}>
              {busy === 'reload' ? 'Reloading…' : 'Reload'}
            </button>
          </>
        )}
      </PageHeader>
      {!canChange && <p class="muted">Read only: only an admin can validate or reload the configuration.</p>}
      {canChange && (
        <p class="muted">
          Validate checks the files on disk without applying them; Reload applies them if they are valid.
        </p>
      )}
      <ErrorBanner error={action.error} onDismiss={action.dismiss} />
      {outcome && <OutcomeView outcome={outcome} />}
      <ErrorBanner error={config.error} />
      {!c ? (
        config.loading && <Loading />
      ) : (
        <>
          <Facts
            kind="summary"
            facts={{ Loaded: fmtTime(c.loaded_at), From: <span class="mono">{c.source.dir}</span> }}
          />
          <h2>Routing rules</h2>
          {c.routes.length === 0 ? (
            <Empty>No routing rules.</Empty>
          ) : (
            <Table
              label="Routing rules"
              columns={[numeric('#'), 'Match', 'Action', 'Model', 'System prompt', 'Knowledge']}
            >
              {c.routes.map((r) => (
                <tr key={r.index}>
                  <td class="num">{r.index}</td>
                  <td class="mono small wrap">
                    {r.match ? describeMatch(r.match) || 'any message' : 'default (everything else)'}
                  </td>
                  <td class="mono">{r.action}</td>
                  <td>{r.model ?? '—'}</td>
                  <td class="wrap small" title={r.system_prompt ?? undefined}>
                    {r.system_prompt === null ? (
                      <span class="muted">default</span>
                    ) : r.system_prompt.length > 120 ? (
                      `${r.system_prompt.slice(0, 120)}…`
                    ) : (
                      r.system_prompt
                    )}
                  </td>
                  <td>{r.knowledge ? 'yes' : 'no'}</td>
                </tr>
              ))}
            </Table>
          )}
          <h2>Settings</h2>
          <pre class="json" tabIndex={0} aria-label="Settings">
            {JSON.stringify(c.settings, null, 2)}
          </pre>
        </>
      )}
    </section>
  );
}

function describeMatch(m: Record<string, unknown>): string {
  return Object.entries(m)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(
      ([k, v]) =>
        `${k}: ${Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v)}`,
    )
    .join(' · ');
}

const where = (p: ConfigProblem) =>
  p.file ? `${p.file}${p.line !== undefined ? `:${p.line}` : ''}` : p.path;

function Problems({ problems }: { problems: ConfigProblem[] }) {
  return (
    <ul class="problems">
      {problems.map((p, i) => (
        <li key={i}>
          <span class="mono">{where(p)}</span>
          {p.file && p.path && <span class="mono muted"> ({p.path})</span>}: {p.message}
        </li>
      ))}
    </ul>
  );
}

function Changes({ changes, restart }: { changes: string[]; restart: string[] }) {
  return (
    <>
      {changes.length ? (
        <>
          <p>Changes from what is running:</p>
          <ul>
            {changes.map((c) => (
              <li key={c}>{c}</li>
            ))}
          </ul>
        </>
      ) : (
        <p>No changes from what is running.</p>
      )}
      {restart.length > 0 && (
        <p>
          <strong>Needs a restart to take effect:</strong> {restart.join(', ')}
        </p>
      )}
    </>
  );
}

function OutcomeView({ outcome }: { outcome: Outcome }) {
  if (outcome.kind === 'invalid')
    return (
      <Notice tone="error">
        <div>
          <strong>Not reloaded: {outcome.message}</strong>
          <Problems problems={outcome.problems} />
        </div>
      </Notice>
    );
  if (outcome.kind === 'reloaded')
    return (
      <Notice tone="ok">
        <div>
          <strong>Reloaded.</strong>
          <Changes changes={outcome.changes} restart={outcome.restart_required} />
        </div>
      </Notice>
    );
  const r = outcome.result;
  if (!r.ok)
    return (
      <Notice tone="error">
        <div>
          <strong>The configuration on disk has {r.problems.length} problem(s).</strong>
          <Problems problems={r.problems} />
        </div>
      </Notice>
    );
  return (
    <Notice tone="ok">
      <div>
        <strong>The configuration on disk is valid.</strong>
        <Changes changes={r.changes} restart={r.restart_required} />
      </div>
    </Notice>
  );
}
