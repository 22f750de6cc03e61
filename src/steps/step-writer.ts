import type {
  CallOptions,
  ChatMessage,
  FinishReason,
  StreamPart,
  TierRequest,
  Usage,
} from '../tiers/tier-model.js';

/** What one tier call of the live step loop produced. */
export interface WrittenStep {
  tier: string;
  /** The step (one line, trimmed), or everything the tier wrote when asked for the rest. */
  text: string;
  /** The tier ended its answer by itself (end of generation or a client stop), not at a line break. */
  ended: boolean;
  finish_reason: FinishReason;
  usage: Usage;
  /** The call was cut at the step's line break, before the upstream reported usage: counted locally. */
  usage_estimated: boolean;
}

export interface StepWriterDeps {
  /** A tier's stream (the pool's: retries and deployment failover included). */
  stream(tier: string, request: TierRequest, options?: CallOptions): AsyncIterable<StreamPart>;
  /** Token count of a text, for the usage of a call cut short (the encoder's tokenizer). */
  countTokens(text: string): number;
}

/** Where the first line with content ends in `text`, or -1 while it has not ended yet. */
export function firstLineEnd(text: string): number {
  const lead = text.length - text.trimStart().length;
  return text.indexOf('\n', lead);
}

/**
 * One tier call of the step loop. With `oneStep` the answer is read as a stream and cut at the first
 * line break after some content — the step delimiter of every segmentation mode (stepStopString) —
 * and the rest of the generation is cancelled. A stop sequence would not do: an answer ending and a
 * step ending both come back as finish_reason "stop", and only the stream tells them apart (a finish
 * before any line break is the tier's own end).
 */
export async function writeStep(
  deps: StepWriterDeps,
  tier: string,
  request: TierRequest,
  options: { oneStep: boolean; signal?: AbortSignal },
): Promise<WrittenStep> {
  let text = '';
  const parts = deps.stream(tier, request, options.signal ? { signal: options.signal } : {});
  for await (const part of parts) {
    switch (part.type) {
      case 'text-delta': {
        text += part.text;
        const cut = options.oneStep ? firstLineEnd(text) : -1;
        if (cut >= 0) {
          const step = text.slice(0, cut).trim();
          // Leaving the loop cancels the generation (the pool's stream contract).
          return {
            tier,
            text: step,
            ended: false,
            finish_reason: 'stop',
            usage: {
              input_tokens: deps.countTokens(messagesText(request.messages)),
              output_tokens: deps.countTokens(text.slice(0, cut + 1)),
            },
            usage_estimated: true,
          };
        }
        break;
      }
      case 'finish':
        return {
          tier,
          text: options.oneStep ? text.trim() : text.replace(/^\s*\n/, '').trimEnd(),
          ended: part.finish_reason !== 'length',
          finish_reason: part.finish_reason,
          usage: part.usage,
          usage_estimated: false,
        };
      case 'error':
        throw part.error;
      case 'start':
        break;
    }
  }
  throw new Error(`tier ${tier}: the stream ended without a finish or an error`);
}

function messagesText(messages: readonly ChatMessage[]): string {
  return messages
    .map((m) =>
      typeof m.content === 'string'
        ? m.content
        : (m.content ?? []).map((p) => (p.type === 'text' ? (p.text ?? '') : '')).join('\n'),
    )
    .join('\n');
}
