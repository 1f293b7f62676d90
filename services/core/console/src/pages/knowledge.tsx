// The knowledge base: upload documents, follow their ingestion, delete them.
import { type Dispatch, type StateUpdater, useEffect, useRef, useState } from 'preact/hooks';
import { api, query, upload } from '../api.ts';
import type { DocumentList, KbDocument } from '../types.ts';
import {
  ACTIONS,
  ActionOutcome,
  ConfirmButton,
  ErrorBanner,
  Field,
  fmtNum,
  fmtTime,
  numeric,
  PageHeader,
  PagedTable,
  useAction,
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
  /** When the upload ended (performance.now()). */
  at?: number;
  error?: unknown;
}

/**
 * An upload follows its document in the list (where the newest is first) while it is ingested: a list
 * asked for after the upload has it as it is now, or lacks it because it was deleted meanwhile.
 */
function follow(job: Uploading | undefined, list: { data: KbDocument[]; asked: number }) {
  if (!job?.doc || job.error || settled(job.doc) || list.asked <= job.at!) return job;
  const id = job.doc.id;
  const doc = list.data.find((d) => d.id === id);
  return doc ? { ...job, doc } : { ...job, error: `No document ${id}.` };
}

export function KnowledgePage() {
  const docs = usePaged(async (before, signal) => {
    const asked = performance.now();
    const page = await api<DocumentList>(
      'GET',
      `/api/v1/knowledge/documents${query({ limit: 100, before })}`,
      undefined,
      signal,
    );
    return { ...page, asked, next: page.next_before === null ? null : String(page.next_before) };
  }, []);
  const totals = docs.firstPage?.totals;
  const [job, setJob] = useState<Uploading>();
  // one poller for the list and the upload being ingested
  useEffect(() => {
    const list = docs.firstPage;
    if (list) setJob((j) => follow(j, list));
  }, [docs.firstPage]);
  const following = job?.doc !== undefined && !job.error && !settled(job.doc);
  useInterval(docs.reload, following || docs.rows.some((d) => !settled(d)) ? POLL_MS : null);
  const action = useAction();

  async function remove(d: KbDocument) {
    await action.run(`delete ${d.id}`, async () => {
      await api('DELETE', `/api/v1/knowledge/documents/${d.id}`);
      return `"${d.title}" was deleted.`;
    });
    docs.reload();
  }

  return (
    <section>
      <PageHeader title="Knowledge base">
        <button type="button" class="secondary" onClick={docs.reload}>
          Refresh
        </button>
      </PageHeader>
      <UploadForm job={job} setJob={setJob} onUploaded={docs.reload} />
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
      <ActionOutcome action={action} listError={docs.error} />
      <PagedTable
        list={docs}
        label="Documents"
        empty="No documents yet. Upload one above."
        columns={['Title', 'File', 'Status', numeric('Chunks'), 'Added', ACTIONS]}
        row={(d) => (
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
              <ConfirmButton
                label={`Delete ${d.title}`}
                question={`Delete "${d.title}" and its ${d.chunk_count} chunks from the knowledge base?`}
                onConfirm={() => void remove(d)}
              >
                Delete
              </ConfirmButton>
            </td>
          </tr>
        )}
      />
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

/** The upload form, and how the last upload goes (the page follows its ingestion). */
function UploadForm(props: {
  job: Uploading | undefined;
  setJob: Dispatch<StateUpdater<Uploading | undefined>>;
  onUploaded: () => void;
}) {
  const { job, setJob } = props;
  const fileRef = useRef<HTMLInputElement>(null);
  const [title, setTitle] = useState('');

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
      const uploaded = await upload<KbDocument>('/api/v1/knowledge/files', form, (sent) =>
        setJob({ ...current, sent }),
      );
      setJob({ ...current, sent: 1, doc: uploaded, at: performance.now() });
      if (fileRef.current) fileRef.current.value = '';
      setTitle('');
      props.onUploaded();
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
        <Field id="kb-file" label="File" grow>
          <input id="kb-file" ref={fileRef} type="file" accept={ACCEPT} required />
        </Field>
        <Field id="kb-title" label="Title (optional)" grow>
          <input
            id="kb-title"
            maxLength={500}
            placeholder="Defaults to the document's own title or file name"
            value={title}
            onInput={(e) => setTitle(e.currentTarget.value)}
          />
        </Field>
        <div class="field buttons">
          <button type="submit" disabled={uploading}>
            {uploading ? 'Working…' : 'Upload'}
          </button>
        </div>
      </div>
      {job?.name && (
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
