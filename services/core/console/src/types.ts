// The shapes of core's REST API as the console reads them (services/core/src/http/routes/*).

export type Role = 'admin' | 'operator' | 'auditor' | 'user';

export interface Me {
  id: string;
  name: string;
  role: Role;
  user_id: number;
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export interface Conversation {
  id: string;
  platform: string;
  chat_id: string;
  chat_type: 'direct' | 'group';
  user_id: number | null;
  user_display_name: string | null;
  title: string;
  model: string | null;
  active: boolean;
  created_at: string;
  updated_at: string;
  message_count: number;
}

export interface Message {
  id: number;
  role: 'user' | 'assistant' | 'system';
  content: string;
  status: string;
  model: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  latency_ms: number | null;
  ttft_ms: number | null;
  created_at: string;
}

export interface ChatResult {
  conversation_id: string;
  message_id: number;
  reply: {
    content: string;
    status: 'complete' | 'stopped' | 'failed';
    model: string | null;
    usage: { prompt_tokens: number; completion_tokens: number } | null;
    latency_ms: number;
    ttft_ms: number | null;
  };
}

export interface Model {
  id: string;
  name: string;
  provider: string;
  context_window: number;
  max_tokens: number;
  capabilities: string[];
  aliases: string[];
  default: boolean;
  fallbacks: string[];
}

export interface UpstreamNode {
  id: string;
  url: string;
  in_flight: number;
  max_concurrency: number;
  probe: 'up' | 'down' | 'unknown';
  breaker: 'closed' | 'open' | 'half_open' | (string & {});
  consecutive_failures: number;
  last_error: string | null;
  latency_ms: number;
  requests: number;
}

export interface ModelList {
  data: Model[];
  upstreams: null | { id: string; nodes: UpstreamNode[] }[];
  proxy_error?: string;
}

export interface PairingRequest {
  id: string;
  platform: string;
  external_id: string;
  display_name: string;
  code: string;
  status: 'pending' | 'approved' | 'denied' | 'expired';
  created_at: string;
  expires_at: string;
  decided_at: string | null;
  decided_by: string | null;
}

export interface User {
  id: number;
  display_name: string;
  created_at: string;
  updated_at: string;
  identities: {
    platform: string;
    external_id: string;
    display_name: string;
    username: string | null;
    approved: boolean;
    created_at: string;
  }[];
}

export interface ApiKey {
  id: string;
  name: string;
  role: Role;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface NewApiKey {
  id: string;
  name: string;
  role: Role;
  created_at: string;
  key: string;
}

export type DocumentStatus = 'queued' | 'extracting' | 'embedding' | 'ready' | 'failed';

export interface KbDocument {
  id: number;
  title: string;
  source: 'text' | 'file';
  filename: string | null;
  format: string;
  bytes: number;
  status: DocumentStatus;
  error: string | null;
  progress: { chunks_total: number; chunks_done: number; percent: number };
  chunk_count: number;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

export interface DocumentList {
  data: KbDocument[];
  next_before: number | null;
  totals: { documents: number; chunks: number; by_status: Record<string, number> };
}

export interface AuditEntry {
  id: number;
  at: string;
  kind: string;
  actor: string | null;
  user_id: number | null;
  platform: string | null;
  conversation_id: string | null;
  model: string | null;
  duration_ms: number | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  outcome: string;
  detail: Record<string, unknown> | null;
  content: string | null;
}

export interface ConfigRoute {
  index: number;
  match: null | {
    platforms: string[] | null;
    chat_type: string | null;
    content: string | null;
    commands: string[] | null;
    event: string | null;
  };
  action: string;
  model: string | null;
  /** The rule's own system prompt, if it has one. */
  system_prompt: string | null;
  knowledge: boolean;
}

export interface ConfigView {
  loaded_at: string;
  source: { dir: string };
  routes: ConfigRoute[];
  settings: Record<string, unknown>;
}

export interface ConfigProblem {
  file?: string;
  line?: number;
  path: string;
  message: string;
}

export interface ValidateResult {
  ok: boolean;
  problems: ConfigProblem[];
  changes: string[];
  restart_required: string[];
}
