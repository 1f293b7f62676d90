// Injected faults: each hits the next `times` calls that match its method and chat filters.

import type { Params } from './params.ts';
import { int } from './params.ts';
import type { Fault } from './types.ts';

const KINDS = new Set<Fault['kind']>(['server_error', 'timeout_after_commit', 'flood', 'drop_connection']);

interface Armed {
  fault: Fault;
  left: number;
}

export function validateFault(input: unknown): Fault {
  const f = input as Partial<Fault> | null;
  if (!f || typeof f !== 'object' || !KINDS.has(f.kind as Fault['kind']))
    throw new Error(`a fault needs kind ${[...KINDS].join(' | ')}`);
  if (f.times !== undefined && (!Number.isInteger(f.times) || f.times < 1))
    throw new Error('fault.times must be a positive integer');
  if (f.method !== undefined && typeof f.method !== 'string')
    throw new Error('fault.method must be a string');
  if (f.chatId !== undefined && !Number.isSafeInteger(f.chatId))
    throw new Error('fault.chatId must be an integer');
  if (f.kind === 'server_error' && f.status !== undefined && (f.status < 500 || f.status > 599))
    throw new Error('fault.status must be a 5xx code');
  if (
    f.kind === 'flood' &&
    f.retryAfter !== undefined &&
    (!Number.isInteger(f.retryAfter) || f.retryAfter < 1)
  )
    throw new Error('fault.retryAfter must be a positive integer (seconds)');
  return f as Fault;
}

export class Faults {
  private armed: Armed[] = [];

  add(fault: Fault): void {
    this.armed.push({ fault: validateFault(fault), left: fault.times ?? 1 });
  }

  clear(): void {
    this.armed = [];
  }

  list(): Fault[] {
    return this.armed.map((a) => ({ ...a.fault, times: a.left }));
  }

  /** Takes one use of the first fault matching this call, if any. */
  take(method: string, params: Params): Fault | undefined {
    const chatId = int(params, 'chat_id');
    const i = this.armed.findIndex(
      (a) =>
        (a.fault.method === undefined || a.fault.method.toLowerCase() === method.toLowerCase()) &&
        (a.fault.chatId === undefined || a.fault.chatId === chatId),
    );
    if (i < 0) return undefined;
    const armed = this.armed[i] as Armed;
    armed.left--;
    if (armed.left <= 0) this.armed.splice(i, 1);
    return armed.fault;
  }
}
