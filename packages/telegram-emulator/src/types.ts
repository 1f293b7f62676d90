// Public shapes of the emulator. Bot API objects (Message, Update, MessageEntity) are plain JSON
// records typed loosely on purpose: tests compare them with what the real API would send.

/* eslint-disable @typescript-eslint/no-explicit-any */

export interface FloodOptions {
  /** Sustained messages per second into one chat (default 1). */
  perChatPerSec?: number;
  /** Messages one chat tolerates in a burst before the rate applies (default 3). */
  perChatBurst?: number;
  /** Messages per minute into one group or supergroup (default 20). */
  perGroupPerMin?: number;
  /** Messages per second across all chats (default 30). */
  globalPerSec?: number;
}

export interface TelegramEmulatorOptions {
  host?: string;
  port?: number;
  token?: string;
  bot?: { id?: number; username?: string; first_name?: string };
  privacyMode?: boolean;
  flood?: false | FloodOptions;
  /** Delay before each retry of a failed webhook push; the last one repeats while the update is pending. */
  webhookRetryDelaysMs?: number[];
  /** How long the pusher waits for the webhook to answer before counting a failure (default 60000). */
  webhookTimeoutMs?: number;
  /** Oldest call records are dropped beyond this many (default 100000); `seq` keeps counting. */
  maxCallRecords?: number;
}

export interface UserInput {
  id: number;
  first_name?: string;
  last_name?: string;
  username?: string;
  language_code?: string;
  is_bot?: boolean;
}

export interface ChatInput {
  id: number;
  type: 'private' | 'group' | 'supergroup';
  title?: string;
  is_forum?: boolean;
}

export interface UserMessageInput {
  chat: ChatInput;
  from: UserInput;
  text?: string;
  entities?: any[];
  caption?: string;
  photo?: boolean;
  document?: { file_name?: string; mime_type?: string; file_size?: number };
  voice?: { duration?: number };
  message_thread_id?: number;
  reply_to_message_id?: number;
  date?: number;
}

export interface ShownMessage {
  message_id: number;
  from_bot: boolean;
  from?: UserInput;
  text: string;
  entities: any[];
  parse_mode?: string;
  raw?: string;
  reply_to_message_id?: number;
  message_thread_id?: number;
  edits: number;
  deleted: boolean;
  date: number;
  edit_date?: number;
  /** Set on service messages (new_chat_members, migrate_to_chat_id, forum_topic_created, …). */
  service?: string;
  /** Attachment kind when the message carries one. */
  attachment?: 'photo' | 'document' | 'voice';
  reply_markup?: any;
}

export interface DraftView {
  draft_id: number;
  text: string;
  entities: any[];
  message_thread_id?: number;
  at: number;
}

export interface ChatView {
  id: number;
  type: 'private' | 'group' | 'supergroup';
  messages: ShownMessage[];
  botMessages: ShownMessage[];
  /** ms timestamps of sendChatAction with action "typing". */
  typing: number[];
  /** Every chat action in order (typing included). */
  actions: { action: string; at: number; message_thread_id?: number }[];
  /** sendMessageDraft calls in order. */
  drafts: DraftView[];
  blocked: boolean;
  migrated_to_chat_id?: number;
}

export interface CallRecord {
  /** Position of this call among every call ever recorded (survives trimming of `calls`). */
  seq: number;
  method: string;
  params: Record<string, unknown>;
  /** ms timestamp when the request arrived. */
  at: number;
  ok: boolean;
  error_code?: number;
  description?: string;
  /** The injected fault that shaped this call, if any. */
  fault?: Fault['kind'];
  /** 'webhook_reply' when the call came back in a webhook response body. */
  via?: 'http' | 'webhook_reply';
}

export type Fault =
  | { kind: 'server_error'; method?: string; chatId?: number; times?: number; status?: number }
  | { kind: 'timeout_after_commit'; method?: string; chatId?: number; times?: number }
  | { kind: 'flood'; method?: string; chatId?: number; times?: number; retryAfter?: number }
  | { kind: 'drop_connection'; method?: string; chatId?: number; times?: number };

export interface EmulatorState {
  url: string;
  bot: { id: number; username: string; first_name: string };
  pending_updates: number;
  next_update_id: number;
  webhook?: WebhookView;
  long_poll_waiting: boolean;
  chats: number;
  calls: number;
  faults: Fault[];
}

export interface WebhookView {
  url: string;
  secret_token?: string;
  max_connections: number;
  allowed_updates?: string[];
  in_flight: number;
  last_error_date?: number;
  last_error_message?: string;
  delivered: number;
}

export interface TelegramEmulator {
  url: string;
  token: string;
  bot: { id: number; username: string; first_name: string };
  userSend(input: UserMessageInput): { message: any; update_id?: number };
  userEdit(chatId: number, messageId: number, text: string): { update_id?: number };
  /** A user presses an inline button under a bot message (callback_query update; answerCallbackQuery accepts its id). */
  userPress(
    chatId: number,
    messageId: number,
    data: string,
    from?: UserInput,
  ): { id: string; update_id?: number };
  addBotToGroup(chat: ChatInput, by: UserInput): void;
  blockBot(userId: number): void;
  migrateGroup(chatId: number): number;
  chat(chatId: number): ChatView;
  calls: CallRecord[];
  inject(fault: Fault): void;
  clearFaults(): void;
  waitFor<T>(fn: () => T | undefined | null | false, timeoutMs?: number, what?: string): Promise<T>;
  pendingUpdates(): number;
  webhook(): { url: string; secret_token?: string } | undefined;
  state(): EmulatorState;
  close(): Promise<void>;
}
