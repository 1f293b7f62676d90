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

export type TaskStatus = 'active' | 'done' | 'cancelled' | 'failed';

export interface Task {
  id: string;
  /** workflows.yaml schedules: the workflow's name. */
  name: string | null;
  user_id: number | null;
  user_name: string | null;
  platform: string | null;
  chat_id: string | null;
  chat_type: 'direct' | 'group' | null;
  thread_id: string | null;
  kind: 'once' | 'cron';
  run_at: string | null;
  cron: string | null;
  timezone: string;
  action: 'remind' | 'prompt' | 'workflow';
  text: string;
  workflow: string | null;
  status: TaskStatus;
  created_by: string;
  runs: number;
  last_run_at: string | null;
  next_run_at: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface WorkflowStep {
  id: string;
  kind: 'tool' | 'prompt' | 'message';
  tool?: string;
  args?: Record<string, unknown>;
  prompt?: string;
  model?: string;
  message?: string;
  to?: { platform: string; chat_id: string; chat_type?: string; thread_id?: string };
  on_error: 'stop' | 'continue';
}

export interface Workflow {
  name: string;
  description: string;
  role: Role;
  schedule: { cron: string; timezone: string } | null;
  next_run_at: string | null;
  steps: WorkflowStep[];
}

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface RunStep {
  id: string;
  kind: 'tool' | 'prompt' | 'message';
  status: 'ok' | 'failed' | 'skipped';
  output: string;
  error: string | null;
  duration_ms: number;
}

export interface WorkflowRun {
  id: string;
  workflow: string;
  trigger: 'api' | 'schedule' | 'route';
  started_by: string;
  input: Record<string, unknown>;
  chat: { platform: string; id: string; type: string; thread_id?: string } | null;
  status: RunStatus;
  steps: RunStep[];
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired';

export interface Approval {
  id: string;
  tool: string;
  summary: string;
  requested_of: 'user' | 'operator';
  user_id: number | null;
  user_name: string | null;
  platform: string | null;
  chat_id: string | null;
  status: ApprovalStatus;
  created_at: string;
  expires_at: string;
  decided_at: string | null;
  decided_by: string | null;
}
