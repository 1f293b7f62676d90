import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, QueueName } from '@pincer/shared';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config.ts';
import { type CoreHandle, startCore } from '../src/core.ts';
import { identify } from '../src/repositories/people.ts';
import { taskTools } from '../src/services/tools/task-tools.ts';
import { type Tool, type ToolContext, ToolError } from '../src/services/tools/types.ts';
import { writeConfigDir } from './db-harness.ts';
import { api, REDIS_URL, type SeenReply, type Stack, startStack } from './stack.ts';

const main = path.resolve(import.meta.dirname, '../src/main.ts');

const WORKFLOWS = {
  workflows: {
    'daily-brief': {
      description: 'The time, a word from the model about it, and a message',
      steps: [
        { id: 'clock', tool: 'current_time', args: { timezone: '{{input.tz}}' } },
        { id: 'note', prompt: 'Comment on this time: {{previous}}' },
        {
          message: 'Brief for {{input.who}}: {{steps.note}}',
          to: { platform: 'telegram', chat_id: '7100', chat_type: 'direct' },
        },
      ],
    },
    broken: {
      steps: [
        { tool: 'current_time', args: { timezone: 'Not/AZone' } },
        { prompt: 'never asked' },
        { message: 'never sent', to: { platform: 'telegram', chat_id: '7101' } },
      ],
    },
    echo: { steps: [{ message: 'You said: {{input.text}} {{steps.nope}}{{unknown}}' }] },
    nightly: {
      schedule: { cron: '0 3 * * *', timezone: 'Asia/Shanghai' },
      steps: [{ message: 'nightly report', to: { platform: 'telegram', chat_id: '7102' } }],
    },
  },
};

let n = 0;
const tag = () => `${process.pid}-${Date.now()}-${n++}`;

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('automations: reminders, recurring tasks and workflows', () => {
  let s: Stack;
  // the tools of the core running now (a restart makes a new one)
  const tool = (name: string): Tool => taskTools(s.core.tasks).find((t) => t.name === name)!;
  /** Next year: far enough ahead never to fire during the tests. */
  const Y = new Date().getUTCFullYear() + 1;

  /** A Telegram user and the context of a tool call from their direct chat. */
  async function chatUser(chatId: string, role: ToolContext['caller']['role'] = 'user') {
    const { userId } = await identify(s.core.db, {
      platform: 'telegram',
      externalId: chatId,
      displayName: `User ${chatId}`,
    });
    const ctx: ToolContext = {
      caller: { userId, role, name: `telegram:${chatId}` },
      platform: 'telegram',
      chat: { id: chatId, type: 'direct' },
      timezone: 'Europe/Berlin',
      signal: new AbortController().signal,
      log: createLogger({ service: 'test', level: 'error' }),
    };
    return { userId, ctx };
  }

  const repliesOf = (taskId: string): SeenReply[] =>
    [...s.replies.values()].filter((r) => r.reply_id.startsWith(`task/${taskId}/`));

  before(async () => {
    s = await startStack({
      config: {
        tools: { timezone: 'Europe/Berlin' },
        automations: { max_tasks_per_user: 3, min_interval_s: 300 },
      },
      files: { 'workflows.yaml': stringify(WORKFLOWS) },
    });
  });
  after(async () => {
    await s.close();
  });

  it('a reminder made with schedule_task is delivered to its chat at its time, once, and is then done', async () => {
    const { ctx } = await chatUser('7001');
    const runAt = Date.now() + 2000;
    const out = JSON.parse(
      await tool('schedule_task').run({ text: 'stretch your legs', at: new Date(runAt).toISOString() }, ctx),
    );
    assert.equal(out.kind, 'reminder');
    assert.match(
      out.confirmation,
      /^Reminder [0-9a-f-]{36} is set for .+\(Europe\/Berlin\), in \d+ seconds?\.$/,
    );
    assert.equal(repliesOf(out.id).length, 0, 'nothing before its time');

    const r = await s.finished((x) => x.reply_id.startsWith(`task/${out.id}/`), 10_000);
    assert.equal(r.chat, '7001');
    assert.equal(r.text, '⏰ stretch your legs');
    const finish = r.actions.find((a) => a.type === 'finish')!;
    assert.ok(finish.seq / 1000 >= runAt, `published ${runAt - finish.seq / 1000} ms before its time`);
    assert.equal(r.reply_id, `task/${out.id}/${runAt}`, 'the slot is the time it was due');

    const task = await until('the task to be done', async () => {
      const t = (await api(s, 'GET', `/api/v1/tasks/${out.id}`)).json;
      return t.status === 'done' ? t : undefined;
    });
    assert.equal(task.runs, 1);
    assert.equal(task.next_run_at, null);
    assert.deepEqual(
      task.recent_runs.map((x: any) => [x.slot, x.status]),
      [[String(runAt), 'ok']],
    );
    // a second delivery of the same firing would show here within the queue's pace
    await sleep(1000);
    assert.equal(repliesOf(out.id).length, 1);
    assert.equal(r.finishes, 1);
  });

  it(
    'a cron task fires once per slot with two core processes, survives a restart of one, and stops when cancelled',
    {
      timeout: 90_000,
    },
    async () => {
      const quiet = createLogger({ service: 'core', level: 'error' });
      quiet.silent = true;
      // a second core process on the same database and Redis prefix
      const replica: CoreHandle = await startCore(loadConfig(s.env), quiet, { host: '127.0.0.1', port: 0 });
      const redis = new Redis(REDIS_URL);
      const q = new Queue(QueueName.Automations, { connection: redis, prefix: s.prefix });
      try {
        const created = await api(s, 'POST', '/api/v1/tasks', {
          text: 'tick',
          cron: '*/2 * * * * *',
          timezone: 'UTC',
          chat: { platform: 'telegram', id: '7200' },
        });
        assert.equal(created.status, 201, created.text);
        const id: string = created.json.id;
        assert.equal(created.json.kind, 'cron');
        assert.equal(created.json.created_by, 'admin-token');

        await until('three firings', () => (repliesOf(id).length >= 3 ? true : undefined), 20_000);
        await s.restartCore();
        const afterRestart = repliesOf(id).length;
        await until(
          'three firings after a restart',
          () => (repliesOf(id).length >= afterRestart + 3 ? true : undefined),
          20_000,
        );

        // a firing delivered a second time (another job for the same slot) runs no second time
        const first = repliesOf(id)[0]!;
        const firstSlot = first.reply_id.split('/')[2]!;
        const dup = await q.add('task', { taskId: id, slot: firstSlot }, { jobId: `dup-${id}` });
        const handled = await until('the second delivery to be handled', async () => {
          const job = await q.getJob(dup.id!);
          return (await job?.getState()) === 'completed' ? job : undefined;
        });
        assert.equal(handled!.returnvalue, 'already-ran');
        assert.equal(first.finishes, 1);

        const cancelled = await api(s, 'DELETE', `/api/v1/tasks/${id}`);
        assert.equal(cancelled.status, 200, cancelled.text);
        assert.equal(cancelled.json.status, 'cancelled');
        const { rows: at } = await s.core.db.query<{ now: Date }>('SELECT now() AS now');
        // a firing in flight when it was cancelled may still finish: let it, then watch for any new one
        await sleep(4500);

        const seen = repliesOf(id);
        const slots = seen.map((r) => Number(r.reply_id.split('/')[2]));
        assert.equal(new Set(slots).size, seen.length);
        for (const r of seen) {
          assert.equal(r.finishes, 1, `${r.reply_id} shown ${r.finishes} times`);
          assert.equal(r.text, '⏰ tick');
          assert.equal(r.chat, '7200');
        }
        for (const slot of slots) assert.equal(slot % 2000, 0, `slot ${slot} is on the schedule`);
        const { rows } = await s.core.db.query<{ slot: string; status: string; started_at: Date }>(
          `SELECT slot, status, started_at FROM task_runs WHERE task_id = $1 ORDER BY slot`,
          [id],
        );
        assert.deepEqual(
          rows.map((x) => x.slot).sort(),
          slots.map(String).sort(),
          'one run per slot, each shown in the chat',
        );
        assert.ok(rows.every((x) => x.status === 'ok'));
        assert.deepEqual(
          rows.filter((x) => x.started_at > at[0]!.now).map((x) => x.slot),
          [],
          'nothing fired after the cancel',
        );
        const task = (await api(s, 'GET', `/api/v1/tasks/${id}`)).json;
        assert.equal(task.runs, seen.length);
        assert.equal(task.status, 'cancelled');
        assert.equal(await q.getJobScheduler(id), undefined, 'its scheduler is gone');
      } finally {
        await q.close();
        await redis.quit();
        await replica.shutdown(2000);
      }
    },
  );

  it(
    'a reminder whose Redis job was lost is restored from Postgres at restart',
    { timeout: 30_000 },
    async () => {
      const runAt = Date.now() + 3000;
      const created = await api(s, 'POST', '/api/v1/tasks', {
        text: 'water the plants',
        at: new Date(runAt).toISOString(),
        chat: { platform: 'telegram', id: '7300' },
      });
      assert.equal(created.status, 201, created.text);
      const id: string = created.json.id;
      const redis = new Redis(REDIS_URL);
      try {
        const keys = await redis.keys(`${s.prefix}:${QueueName.Automations}:*`);
        assert.ok(keys.length > 0);
        await redis.del(...keys);
      } finally {
        await redis.quit();
      }
      await s.restartCore();
      const r = await s.finished((x) => x.reply_id.startsWith(`task/${id}/`), 15_000);
      assert.equal(r.text, '⏰ water the plants');
      assert.ok(r.actions[0]!.seq / 1000 >= runAt, 'not before its time');
      await until('the task to be done', async () =>
        (await api(s, 'GET', `/api/v1/tasks/${id}`)).json.status === 'done' ? true : undefined,
      );
      assert.equal(repliesOf(id).length, 1);
      assert.equal(r.finishes, 1);
    },
  );

  it(
    'a firing whose process died mid-way runs again once its lease lapses, and shows once',
    { timeout: 20_000 },
    async () => {
      const runAt = Date.now() + 1500;
      const created = await api(s, 'POST', '/api/v1/tasks', {
        text: 'take the cake out',
        at: new Date(runAt).toISOString(),
        chat: { platform: 'telegram', id: '7350' },
      });
      assert.equal(created.status, 201, created.text);
      const id: string = created.json.id;
      // another process claimed this firing and died: its lease runs for 3 more seconds
      await s.core.db.query(
        `INSERT INTO task_runs(task_id, slot, status, lease_until) VALUES ($1, $2, 'running', now() + interval '3 seconds')`,
        [id, String(runAt)],
      );
      const leaseEnds = Date.now() + 3000;
      const r = await s.finished((x) => x.reply_id.startsWith(`task/${id}/`), 15_000);
      assert.equal(r.text, '⏰ take the cake out');
      assert.ok(
        r.actions[0]!.seq / 1000 >= leaseEnds - 100,
        'not while the other process might still run it',
      );
      const rows = await until('the firing to be recorded', async () => {
        const r = await s.core.db.query(`SELECT status, attempts FROM task_runs WHERE task_id = $1`, [id]);
        return r.rows[0]?.status === 'running' ? undefined : r.rows;
      });
      assert.deepEqual(rows, [{ status: 'ok', attempts: 2 }]);
      assert.equal(r.finishes, 1);
    },
  );

  it('/tasks lists a user’s tasks with their next run, and cancels by number', async () => {
    const { userId, ctx } = await chatUser('7400');
    await tool('schedule_task').run(
      { text: 'call Anna', at: `${Y}-03-01T09:00`, timezone: 'Asia/Shanghai' },
      ctx,
    );
    await tool('schedule_task').run({ text: 'weekly review', cron: '0 17 * * 5', action: 'prompt' }, ctx);
    const tasks = s.core.tasks;
    const list = await tasks.chatCommand({ userId, args: '', lang: 'en' });
    const lines = list.split('\n');
    assert.match(lines[0]!, /^Your scheduled tasks:/);
    assert.match(
      lines[1]!,
      /^1\. 💬 weekly review — 0 17 \* \* 5, next Friday, .+ 17:00 \(Europe\/Berlin\) \[[0-9a-f]{8}\]$/,
    );
    assert.match(
      lines[2]!,
      new RegExp(`^2\\. ⏰ call Anna — once, \\w+, 1 March ${Y} at 09:00 \\(Asia/Shanghai\\)`),
    );
    assert.match(
      await tasks.chatCommand({ userId, args: '', lang: 'zh' }),
      /^你的定时任务：\n1\. 💬 weekly review/,
    );

    assert.match(
      await tasks.chatCommand({ userId, args: 'cancel 2', lang: 'en' }),
      /^Cancelled: ⏰ call Anna/,
    );
    assert.match(await tasks.chatCommand({ userId, args: 'cancel 2', lang: 'en' }), /no active task "2"/);
    assert.match(await tasks.chatCommand({ userId, args: 'launch', lang: 'en' }), /^\/tasks lists/);
    const left = (await tasks.chatCommand({ userId, args: '', lang: 'en' })).split('\n');
    assert.match(left[1]!, /^1\. 💬 weekly review/);
    assert.doesNotMatch(left.join('\n'), /call Anna/);
    const id = /\[([0-9a-f]{8})\]/.exec(left[1]!)![1]!;
    assert.match(
      await tasks.chatCommand({ userId, args: `cancel ${id}`, lang: 'en' }),
      /^Cancelled: 💬 weekly review/,
    );
    assert.match(await tasks.chatCommand({ userId, args: '', lang: 'en' }), /You have no scheduled tasks/);
    const { other } = { other: await chatUser('7401') };
    assert.match(
      await tasks.chatCommand({ userId: other.userId, args: 'cancel 1', lang: 'en' }),
      /no active task/,
    );
  });

  it('refuses a user’s recurring task that would run more often than min_interval_s, and bad times', async () => {
    const { ctx } = await chatUser('7500');
    const refused = (args: Record<string, unknown>, re: RegExp) =>
      assert.rejects(tool('schedule_task').run(args, ctx), (err: unknown) => {
        assert.ok(err instanceof ToolError, String(err));
        assert.equal(err.code, 'invalid');
        assert.match(err.message, re);
        return true;
      });
    await refused(
      { text: 'spam', cron: '*/1 * * * *' },
      /every 1 minute; recurring tasks may run at most every 5 minutes/,
    );
    await refused({ text: 'spam', cron: '0,1 9 * * *' }, /every 1 minute/);
    await refused({ text: 'late', at: '2001-01-01T09:00' }, /in the past/);
    await refused({ text: 'when?', at: 'tomorrow at nine' }, /not a date and time/);
    await refused({ text: 'where?', at: `${Y}-01-01T09:00`, timezone: 'Mars/Olympus' }, /Unknown time zone/);
    await refused({ text: 'huh', cron: '61 * * * *' }, /not a valid cron expression/);
    // every five minutes is allowed
    const ok = JSON.parse(await tool('schedule_task').run({ text: 'fine', cron: '*/5 * * * *' }, ctx));
    assert.match(ok.confirmation, /^Recurring task .+ will first run on /);
    // an operator is held to the limit too; an admin is not (the two-core test)
    const op = (await api(s, 'POST', '/api/v1/keys', { name: `op ${tag()}`, role: 'operator' })).json;
    const r = await api(
      s,
      'POST',
      '/api/v1/tasks',
      { text: 'x', cron: '* * * * *', chat: { platform: 'telegram', id: '7500' } },
      op.key,
    );
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /at most every 5 minutes/);
  });

  it('enforces max_tasks_per_user', async () => {
    const { ctx } = await chatUser('7600');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        JSON.parse(await tool('schedule_task').run({ text: `r${i}`, at: `${Y}-01-0${i + 1}T09:00` }, ctx)).id,
      );
    await assert.rejects(tool('schedule_task').run({ text: 'one too many', at: `${Y}-02-01T09:00` }, ctx), {
      name: 'ToolError',
      message: /already have 3 active tasks/,
    });
    const listed = JSON.parse(await tool('list_tasks').run({}, ctx));
    assert.deepEqual(
      listed.tasks.map((t: any) => t.id),
      ids,
    );
    await tool('cancel_task').run({ id: ids[0]! }, ctx);
    await tool('schedule_task').run({ text: 'now it fits', at: `${Y}-02-01T09:00` }, ctx);
    // someone else's task cannot be cancelled through the tool
    const { ctx: other } = await chatUser('7601');
    await assert.rejects(tool('cancel_task').run({ id: ids[1]! }, other), /no active task/);
  });

  it('runs a workflow through the API: tool, prompt with {{previous}}, message; each step recorded', async () => {
    const before = s.mock.requests.length;
    const r = await api(s, 'POST', '/api/v1/workflows/daily-brief/run', {
      input: { tz: 'Asia/Tokyo', who: 'Mia' },
      wait: true,
    });
    assert.equal(r.status, 200, r.text);
    const run = r.json;
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
    assert.equal(run.trigger, 'api');
    assert.equal(run.started_by, 'admin-token');
    assert.deepEqual(
      run.steps.map((x: any) => [x.id, x.kind, x.status]),
      [
        ['clock', 'tool', 'ok'],
        ['note', 'prompt', 'ok'],
        ['step3', 'message', 'ok'],
      ],
    );
    assert.match(run.steps[0].output, /"time_zone":"Asia\/Tokyo"/);
    const asked = s.mock.requests.slice(before).map((x) => x.body.messages.at(-1).content);
    assert.equal(asked.length, 1);
    assert.equal(asked[0], `Comment on this time: ${run.steps[0].output}`);
    const message = await s.finished((x) => x.reply_id === `workflow/${run.id}/step3`);
    assert.equal(message.chat, '7100');
    assert.equal(message.text, `Brief for Mia: ${run.steps[1].output}`);
    assert.match(message.text, /^Brief for Mia: Mock reply: Comment on this time:/);

    const again = await api(s, 'GET', `/api/v1/workflows/runs/${run.id}`);
    assert.deepEqual(again.json.steps, run.steps);
    const list = await api(s, 'GET', '/api/v1/workflows/runs?workflow=daily-brief&status=succeeded');
    assert.ok(list.json.data.some((x: any) => x.id === run.id));
    // a run without waiting is queued and answered 202
    const queued = await api(s, 'POST', '/api/v1/workflows/daily-brief/run', { input: { tz: 'UTC' } });
    assert.equal(queued.status, 202);
    assert.ok(['queued', 'running', 'succeeded'].includes(queued.json.status));
    assert.equal((await api(s, 'POST', '/api/v1/workflows/nope/run', {})).status, 404);
  });

  it('a failing step stops the run: it fails and the later steps are skipped', async () => {
    const r = await api(s, 'POST', '/api/v1/workflows/broken/run', { wait: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'failed');
    assert.deepEqual(
      r.json.steps.map((x: any) => [x.id, x.status]),
      [
        ['step1', 'failed'],
        ['step2', 'skipped'],
        ['step3', 'skipped'],
      ],
    );
    assert.match(r.json.steps[0].error, /current_time: unknown time zone Not\/AZone/);
    assert.match(r.json.error, /^step step1 failed/);
    assert.equal(
      [...s.replies.values()].filter((x) => x.chat === '7101').length,
      0,
      'the message step was not sent',
    );
  });

  it('a run started from a chat (routing rule) sends its messages there, once per start', async () => {
    const chat = { platform: 'telegram' as const, id: '7800', type: 'direct' as const };
    const start = () =>
      s.core.workflows.start('echo', {
        trigger: 'route',
        input: { text: '{{previous}} hello' },
        chat,
        startedBy: 'telegram:7800',
        key: 'route/telegram/7800/1',
      });
    const run = await start();
    assert.equal((await start()).id, run.id, 'the same message starts one run');
    const r = await s.finished((x) => x.reply_id === `workflow/${run.id}/step1`);
    assert.equal(r.chat, '7800');
    // what is filled in is never read for templates again; unknown names stay as written
    assert.equal(r.text, 'You said: {{previous}} hello {{unknown}}');
    const done = await s.core.workflows.waitFor(run.id, 5000);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.trigger, 'route');

    const api1 = await api(s, 'POST', '/api/v1/workflows/echo/run', { input: { text: 'x' }, wait: true });
    assert.equal(api1.json.status, 'failed');
    assert.match(api1.json.steps[0].error, /has no `to` and the run was not started from a chat/);
  });

  it('the API: a user key sees and cancels only its own tasks and cannot run workflows', async () => {
    const user = (await api(s, 'POST', '/api/v1/keys', { name: `user ${tag()}`, role: 'user' })).json;
    const me = (await api(s, 'GET', '/api/v1/me', undefined, user.key)).json;
    const mine = await api(s, 'POST', '/api/v1/tasks', {
      user_id: me.user_id,
      text: 'yours',
      at: `${Y}-05-01T10:00:00Z`,
      chat: { platform: 'telegram', id: '7700' },
    });
    assert.equal(mine.status, 201, mine.text);
    const { userId: otherId } = await chatUser('7701');
    const theirs = await api(s, 'POST', '/api/v1/tasks', {
      user_id: otherId,
      text: 'not yours',
      at: `${Y}-05-01T10:00:00Z`,
      chat: { platform: 'telegram', id: '7701' },
    });
    assert.equal(theirs.status, 201);

    const listed = await api(s, 'GET', '/api/v1/tasks', undefined, user.key);
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.json.data.map((t: any) => t.id),
      [mine.json.id],
    );
    assert.equal((await api(s, 'GET', `/api/v1/tasks?user_id=${otherId}`, undefined, user.key)).status, 403);
    assert.equal((await api(s, 'GET', `/api/v1/tasks/${theirs.json.id}`, undefined, user.key)).status, 404);
    assert.equal(
      (await api(s, 'DELETE', `/api/v1/tasks/${theirs.json.id}`, undefined, user.key)).status,
      404,
    );
    const own = await api(s, 'DELETE', `/api/v1/tasks/${mine.json.id}`, undefined, user.key);
    assert.equal(own.status, 200);
    assert.equal(own.json.status, 'cancelled');
    assert.equal((await api(s, 'DELETE', `/api/v1/tasks/${mine.json.id}`, undefined, user.key)).status, 409);
    // reports only to a chat the key's user talks in
    const elsewhere = await api(
      s,
      'POST',
      '/api/v1/tasks',
      { text: 'spam', at: `${Y}-05-01T10:00:00Z`, chat: { platform: 'telegram', id: '7701' } },
      user.key,
    );
    assert.equal(elsewhere.status, 403);
    assert.equal((await api(s, 'POST', '/api/v1/workflows/daily-brief/run', {}, user.key)).status, 403);
    assert.equal((await api(s, 'GET', '/api/v1/workflows', undefined, user.key)).status, 403);
    assert.equal((await api(s, 'GET', '/api/v1/workflows/runs', undefined, user.key)).status, 403);
    // admins see everyone's, filtered
    const all = await api(s, 'GET', `/api/v1/tasks?user_id=${otherId}&status=active`);
    assert.deepEqual(
      all.json.data.map((t: any) => t.id),
      [theirs.json.id],
    );
    const bad = await api(s, 'POST', '/api/v1/tasks', { text: 'x', chat: { platform: 'telegram', id: '1' } });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /either a time \(at\)/);
  });

  it('every change and every workflow tool call is in the audit log', async () => {
    const run = (
      await api(s, 'POST', '/api/v1/workflows/daily-brief/run', { input: { tz: 'UTC' }, wait: true })
    ).json;
    for (const kind of ['task.create', 'task.cancel', 'workflow.run']) {
      const r = await api(s, 'GET', `/api/v1/audit?kind=${kind}`);
      assert.ok(r.json.data.length > 0, `${kind} audited`);
    }
    const started = (await api(s, 'GET', '/api/v1/audit?kind=workflow.run')).json.data.find(
      (e: any) => e.detail.run_id === run.id,
    );
    assert.equal(started.actor, 'admin-token');
    const calls = (await api(s, 'GET', '/api/v1/audit?kind=tool.call&limit=1000')).json.data.filter(
      (e: any) => e.detail.workflow_run === run.id,
    );
    assert.equal(calls.length, 1);
    assert.equal(calls[0].actor, 'workflow:daily-brief');
    assert.equal(calls[0].outcome, 'ok');
    assert.equal(calls[0].detail.tool, 'current_time');
    assert.equal(calls[0].detail.approved_by, 'workflow:daily-brief');
    assert.deepEqual(calls[0].detail.arguments, { timezone: 'UTC' });
  });

  it(
    'a workflow schedule becomes a config task at start, follows the file, and lists with the workflows',
    {
      timeout: 30_000,
    },
    async () => {
      const configTask = async () =>
        (await api(s, 'GET', '/api/v1/tasks?status=active')).json.data.find((t: any) => t.name === 'nightly');
      const task = await configTask();
      assert.ok(task, 'the nightly schedule is a task');
      assert.deepEqual(
        [task.created_by, task.kind, task.cron, task.timezone, task.action, task.workflow],
        ['config', 'cron', '0 3 * * *', 'Asia/Shanghai', 'workflow', 'nightly'],
      );
      assert.equal(new Date(task.next_run_at).getUTCHours(), 19, '03:00 in Shanghai');
      const wf = (await api(s, 'GET', '/api/v1/workflows')).json.data;
      assert.deepEqual(
        wf.map((w: any) => w.name),
        ['broken', 'daily-brief', 'echo', 'nightly'],
      );
      const nightly = wf.find((w: any) => w.name === 'nightly');
      assert.deepEqual(nightly.schedule, { cron: '0 3 * * *', timezone: 'Asia/Shanghai' });
      assert.equal(nightly.next_run_at, task.next_run_at);
      assert.deepEqual(wf.find((w: any) => w.name === 'daily-brief').steps[0], {
        id: 'clock',
        kind: 'tool',
        tool: 'current_time',
        args: { timezone: '{{input.tz}}' },
        on_error: 'stop',
      });
      const refused = await api(s, 'DELETE', `/api/v1/tasks/${task.id}`);
      assert.equal(refused.status, 409);
      assert.match(refused.json.error.message, /schedule in workflows\.yaml/);
      const redis = new Redis(REDIS_URL);
      const q = new Queue(QueueName.Automations, { connection: redis, prefix: s.prefix });
      try {
        assert.equal((await q.getJobScheduler(task.id))?.pattern, '0 3 * * *');

        // the file changes: the same task follows it; a schedule taken out cancels it
        const file = path.join(s.configDir, 'workflows.yaml');
        const changed = structuredClone(WORKFLOWS) as any;
        changed.workflows.nightly.schedule = { cron: '30 4 * * *', timezone: 'Asia/Shanghai' };
        writeFileSync(file, stringify(changed));
        await s.restartCore();
        const updated = await configTask();
        assert.equal(updated.id, task.id);
        assert.equal(updated.cron, '30 4 * * *');
        assert.equal((await q.getJobScheduler(task.id))?.pattern, '30 4 * * *');
        delete changed.workflows.nightly.schedule;
        writeFileSync(file, stringify(changed));
        await s.restartCore();
        assert.equal(await configTask(), undefined);
        assert.equal((await api(s, 'GET', `/api/v1/tasks/${task.id}`)).json.status, 'cancelled');
        assert.equal(await q.getJobScheduler(task.id), undefined);
        writeFileSync(file, stringify(WORKFLOWS));
      } finally {
        await q.close();
        await redis.quit();
      }
    },
  );

  it('a workflow step naming a tool core does not have stops core at start, naming workflow, step and tool', async () => {
    const dir = writeConfigDir({ system: { redis_prefix: `${s.prefix}-bad` } });
    writeFileSync(
      path.join(dir, 'workflows.yaml'),
      stringify({ workflows: { nightly: { steps: [{ id: 'fetch', tool: 'no_such_tool' }] } } }),
    );
    const child = spawn(process.execPath, ['--conditions=pincer-source', main], {
      env: { PATH: process.env.PATH, ...s.env, PINCER_CONFIG_DIR: dir, PORT: '0', LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    assert.equal(code, 1, out);
    assert.match(
      out,
      /workflow "nightly", step "fetch": there is no tool "no_such_tool" \(known: current_time/,
    );
  });
});
