import { runService } from '@pincer/shared';
import { startAdapter } from './adapter.ts';
import { loadConfig } from './config.ts';

await runService('telegram-adapter', () => loadConfig(), startAdapter);
