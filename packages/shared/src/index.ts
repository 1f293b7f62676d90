export * from './config.ts';
export * from './errors.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './queues.ts';
export * from './messages.ts';
export * from './tokens.ts';
export * from './service.ts';
