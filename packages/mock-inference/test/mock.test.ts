import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import type { MockFlavor, MockOptions, MockServer } from '../src/index.ts';
import { FLAVORS, startMockServer } from '../src/index.ts';

const USER = 'hello brave new world';
const EXPECTED = 'Mock reply: ' + USER;

function client(s: MockServer): OpenAI {
  return new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
}

async function withServer(opts: MockOptions, fn: (s: MockServer) => Promise<void>): Promise<void> {
  const s = await startMockServer(opts);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

function post(url: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal,
  });
}

/** Data payloads of an SSE body (comments and event lines dropped, [DONE] kept as a string). */
function sseData(text: string): unknown[] {
  const out: unknown[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: ')) continue;
    const data = line.slice(6);
    out.push(data === '[DONE]' ? data : JSON.parse(data));
  }
  return out;
}

const chatBody = (extra: Record<string, unknown> = {}) => ({
  model: 'm1',
  messages: [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: USER },
  ],
  ...extra,
});

describe('OpenAI SDK against every flavor', () => {
  for (const flavor of FLAVORS) {
    describe(flavor, () => {
      let s: MockServer;
      before(async () => {
        s = await startMockServer({ flavor, models: ['m1', 'm2'] });
      });
      after(() => s.close());

      it('non-stream completion with usage', async () => {
        const r = await client(s).chat.completions.create(chatBody() as never);
        assert.equal(r.object, 'chat.completion');
        assert.equal(r.model, 'm1');
        assert.equal(r.choices[0]!.message.content, EXPECTED);
        assert.equal(r.choices[0]!.finish_reason, 'stop');
        assert.equal(r.usage!.completion_tokens, 6);
        // 'be brief' (8) + USER (21) + 4 per message = 37 chars -> ceil(37/4)
        assert.equal(r.usage!.prompt_tokens, 10);
        assert.equal(r.usage!.total_tokens, 16);
        if (flavor === 'openai') assert.match(r.id, /^chatcmpl-[A-Za-z0-9]{29}$/);
        if (flavor === 'ollama') assert.match(r.id, /^chatcmpl-\d{1,3}$/);
        if (flavor === 'sglang') assert.match(r.id, /^[0-9a-f]{32}$/);
        if (flavor === 'llamacpp')
          assert.equal(typeof (r as unknown as { timings: unknown }).timings, 'object');
        const rec = s.requests.at(-1)!;
        assert.equal(rec.path, '/v1/chat/completions');
        assert.equal(rec.body.model, 'm1');
        assert.equal(rec.aborted, false);
        assert.equal(rec.status, 200);
      });

      it('stream with include_usage ends with a usage chunk', async () => {
        const stream = await client(s).chat.completions.create({
          ...(chatBody() as object),
          stream: true,
          stream_options: { include_usage: true },
        } as never);
        let text = '';
        const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
        for await (const c of stream as unknown as AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
          chunks.push(c);
          text += c.choices[0]?.delta?.content ?? '';
        }
        assert.equal(text, EXPECTED);
        const last = chunks.at(-1)!;
        assert.deepEqual(last.choices, []);
        assert.equal(last.usage!.completion_tokens, 6);
        assert.equal(last.usage!.prompt_tokens, 10);
        const finishes = chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean);
        assert.deepEqual(finishes, ['stop']);
        assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
        if (flavor === 'llamacpp')
          assert.equal(typeof (last as unknown as { timings: unknown }).timings, 'object');
        if (flavor === 'sglang') {
          const nulls = chunks.filter(
            (c) => c.choices[0]?.delta?.role === null && c.choices[0].delta.content === null,
          );
          assert.equal(nulls.length, 1, 'exactly one all-null delta (sglang bug)');
        }
        if (flavor === 'openai' || flavor === 'vllm') {
          assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id per stream');
        }
        assert.equal(s.requests.at(-1)!.chunksSent, chunks.length);
      });

      it('stream without include_usage sends no usage', async () => {
        const res = await post(`${s.url}/v1/chat/completions`, chatBody({ stream: true }));
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
        const body = await res.text();
        const data = sseData(body);
        assert.equal(data.at(-1), '[DONE]');
        for (const d of data.slice(0, -1)) {
          const chunk = d as { usage?: unknown; choices: unknown[] };
          assert.equal(chunk.usage ?? null, null);
          assert.equal(chunk.choices.length, 1);
        }
        assert.equal(body.startsWith(': ping\n\n'), flavor === 'sglang');
      });

      it('unknown model is a 404 in the flavor error shape', async () => {
        const res = await post(`${s.url}/v1/chat/completions`, { ...chatBody(), model: 'nope' });
        assert.equal(res.status, 404);
        const body = (await res.json()) as Record<string, unknown>;
        if (flavor === 'sglang') {
          assert.equal(body['object'], 'error');
          assert.match(String(body['message']), /not found/);
          assert.equal(body['code'], 404);
        } else {
          const err = body['error'] as Record<string, unknown>;
          assert.match(String(err['message']), /not found/);
          assert.ok('type' in err);
        }
        await assert.rejects(client(s).chat.completions.create({ ...chatBody(), model: 'nope' } as never), {
          status: 404,
        });
      });

      it('lists models', async () => {
        const list = await client(s).models.list();
        assert.deepEqual(
          list.data.map((m) => m.id),
          ['m1', 'm2'],
        );
        if (flavor === 'vllm')
          assert.equal((list.data[0] as unknown as { max_model_len: number }).max_model_len, 32768);
      });
    });
  }
});

describe('completion semantics', () => {
  let s: MockServer;
  before(async () => {
    s = await startMockServer({ flavor: 'openai' });
  });
  after(() => s.close());

  it('honours max_tokens with finish_reason length, in stream and not', async () => {
    const r = await client(s).chat.completions.create(chatBody({ max_tokens: 2 }) as never);
    assert.equal(r.choices[0]!.message.content, 'Mock reply:');
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.equal(r.usage!.completion_tokens, 2);
    const body = await (
      await post(`${s.url}/v1/chat/completions`, chatBody({ stream: true, max_completion_tokens: 3 }))
    ).text();
    const chunks = sseData(body).slice(0, -1) as OpenAI.Chat.Completions.ChatCompletionChunk[];
    assert.equal(chunks.map((c) => c.choices[0]!.delta.content ?? '').join(''), 'Mock reply: hello');
    assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, 'length');
  });

  it('cuts at stop strings', async () => {
    const r = await client(s).chat.completions.create(chatBody({ stop: ['brave', 'zzz'] }) as never);
    assert.equal(r.choices[0]!.message.content, 'Mock reply: hello ');
    assert.equal(r.choices[0]!.finish_reason, 'stop');
  });

  it('any model is accepted without a list, and /v1/models shows one mock model', async () => {
    const r = await client(s).chat.completions.create({ ...chatBody(), model: 'whatever' } as never);
    assert.equal(r.model, 'whatever');
    const list = await client(s).models.list();
    assert.deepEqual(
      list.data.map((m) => m.id),
      ['mock'],
    );
  });

  it('json_object and json_schema response formats give parseable JSON', async () => {
    const r = await client(s).chat.completions.create(
      chatBody({ response_format: { type: 'json_object' } }) as never,
    );
    const obj = JSON.parse(r.choices[0]!.message.content!);
    assert.equal(obj.echo, USER);
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string' },
        n: { type: 'integer' },
        tags: { type: 'array', items: { enum: ['a'] } },
      },
    };
    const r2 = await client(s).chat.completions.create(
      chatBody({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } }) as never,
    );
    assert.deepEqual(JSON.parse(r2.choices[0]!.message.content!), { name: 'mock', n: 1, tags: ['a'] });
  });

  it('validates like a real server', async () => {
    const bad = await post(`${s.url}/v1/chat/completions`, '{not json');
    assert.equal(bad.status, 400);
    assert.ok(((await bad.json()) as { error: { message: string } }).error.message);
    assert.equal((await post(`${s.url}/v1/chat/completions`, { model: 'm', messages: [] })).status, 400);
    assert.equal(
      (await post(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'x' }] })).status,
      400,
    );
    assert.equal((await fetch(`${s.url}/v1/nope`)).status, 404);
    assert.equal((await fetch(`${s.url}/v1/chat/completions`)).status, 405);
  });

  it('paces tokens with tokenRate and firstTokenDelayMs', async () => {
    s.script({
      match: { contains: 'pace me' },
      reply: { content: 'a b c d e', tokenRate: 100, firstTokenDelayMs: 60 },
    });
    const t0 = Date.now();
    const res = await post(
      `${s.url}/v1/chat/completions`,
      chatBody({ stream: true, messages: [{ role: 'user', content: 'pace me' }] }),
    );
    const reader = res.body!.getReader();
    const first = await reader.read();
    const tFirst = Date.now() - t0;
    assert.ok(first.value && first.value.length > 0);
    while (!(await reader.read()).done) {
      // drain
    }
    const total = Date.now() - t0;
    // 60 ms to the first token, then 4 gaps of 10 ms.
    assert.ok(tFirst >= 55, `first chunk after ${tFirst} ms`);
    assert.ok(total >= 95, `stream took ${total} ms`);
    assert.ok(total < 1000, `stream took ${total} ms`);
  });
});

describe('reasoning and tool calls', () => {
  const reasoning = 'think hard first';

  it('puts reasoning in each flavor field', async () => {
    const field: Record<MockFlavor, string | undefined> = {
      openai: undefined,
      ollama: 'reasoning',
      vllm: 'reasoning',
      sglang: 'reasoning_content',
      llamacpp: 'reasoning_content',
    };
    for (const flavor of FLAVORS) {
      await withServer({ flavor }, async (s) => {
        s.script({ reply: { reasoning, content: 'answer' } });
        const r = (await client(s).chat.completions.create(chatBody() as never)) as unknown as {
          choices: { message: Record<string, unknown> }[];
          usage: Record<string, unknown>;
        };
        const msg = r.choices[0]!.message;
        assert.equal(msg['content'], 'answer');
        const f = field[flavor];
        if (f) assert.equal(msg[f], reasoning, flavor);
        else {
          assert.equal(msg['reasoning'], undefined);
          assert.equal(
            (r.usage['completion_tokens_details'] as { reasoning_tokens: number }).reasoning_tokens,
            3,
          );
        }
        const body = await (await post(`${s.url}/v1/chat/completions`, chatBody({ stream: true }))).text();
        const chunks = sseData(body).slice(0, -1) as { choices: { delta: Record<string, unknown> }[] }[];
        const streamed = chunks.map((c) => (f ? (c.choices[0]?.delta[f] ?? '') : '')).join('');
        assert.equal(streamed, f ? reasoning : '', flavor);
      });
    }
  });

  it('streams tool-call arguments incrementally (openai, vllm, sglang)', async () => {
    const args = { city: 'Paris', days: 3, units: 'metric' };
    for (const flavor of ['openai', 'vllm', 'sglang'] as const) {
      await withServer({ flavor }, async (s) => {
        s.script({ reply: { toolCalls: [{ name: 'get_weather', arguments: args }] } });
        const stream = await client(s).chat.completions.create({
          ...(chatBody() as object),
          stream: true,
        } as never);
        const deltas: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
        let finish: string | null | undefined;
        for await (const c of stream as unknown as AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
          for (const tc of c.choices[0]?.delta?.tool_calls ?? []) deltas.push(tc);
          finish = c.choices[0]?.finish_reason ?? finish;
        }
        assert.ok(deltas.length > 2, `${flavor}: ${deltas.length} tool-call deltas`);
        assert.match(deltas[0]!.id!, /^call_/);
        assert.equal(deltas[0]!.function!.name, 'get_weather');
        assert.equal(deltas[0]!.function!.arguments, '');
        assert.equal(deltas[1]!.id, undefined);
        assert.deepEqual(JSON.parse(deltas.map((d) => d.function?.arguments ?? '').join('')), args);
        assert.equal(finish, 'tool_calls');

        const r = await client(s).chat.completions.create(chatBody() as never);
        const call = r.choices[0]!.message
          .tool_calls![0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
        assert.match(call.id, /^call_/);
        assert.equal(typeof call.function.arguments, 'string');
        assert.deepEqual(JSON.parse(call.function.arguments), args);
        assert.equal(r.choices[0]!.message.content, null);
        assert.equal(r.choices[0]!.finish_reason, 'tool_calls');
      });
    }
  });

  it('ollama /v1 sends each tool call whole in one finishing delta', async () => {
    await withServer({ flavor: 'ollama' }, async (s) => {
      s.script({
        reply: {
          toolCalls: [
            { name: 'a', arguments: { x: 1 } },
            { name: 'b', arguments: { y: 'two words' } },
          ],
        },
      });
      const body = await (await post(`${s.url}/v1/chat/completions`, chatBody({ stream: true }))).text();
      const chunks = sseData(body).slice(0, -1) as OpenAI.Chat.Completions.ChatCompletionChunk[];
      const withCalls = chunks.filter((c) => c.choices[0]?.delta?.tool_calls);
      assert.equal(withCalls.length, 1);
      const calls = withCalls[0]!.choices[0]!.delta.tool_calls!;
      assert.deepEqual(
        calls.map((c) => [c.index, c.function!.name, JSON.parse(c.function!.arguments!)]),
        [
          [0, 'a', { x: 1 }],
          [1, 'b', { y: 'two words' }],
        ],
      );
      assert.equal(withCalls[0]!.choices[0]!.finish_reason, 'tool_calls');
      assert.equal(chunks.at(-1), withCalls[0], 'nothing after the tool-call chunk');
    });
  });
});

describe('ollama native API', () => {
  let s: MockServer;
  before(async () => {
    s = await startMockServer({ flavor: 'ollama', models: ['llama3.2:3b', 'qwen3'] });
  });
  after(() => s.close());

  it('streams NDJSON by default and honours num_predict', async () => {
    const res = await post(`${s.url}/api/chat`, {
      model: 'llama3.2:3b',
      messages: [{ role: 'user', content: USER }],
      options: { num_ctx: 8192, num_predict: 3, temperature: 0.2 },
      keep_alive: '10m',
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/x-ndjson/);
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 4);
    assert.equal(
      lines
        .slice(0, 3)
        .map((l) => l.message.content)
        .join(''),
      'Mock reply: hello',
    );
    for (const l of lines.slice(0, 3)) {
      assert.equal(l.done, false);
      assert.equal(l.message.role, 'assistant');
      assert.equal(l.model, 'llama3.2:3b');
    }
    const last = lines[3];
    assert.equal(last.done, true);
    assert.equal(last.done_reason, 'length');
    assert.equal(last.eval_count, 3);
    assert.equal(last.message.content, '');
    for (const k of [
      'total_duration',
      'load_duration',
      'prompt_eval_count',
      'prompt_eval_duration',
      'eval_duration',
    ]) {
      assert.equal(typeof last[k], 'number', k);
    }
    const rec = await s.waitFor((r) => r.path === '/api/chat' && r.finishedAt !== undefined);
    assert.equal(rec.body.options.num_ctx, 8192);
    assert.equal(rec.body.keep_alive, '10m');
    assert.equal(rec.chunksSent, 4);
    const ps = (await (await fetch(`${s.url}/api/ps`)).json()) as {
      models: { name: string; context_length: number }[];
    };
    assert.equal(ps.models.find((m) => m.name === 'llama3.2:3b')?.context_length, 8192);
  });

  it('answers a single JSON object with stream:false, with thinking and tool calls', async () => {
    s.script({
      times: 1,
      reply: { reasoning: 'hmm', content: 'ok', toolCalls: [{ name: 'f', arguments: { a: [1, 2] } }] },
    });
    const res = await post(`${s.url}/api/chat`, {
      model: 'qwen3',
      messages: [{ role: 'user', content: 'x' }],
      stream: false,
    });
    const body = (await res.json()) as Record<string, unknown> & { message: Record<string, unknown> };
    assert.equal(body['done'], true);
    assert.equal(body['done_reason'], 'stop');
    assert.equal(body.message['content'], 'ok');
    assert.equal(body.message['thinking'], 'hmm');
    assert.deepEqual(body.message['tool_calls'], [{ function: { name: 'f', arguments: { a: [1, 2] } } }]);
  });

  it('accepts an untagged name as :latest and 404s unknown models in the native shape', async () => {
    const res = await post(`${s.url}/api/chat`, {
      model: 'qwen3:latest',
      messages: [{ role: 'user', content: 'x' }],
      stream: false,
    });
    assert.equal(res.status, 200);
    const nf = await post(`${s.url}/api/chat`, { model: 'x', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(nf.status, 404);
    assert.deepEqual(await nf.json(), { error: "model 'x' not found" });
  });

  it('serves health, version, tags and embed', async () => {
    const before = s.healthChecks;
    const root = await fetch(`${s.url}/`);
    assert.equal(await root.text(), 'Ollama is running');
    assert.deepEqual(await (await fetch(`${s.url}/api/version`)).json(), { version: '0.12.0' });
    assert.equal(s.healthChecks, before + 2);
    assert.equal((await fetch(`${s.url}/health`)).status, 404);
    const tags = (await (await fetch(`${s.url}/api/tags`)).json()) as { models: { name: string }[] };
    assert.deepEqual(
      tags.models.map((m) => m.name),
      ['llama3.2:3b', 'qwen3'],
    );
    const emb = (await (
      await post(`${s.url}/api/embed`, { model: 'qwen3', input: ['a b', 'c'], dimensions: 16 })
    ).json()) as { embeddings: number[][]; prompt_eval_count: number; model: string };
    assert.equal(emb.model, 'qwen3');
    assert.equal(emb.embeddings.length, 2);
    assert.equal(emb.embeddings[0]!.length, 16);
    assert.ok(emb.prompt_eval_count >= 2);
  });
});

describe('embeddings', () => {
  let s: MockServer;
  before(async () => {
    s = await startMockServer({ flavor: 'vllm', embeddingDims: 48 });
  });
  after(() => s.close());

  const cos = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let dot = 0;
    for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
    return dot;
  };

  it('SDK base64 default equals the float request, deterministic and unit length', async () => {
    const input = ['the cat sat on the mat', 'the cat sat on a hat', 'quantum chromodynamics lecture'];
    const viaB64 = await client(s).embeddings.create({ model: 'e', input });
    assert.equal(s.requests.at(-1)!.body.encoding_format, 'base64');
    const viaFloat = await client(s).embeddings.create({ model: 'e', input, encoding_format: 'float' });
    assert.equal(viaB64.data.length, 3);
    for (let i = 0; i < 3; i++) {
      assert.equal(viaFloat.data[i]!.embedding.length, 48);
      assert.deepEqual(Array.from(viaB64.data[i]!.embedding), viaFloat.data[i]!.embedding);
      assert.ok(Math.abs(cos(viaFloat.data[i]!.embedding, viaFloat.data[i]!.embedding) - 1) < 1e-5);
    }
    const again = await client(s).embeddings.create({
      model: 'e',
      input: input[0]!,
      encoding_format: 'float',
    });
    assert.deepEqual(again.data[0]!.embedding, viaFloat.data[0]!.embedding);
    const [a, b, c] = viaFloat.data.map((d) => d.embedding);
    assert.ok(cos(a!, b!) > cos(a!, c!) + 0.2, 'shared words score higher');
    assert.ok(viaFloat.usage.prompt_tokens > 0);
    assert.equal(viaFloat.usage.total_tokens, viaFloat.usage.prompt_tokens);
  });

  it('honours dimensions and rejects bad input', async () => {
    const r = await client(s).embeddings.create({ model: 'e', input: 'x y', dimensions: 8 });
    assert.equal(r.data[0]!.embedding.length, 8);
    assert.equal((await post(`${s.url}/v1/embeddings`, { model: 'e', input: [] })).status, 400);
  });
});

describe('loading phase', () => {
  it('vllm and llamacpp answer 503 until loaded, then 200', async () => {
    for (const flavor of ['vllm', 'llamacpp'] as const) {
      await withServer({ flavor, loadingMs: 250 }, async (s) => {
        const h = await fetch(`${s.url}/health`);
        assert.equal(h.status, 503);
        const body = await h.json();
        if (flavor === 'llamacpp') {
          assert.deepEqual(body, {
            error: { code: 503, message: 'Loading model', type: 'unavailable_error' },
          });
        }
        const chat = await post(`${s.url}/v1/chat/completions`, chatBody());
        assert.equal(chat.status, 503);
        await chat.arrayBuffer();
        await new Promise((r) => setTimeout(r, 280));
        assert.equal((await fetch(`${s.url}/health`)).status, 200);
        assert.equal((await post(`${s.url}/v1/chat/completions`, chatBody())).status, 200);
        assert.equal(s.healthChecks, 2);
        assert.equal(s.requests.length, 2, 'health probes are not recorded');
        s.setLoading(200);
        assert.equal((await fetch(`${s.url}/health`)).status, 503);
      });
    }
  });

  it('ollama chat waits for the model instead of failing', async () => {
    await withServer({ flavor: 'ollama', models: ['m1'], loadingMs: 200 }, async (s) => {
      const ps = (await (await fetch(`${s.url}/api/ps`)).json()) as { models: unknown[] };
      assert.deepEqual(ps.models, []);
      const t0 = Date.now();
      const res = await post(`${s.url}/api/chat`, {
        model: 'm1',
        messages: [{ role: 'user', content: 'x' }],
        stream: false,
      });
      const body = (await res.json()) as { load_duration: number; message: { content: string } };
      const took = Date.now() - t0;
      assert.equal(res.status, 200);
      assert.equal(body.message.content, 'Mock reply: x');
      assert.ok(took >= 150, `waited ${took} ms`);
      assert.ok(body.load_duration >= 100e6);
      const r = await client(s).chat.completions.create({ ...chatBody(), model: 'm1' } as never);
      assert.equal(r.choices[0]!.message.content, EXPECTED);
    });
  });
});

describe('scripted failures and aborts', () => {
  let s: MockServer;
  before(async () => {
    s = await startMockServer({ flavor: 'openai' });
  });
  after(() => s.close());

  it('scripted status uses the flavor error shape, for `times` requests only', async () => {
    s.reset();
    s.script({ match: { model: 'm1' }, times: 1, reply: { status: 429, errorMessage: 'slow down' } });
    await assert.rejects(client(s).chat.completions.create(chatBody() as never), (e: unknown) => {
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 429);
      assert.equal(e.message.includes('slow down'), true);
      return true;
    });
    const ok = await client(s).chat.completions.create(chatBody() as never);
    assert.equal(ok.choices[0]!.message.content, EXPECTED);
    await withServer({ flavor: 'sglang' }, async (sg) => {
      sg.script({ reply: { status: 500, errorMessage: 'boom' } });
      const res = await post(`${sg.url}/v1/chat/completions`, chatBody());
      assert.equal(res.status, 500);
      assert.deepEqual(await res.json(), {
        object: 'error',
        message: 'boom',
        type: 'InternalServerError',
        param: null,
        code: 500,
      });
    });
  });

  it('disconnectAfterChunks drops a stream mid-way and a non-stream request outright', async () => {
    s.reset();
    s.script({
      match: { contains: 'cut' },
      reply: { content: 'one two three four five', disconnectAfterChunks: 3 },
    });
    const res = await post(`${s.url}/v1/chat/completions`, {
      model: 'm',
      stream: true,
      messages: [{ role: 'user', content: 'cut' }],
    });
    assert.equal(res.status, 200);
    let got = '';
    await assert.rejects(async () => {
      for await (const part of res.body!) got += Buffer.from(part).toString();
    });
    assert.equal(sseData(got).length, 3);
    assert.ok(!got.includes('[DONE]'));
    const rec = await s.waitFor((r) => r.finishedAt !== undefined);
    assert.equal(rec.chunksSent, 3);
    assert.equal(rec.aborted, false);
    await assert.rejects(
      post(`${s.url}/v1/chat/completions`, { model: 'm', messages: [{ role: 'user', content: 'cut' }] }),
    );
  });

  it('a client abort stops generation and is recorded', async () => {
    s.reset();
    s.script({ reply: { content: 'w '.repeat(200), tokenRate: 50 } });
    const ac = new AbortController();
    const res = await post(`${s.url}/v1/chat/completions`, chatBody({ stream: true }), ac.signal);
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    const rec = await s.waitFor((r) => r.aborted);
    assert.ok(rec.chunksSent < 10, `sent ${rec.chunksSent} chunks`);
    assert.ok(rec.finishedAt !== undefined);
    const sent = rec.chunksSent;
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(rec.chunksSent, sent, 'no chunks after the abort');
    assert.equal(s.active, 0);
  });

  it('hangAfterChunks keeps the stream open until the client gives up', async () => {
    s.reset();
    s.script({ reply: { hangAfterChunks: 2 } });
    const ac = new AbortController();
    const res = await post(`${s.url}/v1/chat/completions`, chatBody({ stream: true }), ac.signal);
    const reader = res.body!.getReader();
    let text = '';
    while (sseData(text).length < 2) text += Buffer.from((await reader.read()).value!).toString();
    const timeout = await Promise.race([
      reader.read().then(() => 'data'),
      new Promise((r) => setTimeout(r, 100, 'timeout')),
    ]);
    assert.equal(timeout, 'timeout');
    assert.equal(s.active, 1);
    ac.abort();
    const rec = await s.waitFor((r) => r.aborted);
    assert.equal(rec.chunksSent, 2);
  });

  it('delayMs holds the response headers', async () => {
    s.reset();
    s.script({ reply: { delayMs: 80 } });
    const t0 = Date.now();
    await client(s).chat.completions.create(chatBody() as never);
    assert.ok(Date.now() - t0 >= 75);
  });

  it('waitFor rejects after its timeout', async () => {
    s.reset();
    await assert.rejects(
      s.waitFor(() => false, 30),
      /timed out/,
    );
  });
});

describe('concurrency, down, control API', () => {
  it('maxParallel queues requests FIFO', async () => {
    await withServer({ maxParallel: 2 }, async (s) => {
      s.script({ reply: { delayMs: 60 } });
      const t0 = Date.now();
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          client(s).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `q${i}` }] }),
        ),
      );
      const took = Date.now() - t0;
      assert.deepEqual(
        results.map((r) => r.choices[0]!.message.content),
        Array.from({ length: 6 }, (_, i) => `Mock reply: q${i}`),
      );
      assert.equal(s.maxActive, 2);
      assert.ok(took >= 170, `3 waves of 60 ms took ${took} ms`);
      const finished = [...s.requests].sort((a, b) => a.finishedAt! - b.finishedAt!).map((r) => r.seq);
      assert.deepEqual(finished.slice(0, 2).sort(), [1, 2]);
      assert.equal(s.active, 0);
      assert.equal(s.queued, 0);
    });
  });

  it('a queued request aborted by its client leaves the queue', async () => {
    await withServer({ maxParallel: 1 }, async (s) => {
      s.script({ times: 1, reply: { hangAfterChunks: 0 } });
      const ac1 = new AbortController();
      const ac2 = new AbortController();
      const first = await post(`${s.url}/v1/chat/completions`, chatBody({ stream: true }), ac1.signal);
      assert.equal(first.status, 200);
      const second = post(`${s.url}/v1/chat/completions`, chatBody(), ac2.signal).catch((e: Error) => e);
      await s.waitFor((r) => r.seq === 2);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(s.queued, 1);
      assert.equal(s.active, 1);
      ac2.abort();
      assert.ok((await second) instanceof Error);
      await s.waitFor((r) => r.seq === 2 && r.aborted);
      assert.equal(s.queued, 0);
      ac1.abort();
      await s.waitFor((r) => r.seq === 1 && r.aborted);
      assert.equal(s.active, 0);
      const ok = await client(s).chat.completions.create(chatBody() as never);
      assert.equal(ok.choices[0]!.message.content, EXPECTED);
      assert.equal(s.maxActive, 1);
    });
  });

  it('setDown closes connections; control API keeps working', async () => {
    await withServer({}, async (s) => {
      await client(s).chat.completions.create(chatBody() as never);
      s.setDown(true);
      await assert.rejects(post(`${s.url}/v1/chat/completions`, chatBody()));
      await assert.rejects(fetch(`${s.url}/health`));
      const stats = await (await fetch(`${s.url}/_mock/stats`)).json();
      assert.equal((stats as { requests: number }).requests, 1);
      await post(`${s.url}/_mock/down`, { down: false });
      assert.equal((await fetch(`${s.url}/health`)).status, 200);
    });
  });

  it('setDown kills in-flight streams', async () => {
    await withServer({ tokenRate: 100 }, async (s) => {
      const res = await post(`${s.url}/v1/chat/completions`, chatBody({ stream: true }));
      const reader = res.body!.getReader();
      await reader.read();
      s.setDown(true);
      await assert.rejects(async () => {
        while (!(await reader.read()).done) {
          // drain
        }
      });
      const rec = await s.waitFor((r) => r.finishedAt !== undefined);
      assert.equal(rec.aborted, false);
    });
  });

  it('drives the server over HTTP', async () => {
    await withServer({ flavor: 'vllm' }, async (s) => {
      const ok = await post(`${s.url}/_mock/script`, {
        match: { path: '/v1/chat/completions' },
        times: 1,
        reply: { content: 'from control' },
      });
      assert.deepEqual(await ok.json(), { ok: true });
      const r = await client(s).chat.completions.create(chatBody() as never);
      assert.equal(r.choices[0]!.message.content, 'from control');
      const reqs = (await (await fetch(`${s.url}/_mock/requests`)).json()) as Record<string, unknown>[];
      assert.equal(reqs.length, 1);
      assert.equal(reqs[0]!['headers'], undefined);
      assert.equal((reqs[0]!['body'] as { model: string }).model, 'm1');
      await fetch(`${s.url}/health`);
      assert.deepEqual(await (await fetch(`${s.url}/_mock/stats`)).json(), {
        active: 0,
        maxActive: 1,
        queued: 0,
        requests: 1,
        healthChecks: 1,
      });
      await post(`${s.url}/_mock/loading`, { ms: 5000 });
      assert.equal((await fetch(`${s.url}/health`)).status, 503);
      await post(`${s.url}/_mock/reset`, {});
      assert.equal((await fetch(`${s.url}/health`)).status, 200);
      assert.equal(s.requests.length, 0);
      assert.equal(s.healthChecks, 1);
      assert.equal((await post(`${s.url}/_mock/script`, { nope: 1 })).status, 400);
    });
  });

  it('sseNoise streams stay readable by the SDK', async () => {
    await withServer({ flavor: 'vllm', sseNoise: true }, async (s) => {
      const raw = await (await post(`${s.url}/v1/chat/completions`, chatBody({ stream: true }))).text();
      assert.ok(raw.includes('event: completion\n'));
      assert.ok(raw.includes(': ping\n\n'));
      const stream = await client(s).chat.completions.create({
        ...(chatBody() as object),
        stream: true,
      } as never);
      let text = '';
      for await (const c of stream as unknown as AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
        text += c.choices[0]?.delta?.content ?? '';
      }
      assert.equal(text, EXPECTED);
    });
  });
});

describe('CLI', () => {
  it('starts, prints its url, serves, and exits on SIGTERM', async () => {
    const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
    const child = spawn(process.execPath, [main, '--port', '0', '--flavor', 'ollama', '--models', 'a,b'], {
      env: { ...process.env, MOCK_TOKEN_RATE: '1000' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const m = /^mock-inference listening on (http:\/\/127\.0\.0\.1:\d+) flavor=ollama\n$/.exec(
      line.toString(),
    );
    assert.ok(m, line.toString());
    const tags = (await (await fetch(`${m[1]}/api/tags`)).json()) as { models: { name: string }[] };
    assert.deepEqual(
      tags.models.map((t) => t.name),
      ['a', 'b'],
    );
    // A raw request without keep-alive so the child can exit promptly.
    await new Promise<void>((resolve, reject) => {
      httpRequest(`${m[1]}/`, { agent: false }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
        .on('error', reject)
        .end();
    });
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
  });
});
