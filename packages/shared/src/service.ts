import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from './config.ts';
import { createLogger, type Logger, type LogLevel } from './logger.ts';

/** What every service's config offers the process runner. */
export interface ServiceConfigBase {
  logLevel: LogLevel;
  logFormat: 'json' | 'pretty';
  logContent: boolean;
  secrets: readonly string[];
}

/**
 * A service's process: load and validate config (every problem listed, exit 1, no stack trace),
 * the logger, then start; SIGTERM/SIGINT run the ordered shutdown; a failed start exits 1 saying why.
 */
export async function runService<C extends ServiceConfigBase>(
  name: string,
  load: () => C,
  start: (config: C, log: Logger) => Promise<{ shutdown(): Promise<void> }>,
): Promise<void> {
  let config: C;
  try {
    config = load();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${name}: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger({
    service: name,
    level: config.logLevel,
    format: config.logFormat,
    logContent: config.logContent,
    secrets: [...config.secrets],
  });
  process.on('unhandledRejection', (err) =>
    log.error('unhandled rejection', { error: (err as Error)?.message ?? String(err) }),
  );
  try {
    const service = await start(config, log);
    const stop = (signal: string) => {
      log.info('signal received', { signal });
      service.shutdown().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\n`);
    log.error(`${name} failed to start`, { error: (err as Error).message });
    process.exit(1);
  }
}

/** Starts a server listening; resolves with the bound port (port 0 picks a free one), rejects if it cannot bind. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
