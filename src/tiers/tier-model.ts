import type { Annotation, AudioOutput, ChatMessage, ChatParams, ToolCall } from './openai-chat-params.js';
import type { TierError } from './tier-errors.js';

export * from './tier-errors.js';

/**
 * The provider interface every tier speaks (the AI SDK's pattern): a plain, versioned type with a
 * one-shot `generate` and a `stream` of typed parts. The tier pool, the local model and remote
 * OpenAI-compatible deployments all implement it, so they compose: a pool's tier is itself a TierModel.
 */

export type {
  Annotation,
  AudioOutput,
  ChatMessage,
  FunctionTool,
  FunctionToolCall,
  ResponseFormat,
  ToolCall,
  ToolChoice,
  ToolSpec,
} from './openai-chat-params.js';

export type ChatRole = ChatMessage['role'];

type Params = Omit<ChatParams, 'messages' | 'stream' | 'max_tokens' | 'max_completion_tokens'>;

/**
 * A chat request as every tier takes it: OpenAI's parameters, validated (openai-chat-params.ts), with
 * nulls gone (null means the default, as leaving a field out does) and the output limit under one
 * name. `toTierRequest` (openai-request.ts) builds one from a client's request; a provider honours
 * each field or refuses the request with an UnsupportedParameterError, never ignores one.
 */
export type TierRequest = {
  messages: readonly ChatMessage[];
  /** Output tokens per choice, whichever of max_tokens and max_completion_tokens the client used. */
  max_tokens?: number;
  /**
   * The client gave the limit as `max_completion_tokens` (reasoning models take no other name; older
   * OpenAI-compatible servers know only max_tokens), so an upstream gets it back under the same name.
   */
  max_tokens_name?: 'max_completion_tokens';
} & { [K in keyof Params]?: NonNullable<Params[K]> };

export interface CallOptions {
  signal?: AbortSignal;
  /**
   * The most this call may take, retries included (the request's share of its remaining deadline);
   * a provider uses the smaller of it and its own timeout.
   */
  timeoutMs?: number;
  /** Extra headers for an upstream request (W3C `traceparent`); providers without HTTP ignore them. */
  headers?: Record<string, string>;
  /** Where this call's failures are logged (the request's logger, so lines carry its id). */
  logger?: { warn(obj: object, msg?: string): void };
  /** Called for each failed attempt of a deployment (retries and failovers within the tier). */
  onAttemptFailed?: (error: TierError) => void;
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls';

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  /** Of `input_tokens`, those served from a prompt cache instead of a fresh prefill, where known. */
  cached_input_tokens?: number;
}

/** One generated token with its log-probability, and the most likely alternatives where asked for. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes?: number[] | null;
  top_logprobs?: Array<{ token: string; logprob: number; bytes?: number[] | null }>;
}

export interface LogprobSummary {
  /** Mean natural-log probability of the generated tokens. */
  mean_logprob: number;
  tokens?: TokenLogprob[];
}

/** How one answer ended, and what it holds besides its text. */
export interface ChoiceEnd {
  finish_reason: FinishReason;
  logprobs?: LogprobSummary;
  /** Calls the model asked for (finish_reason `tool_calls`). */
  tool_calls?: ToolCall[];
  /** The model declined (OpenAI's structured refusal), in place of content. */
  refusal?: string;
  annotations?: Annotation[];
  audio?: AudioOutput;
}

/** One of the answers of a request (`n` asks for several). */
export interface Choice extends ChoiceEnd {
  index: number;
  text: string;
}

/** The first answer's fields at the top (most callers ask for one), any others in `more_choices`. */
export interface GenerateResult extends ChoiceEnd {
  text: string;
  /** Answers 1 … n-1 when the request asked for n > 1. */
  more_choices?: Choice[];
  /** Summed over every answer; the prompt is counted once. */
  usage: Usage;
  /** Settings the provider ignored or approximated; never a reason to fail. */
  warnings: string[];
  tier: string;
  deployment: string;
}

/** Every answer of a result, the first included, in index order. */
export const choicesOf = (result: GenerateResult): Choice[] => [
  { ...choiceEnd(result), index: 0, text: result.text },
  ...(result.more_choices ?? []),
];

/** The fields of a ChoiceEnd that are set, copied (so results never carry `key: undefined`). */
export function choiceEnd(end: ChoiceEnd): ChoiceEnd {
  return {
    finish_reason: end.finish_reason,
    ...(end.logprobs ? { logprobs: end.logprobs } : {}),
    ...(end.tool_calls?.length ? { tool_calls: end.tool_calls } : {}),
    ...(end.refusal !== undefined ? { refusal: end.refusal } : {}),
    ...(end.annotations?.length ? { annotations: end.annotations } : {}),
    ...(end.audio ? { audio: end.audio } : {}),
  };
}

/**
 * A stream's parts. `choice` is the answer a part belongs to (0 when absent); the parts of several
 * answers may interleave. A tool call arrives as deltas like OpenAI's: the first of a call carries its
 * id and name, the rest only pieces of its JSON arguments.
 */
export type StreamPart =
  | { type: 'start'; tier: string; deployment: string; warnings: string[] }
  | { type: 'text-delta'; text: string; choice?: number; logprobs?: TokenLogprob[] }
  | { type: 'refusal-delta'; text: string; choice?: number }
  | {
      type: 'tool-call-delta';
      choice?: number;
      /** Position of the call among the answer's calls. */
      call: number;
      id?: string;
      name?: string;
      arguments: string;
    }
  | ({
      type: 'finish';
      usage: Usage;
      /** How answers 1 … n-1 ended, when there are several; the part's own fields are answer 0's. */
      more_choices?: Array<ChoiceEnd & { index: number }>;
      warnings?: string[];
    } & ChoiceEnd)
  | { type: 'error'; error: TierError };

/**
 * Stream contract: at most one `start`, then deltas, then exactly one `finish` or `error`, which ends it.
 * An `error` with no `start` before it means nothing was produced (a server may still answer non-200).
 * Streams do not throw: failures arrive in-band. Breaking out of the iteration cancels the generation.
 */
export interface TierModel {
  readonly specificationVersion: 'v1';
  /** Tier id for a pool's tier, `tier/deployment` for a single deployment. */
  readonly id: string;
  readonly provider: 'local' | 'openai' | 'pool';
  /** @throws TierError */
  generate(request: TierRequest, options?: CallOptions): Promise<GenerateResult>;
  stream(request: TierRequest, options?: CallOptions): AsyncIterable<StreamPart>;
}

/** Message content as plain text: text parts joined, a refusal read as what the assistant said. */
export function messageText(message: ChatMessage): string {
  const { content } = message;
  if (content === null) return message.role === 'assistant' ? (message.refusal ?? '') : '';
  if (typeof content === 'string') return content;
  return content
    .map((part) => (part.type === 'text' ? part.text : part.type === 'refusal' ? part.refusal : ''))
    .filter((text) => text.length > 0)
    .join('\n');
}

export const stopList = (stop: TierRequest['stop']): string[] =>
  (stop === undefined ? [] : typeof stop === 'string' ? [stop] : [...stop]).filter((s) => s.length > 0);

export function meanLogprob(logprobs: readonly number[]): number {
  return logprobs.length ? logprobs.reduce((a, b) => a + b, 0) / logprobs.length : 0;
}

/**
 * A whole result as the parts a stream of it would have had (collectStream's inverse): each answer's
 * text as one delta, then one finish with every answer's ending (tool calls, refusals and the rest
 * ride on it, as a stream's finish can carry them).
 */
export function resultAsParts(result: GenerateResult): StreamPart[] {
  const [first, ...more] = choicesOf(result);
  return [
    ...choicesOf(result)
      .filter((c) => c.text.length > 0)
      .map(
        (c): StreamPart => ({
          type: 'text-delta',
          text: c.text,
          ...(c.index > 0 ? { choice: c.index } : {}),
        }),
      ),
    {
      type: 'finish',
      ...choiceEnd(first!),
      usage: result.usage,
      ...(more.length > 0 ? { more_choices: more.map(({ text: _, ...end }) => end) } : {}),
    },
  ];
}

/** Runs a stream to its end and folds it into a result; an error part is thrown. */
export async function collectStream(parts: AsyncIterable<StreamPart>): Promise<GenerateResult> {
  const texts: string[] = [];
  const refusals: Array<string | undefined> = [];
  const calls: ToolCall[][] = [];
  let start: Extract<StreamPart, { type: 'start' }> | undefined;
  for await (const part of parts) {
    const index = 'choice' in part ? (part.choice ?? 0) : 0;
    switch (part.type) {
      case 'start':
        start = part;
        break;
      case 'text-delta':
        texts[index] = (texts[index] ?? '') + part.text;
        break;
      case 'refusal-delta':
        refusals[index] = (refusals[index] ?? '') + part.text;
        break;
      case 'tool-call-delta': {
        const list = calls[index] ?? [];
        calls[index] = list;
        const call = list[part.call];
        if (call?.type === 'function') call.function.arguments += part.arguments;
        else {
          list[part.call] = {
            id: part.id ?? '',
            type: 'function',
            function: { name: part.name ?? '', arguments: part.arguments },
          };
        }
        break;
      }
      case 'error':
        throw part.error;
      case 'finish': {
        // The finish part's own lists win: a provider that streamed deltas also sends the whole.
        const ended = (end: ChoiceEnd, i: number): ChoiceEnd =>
          choiceEnd({
            ...end,
            ...(end.tool_calls === undefined && calls[i]?.length ? { tool_calls: calls[i] } : {}),
            ...(end.refusal === undefined && refusals[i] !== undefined ? { refusal: refusals[i] } : {}),
          });
        const more = (part.more_choices ?? []).map((c) => ({
          ...ended(c, c.index),
          index: c.index,
          text: texts[c.index] ?? '',
        }));
        return {
          ...ended(part, 0),
          text: texts[0] ?? '',
          ...(more.length ? { more_choices: more } : {}),
          usage: part.usage,
          warnings: [...(start?.warnings ?? []), ...(part.warnings ?? [])],
          tier: start?.tier ?? '',
          deployment: start?.deployment ?? '',
        };
      }
    }
  }
  throw new Error('stream ended without finish or error part');
}

/**
 * A push-to-pull bridge: a producer pushes parts, the consumer iterates. `onCancel` runs when the
 * consumer stops early, so a generation nobody reads is stopped instead of running to max_tokens.
 */
export function createPartChannel(onCancel: () => void): {
  push(part: StreamPart): void;
  close(): void;
  iterable: AsyncIterable<StreamPart>;
} {
  const buffered: StreamPart[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  return {
    push(part) {
      if (closed) return;
      buffered.push(part);
      notify();
    },
    close() {
      closed = true;
      notify();
    },
    iterable: {
      async *[Symbol.asyncIterator]() {
        let ended = false;
        try {
          while (true) {
            const next = buffered.shift();
            if (next) {
              ended = next.type === 'finish' || next.type === 'error';
              yield next;
              if (ended) return;
              continue;
            }
            if (closed) return;
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
        } finally {
          if (!ended && !closed) onCancel();
          closed = true;
        }
      },
    },
  };
}
