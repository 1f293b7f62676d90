import { runService } from '@pincer/shared';
import { loadConfig } from './config.ts';
import { startProxy } from './proxy.ts';

await runService('llm-proxy', () => loadConfig(), startProxy);
