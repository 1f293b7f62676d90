import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { listen, type Logger } from '@pincer/shared';
import type { CoreConfig } from './config.ts';
import { createApp } from './http/app.ts';
import { automationsHandler } from './jobs/automations.ts';
import { inboundHandler } from './jobs/inbound.ts';
import { maintenanceHandler } from './jobs/maintenance.ts';
import { writeAudit } from './repositories/audit.ts';
import { createPool, type Db } from './repositories/db.ts';
import { LlmClient } from './repositories/llm.ts';
import { migrationStatus } from './repositories/migrations.ts';
import {
  automationsQueue,
  automationsWorker,
  inboundWorker,
  maintenanceQueue,
  maintenanceWorker,
  OutboundPublisher,
  QueueBacklog,
  redisConnection,
} from './repositories/queues.ts';
import { Signals } from './repositories/signals.ts';
import { TaskScheduler } from './services/automations.ts';
import { type ConfigCheck, ConfigManager } from './services/config-manager.ts';
import { Engine } from './services/engine.ts';
import { KnowledgeBase } from './services/knowledge.ts';
import { MemoryService } from './services/memory.ts';
import { PreparePool } from './services/prepare-pool.ts';
import { buildToolRegistry, loadToolPlugins } from './services/tools/index.ts';
import { createCoreMetrics } from './services/metrics.ts';
import { taskTools } from './services/tools/task-tools.ts';
import { WorkflowRunner } from './services/workflows.ts';

export interface CoreHandle {
  server: Server;
  url: string;
  engine: Engine;
  db: Db;
  knowledge: KnowledgeBase;
  memory: MemoryService;
  tasks: TaskScheduler;
  workflows: WorkflowRunner;
  configManager: ConfigManager;
  /** Reads the configuration files again and applies what can change without a restart (this process only). */
  reloadConfig(reason: string): ConfigCheck;
  shutdown(deadlineMs?: number): Promise<void>;
}

/** Starts core: checks the schema, then the inbound workers, the maintenance job and the HTTP API. */
export async function startCore(
  loaded: CoreConfig,
  log: Logger,
  opts: { host?: string; port?: number; workers?: boolean } = {},
): Promise<CoreHandle> {
  // first: a bad plugin stops core before it opens a connection or takes a job
  const plugins = loaded.tools.enabled ? await loadToolPlugins(loaded) : [];
  // every service holds the live object, so a reload reaches the next message
  const configManager = new ConfigManager(loaded, log);
  const config = configManager.live;
  const db = createPool(config.databaseUrl, config.maxConcurrency * 2 + 10);
  const status = await migrationStatus(db);
  if (status.pending.length || status.changed.length) {
    await db.end();
    const what = status.pending.length
      ? `${status.pending.length} migration(s) pending (${status.pending.map((m) => `${m.version}_${m.name}`).join(', ')}): run \`npm run migrate -w services/core\` (compose runs the migrate service first)`
      : `applied migration file(s) were edited afterwards: ${status.changed.join(', ')}`;
    throw new Error(`the database schema is not ready: ${what}`);
  }
  // the intake's idempotent writes commit without waiting for the WAL flush (see Engine.handleInbound)
  const intakeDb = createPool(config.databaseUrl, config.maxConcurrency + 2, { durable: false });
  const redis = redisConnection(config.redisUrl);
  const subscriber = redisConnection(config.redisUrl);
  const backlog = new QueueBacklog(redis, config.redisPrefix);
  const metrics = createCoreMetrics(() => backlog.counts());
  const llm = new LlmClient(config.llmProxyUrl, config.llmProxyKey);
  const outbound = new OutboundPublisher(redis, config.redisPrefix);
  const signals = new Signals(redis, subscriber, config.redisPrefix);
  await signals.start();
  const processId = randomUUID();
  const auditReload = (actor: string, result: ConfigCheck) =>
    writeAudit(db, {
      kind: 'config.reload',
      actor,
      outcome: result.ok ? 'ok' : 'invalid',
      detail: {
        changes: result.changes,
        restart_required: result.restart_required,
        problems: result.problems.length,
      },
    }).catch((err: Error) => log.warn('could not audit a configuration reload', { error: err.message }));
  signals.onConfigReload((origin) => {
    if (origin === processId) return;
    try {
      // a replica whose files differ or are invalid says so in its log and in the audit log
      void auditReload('core replica', configManager.reload('announced by another core process'));
    } catch (err) {
      log.error('configuration reload failed', { error: (err as Error).message });
    }
  });
  const prepare = new PreparePool();
  const knowledge = new KnowledgeBase({ db, llm, config, log, redis, prepare, metrics });
  const memory = new MemoryService({ db, llm, config, log, redis, metrics });
  // reminders and workflows share the automations queue; tasks give the model its schedule_task tools
  const automations = automationsQueue(redis, config.redisPrefix);
  const tasks = new TaskScheduler({ db, config, log, llm, outbound, queue: automations, metrics });
  const tools = await buildToolRegistry({
    config,
    memory,
    knowledge,
    log,
    plugins,
    extra: config.tools.builtin.tasks ? taskTools(tasks) : [],
  });
  // throws (core does not start) when a workflow step names a tool core does not have; what was
  // opened so far is closed first, so a caller in the same process is left with nothing running
  let workflows: WorkflowRunner;
  try {
    workflows = new WorkflowRunner({ db, config, log, llm, outbound, tools, queue: automations, metrics });
  } catch (err) {
    await Promise.allSettled([
      knowledge.close(),
      memory.close(),
      automations.close(),
      outbound.close(),
      backlog.close(),
      signals.close(),
    ]);
    await prepare.close().catch(() => {});
    redis.disconnect();
    await Promise.allSettled([db.end(), intakeDb.end()]);
    throw err;
  }
  const engine = new Engine({
    config,
    db,
    intakeDb,
    llm,
    outbound,
    signals,
    metrics,
    log,
    knowledge,
    memory,
    tools,
    tasks,
    workflows,
  });

  const workers: { close(force?: boolean): Promise<void> }[] = [];
  if (opts.workers !== false) {
    const inbound = inboundWorker(
      redis,
      config.redisPrefix,
      config.maxConcurrency,
      config.jobLockMs,
      inboundHandler(engine, metrics, log),
    );
    inbound.on('failed', (job, err) => {
      if (job && err.name !== 'DelayedError')
        log.warn('inbound job failed', { jobId: job.id, attempts: job.attemptsMade, error: err.message });
    });
    inbound.on('error', (err) => log.error('inbound worker error', { error: err.message }));
    const maintenance = maintenanceQueue(redis, config.redisPrefix);
    await maintenance.upsertJobScheduler('hourly', { every: 3_600_000 }, { name: 'upkeep' });
    const upkeep = maintenanceWorker(
      redis,
      config.redisPrefix,
      maintenanceHandler(db, config, log, () => knowledge.requeueUnfinished()),
    );
    upkeep.on('error', (err) => log.error('maintenance worker error', { error: err.message }));
    workers.push(inbound, upkeep);
    await maintenance.close();
    // Postgres is the record of tasks and runs: the queue is rebuilt from it (Redis may have lost it)
    await tasks
      .reconcile()
      .catch((err: Error) => log.error('could not reconcile scheduled tasks', { error: err.message }));
    await workflows
      .resumeUnfinished()
      .catch((err: Error) => log.error('could not resume workflow runs', { error: err.message }));
    const automationJobs = automationsWorker(
      redis,
      config.redisPrefix,
      config.maxConcurrency,
      automationsHandler({ tasks, workflows, log }),
    );
    automationJobs.on('failed', (job, err) => {
      if (job && err.name !== 'DelayedError')
        log.warn('automations job failed', { jobId: job.id, attempts: job.attemptsMade, error: err.message });
    });
    automationJobs.on('error', (err) => log.error('automations worker error', { error: err.message }));
    workers.push(automationJobs);
    knowledge.startWorker();
    memory.startWorker();
    knowledge
      .warm()
      .catch((err: Error) => log.warn('could not load the knowledge-base vectors', { error: err.message }));
    knowledge
      .requeueUnfinished()
      .catch((err: Error) => log.warn('could not re-queue unfinished ingestions', { error: err.message }));
  }

  const app = createApp({
    db,
    config,
    log,
    metrics: metrics.registry,
    chat: engine,
    knowledge,
    memory,
    tasks,
    workflows,
    configManager,
    reloadConfig: async (reason) => {
      const result = configManager.reload(reason);
      if (!result.ok) return result;
      try {
        await signals.announceConfigReload(processId);
        return { ...result, propagated: true };
      } catch (err) {
        log.warn('configuration reloaded here only: could not tell the other core processes', {
          error: (err as Error).message,
        });
        return { ...result, propagated: false };
      }
    },
    health: async () => {
      const [postgres, redisOk] = await Promise.all([
        db.query('SELECT 1').then(
          () => true,
          () => false,
        ),
        redis.ping().then(
          () => true,
          () => false,
        ),
      ]);
      return { postgres, redis: redisOk };
    },
  });
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, app);
  const boundPort = await listen(server, opts.port ?? config.port, opts.host ?? config.host);
  const url = `http://127.0.0.1:${boundPort}`;
  log.info('core listening', {
    port: boundPort,
    workers: opts.workers !== false,
    concurrency: config.maxConcurrency,
  });

  let closing: Promise<void> | undefined;
  const shutdown = (deadlineMs = 25_000) =>
    (closing ??= (async () => {
      log.info('core shutting down');
      engine.stopDraining();
      server.close();
      server.closeIdleConnections();
      // finish the replies in flight, up to the deadline; unfinished jobs are taken over by another process
      const closeWorkers = Promise.all(workers.map((w) => w.close()));
      const timedOut = await Promise.race([
        closeWorkers.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), deadlineMs).unref()),
      ]);
      if (timedOut) await Promise.all(workers.map((w) => w.close(true)));
      // workflow steps still in flight stop here; another process resumes their runs
      workflows.close();
      server.closeAllConnections();
      // the ingestion hands its document back first; only then may the preparer's thread go
      await Promise.all([knowledge.close(), memory.close()]);
      await prepare.close();
      await outbound.close();
      await automations.close();
      await backlog.close();
      await signals.close();
      await redis.quit().catch(() => redis.disconnect());
      await Promise.all([db.end(), intakeDb.end()]);
      log.info('core stopped');
    })());
  return {
    server,
    url,
    engine,
    db,
    knowledge,
    memory,
    tasks,
    workflows,
    configManager,
    reloadConfig: (reason) => {
      const result = configManager.reload(reason);
      void auditReload(reason, result);
      return result;
    },
    shutdown,
  };
}
