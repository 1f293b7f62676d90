import { runService } from '@pincer/shared';
import { loadConfig } from './config.ts';
import { startCore } from './core.ts';

await runService('core', () => loadConfig(), startCore);
