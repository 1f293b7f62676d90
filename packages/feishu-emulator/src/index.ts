export { startFeishuEmulator } from './server.ts';
export { buildWebhookRequest, encryptBody, signBody } from './webhook.ts';
export type {
  CallRecord,
  ChatView,
  DeliveryRecord,
  EventEnvelope,
  EventTarget,
  Fault,
  FaultApi,
  FaultKind,
  FeishuEmulator,
  FeishuEmulatorOptions,
  ShownMessage,
  UserMessageInput,
  WebhookRequest,
  WebhookTamper,
  WsClientConfig,
} from './types.ts';
