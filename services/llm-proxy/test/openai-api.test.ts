import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type MockFlavor, type MockServer, startMockServer } from '@pincer/mock-inference';
import OpenAI from 'openai';
import { type Harness, post, singleProvider, sseData, startHarness } from './harness.ts';

async function withProxy(
  flavor: MockFlavor,
  fn: (h: Harness, mock: MockServer, client: OpenAI) => Promise<void>,
  opts: { sseNoise?: boolean; model?: Record<string, unknown> } = {},
) {
  const mock = await startMockServer({ flavor, sseNoise: opts.sseNoise });
  const h = await startHarness(singleProvider('openai', [`${mock.url}/v1`], {}, opts.model));
  try {
    await fn(h, mock, new OpenAI({ baseURL: `${h.url}/v1`, apiKey: h.key, maxRetries: 0 }));
  } finally {
    await h.close();
    await mock.close();
  }
}

describe('OpenAI API through the proxy', () => {
  for (const flavor of ['openai', 'vllm', 'sglang', 'llamacpp'] as const) {
    it(`${flavor}: non-stream and stream via the official SDK, with tool calls`, async () => {
      await withProxy(flavor, async (_h, mock, client) => {
        const r = await client.chat.completions.create({
          model: 'm',
          messages: [{ role: 'user', content: 'ping one' }],
        });
        assert.equal(r.object, 'chat.completion');
        assert.equal(r.model, 'm');
        assert.match(r.id, /^chatcmpl-[\w-]{12,}$/);
        assert.match(r.choices[0]!.message.content!, /ping one/);
        assert.ok(r.usage && r.usage.completion_tokens > 0 && r.usage.prompt_tokens > 0);
        assert.equal(mock.requests.at(-1)!.body.model, 'upstream-m', 'registry model_id goes upstream');

        mock.script({
          match: { contains: 'weather' },
          reply: { toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris', unit: 'c' } }] },
        });
        const tools = [
          {
            type: 'function' as const,
            function: {
              name: 'get_weather',
              parameters: { type: 'object', properties: { city: { type: 'string' } } },
            },
          },
        ];
        const tr = await client.chat.completions.create({
          model: 'm',
          messages: [{ role: 'user', content: 'weather in Paris?' }],
          tools,
        });
        const call = tr.choices[0]!.message.tool_calls![0]! as {
          id: string;
          function: { name: string; arguments: string };
        };
        assert.equal(tr.choices[0]!.finish_reason, 'tool_calls');
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris', unit: 'c' });
        assert.deepEqual(mock.requests.at(-1)!.body.tools, tools, 'tools passed through');

        const stream = await client.chat.completions.create({
          model: 'm',
          stream: true,
          messages: [{ role: 'user', content: 'weather now' }],
          tools,
        });
        const args: string[] = [];
        let name = '';
        let finish = '';
        for await (const c of stream) {
          const tc = c.choices[0]?.delta?.tool_calls?.[0];
          if (tc?.function?.name) name = tc.function.name;
          if (tc?.function?.arguments) args.push(tc.function.arguments);
          if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
        }
        assert.equal(name, 'get_weather');
        assert.deepEqual(JSON.parse(args.join('')), { city: 'Paris', unit: 'c' });
        assert.equal(finish, 'tool_calls');
      });
    });
  }

  it('normalises streams: one unique id, role first, reasoning under both names, no null chunks, pings tolerated', async () => {
    await withProxy(
      'sglang',
      async (h, mock) => {
        mock.script({ reply: { content: 'The answer is four.', reasoning: 'two plus two' } });
        const ids = new Set<string>();
        for (let i = 0; i < 2; i++) {
          const r = await post(`${h.url}/v1/chat/completions`, h.key, {
            model: 'm',
            stream: true,
            messages: [{ role: 'user', content: '2+2?' }],
          });
          assert.equal(r.status, 200);
          assert.match(r.headers.get('content-type')!, /text\/event-stream/);
          const events = sseData(r.text);
          assert.equal(events.at(-1), '[DONE]');
          const chunks = events.slice(0, -1);
          assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id per completion');
          ids.add(chunks[0].id);
          assert.equal(chunks[0].choices[0].delta.role, 'assistant');
          for (const c of chunks) {
            assert.equal(c.model, 'm');
            for (const ch of c.choices) {
              assert.notEqual(ch.delta.role, null);
              assert.notEqual(ch.delta.content, null);
              if (ch.delta.reasoning_content !== undefined)
                assert.equal(ch.delta.reasoning, ch.delta.reasoning_content);
            }
          }
          const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
          const reasoning = chunks.map((c) => c.choices[0]?.delta?.reasoning ?? '').join('');
          assert.equal(text, 'The answer is four.');
          assert.equal(reasoning, 'two plus two');
          assert.ok(!chunks.some((c) => c.usage), 'no usage chunk unless asked');
        }
        assert.equal(ids.size, 2, 'ids unique across completions');
        assert.equal(
          mock.requests.at(-1)!.body.stream_options.include_usage,
          true,
          'usage always requested upstream',
        );
      },
      { sseNoise: true },
    );
  });

  it('returns usage in streams when asked, and estimates it when the upstream sends none', async () => {
    await withProxy('vllm', async (h, mock) => {
      const body = {
        model: 'm',
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: 'count to five please' }],
      };
      const r = sseData((await post(`${h.url}/v1/chat/completions`, h.key, body)).text);
      const usage = r.find((c) => c !== '[DONE]' && c.usage)?.usage;
      assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
      assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);

      mock.script({ reply: { content: 'an answer of some eight words or so here', omitUsage: true } });
      const est = sseData((await post(`${h.url}/v1/chat/completions`, h.key, body)).text);
      const estUsage = est.find((c) => c !== '[DONE]' && c.usage)?.usage;
      assert.ok(estUsage, 'estimated usage chunk present');
      assert.ok(estUsage.completion_tokens >= 8 && estUsage.prompt_tokens > 0);
      const nonStream = await post(`${h.url}/v1/chat/completions`, h.key, {
        model: 'm',
        messages: body.messages,
      });
      assert.ok(nonStream.json.usage.completion_tokens > 0, 'estimated in non-stream too');
      const metrics = await (await fetch(`${h.url}/metrics`)).text();
      assert.match(
        metrics,
        /pincer_llm_tokens_total\{model="m",direction="out",source="estimated",service="llm-proxy"\} \d+/,
      );
      assert.match(
        metrics,
        /pincer_llm_tokens_total\{model="m",direction="out",source="reported",service="llm-proxy"\} \d+/,
      );
    });
  });

  it('applies registry defaults, clamps max_tokens, passes response_format, stop and seed through', async () => {
    await withProxy(
      'openai',
      async (h, mock) => {
        await post(`${h.url}/v1/chat/completions`, h.key, {
          messages: [{ role: 'user', content: 'hi' }],
          max_tokens: 100000,
          stop: ['END'],
          seed: 7,
          response_format: { type: 'json_object' },
        });
        const sent = mock.requests.at(-1)!.body;
        assert.equal(sent.model, 'upstream-m', 'default model used when none named');
        assert.equal(sent.temperature, 0.3, 'model temperature applied when omitted');
        assert.equal(sent.max_tokens, 1024, 'clamped to the model limit');
        assert.deepEqual(sent.stop, ['END']);
        assert.equal(sent.seed, 7);
        assert.deepEqual(sent.response_format, { type: 'json_object' });

        await post(`${h.url}/v1/chat/completions`, h.key, {
          model: 'small',
          messages: [{ role: 'user', content: 'x'.repeat(27000) }],
          temperature: 1.1,
        });
        const second = mock.requests.at(-1)!.body;
        assert.equal(second.temperature, 1.1, 'client value wins');
        assert.ok(
          second.max_tokens < 1024 && second.max_tokens > 0,
          `clamped to what the context leaves: ${second.max_tokens}`,
        );

        const before = mock.requests.length;
        const tooLong = await post(`${h.url}/v1/chat/completions`, h.key, {
          model: 'm',
          messages: [{ role: 'user', content: 'x'.repeat(40000) }],
        });
        assert.equal(tooLong.status, 400);
        assert.equal(tooLong.json.error.code, 'context_length_exceeded');
        assert.equal(mock.requests.length, before, 'nothing sent upstream');
      },
      { model: { temperature: 0.3, aliases: ['small'] } },
    );
  });

  it('lists registry models with context window', async () => {
    await withProxy('openai', async (h) => {
      const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: h.key });
      const list = await client.models.list();
      const m = list.data[0] as unknown as Record<string, unknown>;
      assert.equal(m.id, 'm');
      assert.equal(m.context_window, 8192);
      assert.equal(m.default, true);
    });
  });
});
