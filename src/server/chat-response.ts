import type { FastifyReply } from 'fastify';
import type { ExecutionPart, ExecutionSummary } from '../router/execution.js';
import { buildChatCompletion, type OpenAIResponseMeta, toOpenAISse } from '../tiers/openai-sse.js';
import type { GenerateResult, StreamPart, TierError } from '../tiers/tier-model.js';

/**
 * The two shapes an execution leaves the server in: one `chat.completion` body, or one SSE stream of
 * `chat.completion.chunk`s (the same encoder, `toOpenAISse`, that any tier's stream goes through). Either
 * way the `mechroute` extension — who decided, who answered, at what cost — is built from the
 * execution's summary once it is known: in the body, or in the stream's finish chunk.
 */
export type Extension = (summary: ExecutionSummary) => Record<string, unknown>;

/** Runs the execution to its end and returns the JSON body; a failure is thrown (an HTTP error). */
export async function jsonResponse(
  parts: AsyncIterable<ExecutionPart>,
  meta: Omit<OpenAIResponseMeta, 'includeUsage'>,
  extension: Extension,
  reply: FastifyReply,
) {
  let answer: GenerateResult | undefined;
  let summary: ExecutionSummary | undefined;
  for await (const part of parts) {
    if (part.type === 'error') throw part.error;
    if (part.type === 'answer') answer = part.result;
    if (part.type === 'done') summary = part.summary;
  }
  if (!answer || !summary) throw new Error('the execution ended without an answer');
  reply.header('x-mechroute-answered-by', summary.answered_by);
  return {
    ...buildChatCompletion(answer, { ...meta, model: meta.model || summary.answered_by }),
    mechroute: extension(summary),
  };
}

/**
 * Streams the execution as SSE. The status line waits for the first content part (or the end), so a
 * request that fails before producing anything still gets a proper error status; after it, a failure
 * ends the stream with an error event and no [DONE] — never a silent truncation. A client that leaves
 * stops the loop (its abort signal has already stopped the tiers).
 */
export async function streamResponse(
  reply: FastifyReply,
  parts: AsyncIterable<ExecutionPart>,
  meta: OpenAIResponseMeta,
  extension: Extension,
  /** The error to report instead of a stream's own when the request was cut (deadline, shutdown). */
  late: () => TierError | undefined,
): Promise<FastifyReply> {
  let summary: ExecutionSummary | undefined;
  let answeredBy: string | undefined;
  /** The execution as a tier stream: content as it comes, one finish (with usage) once it is done. */
  async function* asTierStream(): AsyncGenerator<StreamPart> {
    let finish: Extract<ExecutionPart, { type: 'finish' }> | undefined;
    for await (const part of parts) {
      switch (part.type) {
        case 'attempt-start':
          answeredBy = part.tier;
          break;
        case 'finish':
          finish = part;
          break;
        case 'done':
          summary = part.summary;
          yield finish ?? {
            type: 'finish',
            finish_reason: part.summary.finish_reason,
            usage: { input_tokens: 0, output_tokens: 0 },
          };
          return;
        case 'error':
          yield { type: 'error', error: late() ?? part.error };
          return;
        case 'attempt-failed':
        case 'gate':
        case 'escalated':
        case 'step':
        case 'advisor-call':
        case 'usage':
        case 'answer':
          break;
        default:
          yield part;
      }
    }
  }

  const tierParts = asTierStream()[Symbol.asyncIterator]();
  const first = await tierParts.next();
  if (first.done) throw new Error('the execution ended without an answer');
  if (first.value.type === 'error') throw first.value.error;
  async function* replay(): AsyncGenerator<StreamPart> {
    yield first.value as StreamPart;
    while (true) {
      const next = await tierParts.next();
      if (next.done) return;
      yield next.value;
    }
  }
  reply.hijack();
  reply.raw.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    ...(answeredBy ? { 'x-mechroute-answered-by': answeredBy } : {}),
  });
  const lines = toOpenAISse(replay(), {
    ...meta,
    model: meta.model || answeredBy || '',
    extension: () => (summary ? extension(summary) : undefined),
  });
  for await (const line of lines) {
    if (reply.raw.destroyed) break;
    if (!reply.raw.write(line)) {
      // A slow reader: wait for room, or for the socket to go away (no 'drain' comes then).
      await new Promise((resolve) => {
        reply.raw.once('drain', resolve);
        reply.raw.once('close', resolve);
      });
    }
  }
  reply.raw.end();
  return reply;
}
