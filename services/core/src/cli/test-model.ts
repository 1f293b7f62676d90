/** `pincer test-model [model]`: one short chat completion through llm-proxy, as core makes them. */
import { LlmClient } from '../repositories/llm.ts';
import { CliError, type Command, EXIT } from './command.ts';

export const testModelCommands: Command[] = [
  {
    path: ['test-model'],
    args: '[model] [--prompt TEXT] [--json]',
    summary: "Send one short chat request through llm-proxy and time it (default: llm-proxy's default model)",
    details: `Uses core's LLM_PROXY_URL and LLM_PROXY_API_KEY. Prints the model that answered (a fallback
shows here), time to first token, total latency and output tokens. Exit 1 if the model failed.`,
    options: { prompt: { type: 'string' }, json: { type: 'boolean' } },
    async run(ctx) {
      const [model, ...extra] = ctx.positionals;
      if (extra.length) return ctx.usage(`unexpected argument "${extra[0]}"`);
      const url = ctx.env.LLM_PROXY_URL ?? 'http://127.0.0.1:8000/v1';
      const key = ctx.env.LLM_PROXY_API_KEY;
      if (!key)
        throw new CliError('LLM_PROXY_API_KEY is not set (the key core uses for llm-proxy)', EXIT.usage);
      const prompt =
        (ctx.values.prompt as string | undefined) ?? 'Reply with one short sentence: what are you?';

      const started = performance.now();
      let firstAt = 0;
      let text = '';
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error('no answer within 120 s')), 120_000);
      try {
        const outcome = await new LlmClient(url.replace(/\/+$/, ''), key).streamChat(
          {
            model,
            messages: [{ role: 'user', content: prompt }],
            requestId: `pincer-test-model-${Date.now()}`,
          },
          {
            onText(delta) {
              if (!firstAt) firstAt = performance.now();
              text += delta;
            },
          },
          controller.signal,
        );
        const result = {
          requested: model ?? null,
          model: outcome.model,
          time_to_first_token_ms: firstAt ? Math.round(firstAt - started) : null,
          latency_ms: Math.round(performance.now() - started),
          output_tokens: outcome.usage?.completion_tokens ?? null,
          finish_reason: outcome.finishReason,
          text,
        };
        if (ctx.values.json) ctx.stdout.write(`${JSON.stringify(result)}\n`);
        else
          ctx.stdout.write(
            `model:        ${result.model ?? '?'}${model && result.model && result.model !== model ? ` (asked for ${model})` : ''}\n` +
              `first token:  ${result.time_to_first_token_ms ?? '-'} ms\n` +
              `latency:      ${result.latency_ms} ms\n` +
              `tokens:       ${result.output_tokens ?? '?'}\n` +
              `answer:       ${text.replace(/\s+/g, ' ').trim().slice(0, 200)}\n`,
          );
      } catch (err) {
        throw new CliError(`${model ?? 'the default model'} failed: ${(err as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
    },
  },
];
