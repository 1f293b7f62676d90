import path from 'node:path';
import {
  checkConfigSections,
  type commonEnv,
  ConfigError,
  type ConfigProblem,
  DEFAULT_REDIS_PREFIX,
  type Env,
  type LogLevel,
  RedisPrefix,
  readYamlConfig,
  validateConfig,
  validateEnv,
} from '@pincer/shared';
import { z } from 'zod';

/** What every adapter's config holds besides its platform's own settings. */
export interface AdapterConfigBase {
  port: number;
  host: string;
  redisUrl: string;
  redisPrefix: string;
  logLevel: LogLevel;
  logFormat: 'json' | 'pretty';
  logContent: boolean;
}

/** The `system:` part of config.yaml an adapter reads (the rest of it belongs to core). */
export const AdapterSystemSettings = z.looseObject({ redis_prefix: RedisPrefix.optional() }).prefault({});

/** An optional variable: compose passes unset variables as empty strings, so empty means unset. */
export const unsetIfBlank = <S extends z.ZodType>(schema: S) =>
  schema.optional().or(z.literal('').transform(() => undefined));

type CommonEnv = z.output<z.ZodObject<ReturnType<typeof commonEnv>>>;

/**
 * Reads and validates the environment and config.yaml (the adapter's section and `system`); throws
 * ConfigError listing every problem. Returns both, and the fields every adapter's config shares.
 */
export function readAdapterConfig<
  E extends z.ZodType<CommonEnv>,
  S extends z.ZodType<{ system: { redis_prefix?: string | undefined } }>,
>(envSchema: E, settings: S, env: Env): { e: z.output<E>; s: z.output<S>; base: AdapterConfigBase } {
  const problems: ConfigProblem[] = [];
  const e = validateEnv(envSchema, env, problems);
  const dir = path.resolve(e?.PINCER_CONFIG_DIR ?? env.PINCER_CONFIG_DIR ?? './config');
  const src = readYamlConfig(path.join(dir, 'config.yaml'), env, problems);
  checkConfigSections(src, problems);
  const s = validateConfig(settings, src, problems);
  if (problems.length || !e || !s) throw new ConfigError(problems);
  return {
    e,
    s,
    base: {
      port: e.PORT,
      host: e.HOST,
      redisUrl: e.REDIS_URL,
      redisPrefix: s.system.redis_prefix ?? DEFAULT_REDIS_PREFIX,
      logLevel: e.LOG_LEVEL as LogLevel,
      logFormat: e.LOG_FORMAT,
      logContent: e.LOG_CONTENT === 'true',
    },
  };
}
