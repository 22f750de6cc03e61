import type { FastifyReply } from 'fastify';
import { openAIError } from '../tiers/openai-sse.js';
import type { FinishReason, TierError, Usage } from '../tiers/tier-model.js';

/**
 * An OpenAI `chat.completion.chunk` stream written by hand, for answers assembled from several tier
 * calls (live steps, worker–advisor): a role chunk, content chunks, a finish chunk carrying the
 * `mechroute` extension, the usage chunk, then `[DONE]`. Writes wait for a slow reader.
 */
export interface SseWriter {
  content(text: string): Promise<void>;
  finish(reason: FinishReason, usage: Usage, extension: Record<string, unknown>): Promise<void>;
  /** Ends the stream with an error event and no [DONE] (clients raise on it). */
  fail(error: TierError): Promise<void>;
}

export function startSse(
  reply: FastifyReply,
  meta: { id: string; model: string; created: number; includeUsage: boolean },
  headers: Record<string, string>,
): SseWriter {
  reply.hijack();
  reply.raw.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>),
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  const base = { id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model };
  const write = async (payload: unknown) => {
    const raw = reply.raw;
    if (raw.destroyed) return;
    const line = typeof payload === 'string' ? payload : `data: ${JSON.stringify(payload)}\n\n`;
    if (!raw.write(line)) {
      await new Promise((resolve) => {
        raw.once('drain', resolve);
        raw.once('close', resolve);
      });
    }
  };
  const chunk = (
    delta: Record<string, string>,
    finish: FinishReason | null,
    extra: Record<string, unknown> = {},
  ) => write({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...extra });
  let started = false;
  const role = async () => {
    if (started) return;
    started = true;
    await chunk({ role: 'assistant', content: '' }, null);
  };
  return {
    async content(text) {
      await role();
      if (text) await chunk({ content: text }, null);
    },
    async finish(reason, usage, extension) {
      await role();
      await chunk({}, reason, { mechroute: extension });
      if (meta.includeUsage) {
        await write({
          ...base,
          choices: [],
          usage: {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.input_tokens + usage.output_tokens,
          },
        });
      }
      await write('data: [DONE]\n\n');
      reply.raw.end();
    },
    async fail(error) {
      await write(openAIError(error));
      reply.raw.end();
    },
  };
}
