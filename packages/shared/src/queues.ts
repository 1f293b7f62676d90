/**
 * Queue names: the contract between services. Values are never renamed — jobs in flight under an old
 * name would be stranded.
 */
export const QueueName = {
  Inbound: 'inbound',
  OutboundTelegram: 'outbound-telegram',
  OutboundFeishu: 'outbound-feishu',
  /** core's periodic jobs (audit retention, pairing expiry) */
  CoreMaintenance: 'core-maintenance',
  /** knowledge-base ingestion: one job per document version (extract, chunk, embed, index) */
  Knowledge: 'knowledge',
  /** long-term memory: extracting durable facts about a user from their recent exchanges */
  Memory: 'memory',
  /** scheduled tasks and reminders firing, and workflow runs */
  Automations: 'automations',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];

/** The default Redis key prefix of every Pincer queue and key (config `system.redis_prefix`). */
export const DEFAULT_REDIS_PREFIX = 'pincer';
