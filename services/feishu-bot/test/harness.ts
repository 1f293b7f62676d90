import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '@pincer/shared';
import {
  type FeishuEmulator,
  type FeishuEmulatorOptions,
  startFeishuEmulator,
} from '@pincer/feishu-emulator';
import { stringify } from 'yaml';
import {
  bigModels,
  captureLogs,
  freePort,
  REDIS_URL,
  type Stack,
  type StackOptions,
  startStack,
} from '../../core/test/stack.ts';
import { restartable } from '../../../packages/adapter-kit/test/restartable.ts';
import { type BotHandle, startBot } from '../src/bot.ts';
import { loadConfig } from '../src/config.ts';

export interface FeishuStack {
  stack: Stack;
  emu: FeishuEmulator;
  bot: BotHandle;
  env: Record<string, string>;
  logs: string[];
  webhookUrl: string;
  /** Stops the bot (as a deploy or crash would) and starts a new one with the same settings. */
  restartBot(between?: () => Promise<void>): Promise<void>;
  stopBot(): Promise<void>;
  startBot(): Promise<void>;
  close(): Promise<void>;
}

export interface FeishuStackOptions {
  emulator?: FeishuEmulatorOptions;
  mode?: 'ws' | 'webhook';
  /** The `feishu:` section of config.yaml for the bot. */
  feishu?: Record<string, unknown>;
  stack?: StackOptions;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/** mock model → llm-proxy → core (own database and Redis prefix) → the real Feishu bot → the emulator. */
export async function startFeishuStack(o: FeishuStackOptions = {}): Promise<FeishuStack> {
  const mode = o.mode ?? 'ws';
  const stack = await startStack({ models: bigModels, ...o.stack, fakeAdapters: ['telegram'] });
  const emu = await startFeishuEmulator({
    ...(mode === 'webhook' ? { encryptKey: 'encrypt-key-0123456789' } : {}),
    ...o.emulator,
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'pincer-fs-'));
  writeFileSync(
    path.join(dir, 'config.yaml'),
    stringify({ system: { redis_prefix: stack.prefix }, feishu: { ...o.feishu } }),
  );
  const port = await freePort();
  const webhookUrl = `http://127.0.0.1:${port}/webhook/feishu`;
  const env: Record<string, string> = {
    REDIS_URL,
    PINCER_CONFIG_DIR: dir,
    FEISHU_APP_ID: emu.appId,
    FEISHU_APP_SECRET: emu.appSecret,
    FEISHU_VERIFICATION_TOKEN: emu.verificationToken,
    ...(emu.encryptKey ? { FEISHU_ENCRYPT_KEY: emu.encryptKey } : {}),
    FEISHU_DOMAIN: emu.url,
    FEISHU_MODE: mode,
    PORT: String(port),
  };
  emu.setEventTarget(mode === 'webhook' ? { webhook: webhookUrl } : { ws: true });
  const config = loadConfig(env);
  const log = createLogger({
    service: 'feishu-bot',
    level: o.logLevel ?? 'debug',
    secrets: [...config.secrets],
  });
  const logs = captureLogs(log);
  const bot = await restartable('bot', () => startBot(config, log, { host: '127.0.0.1', port }));
  return {
    stack,
    emu,
    get bot() {
      return bot.current;
    },
    env,
    logs,
    webhookUrl,
    stopBot: bot.stop,
    startBot: bot.start,
    restartBot: bot.restart,
    async close() {
      await bot.close();
      await emu.close();
      await stack.close();
    },
  };
}

let nextId = Math.floor(Math.random() * 1e9);
/** A fresh open_id (tests never share users or chats). */
export function newUser(): string {
  return `ou_${(nextId++).toString(16).padStart(32, '0')}`;
}
/** A fresh group chat id. */
export function newGroup(): string {
  return `oc_${(nextId++).toString(16).padStart(32, '0')}`;
}
