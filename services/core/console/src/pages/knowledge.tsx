// The knowledge base: upload documents, follow their ingestion, delete them.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, upload } from '../api.ts';
import type { DocumentList, KbDocument } from '../types.ts';
import {
  Empty,
  ErrorBanner,
  fmtNum,
  fmtTime,
  Loading,
  LoadMore,
  Notice,
  PageHeader,
  Table,
  useInterval,
  usePaged,
} from '../ui.tsx';

const ACCEPT = '.md,.markdown,.txt,.html,.htm,.pdf,.docx';
const POLL_MS = 1000;
const settled = (d: KbDocument) => d.status === 'ready' || d.status === 'failed';

interface Uploading {
  name: string;
  /** 0..1 while the bytes go up, then the document while it is ingested. */
  sent: number;
  doc?: KbDocument;
  error?: unknown;
}

export function KnowledgePage() {
  const [totals, setTotals] = useState<DocumentList['totals']>();
  const docs = usePaged(async (before, signal) => {
    const page = await api<DocumentList>(
      'GET',
      `/api/v1/knowledge/documents?limit=100${before ? `&before=${before}` : ''}`,
      undefined,
      signal,
    );
    setTotals(page.totals);
    return { data: page.data, next: page.next_before === null ? null : String(page.next_before) };
  }, []);
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState<string>();
  const busy = docs.rows.some((d) => !settled(d));
  useInterval(docs.reload, busy ? POLL_MS : null);

  async function remove(d: KbDocument) {
    if (!confirm(`Delete "${d.title}" and its ${d.chunk_count} chunks from the knowledge base?`)) return;
    setError(undefined);
    setNotice(undefined);
    try {
      await api('DELETE', `/api/v1/knowledge/documents/${d.id}`);
      setNotice(`"${d.title}" was deleted.`);
    } catch (err) {
      setError(err);
    } finally {
      docs.reload();
    }
  }

  return (
    <section>
      <PageHeader title="Knowledge base">
        <button type="button" class="secondary" onClick={docs.reload}>
          Refresh
        </button>
      </PageHeader>
      <UploadForm onChange={docs.reload} />
      <h2>Documents</h2>
      {totals && (
        <p class="muted">
          {fmtNum(totals.documents)} documents, {fmtNum(totals.chunks)} chunks
          {Object.entries(totals.by_status)
            .filter(([s, n]) => s !== 'ready' && n > 0)
            .map(([s, n]) => ` · ${n} ${s}`)
            .join('')}
        </p>
      )}
      {notice && <Notice tone="ok">{notice}</Notice>}
      <ErrorBanner error={error ?? docs.error} onDismiss={error ? () => setError(undefined) : undefined} />
      {docs.loading ? (
        <Loading />
      ) : docs.rows.length === 0 ? (
        !docs.error && <Empty>No documents yet. Upload one above.</Empty>
      ) : (
        <>
          <Table label="Documents">
            <thead>
              <tr>
                <th scope="col">Title</th>
                <th scope="col">File</th>
                <th scope="col">Status</th>
                <th scope="col" class="num">
                  Chunks
                </th>
                <th scope="col">Added</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {docs.rows.map((d) => (
                <tr key={d.id}>
                  <td>{d.title}</td>
                  <td>
                    {d.filename ?? <span class="muted">text</span>}
                    <span class="muted small"> {d.format}</span>
                  </td>
                  <td>
                    <Status d={d} />
                  </td>
                  <td class="num">{fmtNum(d.chunk_count)}</td>
                  <td>
                    {fmtTime(d.created_at)}
                    {d.created_by && <span class="muted small"> by {d.created_by}</span>}
                  </td>
                  <td class="row-actions">
                    <button
                      type="button"
                      class="danger small"
                      aria-label={`Delete ${d.title}`}
                      onClick={() => remove(d)}
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </Table>
          <LoadMore list={docs} />
        </>
      )}
    </section>
  );
}

function Status({ d }: { d: KbDocument }) {
  const tone = d.status === 'ready' ? 'ok' : d.status === 'failed' ? 'bad' : 'warn';
  return (
    <div class="status">
      <span class={`badge ${tone}`}>{d.status}</span>
      {!settled(d) && (
        <progress
          max={100}
          value={d.progress.percent}
          aria-label={`Ingestion of ${d.title}`}
          title={`${d.progress.chunks_done} of ${d.progress.chunks_total} chunks`}
        />
      )}
      {d.error && <div class={`small ${d.status === 'failed' ? 'bad-text' : 'muted'}`}>{d.error}</div>}
    </div>
  );
}

function UploadForm({ onChange }: { onChange: () => void }) {
  const fileRef = useRef<HTMLInputElement>(null);
  const [title, setTitle] = useState('');
  const [job, setJob] = useState<Uploading>();
  const alive = useRef(true);
  useEffect(() => () => void (alive.current = false), []);

  async function submit(e: Event) {
    e.preventDefault();
    const file = fileRef.current?.files?.[0];
    if (!file) return setJob({ name: '', sent: 0, error: 'Choose a file to upload.' });
    const form = new FormData();
    form.set('file', file, file.name);
    if (title.trim()) form.set('title', title.trim());
    const current: Uploading = { name: file.name, sent: 0 };
    setJob(current);
    try {
      let doc = await upload<KbDocument>('/api/v1/knowledge/files', form, (sent) =>
        setJob({ ...current, sent }),
      );
      setJob({ ...current, sent: 1, doc });
      if (fileRef.current) fileRef.current.value = '';
      setTitle('');
      onChange();
      // follow the ingestion until it ends; the list refreshes itself meanwhile
      while (!settled(doc) && alive.current) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        doc = await api<KbDocument>('GET', `/api/v1/knowledge/documents/${doc.id}`);
        setJob({ ...current, sent: 1, doc });
      }
      onChange();
    } catch (err) {
      setJob((j) => ({ ...(j ?? current), error: err }));
    }
  }

  const uploading = job !== undefined && !job.error && (!job.doc || !settled(job.doc));
  return (
    <form class="card upload" onSubmit={submit} aria-labelledby="upload-title">
      <h2 id="upload-title">Add a document</h2>
      <p class="muted small">Markdown, plain text, HTML, PDF or Word (.docx).</p>
      <div class="filters">
        <div class="field grow">
          <label for="kb-file">File</label>
          <input id="kb-file" ref={fileRef} type="file" accept={ACCEPT} required />
        </div>
        <div class="field grow">
          <label for="kb-title">Title (optional)</label>
          <input
            id="kb-title"
            maxLength={500}
            placeholder="Defaults to the document's own title or file name"
            value={title}
            onInput={(e) => setTitle(e.currentTarget.value)}
          />
        </div>
        <div class="field buttons">
          <button type="submit" disabled={uploading}>
            {uploading ? 'Working…' : 'Upload'}
          </button>
        </div>
      </div>
      {job && job.name && (
        <div class="upload-progress" aria-live="polite">
          <p class="small">
            {job.doc
              ? `${job.name}: ${job.doc.status}${settled(job.doc) ? '' : ` (${job.doc.progress.percent}%)`}`
              : `Uploading ${job.name}: ${Math.round(job.sent * 100)}%`}
          </p>
          <progress
            aria-label="Upload progress"
            max={100}
            value={job.doc ? (job.doc.status === 'failed' ? 0 : job.doc.progress.percent) : job.sent * 100}
          />
          {job.doc?.status === 'ready' && (
            <p class="small ok-text">Ready: {job.doc.chunk_count} chunks can now be found by questions.</p>
          )}
          {job.doc?.status === 'failed' && (
            <p class="small bad-text" role="alert">
              Ingestion failed: {job.doc.error ?? 'no reason given'}
            </p>
          )}
        </div>
      )}
      <ErrorBanner error={job?.error} onDismiss={() => setJob(undefined)} />
    </form>
  );
}
