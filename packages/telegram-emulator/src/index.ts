export { startTelegramEmulator } from './server.ts';
export { parseFormatted } from './formatting/index.ts';
export type {
  CallRecord,
  ChatInput,
  ChatView,
  DraftView,
  EmulatorState,
  Fault,
  FloodOptions,
  ShownMessage,
  TelegramEmulator,
  TelegramEmulatorOptions,
  UserInput,
  UserMessageInput,
  WebhookView,
} from './types.ts';
