import { API_LATENCY_BUCKETS, upGauge } from '@pincer/adapter-kit';
import { createMetricsRegistry, prom } from '@pincer/shared';

/** Every metric the Telegram adapter exposes (`pincer_telegram_` prefix). `up` feeds the reachability gauge. */
export function createMetrics(up?: () => boolean) {
  const registry = createMetricsRegistry('telegram-adapter');
  const r = [registry];
  return {
    registry,
    updates: new prom.Counter({
      name: 'pincer_telegram_updates_total',
      help: 'Updates received from Telegram, by kind and what became of them',
      labelNames: ['kind', 'outcome'],
      registers: r,
    }),
    apiCalls: new prom.Counter({
      name: 'pincer_telegram_api_requests_total',
      help: 'Bot API calls, by method and outcome (ok, flood, parse, gone, transient, …)',
      labelNames: ['method', 'outcome'],
      registers: r,
    }),
    apiSeconds: new prom.Histogram({
      name: 'pincer_telegram_api_request_duration_seconds',
      help: 'Bot API call latency (getUpdates includes its long-poll wait)',
      labelNames: ['method'],
      buckets: API_LATENCY_BUCKETS,
      registers: r,
    }),
    sent: new prom.Counter({
      name: 'pincer_telegram_messages_sent_total',
      help: 'Messages sent',
      registers: r,
    }),
    edited: new prom.Counter({
      name: 'pincer_telegram_messages_edited_total',
      help: 'Message edits made (streaming and finishing replies)',
      registers: r,
    }),
    floodWaits: new prom.Counter({
      name: 'pincer_telegram_rate_limited_total',
      help: '429 answers from Telegram (each waits retry_after; nothing is dropped)',
      labelNames: ['method'],
      registers: r,
    }),
    parseFallbacks: new prom.Counter({
      name: 'pincer_telegram_plain_text_fallbacks_total',
      help: 'Replies resent as plain text because Telegram could not parse the HTML',
      registers: r,
    }),
    chatsGone: new prom.Counter({
      name: 'pincer_telegram_chats_unreachable_total',
      help: 'Chats the bot can no longer write to (blocked by the user, removed from the group)',
      labelNames: ['reason'],
      registers: r,
    }),
    up: upGauge(
      registry,
      { name: 'pincer_telegram_up', help: '1 when Telegram answered the adapter within the last 2 minutes' },
      up,
    ),
    errors: new prom.Counter({
      name: 'pincer_errors_total',
      help: 'Failures by kind: Bot API calls that failed (not flood waits), polling, webhook intake',
      labelNames: ['kind'],
      registers: r,
    }),
    replies: new prom.Counter({
      name: 'pincer_telegram_replies_total',
      help: 'Replies finished in chats, by outcome (shown, gone)',
      labelNames: ['outcome'],
      registers: r,
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
