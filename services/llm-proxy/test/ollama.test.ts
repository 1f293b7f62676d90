import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type MockServer, startMockServer } from '@pincer/mock-inference';
import OpenAI from 'openai';
import { type Harness, singleProvider, startHarness } from './harness.ts';

describe('Ollama native translation', () => {
  let mock: MockServer;
  let h: Harness;
  let client: OpenAI;
  before(async () => {
    mock = await startMockServer({ flavor: 'ollama' });
    h = await startHarness(
      singleProvider(
        'ollama',
        [mock.url],
        { keep_alive: '45m' },
        { context_window: 16384, max_tokens: 512, temperature: 0.2 },
      ),
    );
    client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: h.key, maxRetries: 0 });
  });
  after(async () => {
    await h.close();
    await mock.close();
  });

  it('sends /api/chat with num_ctx from the context window, keep_alive, num_predict and options', async () => {
    const r = await client.chat.completions.create({
      model: 'm',
      messages: [
        { role: 'developer', content: 'be brief' },
        { role: 'user', content: 'hello ollama' },
      ],
      stop: 'END',
      seed: 3,
      max_tokens: 100,
    });
    assert.match(r.choices[0]!.message.content!, /hello ollama/);
    assert.ok(
      r.usage!.prompt_tokens > 0 && r.usage!.completion_tokens > 0,
      'usage from prompt_eval_count/eval_count',
    );
    const req = mock.requests.at(-1)!;
    assert.equal(req.path, '/api/chat');
    assert.equal(req.body.model, 'upstream-m');
    assert.equal(req.body.stream, false);
    assert.equal(req.body.keep_alive, '45m');
    assert.equal(req.body.options.num_ctx, 16384);
    assert.equal(req.body.options.num_predict, 100);
    assert.equal(req.body.options.temperature, 0.2);
    assert.equal(req.body.options.seed, 3);
    assert.deepEqual(req.body.options.stop, ['END']);
    assert.equal(req.body.messages[0].role, 'system', 'developer maps to system');
  });

  it('streams NDJSON as OpenAI chunks, with usage when asked', async () => {
    const stream = await client.chat.completions.create({
      model: 'm',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream me please' }],
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let first = true;
    for await (const c of stream) {
      if (first && c.choices[0]) {
        assert.equal(c.choices[0].delta.role, 'assistant');
        first = false;
      }
      text += c.choices[0]?.delta?.content ?? '';
      if (c.usage) usage = c.usage;
    }
    assert.match(text, /stream me please/);
    assert.ok(usage && usage.completion_tokens > 0);
    assert.equal(mock.requests.at(-1)!.body.stream, true);
  });

  it('translates tool definitions, tool calls and tool results both ways', async () => {
    mock.script({
      match: { contains: 'time in' },
      reply: { toolCalls: [{ name: 'clock', arguments: { tz: 'Asia/Shanghai' } }] },
    });
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'clock', parameters: { type: 'object', properties: { tz: { type: 'string' } } } },
      },
    ];
    const stream = await client.chat.completions.create({
      model: 'm',
      stream: true,
      tools,
      messages: [{ role: 'user', content: 'time in Shanghai?' }],
    });
    let call: { id?: string; name?: string; args?: string } = {};
    let finish = '';
    for await (const c of stream) {
      const tc = c.choices[0]?.delta?.tool_calls?.[0];
      if (tc) call = { id: tc.id, name: tc.function?.name, args: tc.function?.arguments };
      if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(call.name, 'clock');
    assert.match(call.id!, /^call_/);
    assert.deepEqual(JSON.parse(call.args!), { tz: 'Asia/Shanghai' });
    assert.deepEqual(mock.requests.at(-1)!.body.tools, tools);

    await client.chat.completions.create({
      model: 'm',
      tools,
      messages: [
        { role: 'user', content: 'time in Shanghai?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: call.id!, type: 'function', function: { name: 'clock', arguments: call.args! } },
          ],
        },
        { role: 'tool', tool_call_id: call.id!, content: '09:00' },
      ],
    });
    const sent = mock.requests.at(-1)!.body.messages;
    assert.deepEqual(
      sent[1].tool_calls,
      [{ function: { name: 'clock', arguments: { tz: 'Asia/Shanghai' } } }],
      'arguments become an object',
    );
    assert.equal(sent[2].role, 'tool');
    assert.equal(sent[2].tool_name, 'clock');
    assert.equal(sent[2].content, '09:00');
  });

  it('embeds through /api/embed, as floats or base64 (the SDK default)', async () => {
    const viaSdk = await client.embeddings.create({ model: 'm', input: ['alpha beta', 'gamma'] });
    assert.equal(viaSdk.data.length, 2);
    assert.equal(viaSdk.data[0]!.embedding.length, 64);
    const req = mock.requests.at(-1)!;
    assert.equal(req.path, '/api/embed');
    assert.deepEqual(req.body.input, ['alpha beta', 'gamma']);
    assert.equal(req.body.options.num_ctx, 16384);
    const floats = await client.embeddings.create({
      model: 'm',
      input: 'alpha beta',
      encoding_format: 'float',
    });
    const a = floats.data[0]!.embedding;
    const b = viaSdk.data[0]!.embedding;
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++)
      assert.ok(Math.abs(a[i]! - b[i]!) < 1e-6, 'base64 decodes to the same vector');
    assert.ok(viaSdk.usage.prompt_tokens > 0);
  });

  it('refuses an image URL Ollama cannot fetch with a clear 400, sending nothing', async () => {
    const before = mock.requests.length;
    await assert.rejects(
      client.chat.completions.create({
        model: 'm',
        messages: [
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: 'http://example.invalid/cat.png' } }],
          },
        ],
      }),
      (err: InstanceType<typeof OpenAI.APIError>) => err.status === 400 && /data: URLs/.test(err.message),
    );
    assert.equal(mock.requests.length, before);
  });
});
