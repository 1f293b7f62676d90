import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { stringify } from 'yaml';
import { launchBrowser } from './browser.ts';
import { ADMIN_TOKEN, api, type Stack, startStack } from './stack.ts';

const WORKFLOWS = {
  workflows: {
    greet: {
      description: 'Says hello to someone',
      steps: [
        { id: 'clock', tool: 'current_time', args: {} },
        { message: 'Hello {{input.who}}!', to: { platform: 'telegram', chat_id: '8100' } },
      ],
    },
  },
};

describe('console pages for tasks, workflows and approvals (Chromium, real core)', () => {
  let s: Stack;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  before(async () => {
    [s, browser] = await Promise.all([
      startStack({ files: { 'workflows.yaml': stringify(WORKFLOWS) } }),
      launchBrowser(),
    ]);
  });
  after(async () => {
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
    await browser?.close();
    await s?.close();
  });

  /** The console signed in with `token`; page errors and console errors are collected. */
  async function signedIn(token = ADMIN_TOKEN): Promise<{ page: Page; problems: string[] }> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 409/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    await page.goto(`${s.core.url}/admin/`);
    await page.getByLabel('Admin token or API key').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    return { page, problems };
  }

  const go = (page: Page, name: string) =>
    page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();

  it('tasks: lists a reminder and cancels it after asking', async () => {
    const created = await api(s, 'POST', '/api/v1/tasks', {
      text: 'console reminder',
      at: new Date(Date.now() + 86_400_000).toISOString(),
      chat: { platform: 'telegram', id: '8000' },
    });
    assert.equal(created.status, 201, created.text);
    const { page, problems } = await signedIn();
    await go(page, 'Tasks');
    const table = page.getByRole('region', { name: 'Scheduled tasks' });
    await table.getByText('Remind: console reminder').waitFor();
    page.once('dialog', (d) => void d.accept());
    await table.getByRole('button', { name: 'Cancel Remind: console reminder' }).click();
    await page.getByText('Cancelled: Remind: console reminder.').waitFor();
    await page.getByText('No tasks match.').waitFor();
    assert.equal((await api(s, 'GET', `/api/v1/tasks/${created.json.id}`)).json.status, 'cancelled');
    assert.deepEqual(problems, []);
  });

  it('workflows: shows the steps, runs one with JSON input, and lists the run with its steps', async () => {
    const { page, problems } = await signedIn();
    await go(page, 'Workflows');
    const card = page.getByRole('article', { name: 'greet' });
    await card.getByText('Says hello to someone').waitFor();
    await card.getByText('to telegram 8100: Hello {{input.who}}!').waitFor();
    const input = card.getByLabel('Input (JSON object, optional)');
    await input.fill('[1, 2]');
    await card.getByRole('button', { name: 'Run' }).click();
    await card.getByRole('alert').filter({ hasText: 'must be a JSON object' }).waitFor();
    await input.fill('{"who": "Ada"}');
    await card.getByRole('button', { name: 'Run' }).click();
    await page.getByText(/greet: run [0-9a-f]{8} succeeded\./).waitFor();
    const runs = page.getByRole('region', { name: 'Workflow runs' });
    await runs.getByText('succeeded').first().waitFor();
    assert.equal((await runs.getByText('ok', { exact: true }).count()) >= 2, true);
    const sent = await s.finished((r) => r.chat === '8100');
    assert.equal(sent.text, 'Hello Ada!');
    assert.deepEqual(problems, []);
  });

  it('approvals: new pending calls appear on their own; approve one, and one decided elsewhere says so', async () => {
    const { page, problems } = await signedIn();
    await go(page, 'Approvals');
    await page.getByText('No pending tool calls.').waitFor();
    const insert = async (summary: string) =>
      (
        await s.core.db.query<{ id: string }>(
          `INSERT INTO approvals(tool, arguments, summary, requested_of, platform, chat_id, expires_at)
           VALUES ('run_command', '{}', $1, 'operator', 'telegram', '8200', now() + interval '10 minutes') RETURNING id`,
          [summary],
        )
      ).rows[0]!.id;
    await insert('run_command uptime');
    const table = page.getByRole('region', { name: 'pending approvals' });
    // polled: no reload needed
    await table.getByText('run_command uptime').waitFor();
    await table.getByRole('button', { name: 'Approve run_command: run_command uptime' }).click();
    await page.getByText('run_command was approved: run_command uptime').waitFor();

    const other = await insert('run_command df');
    await table.getByText('run_command df').waitFor();
    assert.equal((await api(s, 'POST', `/api/v1/approvals/${other}/deny`)).status, 200);
    // the click comes well before the next poll; should the poll win, the row is simply gone
    const clicked = await table
      .getByRole('button', { name: 'Deny run_command: run_command df' })
      .click({ timeout: 2000 })
      .then(
        () => true,
        () => false,
      );
    if (clicked)
      await page
        .getByRole('alert')
        .filter({
          hasText: 'That call is no longer waiting: This approval was already denied by admin-token.',
        })
        .waitFor();
    await table.getByText('run_command df').waitFor({ state: 'detached' });
    await page.getByLabel('Status').selectOption('denied');
    await page.getByRole('region', { name: 'denied approvals' }).getByText('run_command df').waitFor();
    assert.deepEqual(problems, []);
  });
});
