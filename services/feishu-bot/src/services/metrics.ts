import { API_LATENCY_BUCKETS, upGauge } from '@pincer/adapter-kit';
import { createMetricsRegistry, prom } from '@pincer/shared';

/** Every metric the Feishu bot exposes (`pincer_feishu_` prefix). `up` feeds the reachability gauge. */
export function createMetrics(up?: () => boolean) {
  const registry = createMetricsRegistry('feishu-bot');
  const r = [registry];
  return {
    registry,
    events: new prom.Counter({
      name: 'pincer_feishu_events_total',
      help: 'Events received from Feishu, by type and what became of them (queued, ignored, duplicate, held = refused for redelivery while another intake holds it, stale, rejected)',
      labelNames: ['type', 'outcome'],
      registers: r,
    }),
    duplicates: new prom.Counter({
      name: 'pincer_feishu_duplicates_dropped_total',
      help: 'Events dropped because they were already handled, by the key that matched (event_id, message_id)',
      labelNames: ['key'],
      registers: r,
    }),
    stale: new prom.Counter({
      name: 'pincer_feishu_stale_dropped_total',
      help: 'Messages older than feishu.stale_after_s dropped unanswered (stale_policy: drop)',
      registers: r,
    }),
    webhookRejected: new prom.Counter({
      name: 'pincer_feishu_webhook_rejected_total',
      help: 'Webhook requests refused, by reason (signature, token, timestamp, malformed)',
      labelNames: ['reason'],
      registers: r,
    }),
    cards: new prom.Counter({
      name: 'pincer_feishu_cards_sent_total',
      help: 'Reply messages sent, by kind (cardkit, card = PATCHed card fallback, post, text)',
      labelNames: ['kind'],
      registers: r,
    }),
    updates: new prom.Counter({
      name: 'pincer_feishu_card_updates_total',
      help: 'Streamed updates of reply cards, by kind (cardkit content, cardkit settings, cardkit update: the last text and the end of streaming at once, patch)',
      labelNames: ['kind'],
      registers: r,
    }),
    fallbacks: new prom.Counter({
      name: 'pincer_feishu_fallbacks_total',
      help: 'Replies that fell back from CardKit to a PATCHed card, or from a card to a post, by target',
      labelNames: ['to'],
      registers: r,
    }),
    apiErrors: new prom.Counter({
      name: 'pincer_feishu_api_errors_total',
      help: 'Open platform calls that failed, by API and Feishu code (0 = no answer)',
      labelNames: ['api', 'code'],
      registers: r,
    }),
    apiSeconds: new prom.Histogram({
      name: 'pincer_feishu_api_request_duration_seconds',
      help: 'Open platform call latency, by API',
      labelNames: ['api'],
      buckets: API_LATENCY_BUCKETS,
      registers: r,
    }),
    tokenRefreshes: new prom.Counter({
      name: 'pincer_feishu_token_refreshes_total',
      help: 'Tenant access tokens fetched, by reason (expiring, rejected)',
      labelNames: ['reason'],
      registers: r,
    }),
    replies: new prom.Counter({
      name: 'pincer_feishu_replies_total',
      help: 'Replies finished in chats, by outcome (shown, gone, failed = the user was told it could not be shown)',
      labelNames: ['outcome'],
      registers: r,
    }),
    up: upGauge(
      registry,
      {
        name: 'pincer_feishu_up',
        help: '1 when the bot is connected to Feishu: the long connection is up (ws), or the open platform answered within 2 minutes (webhook)',
      },
      up,
    ),
    errors: new prom.Counter({
      name: 'pincer_errors_total',
      help: 'Failures by kind: open platform API errors (rate limits excluded)',
      labelNames: ['kind'],
      registers: r,
    }),
    connection: new prom.Gauge({
      name: 'pincer_feishu_long_connection_up',
      help: '1 while the long connection to Feishu is established (ws mode)',
      registers: r,
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
