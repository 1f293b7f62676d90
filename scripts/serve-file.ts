// Serves one file at /metrics (the backup job's Prometheus text file) — the local stack's stand-in for
// the backup container's metrics port. Usage: node scripts/serve-file.ts FILE PORT
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';

const [file, port] = process.argv.slice(2);
if (!file || !port) {
  process.stderr.write('usage: node scripts/serve-file.ts FILE PORT\n');
  process.exit(2);
}
createServer((req, res) => {
  if (req.url !== '/metrics') {
    res.writeHead(404).end();
    return;
  }
  // no backup yet: an empty scrape (the "no backup" alert then fires, as it should)
  readFile(file, 'utf8').then(
    (body) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body),
    () => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(''),
  );
}).listen(Number(port), '127.0.0.1');
