import { randomInt } from 'node:crypto';
import {
  type Choice,
  type ChoiceEnd,
  choicesOf,
  type FinishReason,
  type GenerateResult,
  type StreamPart,
  type TierError,
  type TokenLogprob,
  type ToolCall,
  type Usage,
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
  /** Pad each chunk with random `obfuscation` text (`stream_options.include_obfuscation`). */
  obfuscate?: boolean;
  /** Show logprobs; false hides those a tier was asked for on mechroute's account. Default: shown. */
  logprobs?: boolean;
  /** mechroute's `mechroute` object, sent in the first answer's finish chunk (read when it is written). */
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

const openAIToken = (t: TokenLogprob) => ({
  token: t.token,
  logprob: t.logprob,
  bytes: t.bytes ?? null,
  top_logprobs: (t.top_logprobs ?? []).map((top) => ({
    token: top.token,
    logprob: top.logprob,
    bytes: top.bytes ?? null,
  })),
});

const openAILogprobs = (tokens: readonly TokenLogprob[] | undefined) =>
  tokens ? { content: tokens.map(openAIToken), refusal: null } : null;

/** OpenAI's error object; the message is the TierError's, which never carries credentials. */
export function openAIError(error: TierError) {
  const param = (error as { param?: unknown }).param;
  return {
    error: {
      message: error.message,
      type: error.status === 400 ? 'invalid_request_error' : 'upstream_error',
      param: typeof param === 'string' ? param : null,
      code: error.code,
    },
  };
}

/** A call as the first delta of it: id, type and name, and all its arguments at once. */
const wholeCallDelta = (call: ToolCall, index: number) =>
  call.type === 'function'
    ? {
        index,
        id: call.id,
        type: 'function',
        function: { name: call.function.name, arguments: call.function.arguments },
      }
    : { index, id: call.id, type: 'custom', custom: call.custom };

/**
 * Parts → `chat.completion.chunk` events, as OpenAI streams them: for each answer (`choice` index) a
 * role delta first, then content, refusal and tool-call deltas, then a chunk with its
 * `finish_reason`; a usage chunk after the last; then `data: [DONE]`. Whatever a provider reported only
 * in its finish part (a tool call it did not stream, a refusal, citations) goes out as deltas just
 * before that answer's finish chunk, so a client reassembling the deltas gets the whole answer. An
 * error part becomes a final `data: {"error": …}` event with no [DONE] after it — the official clients
 * raise on it, so a stream cut short is never mistaken for a complete answer.
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
  const showLogprobs = meta.logprobs !== false;
  const padding = () => (meta.obfuscate ? { obfuscation: obfuscation() } : {});
  const chunk = (
    index: number,
    delta: Record<string, unknown>,
    finishReason: FinishReason | null,
    logprobs: ReturnType<typeof openAILogprobs> = null,
    extra: Record<string, unknown> = {},
  ) =>
    sse({
      ...base,
      choices: [{ index, delta, logprobs, finish_reason: finishReason }],
      ...extra,
      ...padding(),
    });
  const started = new Set<number>();
  const role = function* (index: number) {
    if (started.has(index)) return;
    started.add(index);
    yield chunk(index, { role: 'assistant', content: '' }, null);
  };
  // What each answer streamed as deltas, so its finish adds only what did not come that way.
  const streamedCalls = new Map<number, Set<number>>();
  const streamedRefusal = new Set<number>();
  const finishChoice = function* (index: number, end: ChoiceEnd, extra: Record<string, unknown> = {}) {
    yield* role(index);
    const seen = streamedCalls.get(index);
    const unsent = (end.tool_calls ?? []).flatMap((call, i) =>
      seen?.has(i) ? [] : [wholeCallDelta(call, i)],
    );
    if (unsent.length > 0) yield chunk(index, { tool_calls: unsent }, null);
    if (end.refusal !== undefined && !streamedRefusal.has(index)) {
      yield chunk(index, { refusal: end.refusal }, null);
    }
    if (end.annotations?.length) yield chunk(index, { annotations: end.annotations }, null);
    yield chunk(index, {}, end.finish_reason, null, extra);
  };
  for await (const part of parts) {
    switch (part.type) {
      case 'start':
        yield* role(0);
        break;
      case 'text-delta': {
        const index = part.choice ?? 0;
        yield* role(index);
        if (part.text) {
          const logprobs = showLogprobs ? openAILogprobs(part.logprobs) : null;
          yield chunk(index, { content: part.text }, null, logprobs);
        }
        break;
      }
      case 'refusal-delta': {
        const index = part.choice ?? 0;
        yield* role(index);
        streamedRefusal.add(index);
        yield chunk(index, { refusal: part.text }, null);
        break;
      }
      case 'tool-call-delta': {
        const index = part.choice ?? 0;
        yield* role(index);
        const seen = streamedCalls.get(index) ?? new Set<number>();
        streamedCalls.set(index, seen);
        const first = !seen.has(part.call);
        seen.add(part.call);
        const call = {
          index: part.call,
          ...(first ? { id: part.id ?? '', type: 'function' } : {}),
          function: { ...(first ? { name: part.name ?? '' } : {}), arguments: part.arguments },
        };
        yield chunk(index, { tool_calls: [call] }, null);
        break;
      }
      case 'finish': {
        const extension = meta.extension?.();
        yield* finishChoice(0, part, extension ? { mechroute: extension } : {});
        for (const more of part.more_choices ?? []) yield* finishChoice(more.index, more);
        if (meta.includeUsage !== false) {
          yield sse({ ...base, choices: [], usage: openAIUsage(part.usage), ...padding() });
        }
        yield 'data: [DONE]\n\n';
        return;
      }
      case 'error':
        yield sse((meta.errorBody ?? openAIError)(part.error));
        return;
    }
  }
}

/** Random text of random length, so chunk sizes do not give away token lengths (OpenAI's mitigation). */
function obfuscation(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return Array.from({ length: randomInt(1, 17) }, () => alphabet[randomInt(alphabet.length)]).join('');
}

/** The message of one answer: content null where the answer is calls, a refusal or audio only. */
function openAIMessage(choice: Choice) {
  const nonText = Boolean(choice.tool_calls?.length || choice.refusal !== undefined || choice.audio);
  return {
    role: 'assistant' as const,
    content: choice.text === '' && nonText ? null : choice.text,
    refusal: choice.refusal ?? null,
    ...(choice.tool_calls?.length ? { tool_calls: choice.tool_calls } : {}),
    ...(choice.annotations?.length ? { annotations: choice.annotations } : {}),
    ...(choice.audio ? { audio: choice.audio } : {}),
  };
}

/** The non-streaming `chat.completion` body, one entry in `choices` per answer. */
export function buildChatCompletion(
  result: GenerateResult,
  meta: Omit<OpenAIResponseMeta, 'includeUsage' | 'obfuscate'>,
) {
  const showLogprobs = meta.logprobs !== false;
  return {
    id: meta.id,
    object: 'chat.completion' as const,
    created: meta.created,
    model: meta.model,
    choices: choicesOf(result).map((choice) => ({
      index: choice.index,
      message: openAIMessage(choice),
      logprobs: showLogprobs ? openAILogprobs(choice.logprobs?.tokens) : null,
      finish_reason: choice.finish_reason,
    })),
    usage: openAIUsage(result.usage),
  };
}
