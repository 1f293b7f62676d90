// Runs in a worker thread: document extraction and chunking are CPU-bound (a large PDF takes seconds)
// and must not hold up the event loop that answers chats.
import { parentPort } from 'node:worker_threads';
import { prepareDocument, type PrepareInput } from '@pincer/knowledge';

parentPort!.on('message', (msg: { id: number; input: PrepareInput }) => {
  prepareDocument(msg.input).then(
    (result) => parentPort!.postMessage({ id: msg.id, result }),
    // an ExtractionError is rebuilt from its name and code on the other side (see PreparePool)
    (err: Error & { code?: string }) =>
      parentPort!.postMessage({
        id: msg.id,
        error: { name: err.name, code: err.code, message: err.message },
      }),
  );
});
