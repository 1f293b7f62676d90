// Public shapes of the emulator: what tests, the benchmark and the local stack program against.

export interface FeishuEmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (an ephemeral port). */
  port?: number;
  /** Default 'cli_' + 16 hex (the SDK's WSClient ignores ids not matching /^cli_[0-9a-fA-F]{16}$/). */
  appId?: string;
  appSecret?: string;
  verificationToken?: string;
  /** Undefined: webhook pushes are plaintext and unsigned. */
  encryptKey?: string;
  /** Default open_id 'ou_' + 32 hex. */
  bot?: { open_id?: string; app_name?: string };
  /** Tenant token lifetime in seconds, default 7200. */
  tokenTtlSec?: number;
  /** Webhook HTTP 200 / long-connection ack deadline, default 3000 ms. */
  ackTimeoutMs?: number;
  /** The compressed 15 s / 5 min / 1 h / 6 h redelivery schedule, default [300, 1000, 2000, 4000]. */
  redeliveryDelaysMs?: number[];
  /** Default ON: 5/s per chat (230020), 5/s per message PATCH (230020), 10/s per card, 50/s per API (HTTP 429, 99991400). */
  limits?: false | { chatQps?: number; messagePatchQps?: number; cardOpsPerSec?: number; appQps?: number };
  /** Events whose JSON is larger than this travel in several frames; default 4096 bytes. */
  wsFragmentBytes?: number;
  /** CardKit streaming mode closes by itself this long after it was switched on; default 10 min. */
  streamingTimeoutMs?: number;
  /**
   * Group messages pushed to the app: 'all' (the app holds the read-all-group-messages scope, the default)
   * or 'mentions' (only messages that @mention the bot, like an app without that scope).
   */
  groupMessages?: 'all' | 'mentions';
  /** ClientConfig handed to long-connection clients (seconds). Defaults favour tests: quick reconnects. */
  wsClientConfig?: Partial<WsClientConfig>;
}

export interface WsClientConfig {
  PingInterval: number;
  ReconnectCount: number;
  ReconnectInterval: number;
  ReconnectNonce: number;
}

export type EventTarget = { webhook: string } | { ws: true };

export interface FeishuEmulator {
  /** The domain to give the SDK. */
  url: string;
  appId: string;
  appSecret: string;
  verificationToken: string;
  encryptKey?: string;
  tenantKey: string;
  bot: { open_id: string; app_name: string };
  /** Where events go: a webhook URL (HTTP pushes) or the long connection (held until a client connects). */
  setEventTarget(target: EventTarget): void;
  /** A scripted user posts a message; returns the ids of the pushed event, the message and its chat. */
  userSend(input: UserMessageInput): { event_id: string; message_id: string; chat_id: string };
  botAddedToGroup(chat: { id: string; name?: string }, operator: { open_id: string }): { event_id: string };
  /** Push an event again: the same event_id (a redelivery), or the same message under a new event_id. */
  duplicate(eventId: string, opts?: { newEventId?: boolean }): { event_id: string };
  /** Recall a message (later edits fail with 230011). */
  recall(messageId: string): void;
  /** Delete a message (later edits fail with 230110, reactions with 231003). */
  delete(messageId: string): void;
  /** Invalidate every tenant token issued so far. */
  expireTokens(): void;
  /** Close every long connection (the SDK reconnects). */
  dropConnections(): void;
  wsConnections(): number;
  chat(chatId: string): ChatView;
  calls: CallRecord[];
  deliveries: DeliveryRecord[];
  inject(fault: Fault): void;
  clearFaults(): void;
  /** Re-evaluated on every state change and every 20 ms; rejects after timeoutMs (default 5000). */
  waitFor<T>(fn: () => T | undefined | null | false, timeoutMs?: number, what?: string): Promise<T>;
  /** The envelope a user message would be pushed as, without storing or pushing it. */
  messageEnvelope(input: UserMessageInput): EventEnvelope;
  /** A webhook request exactly as the platform would send it (encrypted and signed when encryptKey is set), optionally tampered. */
  buildWebhookRequest(envelope: object, opts?: { tamper?: WebhookTamper }): WebhookRequest;
  /** Send the url_verification challenge to a URL; resolves with whether the challenge came back. */
  verifyUrl(url: string): Promise<boolean>;
  close(): Promise<void>;
}

export type WebhookTamper = 'signature' | 'token' | 'timestamp';

export interface WebhookRequest {
  headers: Record<string, string>;
  body: string;
}

export interface UserMessageInput {
  /** id default: the sender's p2p chat with the bot; groups need an id. */
  chat: { id?: string; type: 'p2p' | 'group'; name?: string };
  sender: { open_id: string; union_id?: string; user_id?: string; name?: string };
  /** Plain text; mentions are written as @name and listed in `mentions`. */
  text?: string;
  mentions?: Array<{ open_id: string; name: string }>;
  mentionAll?: boolean;
  /** Rich text (tags text, a, at, img, media, code_block, md, emotion, hr). */
  post?: { title?: string; content: unknown[][] };
  image?: boolean;
  file?: { file_name: string };
  root_id?: string;
  parent_id?: string;
  thread_id?: string;
  /** Milliseconds; default now. */
  create_time?: number;
}

export interface ShownMessage {
  message_id: string;
  msg_type: string;
  /** Parsed content JSON (for interactive: the card; for a CardKit card its current state). */
  content: unknown;
  from_bot: boolean;
  sender?: string;
  root_id?: string;
  parent_id?: string;
  thread_id?: string;
  reply_in_thread?: boolean;
  uuid?: string;
  updates: number;
  deleted: boolean;
  recalled: boolean;
  create_time: number;
  card?: {
    card_id: string;
    streaming_mode: boolean;
    summary?: string;
    /** element_id → current content of markdown / plain_text elements. */
    elements: Record<string, string>;
    sequence: number;
    contentUpdates: number;
  };
  /** What the user reads, flattened. */
  text: string;
}

export interface ChatView {
  id: string;
  type: 'p2p' | 'group';
  messages: ShownMessage[];
  botMessages: ShownMessage[];
  reactions: Array<{ message_id: string; reaction_id: string; emoji_type: string; deleted: boolean }>;
}

export type FaultApi =
  | 'message.create'
  | 'message.reply'
  | 'message.patch'
  | 'message.update'
  | 'message.delete'
  | 'message.get'
  | 'reaction.create'
  | 'reaction.delete'
  | 'card.create'
  | 'card.element.content'
  | 'card.settings'
  | 'card.update'
  | 'bot.info'
  | 'token'
  | 'ws.endpoint';

export type FaultKind =
  'rate_limit' | 'frequency' | 'token_invalid' | 'server_error' | 'card_failed' | 'api_unavailable';

/** `api` omitted: any business API (not the token or long-connection endpoints). `times` default 1; Infinity persists. */
export type Fault =
  | { kind: 'rate_limit'; api?: FaultApi | string; times?: number; resetSec?: number }
  | { kind: 'frequency'; api?: FaultApi | string; times?: number }
  | { kind: 'token_invalid'; api?: FaultApi | string; times?: number }
  | { kind: 'server_error'; api?: FaultApi | string; times?: number }
  | { kind: 'card_failed'; api?: FaultApi | string; times?: number }
  | { kind: 'api_unavailable'; api?: FaultApi | string; times?: number };

export interface CallRecord {
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  /** Short key of the endpoint ('message.create', …), or 'unknown'. */
  api: string;
  body: unknown;
  /** What a successful call answered in `data` (a created card's id, say). */
  data?: unknown;
  at: number;
  status: number;
  code: number;
  ms: number;
}

export interface DeliveryRecord {
  event_id: string;
  event_type: string;
  /** 0 for the first push, 1… for redeliveries. */
  attempt: number;
  transport: 'webhook' | 'ws';
  /** Webhook: the HTTP status (0 when no answer in time). Long connection: the ack's code (0 when none in time). */
  status: number;
  ok: boolean;
  ms: number;
  at: number;
  error?: string;
  /** Set on the record of the last failed attempt when no redelivery is left. */
  gaveUp?: boolean;
}

export interface EventEnvelope {
  schema: '2.0';
  header: {
    event_id: string;
    event_type: string;
    create_time: string;
    token: string;
    app_id: string;
    tenant_key: string;
  };
  event: Record<string, unknown>;
}
