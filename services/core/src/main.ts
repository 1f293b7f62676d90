import { ConfigError, createLogger } from '@pincer/shared';
import { loadConfig } from './config.ts';
import { SchemaNotReady, startCore } from './core.ts';

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`core: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

const log = createLogger({
  service: 'core',
  level: config.logLevel,
  format: config.logFormat,
  logContent: config.logContent,
  secrets: [...config.secrets],
});
process.on('unhandledRejection', (err) =>
  log.error('unhandled rejection', { error: (err as Error)?.message ?? String(err) }),
);

try {
  const core = await startCore(config, log);
  const stop = (signal: string) => {
    log.info('signal received', { signal });
    core.shutdown().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
} catch (err) {
  if (err instanceof SchemaNotReady) process.stderr.write(`core: ${err.message}\n`);
  log.error('core failed to start', { error: (err as Error).message });
  process.exit(1);
}
