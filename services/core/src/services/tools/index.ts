import type { Logger } from '@pincer/shared';
import path from 'node:path';
import type { CoreConfig } from '../../config.ts';
import type { KnowledgeBase } from '../knowledge.ts';
import type { MemoryService } from '../memory.ts';
import { knowledgeTool, memoryTools, timeTool } from './builtin.ts';
import { httpRequestTool } from './http-request.ts';
import { loadPlugins } from './plugins.ts';
import { ToolRegistry } from './registry.ts';
import { commandTool } from './run-command.ts';
import type { Tool } from './types.ts';

export interface ToolSources {
  config: CoreConfig;
  memory: MemoryService;
  knowledge: KnowledgeBase;
  log: Logger;
  /** Tools of other services (scheduled tasks), added by core. */
  extra?: readonly Tool[];
  /** From loadToolPlugins (loaded before anything else starts). */
  plugins?: readonly Tool[];
}

/** Names of the built-in tools: a plugin may not take one, even where the built-in is switched off. */
export const BUILTIN_TOOL_NAMES: ReadonlySet<string> = new Set([
  'current_time',
  'remember',
  'recall',
  'search_knowledge',
  'schedule_task',
  'list_tasks',
  'cancel_task',
  'http_request',
  'run_command',
]);

/**
 * The plugins folder's tools. Throws PluginError naming every bad file, so core stops at start
 * instead of running with some of them.
 */
export function loadToolPlugins(config: CoreConfig): Promise<Tool[]> {
  return loadPlugins(pluginsDir(config), BUILTIN_TOOL_NAMES);
}

/** The plugins folder: tools.plugins_dir, relative to the config folder. */
export function pluginsDir(config: CoreConfig): string {
  return path.resolve(config.configDir, config.tools.plugins_dir);
}

/** Every tool core offers: built-ins, commands and REST endpoints from config, plugins. */
export async function buildToolRegistry(s: ToolSources): Promise<ToolRegistry> {
  const { config } = s;
  const t = config.tools;
  const tools: Tool[] = [];
  if (t.builtin.time) tools.push(timeTool());
  if (t.builtin.memory) tools.push(...memoryTools(s.memory));
  if (t.builtin.knowledge) tools.push(knowledgeTool(s.knowledge, config.knowledge.top_k));
  const command = commandTool(t);
  if (command) tools.push(command);
  const http = httpRequestTool(t);
  if (http) tools.push(http);
  tools.push(...(s.extra ?? []), ...(s.plugins ?? []));
  return new ToolRegistry(tools, t);
}
