import { z } from 'zod';
import { AnnotationSchema, AudioOutputSchema } from '../../openai-chat-params.js';
import type { TokenLogprob, Usage } from '../../tier-model.js';

/**
 * What we read from an OpenAI-compatible upstream, validated because upstreams are a boundary: vLLM,
 * llama.cpp's server, OpenRouter and LiteLLM all differ a little. Only the fields we use are required;
 * unknown fields are dropped, nullable ones tolerate both null and absence.
 */

const TopLogprobWire = z.object({
  token: z.string(),
  logprob: z.number(),
  bytes: z.array(z.number().int()).nullish(),
});
const LogprobsWire = z
  .object({
    content: z.array(TopLogprobWire.extend({ top_logprobs: z.array(TopLogprobWire).nullish() })).nullish(),
  })
  .nullish();

export const UsageWireSchema = z.object({
  prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
  prompt_tokens_details: z.object({ cached_tokens: z.number().int().nonnegative().nullish() }).nullish(),
});

/** An upstream's usage in our terms (OpenAI reports cached prompt tokens in `prompt_tokens_details`). */
export function usageFromWire(usage: z.infer<typeof UsageWireSchema>): Usage {
  const cached = usage.prompt_tokens_details?.cached_tokens;
  return {
    input_tokens: usage.prompt_tokens,
    output_tokens: usage.completion_tokens,
    ...(cached == null ? {} : { cached_input_tokens: cached }),
  };
}

const ToolCallWire = z.union([
  z.object({
    id: z.string(),
    type: z.literal('function').default('function'),
    function: z.object({ name: z.string(), arguments: z.string() }),
  }),
  z.object({
    id: z.string(),
    type: z.literal('custom'),
    custom: z.object({ name: z.string(), input: z.string() }),
  }),
]);

export const ChatCompletionWireSchema = z.object({
  id: z.string().optional(),
  choices: z
    .array(
      z.object({
        index: z.number().int().nonnegative().optional(),
        message: z.object({
          content: z.string().nullish(),
          refusal: z.string().nullish(),
          tool_calls: z.array(ToolCallWire).nullish(),
          annotations: z.array(AnnotationSchema).nullish(),
          audio: AudioOutputSchema.nullish(),
        }),
        finish_reason: z.string().nullish(),
        logprobs: LogprobsWire,
      }),
    )
    .min(1),
  usage: UsageWireSchema.nullish(),
});

/** A piece of a streamed tool call: the first of a call has its id and name, later ones argument text. */
const ToolCallDeltaWire = z.object({
  index: z.number().int().nonnegative(),
  id: z.string().nullish(),
  type: z.literal('function').nullish(),
  function: z.object({ name: z.string().nullish(), arguments: z.string().nullish() }).nullish(),
});

export const ChatCompletionChunkWireSchema = z.object({
  choices: z.array(
    z.object({
      index: z.number().int().nonnegative().optional(),
      delta: z
        .object({
          content: z.string().nullish(),
          refusal: z.string().nullish(),
          tool_calls: z.array(ToolCallDeltaWire).nullish(),
          annotations: z.array(AnnotationSchema).nullish(),
        })
        .nullish(),
      finish_reason: z.string().nullish(),
      logprobs: LogprobsWire,
    }),
  ),
  usage: UsageWireSchema.nullish(),
});

/** `{"error": {...}}`: the error body of a non-2xx answer, and an in-band event some upstreams send. */
export const ErrorWireSchema = z.object({
  error: z.union([
    z.object({
      message: z.string().optional(),
      type: z.string().nullish(),
      code: z.union([z.string(), z.number()]).nullish(),
    }),
    z.string(),
  ]),
});

export type UsageWire = z.infer<typeof UsageWireSchema>;
export type LogprobTokenWire = NonNullable<NonNullable<z.infer<typeof LogprobsWire>>['content']>[number];

/** Values beyond OpenAI's four (e.g. vLLM's "abort", llama.cpp's "eos") read as "stop". */
export function toFinishReason(value: string): 'stop' | 'length' | 'content_filter' | 'tool_calls' {
  if (value === 'length' || value === 'content_filter' || value === 'tool_calls') return value;
  if (value === 'function_call') return 'tool_calls';
  return 'stop';
}

/** An upstream's token logprobs in our terms (nulls dropped). */
export function tokenLogprobsFromWire(tokens: readonly LogprobTokenWire[]): TokenLogprob[] {
  const bytes = (b: number[] | null | undefined) => b ?? null;
  return tokens.map((t) => ({
    token: t.token,
    logprob: t.logprob,
    bytes: bytes(t.bytes),
    ...(t.top_logprobs
      ? {
          top_logprobs: t.top_logprobs.map((top) => ({
            token: top.token,
            logprob: top.logprob,
            bytes: bytes(top.bytes),
          })),
        }
      : {}),
  }));
}

export type ChoiceWire = z.infer<typeof ChatCompletionWireSchema>['choices'][number];
