// Small pieces every page uses: banners, loading and empty states, tables, forms, lists, formatting.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from './api.ts';
import type { Page } from './types.ts';

export function messageOf(err: unknown): string {
  if (err instanceof ApiError || err instanceof Error) return err.message;
  return String(err);
}

export function ErrorBanner({ error, onDismiss }: { error: unknown; onDismiss?: () => void }) {
  if (error === undefined || error === null) return null;
  return (
    <Notice tone="error">
      <span>{messageOf(error)}</span>
      {onDismiss && (
        <button type="button" class="link" onClick={onDismiss} aria-label="Dismiss error">
          ×
        </button>
      )}
    </Notice>
  );
}

/** A banner: an error is an alert, anything else a status. */
export function Notice(props: { tone?: 'info' | 'ok' | 'error'; children: ComponentChildren }) {
  const tone = props.tone ?? 'info';
  return (
    <div class={`banner ${tone}`} role={tone === 'error' ? 'alert' : 'status'}>
      {props.children}
    </div>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p class="muted" role="status" aria-live="polite">
      {what}…
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/** A list's states: loading the first time, a note when it is empty (unless it failed), else the list. */
export function Listing(props: {
  loading: boolean;
  error: unknown;
  count: number;
  empty: ComponentChildren;
  what?: string;
  children: ComponentChildren;
}) {
  if (props.loading) return <Loading what={props.what} />;
  if (props.count === 0) return props.error ? null : <Empty>{props.empty}</Empty>;
  return <>{props.children}</>;
}

/** A column heading: its text, or the text with how the column shows. */
export type Column = string | { label: string; /** right-aligned numbers */ num?: boolean; hidden?: boolean };

export const numeric = (label: string): Column => ({ label, num: true });
/** The column of a row's buttons: named for screen readers only. */
export const ACTIONS: Column = { label: 'Actions', hidden: true };

function Heading({ column }: { column: Column }) {
  const c = typeof column === 'string' ? { label: column } : column;
  return (
    <th scope="col" class={c.num ? 'num' : undefined}>
      {c.hidden ? <span class="visually-hidden">{c.label}</span> : c.label}
    </th>
  );
}

/** A table that scrolls sideways on a narrow screen instead of squeezing its columns; children are rows. */
export function Table(props: { label: string; columns: Column[]; children: ComponentChildren }) {
  return (
    <div class="table-wrap" role="region" aria-label={props.label} tabIndex={0}>
      <table>
        <thead>
          <tr>
            {props.columns.map((c, i) => (
              <Heading key={i} column={c} />
            ))}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}

/** Labelled facts: `dl.summary` under a page's title, `dl.facts` under a reply. */
export function Facts(props: { kind: 'summary' | 'facts'; facts: Record<string, ComponentChildren> }) {
  return (
    <dl class={props.kind}>
      {Object.entries(props.facts).map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

export function PageHeader(props: { title: string; id?: string; children?: ComponentChildren }) {
  return (
    <div class="page-header">
      <h1 id={props.id}>{props.title}</h1>
      {props.children && <div class="actions">{props.children}</div>}
    </div>
  );
}

/** A labelled control of a form laid out as `.filters` (children: the control, with the same id). */
export function Field(props: { id: string; label: string; grow?: boolean; children: ComponentChildren }) {
  return (
    <div class={props.grow ? 'field grow' : 'field'}>
      <label for={props.id}>{props.label}</label>
      {props.children}
    </div>
  );
}

/** The filters being typed (draft) and those searched with (applied). */
export interface Filters<F> {
  draft: F;
  applied: F;
  /** The value and input handler of a field of the draft. */
  bind(k: keyof F): { value: string; onInput(e: Event): void };
  apply(): void;
  clear(): void;
}

export function useFilters<F extends { [K in keyof F]: string }>(none: F): Filters<F> {
  const [draft, setDraft] = useState(none);
  const [applied, setApplied] = useState(none);
  return {
    draft,
    applied,
    bind: (k) => ({
      value: draft[k],
      onInput: (e) => {
        const value = (e.currentTarget as HTMLInputElement).value;
        setDraft((d) => ({ ...d, [k]: value }));
      },
    }),
    // a new object: searching again with the same filters reloads
    apply: () => setApplied({ ...draft }),
    clear: () => {
      setDraft(none);
      setApplied(none);
    },
  };
}

/** A filter form: its fields, then Search and Clear. */
export function FilterForm(props: {
  label: string;
  filters: Pick<Filters<unknown>, 'apply' | 'clear'>;
  children: ComponentChildren;
}) {
  return (
    <form
      class="filters"
      aria-label={props.label}
      onSubmit={(e) => {
        e.preventDefault();
        props.filters.apply();
      }}
    >
      {props.children}
      <div class="field buttons">
        <button type="submit">Search</button>
        <button type="button" class="secondary" onClick={props.filters.clear}>
          Clear
        </button>
      </div>
    </form>
  );
}

/** From and To dates of a filter form; the ids are `<id>-from` and `<id>-to`. */
export function DateRange({ id, filters }: { id: string; filters: Filters<{ from: string; to: string }> }) {
  return (
    <>
      <Field id={`${id}-from`} label="From">
        <input id={`${id}-from`} type="date" {...filters.bind('from')} />
      </Field>
      <Field id={`${id}-to`} label="To">
        <input id={`${id}-to`} type="date" {...filters.bind('to')} />
      </Field>
    </>
  );
}

export function UserIdField({ id, filters }: { id: string; filters: Filters<{ user_id: string }> }) {
  return (
    <Field id={id} label="User id">
      <input id={id} type="number" min={1} inputMode="numeric" {...filters.bind('user_id')} />
    </Field>
  );
}

/** What a button does, one thing at a time: which is running, what it said, or how it failed. */
export interface Action {
  /** The key of the running action. */
  busy: string | undefined;
  error: unknown;
  /** What the last action that succeeded said. */
  notice: string | undefined;
  /** Runs `act`; never throws (its error is kept). */
  run(key: string, act: () => Promise<string | void>): Promise<void>;
  dismiss(): void;
}

export function useAction(): Action {
  const [busy, setBusy] = useState<string>();
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState<string>();
  async function run(key: string, act: () => Promise<string | void>) {
    setBusy(key);
    setError(undefined);
    setNotice(undefined);
    try {
      const said = await act();
      if (said) setNotice(said);
    } catch (err) {
      setError(err);
    } finally {
      setBusy((b) => (b === key ? undefined : b));
    }
  }
  return { busy, error, notice, run, dismiss: () => setError(undefined) };
}

/** What an action said, then its error or else the list's (only the action's can be dismissed). */
export function ActionOutcome({ action, listError }: { action: Action; listError: unknown }) {
  return (
    <>
      {action.notice && <Notice tone="ok">{action.notice}</Notice>}
      <ErrorBanner error={action.error ?? listError} onDismiss={action.error ? action.dismiss : undefined} />
    </>
  );
}

/** A small danger button that asks `question` first. */
export function ConfirmButton(props: {
  label: string;
  question: string;
  onConfirm: () => void;
  children: ComponentChildren;
}) {
  return (
    <button
      type="button"
      class="danger small"
      aria-label={props.label}
      onClick={() => confirm(props.question) && props.onConfirm()}
    >
      {props.children}
    </button>
  );
}

export const fmtTime = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');

/** Approve or deny: what pairing requests and tool-call approvals are decided with. */
export const DECISIONS = [
  { decision: 'approve', label: 'Approve', done: 'approved', class: undefined },
  { decision: 'deny', label: 'Deny', done: 'denied', class: 'secondary' },
] as const;
export type Decision = (typeof DECISIONS)[number];

/**
 * The last cells of a request that someone approves or denies: while pending, when it expires and
 * the two buttons; afterwards, when and by whom it was decided.
 */
export function DecisionCells(props: {
  pending: boolean;
  request: { expires_at: string; decided_at: string | null; decided_by: string | null };
  /** Read out with the button's label: which request it decides. */
  what: string;
  busy: boolean;
  cellClass?: string;
  onDecide: (d: Decision) => void;
}) {
  const r = props.request;
  return (
    <>
      <td class={props.cellClass}>
        {props.pending
          ? fmtTime(r.expires_at)
          : r.decided_at
            ? `${fmtTime(r.decided_at)}${r.decided_by ? ` by ${r.decided_by}` : ''}`
            : '—'}
      </td>
      {props.pending && (
        <td class="row-actions">
          {DECISIONS.map((d) => (
            <button
              key={d.decision}
              type="button"
              class={d.class}
              disabled={props.busy}
              aria-label={`${d.label} ${props.what}`}
              onClick={() => props.onDecide(d)}
            >
              {d.label}
            </button>
          ))}
        </td>
      )}
    </>
  );
}

/** API conversations have no title of their own: name them by when they started. */
export const conversationName = (c: { title: string; created_at: string }) =>
  c.title || `Chat of ${fmtTime(c.created_at)}`;

export const fmtNum = (n: number | null | undefined) =>
  n === null || n === undefined ? '—' : n.toLocaleString();

export const fmtMs = (n: number | null | undefined) =>
  n === null || n === undefined ? '—' : n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`;

export interface Resource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
}

/**
 * Loads with `load` whenever `deps` change (and on reload()); a stale answer never overwrites a newer
 * one, and the request is aborted when the page goes away.
 */
export function useResource<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Resource<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    const ctl = new AbortController();
    setLoading(true);
    loadRef.current(ctl.signal).then(
      (d) => {
        if (ctl.signal.aborted) return;
        setData(d);
        setError(undefined);
        setLoading(false);
      },
      (err: unknown) => {
        if (ctl.signal.aborted) return;
        setError(err);
        setLoading(false);
      },
    );
    return () => ctl.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

/** Runs `fn` every `ms` while the component is shown and the tab is visible. */
export function useInterval(fn: () => void, ms: number | null): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (ms === null) return;
    const id = setInterval(() => {
      if (document.visibilityState === 'visible') ref.current();
    }, ms);
    return () => clearInterval(id);
  }, [ms]);
}

export interface Paged<T, P = unknown> {
  rows: T[];
  /** The first page as `load` answered it (totals and the like). */
  firstPage: P | undefined;
  error: unknown;
  loading: boolean;
  /** Set when there is a next page. */
  hasMore: boolean;
  loadingMore: boolean;
  loadMore(): void;
  reload(): void;
}

/** A list read page by page: the first page whenever `deps` change, then "Load more" with the cursor. */
export function usePaged<P extends { data: unknown[]; next: string | null }>(
  load: (before: string | undefined, signal?: AbortSignal) => Promise<P>,
  deps: unknown[],
): Paged<P['data'][number], P> {
  type T = P['data'][number];
  const first = useResource((signal) => load(undefined, signal), deps);
  const [more, setMore] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [moreError, setMoreError] = useState<unknown>();
  const [loadingMore, setLoadingMore] = useState(false);
  useEffect(() => {
    setMore([]);
    setMoreError(undefined);
    setCursor(first.data?.next ?? null);
  }, [first.data]);
  const loadMore = async () => {
    if (!cursor || loadingMore) return;
    setLoadingMore(true);
    setMoreError(undefined);
    try {
      const page = await load(cursor);
      setMore((m) => [...m, ...page.data]);
      setCursor(page.next);
    } catch (err) {
      setMoreError(err);
    } finally {
      setLoadingMore(false);
    }
  };
  return {
    rows: [...(first.data?.data ?? []), ...more],
    firstPage: first.data,
    error: first.error ?? moreError,
    loading: first.loading && !first.data,
    hasMore: cursor !== null,
    loadingMore,
    loadMore: () => void loadMore(),
    reload: first.reload,
  };
}

/** usePaged over an API list answering a `Page` (`data` and `next_cursor`); `url` addresses a page. */
export function usePages<T>(url: (before: string | undefined) => string, deps: unknown[]): Paged<T> {
  return usePaged(async (before, signal) => {
    const page = await api<Page<T>>('GET', url(before), undefined, signal);
    return { data: page.data, next: page.next_cursor };
  }, deps);
}

export function LoadMore({ list }: { list: Paged<unknown> }) {
  if (!list.hasMore) return null;
  return (
    <button type="button" class="secondary" disabled={list.loadingMore} onClick={list.loadMore}>
      {list.loadingMore ? 'Loading…' : 'Load more'}
    </button>
  );
}

/** A paged list as a table: its states, a row for each item, then "Load more". */
export function PagedTable<T>(props: {
  list: Paged<T>;
  label: string;
  columns: Column[];
  empty: ComponentChildren;
  row: (item: T) => ComponentChildren;
}) {
  const { list } = props;
  return (
    <Listing loading={list.loading} error={list.error} count={list.rows.length} empty={props.empty}>
      <Table label={props.label} columns={props.columns}>
        {list.rows.map((item) => props.row(item))}
      </Table>
      <LoadMore list={list} />
    </Listing>
  );
}
