// HTTP control API under /_emulator/ for the benchmark and the local stack, which run the emulator as
// a separate process: script users, read chats and calls, inject faults.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from './engine.ts';
import type { Faults } from './faults.ts';
import type { CallRecord, ChatInput, EmulatorState, Fault, UserInput, UserMessageInput } from './types.ts';
import { MAX_BODY_BYTES, readBody, sendJson } from './wire.ts';

export interface ControlDeps {
  engine: Engine;
  faults: Faults;
  calls: () => CallRecord[];
  state: () => EmulatorState;
}

class ControlError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = await readBody(req, MAX_BODY_BYTES);
  if (raw.length === 0) return {};
  try {
    const parsed = JSON.parse(raw.toString('utf8')) as unknown;
    if (typeof parsed === 'object' && parsed !== null) return parsed as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new ControlError(400, 'body must be a JSON object');
}

function num(value: unknown, name: string): number {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n))
    throw new ControlError(400, `${name} must be an integer`);
  return n;
}

export async function handleControl(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  deps: ControlDeps,
): Promise<void> {
  const { engine, faults } = deps;
  const path = url.pathname.replace(/\/+$/, '');
  const method = req.method ?? 'GET';
  try {
    let result: unknown;
    const chatMatch = /^\/_emulator\/chats\/(-?\d+)$/.exec(path);
    if (method === 'GET' && chatMatch) {
      result = engine.world.view(Number(chatMatch[1]));
    } else if (method === 'GET' && path === '/_emulator/calls') {
      const since = url.searchParams.has('since') ? num(url.searchParams.get('since'), 'since') : 0;
      const calls = deps.calls().filter((c) => c.seq >= since);
      const all = deps.calls();
      const next = all.length ? (all[all.length - 1] as CallRecord).seq + 1 : since;
      result = { calls, next: Math.max(next, since) };
    } else if (method === 'GET' && path === '/_emulator/state') {
      result = deps.state();
    } else if (method === 'POST' && path === '/_emulator/messages') {
      result = engine.userSend((await body(req)) as unknown as UserMessageInput);
    } else if (method === 'POST' && path === '/_emulator/edits') {
      const b = await body(req);
      result = engine.userEdit(
        num(b['chat_id'], 'chat_id'),
        num(b['message_id'], 'message_id'),
        String(b['text'] ?? ''),
      );
    } else if (method === 'POST' && path === '/_emulator/block') {
      const b = await body(req);
      engine.blockBot(num(b['user_id'], 'user_id'));
      result = { ok: true };
    } else if (method === 'POST' && path === '/_emulator/migrate') {
      const b = await body(req);
      result = { new_chat_id: engine.migrateGroup(num(b['chat_id'], 'chat_id')) };
    } else if (method === 'POST' && path === '/_emulator/groups') {
      const b = await body(req);
      engine.addBotToGroup(b['chat'] as ChatInput, b['by'] as UserInput);
      result = { ok: true };
    } else if (method === 'POST' && path === '/_emulator/callbacks') {
      const b = await body(req);
      result = engine.userPress(
        num(b['chat_id'], 'chat_id'),
        num(b['message_id'], 'message_id'),
        String(b['data'] ?? ''),
        b['from'] as UserInput | undefined,
      );
    } else if (method === 'POST' && path === '/_emulator/faults') {
      const b = await body(req);
      const list = (Array.isArray(b) ? b : [b]) as Fault[];
      for (const f of list) faults.add(f);
      result = { faults: faults.list() };
    } else if (method === 'DELETE' && path === '/_emulator/faults') {
      faults.clear();
      result = { faults: [] };
    } else {
      throw new ControlError(404, `no control route ${method} ${path}`);
    }
    sendJson(res, 200, result);
  } catch (err) {
    const status = err instanceof ControlError ? err.status : 400;
    sendJson(res, status, { error: err instanceof Error ? err.message : String(err) });
  }
}
