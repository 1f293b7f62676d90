import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type MockServer, startMockServer } from '@pincer/mock-inference';
import OpenAI from 'openai';
import { type Harness, singleProvider, startHarness } from './harness.ts';

describe('smoke', () => {
  let mock: MockServer;
  let h: Harness;
  before(async () => {
    mock = await startMockServer({ flavor: 'openai' });
    h = await startHarness(singleProvider('openai', [`${mock.url}/v1`]));
  });
  after(async () => {
    await h.close();
    await mock.close();
  });
  it('answers through the SDK', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: h.key });
    const r = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'hello there' }],
    });
    assert.match(r.choices[0]!.message.content!, /hello there/);
    const s = await client.chat.completions.create({
      model: 'm',
      stream: true,
      messages: [{ role: 'user', content: 'hello there' }],
    });
    let text = '';
    for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
    assert.match(text, /hello there/);
  });
});
