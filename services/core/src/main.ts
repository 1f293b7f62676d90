import { runService } from '@pincer/shared';
import { loadConfig } from './config.ts';
import { startCore } from './core.ts';

await runService(
  'core',
  () => loadConfig(),
  async (config, log) => {
    const core = await startCore(config, log);
    // `docker compose kill -s HUP core`: every replica gets the signal and reloads itself
    process.on('SIGHUP', () => {
      try {
        core.reloadConfig('SIGHUP');
      } catch (err) {
        log.error('configuration reload failed', { error: (err as Error).message });
      }
    });
    return core;
  },
);
