// The models llm-proxy serves and the health of every upstream node, refreshed while the page is open.
import { api } from '../api.ts';
import type { ModelList, UpstreamNode } from '../types.ts';
import {
  Empty,
  ErrorBanner,
  fmtMs,
  fmtNum,
  Loading,
  Notice,
  numeric,
  PageHeader,
  Table,
  useInterval,
  useResource,
} from '../ui.tsx';

const REFRESH_MS = 5000;

export function ModelsPage() {
  const models = useResource((signal) => api<ModelList>('GET', '/api/v1/models', undefined, signal), []);
  useInterval(models.reload, REFRESH_MS);
  const d = models.data;

  return (
    <section>
      <PageHeader title="Models">
        <span class="muted small" aria-live="polite">
          {models.loading && d ? 'Refreshing…' : `Refreshes every ${REFRESH_MS / 1000} s`}
        </span>
        <button type="button" class="secondary" onClick={models.reload}>
          Refresh
        </button>
      </PageHeader>
      <ErrorBanner error={models.error} />
      {d?.proxy_error && <Notice tone="error">llm-proxy did not answer: {d.proxy_error}</Notice>}
      {!d ? (
        models.loading && <Loading />
      ) : (
        <>
          <h2>Registry</h2>
          {d.data.length === 0 ? (
            <Empty>No models are configured (config/models.yml).</Empty>
          ) : (
            <Table
              label="Models"
              columns={[
                'Model',
                'Provider',
                numeric('Context'),
                numeric('Max output'),
                'Capabilities',
                'Aliases',
                'Fallbacks',
              ]}
            >
              {d.data.map((m) => (
                <tr key={m.id}>
                  <td>
                    <strong>{m.id}</strong>
                    {m.name && m.name !== m.id && <span class="muted"> {m.name}</span>}
                    {m.default && <span class="badge ok">default</span>}
                  </td>
                  <td>{m.provider}</td>
                  <td class="num">{fmtNum(m.context_window)}</td>
                  <td class="num">{fmtNum(m.max_tokens)}</td>
                  <td>{m.capabilities.join(', ') || '—'}</td>
                  <td>{m.aliases.join(', ') || '—'}</td>
                  <td>{m.fallbacks.join(' → ') || '—'}</td>
                </tr>
              ))}
            </Table>
          )}
          <h2>Upstreams</h2>
          {d.upstreams === null ? (
            <Empty>Upstream health is not available right now.</Empty>
          ) : d.upstreams.length === 0 ? (
            <Empty>No upstreams.</Empty>
          ) : (
            d.upstreams.map((u) => (
              <div key={u.id} class="upstream">
                <h3>{u.id}</h3>
                <Nodes provider={u.id} nodes={u.nodes} />
              </div>
            ))
          )}
        </>
      )}
    </section>
  );
}

function Nodes({ provider, nodes }: { provider: string; nodes: UpstreamNode[] }) {
  if (!nodes.length) return <Empty>No nodes.</Empty>;
  return (
    <Table
      label={`Nodes of ${provider}`}
      columns={[
        'Node',
        'Probe',
        'Breaker',
        numeric('In flight'),
        numeric('Requests'),
        numeric('Latency'),
        numeric('Failures in a row'),
        'Last error',
      ]}
    >
      {nodes.map((n) => (
        <tr key={n.id}>
          <td>
            <strong>{n.id}</strong>
            <div class="muted small mono">{n.url}</div>
          </td>
          <td>
            <span class={`badge ${n.probe === 'up' ? 'ok' : n.probe === 'down' ? 'bad' : ''}`}>
              {n.probe}
            </span>
          </td>
          <td>
            <span class={`badge ${n.breaker === 'closed' ? 'ok' : n.breaker === 'open' ? 'bad' : 'warn'}`}>
              {n.breaker.replace('_', ' ')}
            </span>
          </td>
          <td class="num">
            {n.in_flight} / {n.max_concurrency}
          </td>
          <td class="num">{fmtNum(n.requests)}</td>
          <td class="num">{fmtMs(n.latency_ms)}</td>
          <td class="num">{n.consecutive_failures}</td>
          <td class="wrap">{n.last_error ?? '—'}</td>
        </tr>
      ))}
    </Table>
  );
}
