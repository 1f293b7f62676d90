import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '@pincer/shared';
import {
  startTelegramEmulator,
  type TelegramEmulator,
  type TelegramEmulatorOptions,
} from '@pincer/telegram-emulator';
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
import { type AdapterHandle, startAdapter } from '../src/adapter.ts';
import { loadConfig } from '../src/config.ts';

export interface TelegramStack {
  stack: Stack;
  emu: TelegramEmulator;
  adapter: AdapterHandle;
  env: Record<string, string>;
  logs: string[];
  /** Stops the adapter (as a deploy or crash would) and starts a new one with the same settings. */
  restartAdapter(between?: () => Promise<void>): Promise<void>;
  stopAdapter(): Promise<void>;
  startAdapter(): Promise<void>;
  close(): Promise<void>;
}

export interface TelegramStackOptions {
  emulator?: TelegramEmulatorOptions;
  mode?: 'polling' | 'webhook';
  /** The `telegram:` section of config.yaml for the adapter. */
  telegram?: Record<string, unknown>;
  stack?: StackOptions;
}

/** mock model → llm-proxy → core (own database and Redis prefix) → the real Telegram adapter → the emulator. */
export async function startTelegramStack(o: TelegramStackOptions = {}): Promise<TelegramStack> {
  const stack = await startStack({ models: bigModels, ...o.stack, fakeAdapters: ['feishu'] });
  const emu = await startTelegramEmulator({ privacyMode: false, ...o.emulator });
  const dir = mkdtempSync(path.join(tmpdir(), 'pincer-tg-'));
  writeFileSync(
    path.join(dir, 'config.yaml'),
    stringify({
      system: { redis_prefix: stack.prefix },
      telegram: {
        poll_timeout_s: 2,
        edit_interval_ms: { direct: 300, group: 600 },
        typing_interval_ms: 1000,
        ...o.telegram,
      },
    }),
  );
  const mode = o.mode ?? 'polling';
  const port = await freePort();
  const secret = 'webhook-secret-0123456789';
  const env: Record<string, string> = {
    REDIS_URL,
    PINCER_CONFIG_DIR: dir,
    TELEGRAM_BOT_TOKEN: emu.token,
    TELEGRAM_API_ROOT: emu.url,
    TELEGRAM_MODE: mode,
    PORT: String(port),
    ...(mode === 'webhook'
      ? {
          TELEGRAM_WEBHOOK_URL: `http://127.0.0.1:${port}/webhook/telegram`,
          TELEGRAM_WEBHOOK_SECRET: secret,
        }
      : {}),
  };
  const config = loadConfig(env);
  const log = createLogger({ service: 'telegram-adapter', level: 'debug', secrets: [...config.secrets] });
  const logs = captureLogs(log);
  const adapter = await restartable('adapter', () => startAdapter(config, log, { host: '127.0.0.1', port }));
  return {
    stack,
    emu,
    get adapter() {
      return adapter.current;
    },
    env,
    logs,
    stopAdapter: adapter.stop,
    startAdapter: adapter.start,
    restartAdapter: adapter.restart,
    async close() {
      await adapter.close();
      await emu.close();
      await stack.close();
    },
  };
}

let nextId = 5_000_000 + Math.floor(Math.random() * 1_000_000);
/** A fresh Telegram user id (tests never share users or chats). */
export function newUserId(): number {
  return nextId++;
}
