import type { StreamPart, TierRequest } from '../../../src/tiers/tier-model.js';

/** OpenAI wire-format builders and small doubles shared by the tier unit tests. */

export const request: TierRequest = { messages: [{ role: 'user', content: 'Say hi' }], max_tokens: 8 };

export const chunk = (content: string | null, finish: string | null = null) =>
  JSON.stringify({
    id: 'c1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'm',
    choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }],
  });

export const usageChunk = (prompt: number, completion: number) =>
  JSON.stringify({
    id: 'c1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'm',
    choices: [],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  });

/** A complete, well-formed stream answering "Hello world". */
export const goodStream = [
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] })}\n\n`,
  `data: ${chunk('Hello')}\n\n`,
  `: keep-alive comment\n\n`,
  `data: ${chunk(' world')}\n\n`,
  `data: ${chunk(null, 'stop')}\n\n`,
  `data: ${usageChunk(5, 2)}\n\n`,
  'data: [DONE]\n\n',
].join('');

export const completion = (content: string, finish = 'stop') => ({
  id: 'c1',
  object: 'chat.completion',
  created: 1,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish }],
  usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
});

/** A body delivered in the given pieces, each as its own read. */
export function bodyOf(
  pieces: readonly string[],
  options: { thenError?: Error } = {},
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i < pieces.length) controller.enqueue(encoder.encode(pieces[i++]!));
      else if (options.thenError) controller.error(options.thenError);
      else controller.close();
    },
  });
}

export const sseResponse = (pieces: readonly string[], options: { thenError?: Error } = {}) =>
  new Response(bodyOf(pieces, options), { status: 200, headers: { 'content-type': 'text/event-stream' } });

export const jsonResponse = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

/** Splits `text` into pieces of `size` characters. */
export const pieces = (text: string, size: number) =>
  Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size));

export async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = [];
  for await (const part of parts) out.push(part);
  return out;
}

export const textOf = (parts: readonly StreamPart[]) =>
  parts.map((p) => (p.type === 'text-delta' ? p.text : '')).join('');

/** Virtual time: sleeps return at once and move the clock; every wait is recorded. */
export function fakeClock(start = 1_000_000) {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
    async sleep(ms: number, signal?: AbortSignal) {
      if (signal?.aborted) throw signal.reason;
      sleeps.push(ms);
      now += ms;
    },
  };
}

/** A fetch that hangs until its signal aborts, as a dead upstream does. */
export const hangingFetch: typeof fetch = (_input, init) =>
  new Promise((_resolve, reject) => {
    const signal = init?.signal;
    signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
