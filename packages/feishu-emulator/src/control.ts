// /_emulator/: the same levers as the programmatic API, over HTTP, for the benchmark and the local
// stack that run the emulator as its own process.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from './http.ts';
import type { EventTarget, Fault, FeishuEmulator, UserMessageInput } from './types.ts';

type Json = Record<string, unknown>;

/** What the control API can reach beyond the public interface. */
export type ControlledEmulator = FeishuEmulator & { controlState(): Json };

async function readJson(req: IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const raw = Buffer.concat(chunks).toString('utf8').trim();
  if (raw === '') return {};
  const parsed: unknown = JSON.parse(raw);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('body must be a JSON object');
  return parsed as Json;
}

const since = (url: URL): number => {
  const n = Number(url.searchParams.get('since') ?? 0);
  return Number.isInteger(n) && n >= 0 ? n : 0;
};

/** JSON cannot say Infinity: a persistent fault is sent as times null, -1 or "Infinity". */
function faultFrom(body: Json): Fault {
  const kinds = [
    'rate_limit',
    'frequency',
    'token_invalid',
    'server_error',
    'card_failed',
    'api_unavailable',
  ];
  if (typeof body.kind !== 'string' || !kinds.includes(body.kind))
    throw new Error(`kind must be one of ${kinds.join(', ')}`);
  const t = body.times;
  const times = t === null || t === -1 || t === 'Infinity' ? Infinity : t === undefined ? 1 : Number(t);
  if (!(times > 0)) throw new Error('times must be a positive number');
  return { ...body, times } as Fault;
}

export async function handleControl(
  emu: ControlledEmulator,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const method = req.method ?? 'GET';
  const path = url.pathname.replace(/\/+$/, '');
  try {
    if (method === 'POST' && path === '/_emulator/messages') {
      return sendJson(res, 200, emu.userSend((await readJson(req)) as unknown as UserMessageInput));
    }
    if (method === 'POST' && path === '/_emulator/bot-added') {
      const body = await readJson(req);
      return sendJson(
        res,
        200,
        emu.botAddedToGroup(body.chat as { id: string }, body.operator as { open_id: string }),
      );
    }
    if (method === 'POST' && path === '/_emulator/event-target') {
      emu.setEventTarget((await readJson(req)) as unknown as EventTarget);
      return sendJson(res, 200, { ok: true });
    }
    if (method === 'POST' && path === '/_emulator/duplicate') {
      const body = await readJson(req);
      return sendJson(
        res,
        200,
        emu.duplicate(String(body.event_id), { newEventId: body.newEventId === true }),
      );
    }
    if (method === 'POST' && (path === '/_emulator/recall' || path === '/_emulator/delete')) {
      const body = await readJson(req);
      if (path.endsWith('recall')) emu.recall(String(body.message_id));
      else emu.delete(String(body.message_id));
      return sendJson(res, 200, { ok: true });
    }
    if (method === 'GET' && path.startsWith('/_emulator/chats/')) {
      return sendJson(res, 200, emu.chat(decodeURIComponent(path.slice('/_emulator/chats/'.length))));
    }
    if (method === 'GET' && path === '/_emulator/calls') {
      const from = since(url);
      return sendJson(res, 200, { calls: emu.calls.slice(from), next: emu.calls.length });
    }
    if (method === 'GET' && path === '/_emulator/deliveries') {
      const from = since(url);
      return sendJson(res, 200, { deliveries: emu.deliveries.slice(from), next: emu.deliveries.length });
    }
    if (path === '/_emulator/faults' && method === 'POST') {
      emu.inject(faultFrom(await readJson(req)));
      return sendJson(res, 200, { ok: true });
    }
    if (path === '/_emulator/faults' && method === 'DELETE') {
      emu.clearFaults();
      return sendJson(res, 200, { ok: true });
    }
    if (method === 'POST' && path === '/_emulator/expire-tokens') {
      emu.expireTokens();
      return sendJson(res, 200, { ok: true });
    }
    if (method === 'POST' && path === '/_emulator/drop-connections') {
      emu.dropConnections();
      return sendJson(res, 200, { ok: true });
    }
    if (method === 'GET' && path === '/_emulator/state') {
      return sendJson(res, 200, emu.controlState());
    }
    sendJson(res, 404, { error: `no control route ${method} ${path}` });
  } catch (e) {
    sendJson(res, 400, { error: (e as Error).message });
  }
}
