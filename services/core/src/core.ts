import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { listen, type Logger } from '@pincer/shared';
import type { CoreConfig } from './config.ts';
import { createApp } from './http/app.ts';
import { inboundHandler } from './jobs/inbound.ts';
import { maintenanceHandler } from './jobs/maintenance.ts';
import { writeAudit } from './repositories/audit.ts';
import { createPool, type Db } from './repositories/db.ts';
import { LlmClient } from './repositories/llm.ts';
import { migrationStatus } from './repositories/migrations.ts';
import {
  inboundWorker,
  maintenanceQueue,
  maintenanceWorker,
  OutboundPublisher,
  QueueBacklog,
  redisConnection,
} from './repositories/queues.ts';
import { Signals } from './repositories/signals.ts';
import { type ConfigCheck, ConfigManager } from './services/config-manager.ts';
import { Engine } from './services/engine.ts';
import { KnowledgeBase } from './services/knowledge.ts';
import { MemoryService } from './services/memory.ts';
import { PreparePool } from './services/prepare-pool.ts';
import { createCoreMetrics } from './services/metrics.ts';

export interface CoreHandle {
  server: Server;
  url: string;
  engine: Engine;
  db: Db;
  knowledge: KnowledgeBase;
  memory: MemoryService;
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
      server.closeAllConnections();
      // the ingestion hands its document back first; only then may the preparer's thread go
      await Promise.all([knowledge.close(), memory.close()]);
      await prepare.close();
      await outbound.close();
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
    configManager,
    reloadConfig: (reason) => {
      const result = configManager.reload(reason);
      void auditReload(reason, result);
      return result;
    },
    shutdown,
  };
}
