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
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];

/** The default Redis key prefix of every Pincer queue and key (config `system.redis_prefix`). */
export const DEFAULT_REDIS_PREFIX = 'pincer';
