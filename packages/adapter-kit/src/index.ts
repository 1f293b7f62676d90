export { InboundPublisher } from './inbound.ts';
export { plainInline } from './markdown.ts';
export { Bucket, KeyedBuckets } from './pacing.ts';
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
export { TypingKeeper } from './typing.ts';
