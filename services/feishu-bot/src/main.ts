import { runService } from '@pincer/shared';
import { startBot } from './bot.ts';
import { loadConfig } from './config.ts';

await runService('feishu-bot', () => loadConfig(), startBot);
