import type {
  FinishReason,
  GenerateResult,
  LogprobSummary,
  StreamPart,
  TierError,
  Usage,
} from './tier-model.js';

/** What every response of one request shares on the OpenAI wire. */
export interface OpenAIResponseMeta {
  /** `chatcmpl-…` */
  id: string;
  /** Echoed as `model`: the tier that answered, or what the client asked for. */
  model: string;
  /** Unix seconds. */
  created: number;
  /** Send the trailing usage chunk (OpenAI sends it only with `stream_options.include_usage`). Default true. */
  includeUsage?: boolean;
  /** mechroute's `mechroute` object, sent in the finish chunk (read when the finish is written). */
  extension?: () => Record<string, unknown> | undefined;
  /** The body of a stream's error event (the server's: the same shape and code as its HTTP errors). */
  errorBody?: (error: TierError) => unknown;
}

const sse = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`;

const openAIUsage = (usage: Usage) => ({
  prompt_tokens: usage.input_tokens,
  completion_tokens: usage.output_tokens,
  total_tokens: usage.input_tokens + usage.output_tokens,
  ...(usage.cached_input_tokens === undefined
    ? {}
    : { prompt_tokens_details: { cached_tokens: usage.cached_input_tokens } }),
});

const openAILogprobs = (logprobs: LogprobSummary | undefined) =>
  logprobs?.tokens
    ? {
        content: logprobs.tokens.map((t) => ({
          token: t.token,
          logprob: t.logprob,
          bytes: null,
          top_logprobs: [],
        })),
        refusal: null,
      }
    : null;

/** OpenAI's error object; the message is the TierError's, which never carries credentials. */
export function openAIError(error: TierError) {
  return { error: { message: error.message, type: 'upstream_error', param: null, code: error.code } };
}

/**
 * Parts → `chat.completion.chunk` events, as OpenAI streams them: a role delta first, content deltas,
 * a finish chunk with `finish_reason`, a usage chunk, then `data: [DONE]`. An error part becomes a
 * final `data: {"error": …}` event with no [DONE] after it — the official clients raise on it, so a
 * stream cut short is never mistaken for a complete answer.
 */
export async function* toOpenAISse(
  parts: AsyncIterable<StreamPart>,
  meta: OpenAIResponseMeta,
): AsyncGenerator<string> {
  const base = {
    id: meta.id,
    object: 'chat.completion.chunk' as const,
    created: meta.created,
    model: meta.model,
  };
  const chunk = (delta: Record<string, string>, finishReason: FinishReason | null) =>
    sse({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] });
  let roleSent = false;
  const role = function* () {
    if (roleSent) return;
    roleSent = true;
    yield chunk({ role: 'assistant', content: '' }, null);
  };
  for await (const part of parts) {
    switch (part.type) {
      case 'start':
        yield* role();
        break;
      case 'text-delta':
        yield* role();
        if (part.text) yield chunk({ content: part.text }, null);
        break;
      case 'finish': {
        yield* role();
        const extension = meta.extension?.();
        yield sse({
          ...base,
          choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: part.finish_reason }],
          ...(extension ? { mechroute: extension } : {}),
        });
        if (meta.includeUsage !== false) yield sse({ ...base, choices: [], usage: openAIUsage(part.usage) });
        yield 'data: [DONE]\n\n';
        return;
      }
      case 'error':
        yield sse((meta.errorBody ?? openAIError)(part.error));
        return;
    }
  }
}

/** The non-streaming `chat.completion` body. */
export function buildChatCompletion(result: GenerateResult, meta: Omit<OpenAIResponseMeta, 'includeUsage'>) {
  return {
    id: meta.id,
    object: 'chat.completion' as const,
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant' as const, content: result.text, refusal: null },
        logprobs: openAILogprobs(result.logprobs),
        finish_reason: result.finish_reason,
      },
    ],
    usage: openAIUsage(result.usage),
  };
}
