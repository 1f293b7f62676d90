export { type AdapterHandle, AdapterProcess, type AdapterProcessOptions } from './adapter-process.ts';
export { ReplyBackoff } from './backoff.ts';
export { type AdapterConfigBase, AdapterSystemSettings, readAdapterConfig, unsetIfBlank } from './config.ts';
export { InboundPublisher } from './inbound.ts';
export { plainInline } from './markdown.ts';
export { API_LATENCY_BUCKETS, upGauge } from './metrics.ts';
export { Bucket, KeyedBuckets, waitForSlots } from './pacing.ts';
export { RecentMap } from './recent.ts';
export {
  type Desired,
  type Presenter,
  ReplyGone,
  type ReplyRunnerOptions,
  ReplyRunner,
  type ReplyTarget,
  RetryAfter,
  type ShowContext,
} from './replies.ts';
export { sameSecret } from './secret.ts';
export { TypingKeeper } from './typing.ts';
