import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { pairingCode } from '../src/repositories/pairing.ts';
import { launchBrowser } from './browser.ts';
import { ADMIN_TOKEN, api, embeddingModels, type Stack, startStack } from './stack.ts';

const tag = () => randomBytes(4).toString('hex');

/** Polls `probe` until it returns something truthy (the page updates on its own time). */
async function until<T>(
  what: string,
  probe: () => Promise<T>,
  timeoutMs = 10_000,
): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (last) return last as Exclude<T, false | null | undefined | 0 | ''>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${String(last)})`);
    await sleep(25);
  }
}

/** A chat model besides `small` (to pick one) and the embedding model the knowledge base needs. */
const models = (mockUrl: string) => {
  const m = embeddingModels(mockUrl) as { models: Record<string, unknown> };
  m.models.big = { provider: 'p', model_id: 'big-model', context_window: 32768, max_tokens: 1024 };
  return m;
};

describe('web console in a real browser (Chromium, real core, Postgres, Redis, llm-proxy, mock model)', () => {
  let s: Stack;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  before(async () => {
    [s, browser] = await Promise.all([
      startStack({
        models,
        config: { knowledge: { embedding_model: 'embed', chunk_tokens: 200, overlap_tokens: 40 } },
      }),
      launchBrowser(),
    ]);
  });
  after(async () => {
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
    await browser?.close();
    await s?.close();
  });

  /** A fresh browser profile (own storage) with the console open; fails the test on any page error. */
  async function open(expectedErrors = /status of 401/): Promise<{ page: Page; problems: string[] }> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // a CSP violation or a script error shows up here; the 401 of a wrong key is expected
      if (m.type() === 'error' && !expectedErrors.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    await page.goto(`${s.core.url}/admin/`);
    return { page, problems };
  }

  async function signIn(page: Page, token: string) {
    await page.getByLabel('Admin token or API key').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  }

  /** Follows a link of the main menu. */
  const go = (page: Page, name: string) =>
    page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();

  const navLinks = (page: Page) =>
    page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();

  it('refuses a wrong key, then signs in with the admin token and shows who is signed in', async () => {
    const { page, problems } = await open();
    await page.getByLabel('Admin token or API key').fill('not-a-real-key-0123456789');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Invalid or revoked key' }).waitFor();

    await signIn(page, ADMIN_TOKEN);
    const banner = page.getByRole('banner');
    assert.match((await banner.textContent()) ?? '', /admin-token\s*admin/);
    assert.deepEqual(await navLinks(page), [
      'Chat',
      'Conversations',
      'Tasks',
      'Models',
      'Pairing',
      'Approvals',
      'Users & keys',
      'Knowledge base',
      'Workflows',
      'Audit log',
      'Configuration',
    ]);
    // not remembered unless asked: the key lives in this tab only
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('pincer.console.token'),
      local: localStorage.getItem('pincer.console.token'),
    }));
    assert.deepEqual(stored, { session: ADMIN_TOKEN, local: null });
    // a reload keeps the session
    await page.reload();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token or API key').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('pincer.console.token')), null);

    // "remember on this device" keeps it across tabs; signing out forgets it there too
    await page.getByLabel('Admin token or API key').fill(ADMIN_TOKEN);
    await page.getByLabel('Remember on this device').check();
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const tab = await page.context().newPage();
    await tab.goto(`${s.core.url}/admin/`);
    await tab.getByRole('button', { name: 'Sign out' }).click();
    await tab.getByLabel('Admin token or API key').waitFor();
    assert.equal(await tab.evaluate(() => localStorage.getItem('pincer.console.token')), null);
    assert.deepEqual(problems, []);
  });

  it('chat: picks a model, streams the answer, then lists the conversation with model, tokens and latency', async () => {
    const t = tag();
    const words = 'Alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima';
    s.mock.script({ match: { contains: `stream-${t}` }, reply: { content: words, tokenRate: 10 } });
    const key = (await api(s, 'POST', '/api/v1/keys', { name: `chat ${t}`, role: 'user' })).json.key;
    const { page, problems } = await open();
    await signIn(page, key);
    await go(page, 'Chat');

    const picker = page.getByLabel('Model', { exact: true });
    await until('the models in the picker', async () => (await picker.locator('option').count()) > 1);
    const options = await picker.locator('option').evaluateAll((os) => os.map((o: any) => o.value as string));
    assert.deepEqual(options.sort(), ['', 'big', 'small'], 'automatic, and no embedding model for chat');
    assert.equal(await picker.inputValue(), '', 'automatic by default: the routing rules choose');
    await picker.selectOption('big');

    await page.getByLabel('Message', { exact: true }).fill(`Please answer stream-${t}`);
    await page.getByLabel('Message', { exact: true }).press('Enter');
    const answer = page.getByRole('article', { name: 'Assistant message' }).last();
    // part of the answer shows while it is still being written
    const partial = await until('the first words', async () => {
      const text = (await answer.textContent()) ?? '';
      return text.includes('Alpha') && text;
    });
    assert.ok(!partial.includes('lima'), `the answer appeared all at once: ${partial}`);
    assert.ok(await page.getByRole('button', { name: 'Stop' }).isVisible());
    await until('the whole answer', async () => ((await answer.textContent()) ?? '').includes('lima'));
    await page.getByRole('button', { name: 'Send' }).waitFor();
    const facts = (await answer.textContent()) ?? '';
    assert.match(facts, /Model\s*big/);
    assert.match(facts, /Completion tokens\s*\d+/);

    const id = await until(
      'the conversation in the address',
      async () => /#\/chat\/([0-9a-f-]{36})$/.exec(page.url())?.[1],
    );
    const mine = page
      .getByRole('complementary', { name: 'My conversations' })
      .getByRole('link', { name: /2 messages/ });
    assert.equal(await mine.getAttribute('href'), `#/chat/${id}`);
    const stored = await api(s, 'GET', `/api/v1/conversations/${id}/messages`);
    assert.deepEqual(
      stored.json.data.map((m: any) => [m.role, m.model]),
      [
        ['user', null],
        ['assistant', 'big'],
      ],
    );

    await go(page, 'Conversations');
    const table = page.getByRole('region', { name: 'Conversations' });
    await table.waitFor();
    const row = table.getByRole('row').filter({ has: page.locator(`a[href="#/conversations/${id}"]`) });
    // named after its first message; the model picked stays the conversation's
    assert.match(
      (await row.textContent()) ?? '',
      new RegExp(`Please answer stream-${t}\\s*api\\s*chat ${t}\\s*#\\d+\\s*big`),
    );
    await row.getByRole('link').click();
    const reply = page.getByRole('article', { name: 'Assistant message' });
    await reply.waitFor();
    const shown = (await reply.textContent()) ?? '';
    assert.match(shown, /Alpha bravo/);
    assert.match(shown, /Model\s*big/);
    assert.match(shown, /Prompt tokens\s*\d+/);
    assert.match(shown, /Completion tokens\s*\d+/);
    assert.match(shown, /Latency\s*\d+(\.\d+)?\s*m?s/);
    assert.match(shown, /First token\s*\d+(\.\d+)?\s*m?s/);
    assert.deepEqual(problems, []);
  });

  it('pairing: a pending request is approved in the console', async () => {
    const t = tag();
    const externalId = `tg-${t}`;
    const out = await pairingCode(s.t.db, {
      platform: 'telegram',
      externalId,
      displayName: `Pat ${t}`,
      ttlMinutes: 60,
      maxPending: 100,
    });
    assert.equal(out.kind, 'code');
    const { page, problems } = await open();
    await signIn(page, ADMIN_TOKEN);
    await go(page, 'Pairing');
    const code = (out as { code: string }).code;
    await page.getByRole('button', { name: `Approve Pat ${t} (code ${code})` }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Pat ${t} (telegram) was approved` })
      .waitFor();
    const approved = await api(s, 'GET', '/api/v1/pairing?status=approved');
    const mine = approved.json.data.find((p: any) => p.external_id === externalId);
    assert.equal(mine?.status, 'approved');
    assert.equal(mine?.decided_by, 'admin-token');
    assert.deepEqual(problems, []);
  });

  it('knowledge base: uploads a Markdown file with progress and shows it ready', async () => {
    const t = tag();
    const { page, problems } = await open();
    await signIn(page, ADMIN_TOKEN);
    await go(page, 'Knowledge base');
    await page.getByLabel('File', { exact: true }).setInputFiles({
      name: `handbook-${t}.md`,
      mimeType: 'text/markdown',
      buffer: Buffer.from(
        `# Handbook ${t}\n\nThe office opens at nine.\n\n## Leave\n\nAsk your manager first.\n`,
      ),
    });
    await page.getByLabel('Title (optional)').fill(`Handbook ${t}`);
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.getByRole('progressbar', { name: 'Upload progress' }).waitFor();
    await page.getByText(`handbook-${t}.md: ready`).waitFor({ timeout: 20_000 });
    const row = page
      .getByRole('region', { name: 'Documents' })
      .getByRole('row', { name: new RegExp(`Handbook ${t}`) });
    await until('the list to show it ready', async () => /ready/.test((await row.textContent()) ?? ''));
    const docs = await api(s, 'GET', `/api/v1/knowledge/documents?q=${t}`);
    assert.equal(docs.json.data.length, 1);
    assert.equal(docs.json.data[0].status, 'ready');
    assert.equal(docs.json.data[0].filename, `handbook-${t}.md`);
    assert.ok(docs.json.data[0].chunk_count >= 1);
    assert.deepEqual(problems, []);
  });

  it('roles: each key sees only its pages, a forbidden page says so, and a revoked key is signed out', async () => {
    const t = tag();
    const auditor = (await api(s, 'POST', '/api/v1/keys', { name: `auditor ${t}`, role: 'auditor' })).json;
    const user = (await api(s, 'POST', '/api/v1/keys', { name: `user ${t}`, role: 'user' })).json;

    const a = await open();
    await signIn(a.page, auditor.key);
    assert.deepEqual(await navLinks(a.page), ['Conversations', 'Audit log']);
    assert.match(
      (await a.page.getByRole('banner').textContent()) ?? '',
      new RegExp(`auditor ${t}\\s*auditor`),
    );
    await go(a.page, 'Audit log');
    // the keys just created are in the audit log
    await a.page.getByRole('region', { name: 'Audit entries' }).getByText('key.create').first().waitFor();
    const [csv] = await Promise.all([
      a.page.waitForEvent('download'),
      a.page.getByRole('button', { name: 'Export CSV' }).click(),
    ]);
    assert.match(csv.suggestedFilename(), /^pincer-audit-\d{4}-\d{2}-\d{2}\.csv$/);
    const rows = readFileSync(await csv.path(), 'utf8')
      .trim()
      .split('\n');
    assert.match(rows[0]!, /kind/);
    assert.ok(rows.some((r) => r.includes('key.create') && r.includes(`auditor ${t}`)));
    await a.page.goto(`${s.core.url}/admin/#/chat`);
    await a.page.getByRole('heading', { name: 'Not allowed' }).waitFor();

    const u = await open();
    await signIn(u.page, user.key);
    assert.deepEqual(await navLinks(u.page), ['Chat', 'Conversations', 'Tasks']);
    await u.page.goto(`${s.core.url}/admin/#/keys`);
    await u.page.getByRole('heading', { name: 'Not allowed' }).waitFor();
    assert.match((await u.page.getByRole('alert').textContent()) ?? '', /not allowed to open Users & keys/);
    assert.equal(await u.page.getByRole('region', { name: 'API keys' }).count(), 0);

    // the key is revoked elsewhere: the next call sends the console back to sign-in
    assert.equal((await api(s, 'DELETE', `/api/v1/keys/${user.id}`)).status, 204);
    await go(u.page, 'Conversations');
    await u.page.getByLabel('Admin token or API key').waitFor();
    await u.page.getByText('no longer accepted').waitFor();
    assert.deepEqual([...a.problems, ...u.problems], []);
  });

  it('keys: creates a key whose secret is shown once, then revokes it', async () => {
    const t = tag();
    const { page, problems } = await open();
    await signIn(page, ADMIN_TOKEN);
    await go(page, 'Users & keys');
    await page.getByLabel('Name', { exact: true }).fill(`ui key ${t}`);
    await page.getByLabel('Role', { exact: true }).selectOption('operator');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByText('you will not see it again').waitFor();
    const secret = await page.getByLabel('New API key').inputValue();
    const me = await api(s, 'GET', '/api/v1/me', undefined, secret);
    assert.equal(me.status, 200);
    assert.deepEqual([me.json.name, me.json.role], [`ui key ${t}`, 'operator']);
    await page.getByRole('button', { name: 'I have saved it' }).click();
    assert.equal(await page.getByLabel('New API key').count(), 0);
    const row = page
      .getByRole('region', { name: 'API keys' })
      .getByRole('row', { name: new RegExp(`ui key ${t}`) });
    assert.doesNotMatch(
      (await row.textContent()) ?? '',
      new RegExp(secret),
      'the list never shows the secret',
    );

    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: `Revoke ui key ${t}` }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `The key "ui key ${t}" is revoked.` })
      .waitFor();
    await until('the row to say revoked', async () => /Revoked/.test((await row.textContent()) ?? ''));
    assert.equal((await api(s, 'GET', '/api/v1/me', undefined, secret)).status, 401);
    const keys = await api(s, 'GET', '/api/v1/keys');
    assert.ok(keys.json.data.find((k: any) => k.name === `ui key ${t}`)?.revoked_at);
    assert.deepEqual(problems, []);
  });

  it('chat: model output is shown as Markdown with nothing active in it, and Stop ends a long answer', async () => {
    const t = tag();
    s.mock.script({
      match: { contains: `evil-${t}` },
      reply: {
        content:
          '**Bold** and `code`\n\n<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\n\n' +
          '[click](javascript:window.__pwned=3) [docs](https://example.com/docs)',
      },
    });
    s.mock.script({
      match: { contains: `long-${t}` },
      reply: { content: Array.from({ length: 60 }, (_, i) => `word${i}`).join(' '), tokenRate: 10 },
    });
    const key = (await api(s, 'POST', '/api/v1/keys', { name: `md ${t}`, role: 'user' })).json.key;
    // the sanitizer parses the handler before dropping it, and Chromium reports that against the CSP
    const { page, problems } = await open(/status of 401|inline event handler/);
    await signIn(page, key);
    await page.getByLabel('Message', { exact: true }).fill(`evil-${t}`);
    await page.getByRole('button', { name: 'Send' }).click();
    const answer = page.getByRole('article', { name: 'Assistant message' }).last();
    await answer.getByText('Completion tokens').waitFor();
    assert.equal(await answer.locator('strong', { hasText: 'Bold' }).count(), 1);
    assert.equal(await answer.locator('img, script, [onerror]').count(), 0);
    assert.equal(
      await answer.getByRole('link', { name: 'docs' }).getAttribute('href'),
      'https://example.com/docs',
    );
    assert.equal(
      await answer.getByRole('link', { name: 'docs' }).getAttribute('rel'),
      'noopener noreferrer nofollow',
    );
    assert.equal(
      await answer.getByRole('link', { name: 'click' }).count(),
      0,
      'a javascript: link is no link',
    );
    assert.equal(await page.evaluate(() => (globalThis as any).__pwned), undefined);

    const id = await until(
      'the conversation id',
      async () => /#\/chat\/([0-9a-f-]{36})$/.exec(page.url())?.[1],
    );
    // Stop in a new chat: the conversation keeps its id, and the next message continues it
    await page.getByRole('link', { name: 'New chat' }).click();
    await until('an empty chat', async () => !/#\/chat\/[0-9a-f-]{36}$/.test(page.url()));
    await page.getByLabel('Message', { exact: true }).fill(`long-${t}`);
    await page.getByLabel('Message', { exact: true }).press('Enter');
    await until('the long answer to start', async () =>
      ((await answer.textContent()) ?? '').includes('word1'),
    );
    await page.getByRole('button', { name: 'Stop' }).click();
    await answer.getByText('stopped').waitFor();
    await page.getByRole('button', { name: 'Send' }).waitFor();
    assert.ok(!((await answer.textContent()) ?? '').includes('word59'));
    const newId = await until(
      'the new conversation in the address',
      async () => /#\/chat\/([0-9a-f-]{36})$/.exec(page.url())?.[1],
    );
    assert.notEqual(newId, id);
    const stored = await until('the reply stored as stopped', async () => {
      const r = await api(s, 'GET', `/api/v1/conversations/${newId}/messages`, undefined, key);
      const last = r.json.data.at(-1);
      return last?.role === 'assistant' && last.status !== 'streaming' && last;
    });
    assert.equal(stored.status, 'stopped');
    await page.getByLabel('Message', { exact: true }).fill(`evil-${t} again`);
    await page.getByLabel('Message', { exact: true }).press('Enter');
    await until('the follow-up answered in the same conversation', async () => {
      const r = await api(s, 'GET', `/api/v1/conversations/${newId}/messages`, undefined, key);
      return r.json.data.length === 4 && r.json.data.at(-1).status === 'complete';
    });
    assert.deepEqual(problems, []);
  });

  it('models and configuration: registry and upstream nodes; an admin validates, an operator only reads', async () => {
    const t = tag();
    // the refused reload answers 422, which Chromium logs
    const { page, problems } = await open(/status of 422/);
    await signIn(page, ADMIN_TOKEN);
    await go(page, 'Models');
    const registry = page.getByRole('region', { name: 'Models' });
    assert.match((await registry.getByRole('row', { name: /small/ }).textContent()) ?? '', /small\s*default/);
    assert.match((await registry.getByRole('row', { name: /embed/ }).textContent()) ?? '', /embeddings/);
    const node = page.getByRole('region', { name: 'Nodes of p' }).getByRole('row', { name: /p-0/ });
    assert.match((await node.textContent()) ?? '', /closed/);

    await go(page, 'Configuration');
    const rules = page.getByRole('region', { name: 'Routing rules' });
    await rules.getByText('process_with_llm').waitFor();
    await page.getByRole('button', { name: 'Validate' }).click();
    await page.getByRole('status').filter({ hasText: 'The configuration on disk is valid.' }).waitFor();

    const routingFile = path.join(s.configDir, 'routing.yaml');
    const good = readFileSync(routingFile, 'utf8');
    try {
      writeFileSync(
        routingFile,
        'routes:\n  - match: { command: ping }\n    action: pong\n  - default: { action: process_with_llm }\n',
      );
      await page.getByRole('button', { name: 'Reload' }).click();
      const refused = page.getByRole('alert').filter({ hasText: 'Not reloaded' });
      await refused.waitFor();
      assert.match((await refused.textContent()) ?? '', /routing\.yaml:3.*unknown action "pong"/);
    } finally {
      writeFileSync(routingFile, good);
    }

    const operator = (await api(s, 'POST', '/api/v1/keys', { name: `ops ${t}`, role: 'operator' })).json.key;
    const o = await open();
    await signIn(o.page, operator);
    await go(o.page, 'Configuration');
    await o.page.getByText('Read only').waitFor();
    assert.equal(await o.page.getByRole('button', { name: 'Reload' }).count(), 0);
    assert.deepEqual([...problems, ...o.problems], []);
  });
});
