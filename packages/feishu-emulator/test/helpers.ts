// Shared by the tests: the real SDK pointed at an emulator, quietly.
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as lark from '@larksuiteoapi/node-sdk';
import type { FeishuEmulator } from '../src/index.ts';

export const silentLogger = { error() {}, warn() {}, info() {}, debug() {}, trace() {} };

export function sdkClient(emu: FeishuEmulator, appSecret = emu.appSecret): lark.Client {
  return new lark.Client({
    appId: emu.appId,
    appSecret,
    domain: emu.url,
    cache: new lark.DefaultCache(),
    logger: silentLogger,
  });
}

/** The platform's answer inside an SDK call that failed with a non-2xx status. */
export async function apiError(
  p: Promise<unknown>,
): Promise<{ status: number; code: number; msg: string; headers: Record<string, string> }> {
  try {
    await p;
  } catch (e) {
    const res = (
      e as {
        response?: { status: number; data: { code: number; msg: string }; headers: Record<string, string> };
      }
    ).response;
    if (!res) throw e;
    return { status: res.status, code: res.data.code, msg: res.data.msg, headers: res.headers };
  }
  throw new Error('expected the call to fail');
}

export const text = (t: string): string => JSON.stringify({ text: t });

/** A schema 2.0 streaming card with one markdown element. */
export function streamingCard(elementId = 'answer', content = ''): string {
  return JSON.stringify({
    schema: '2.0',
    config: { streaming_mode: true, summary: { content: '[Generating]' } },
    body: { elements: [{ tag: 'markdown', element_id: elementId, content }] },
  });
}

export async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export { lark };
