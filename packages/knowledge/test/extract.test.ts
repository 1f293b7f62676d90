import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExtractionError, extractText } from '../src/index.ts';
import { buildDocx, buildPdf } from './fixtures.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof ExtractionError && err.code === code);
}

test('markdown keeps its structure, drops front matter and takes the title from it', async () => {
  const md = '---\ntitle: Leave policy\n---\n# Leave\r\n\r\nEmployees get 26 days.\n\n\n\n- one\n- two\n';
  const r = await extractText({ name: 'policy.md', data: enc(md) });
  assert.equal(r.format, 'md');
  assert.equal(r.title, 'Leave policy');
  assert.equal(r.text, '# Leave\n\nEmployees get 26 days.\n\n- one\n- two');
});

test('plain text in UTF-8 with a BOM and in GB18030 is decoded', async () => {
  const r = await extractText({ name: 'a.txt', data: enc('\uFEFFhello\r\nworld') });
  assert.deepEqual(r, { text: 'hello\nworld', format: 'txt' });
  // "中文" in GB18030
  const gb = await extractText({ name: 'b.txt', data: new Uint8Array([0xd6, 0xd0, 0xce, 0xc4]) });
  assert.equal(gb.text, '中文');
});

test('html becomes headings, paragraphs, lists and table rows; scripts and styles vanish', async () => {
  const html = `<!doctype html><html><head><title>Guide &amp; FAQ</title><style>p{color:red}</style></head>
    <body><nav><script>alert(1)</script></nav><h1>Setup</h1><p>Plug   it
    in.<br>Then wait.</p><h2>Steps</h2><ol><li>Open <b>the</b> app</li><li>Pair</li></ol>
    <table><tr><th>Mode</th><th>Light</th></tr><tr><td>Ready</td><td>Blue</td></tr></table><pre>a  b\n c</pre></body></html>`;
  const r = await extractText({ name: 'guide.html', data: enc(html) });
  assert.equal(r.format, 'html');
  assert.equal(r.title, 'Guide & FAQ');
  assert.equal(
    r.text,
    '# Setup\n\nPlug it in.\nThen wait.\n\n## Steps\n\n1. Open the app\n2. Pair\n\nMode | Light\n\nReady | Blue\n\n```\na  b\n c\n```',
  );
});

test('pdf text comes back with the larger line as a heading', async () => {
  const pdf = buildPdf([
    { text: 'Backup Guide', size: 24, y: 720 },
    { text: 'The appliance keeps fourteen daily', size: 11, y: 690 },
    { text: 'snapshots of every shared folder.', size: 11, y: 677 },
    { text: 'A second paragraph after a gap.', size: 11, y: 640 },
  ]);
  const r = await extractText({ name: 'guide.pdf', data: pdf });
  assert.equal(r.format, 'pdf');
  assert.equal(
    r.text,
    '# Backup Guide\n\nThe appliance keeps fourteen daily snapshots of every shared folder.\n\nA second paragraph after a gap.',
  );
  assert.equal(r.title, 'Backup Guide');
});

test('docx headings and paragraphs survive', async () => {
  const docx = await buildDocx([
    { style: 'Heading1', text: '差旅制度' },
    { text: '每天一百元。' },
    { style: 'Heading2', text: 'Hotels' },
    { text: 'At most 600 a night.' },
  ]);
  const r = await extractText({ name: 'policy.docx', data: docx });
  assert.equal(r.format, 'docx');
  assert.equal(r.text, '# 差旅制度\n\n每天一百元。\n\n## Hotels\n\nAt most 600 a night.');
  assert.equal(r.title, '差旅制度');
});

test('the format is sniffed when the name and type say nothing', async () => {
  const r = await extractText({ name: 'upload', data: enc('<html><body><p>Hi there</p></body></html>') });
  assert.equal(r.format, 'html');
  const p = await extractText({
    name: 'upload.bin',
    mime: 'application/octet-stream',
    data: buildPdf([{ text: 'Hello', size: 11, y: 700 }]),
  });
  assert.equal(p.format, 'pdf');
});

test('unsupported, corrupt, empty and oversized files are refused with their codes', async () => {
  await rejectsWith(
    extractText({ name: 'photo.png', data: new Uint8Array([0x89, 0x50, 0x4e, 0x47]) }),
    'unsupported_type',
  );
  await rejectsWith(extractText({ name: 'old.doc', data: enc('x') }), 'unsupported_type');
  await rejectsWith(extractText({ name: 'x', mime: 'image/png', data: enc('x') }), 'unsupported_type');
  await rejectsWith(
    extractText({ name: 'bad.pdf', data: enc('%PDF-1.4\nthis is not a pdf') }),
    'corrupt_file',
  );
  await rejectsWith(extractText({ name: 'fake.pdf', data: enc('hello') }), 'corrupt_file');
  await rejectsWith(extractText({ name: 'bad.docx', data: enc('PK\u0003\u0004garbage') }), 'corrupt_file');
  await rejectsWith(extractText({ name: 'notzip.docx', data: enc('hello') }), 'corrupt_file');
  await rejectsWith(
    extractText({ name: 'bin.txt', data: new Uint8Array([0xff, 0x00, 0xc3, 0x28]) }),
    'corrupt_file',
  );
  await rejectsWith(extractText({ name: 'empty.md', data: enc('  \n\n # \n') }), 'empty_document');
  await rejectsWith(
    extractText({ name: 'blank.html', data: enc('<p> </p><script>x()</script>') }),
    'empty_document',
  );
  await rejectsWith(
    extractText({ name: 'big.txt', data: enc('x'.repeat(101)) }, { maxBytes: 100 }),
    'file_too_large',
  );
  const err = await extractText({ name: 'big.txt', data: enc('xx') }, { maxBytes: 1 }).catch(
    (e: unknown) => e,
  );
  assert.ok(err instanceof ExtractionError);
  assert.equal(err.status, 413);
});
