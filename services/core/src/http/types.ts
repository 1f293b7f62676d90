import type { Logger, prom } from '@pincer/shared';
import type { CoreConfig } from '../config.ts';
import type { Db } from '../repositories/db.ts';
import type { Role } from '../repositories/keys.ts';
import type { ConfigCheck, ConfigManager } from '../services/config-manager.ts';
import type { KnowledgeBase } from '../services/knowledge.ts';
import type { MemoryService } from '../services/memory.ts';
import type { TaskScheduler } from '../services/automations.ts';
import type { WorkflowRunner } from '../services/workflows.ts';

export interface RestChatRequest {
  caller: { userId: number; isAdmin: boolean; role: Role; name: string };
  /** Continue an existing REST ('api' platform) conversation. */
  conversationId?: string;
  model?: string;
  /** The new user message. */
  message?: string;
  /** Or a whole history (new conversation only); the last must be role user. */
  messages?: { role: 'system' | 'user' | 'assistant'; content: string }[];
  requestId: string;
  /** Told when a tool call waits for the caller's approval (POST /api/v1/approvals/:id/approve). */
  onApproval?: (a: { id: string; tool: string; summary: string; expires_at: string }) => void;
}

export interface RestChatResult {
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

export interface RestChat {
  /**
   * Answers one message. Streams text deltas through `onDelta` when given; throws AppError
   * (404 unknown conversation, 403 not the caller's, 400 bad input).
   */
  chat(
    req: RestChatRequest,
    onDelta: ((text: string) => void) | undefined,
    signal: AbortSignal,
    /** Called once the question is stored, before the model is asked. */
    onStart?: (ids: { conversation_id: string; message_id: number }) => void,
  ): Promise<RestChatResult>;
}

export interface HttpDeps {
  db: Db;
  config: CoreConfig;
  log: Logger;
  metrics: prom.Registry;
  health: () => Promise<{ postgres: boolean; redis: boolean }>;
  chat: RestChat;
  knowledge: KnowledgeBase;
  memory: MemoryService;
  /** Reminders and recurring tasks. */
  tasks: TaskScheduler;
  /** workflows.yaml: runs and their records. */
  workflows: WorkflowRunner;
  configManager: ConfigManager;
  /** The built web console (default: services/core/console/dist). */
  consoleDir?: string;
  /** Reloads this process's configuration and, when valid, tells the other core processes to do the same. */
  reloadConfig(reason: string): Promise<ConfigCheck>;
}

/** Who is calling: the bootstrap admin token or an API key, and the user it acts as. */
export interface Caller {
  /** API key id, or 'admin-token'. */
  id: string;
  /** Key name, recorded as the actor in the audit log. */
  name: string;
  role: Role;
  userId: number;
}
