export { embedText, float32ToBase64 } from './embeddings.ts';
export { startMockServer } from './server.ts';
export { splitTokens } from './text.ts';
export type {
  MockFlavor,
  MockOptions,
  MockServer,
  MockStats,
  RecordedRequest,
  ReplyScript,
  ScriptMatch,
  ScriptRule,
  ToolCallScript,
} from './types.ts';
export { FLAVORS } from './types.ts';
