import type { TierError } from './tier-errors.js';

export * from './tier-errors.js';

/**
 * The provider interface every tier speaks (the AI SDK's pattern): a plain, versioned type with a
 * one-shot `generate` and a `stream` of typed parts. The tier pool, the local model and remote
 * OpenAI-compatible deployments all implement it, so they compose: a pool's tier is itself a TierModel.
 */

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

/** A function call a model asked for, in OpenAI's shape (`arguments` is JSON text, as the model wrote it). */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A function offered to the model, in OpenAI's tool shape (`parameters` is a JSON Schema). */
export interface ToolSpec {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/** OpenAI's message shape, text only: content parts other than text are dropped with a warning. */
export interface ChatMessage {
  role: ChatRole;
  content: string | null | ReadonlyArray<{ type: string; text?: string }>;
  name?: string;
  /** On an assistant turn that called tools. */
  tool_calls?: readonly ToolCall[];
  /** On a tool turn: the call it answers. */
  tool_call_id?: string;
}

export interface TierRequest {
  messages: readonly ChatMessage[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string | readonly string[];
  seed?: number;
  /** Ask for the mean token log-probability of the answer (the cascade's confidence signal). */
  logprobs?: boolean;
  /** Functions the model may call (non-streaming `generate` only); the answer then may hold tool_calls. */
  tools?: readonly ToolSpec[];
  tool_choice?: 'auto' | 'none' | 'required';
}

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

export interface LogprobSummary {
  /** Mean natural-log probability of the generated tokens. */
  mean_logprob: number;
  tokens?: Array<{ token: string; logprob: number }>;
}

export interface GenerateResult {
  text: string;
  finish_reason: FinishReason;
  usage: Usage;
  logprobs?: LogprobSummary;
  /** Calls the model asked for (finish_reason `tool_calls`). */
  tool_calls?: ToolCall[];
  /** Settings the provider ignored or approximated; never a reason to fail. */
  warnings: string[];
  tier: string;
  deployment: string;
}

export type StreamPart =
  | { type: 'start'; tier: string; deployment: string; warnings: string[] }
  | { type: 'text-delta'; text: string }
  | {
      type: 'finish';
      finish_reason: FinishReason;
      usage: Usage;
      logprobs?: LogprobSummary;
      /** Calls the model made (finish_reason `tool_calls`); SSE clients get them from generate only. */
      tool_calls?: ToolCall[];
      warnings?: string[];
    }
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

/** Message content as plain text, collecting a warning for non-text parts. */
export function messageText(message: ChatMessage, warnings: string[]): string {
  const { content } = message;
  if (content === null) return '';
  if (typeof content === 'string') return content;
  const texts: string[] = [];
  for (const part of content) {
    if (part.type === 'text' && typeof part.text === 'string') texts.push(part.text);
    else warnings.push(`content part of type "${part.type}" ignored: this tier takes text only`);
  }
  return texts.join('\n');
}

export const stopList = (stop: TierRequest['stop']): string[] =>
  (stop === undefined ? [] : typeof stop === 'string' ? [stop] : [...stop]).filter((s) => s.length > 0);

export function meanLogprob(logprobs: readonly number[]): number {
  return logprobs.length ? logprobs.reduce((a, b) => a + b, 0) / logprobs.length : 0;
}

/** Runs a stream to its end and folds it into a result; an error part is thrown. */
export async function collectStream(parts: AsyncIterable<StreamPart>): Promise<GenerateResult> {
  let text = '';
  let start: Extract<StreamPart, { type: 'start' }> | undefined;
  for await (const part of parts) {
    switch (part.type) {
      case 'start':
        start = part;
        break;
      case 'text-delta':
        text += part.text;
        break;
      case 'error':
        throw part.error;
      case 'finish':
        return {
          text,
          finish_reason: part.finish_reason,
          usage: part.usage,
          ...(part.logprobs ? { logprobs: part.logprobs } : {}),
          ...(part.tool_calls ? { tool_calls: part.tool_calls } : {}),
          warnings: [...(start?.warnings ?? []), ...(part.warnings ?? [])],
          tier: start?.tier ?? '',
          deployment: start?.deployment ?? '',
        };
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
