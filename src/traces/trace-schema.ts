import { z } from 'zod';

/**
 * The trace format: one JSON object per line, each a prompt with the outcome of one or more tiers on it.
 * Traces are what probes learn from, so the schema is strict about what the training code reads
 * (ids, prompt, outcomes) and loose about everything else: unknown keys are kept (`.loose()`), because a
 * validator that strips fields would silently lose data when a file is rewritten.
 */

/** A tier id as it appears in traces and configs (e.g. `mixtral-8x7b-instruct`). */
export const TierIdSchema = z.string().min(1, 'tier id must not be empty');
export type TierId = z.infer<typeof TierIdSchema>;

/** A score in [0, 1]; the bounds are what lets `successOf` threshold it at 0.5. */
const UnitScoreSchema = z.number().min(0).max(1);

const OutcomeObjectSchema = z
  .looseObject({
    success: z.boolean().optional(),
    score: UnitScoreSchema.optional(),
  })
  .refine((o) => o.success !== undefined || o.score !== undefined, {
    message: 'an outcome object needs `success` or `score` (or both)',
  });

/** A tier's outcome on one prompt: a plain boolean, or `{success?, score?}` with at least one of them. */
export const OutcomeSchema = z.union([z.boolean(), OutcomeObjectSchema], {
  error: 'an outcome is a boolean or an object {success?: boolean, score?: number in [0, 1]}',
});
export type Outcome = z.infer<typeof OutcomeSchema>;

const NonNegativeInt = z.number().int().nonnegative();

export const TokenCountsSchema = z.looseObject({
  input: NonNegativeInt.optional(),
  output: NonNegativeInt.optional(),
});
export type TokenCounts = z.infer<typeof TokenCountsSchema>;

/**
 * OpenAI-style content: a string, or parts of which only `text` parts carry prompt text (images and
 * audio parts are kept in the record but contribute nothing to `promptText`), or null for assistant
 * messages that only carry tool calls.
 */
const ContentPartSchema = z.looseObject({ type: z.string(), text: z.string().optional() });
export const MessageSchema = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(ContentPartSchema), z.null()]),
});
export type Message = z.infer<typeof MessageSchema>;

/**
 * One reasoning step of a tier's answer: its text, optionally graded. A bare string is a step without a
 * grade, so plain step lists (e.g. the lines of a chain-of-thought) need no wrapping.
 */
export const StepSchema = z.union(
  [
    z.string(),
    z.looseObject({ text: z.string(), success: z.boolean().optional(), score: UnitScoreSchema.optional() }),
  ],
  { error: 'a step is a string or an object {text, success?, score?}' },
);
export type Step = z.infer<typeof StepSchema>;

const perTier = <T extends z.ZodType>(value: T) => z.record(TierIdSchema, value);

export const TraceSchema = z
  .looseObject({
    id: z.string().min(1, 'id must not be empty'),
    prompt: z.string().optional(),
    messages: z.array(MessageSchema).min(1, 'messages must not be empty').optional(),
    // May be empty: a prompt with a reference answer but no tier run yet is a valid input to `label`.
    outcomes: perTier(OutcomeSchema),
    tokens: perTier(TokenCountsSchema).optional(),
    /** USD per tier for this prompt. */
    cost: perTier(z.number().nonnegative()).optional(),
    latency_ms: perTier(z.number().nonnegative()).optional(),
    steps: perTier(z.array(StepSchema)).optional(),
    responses: perTier(z.string()).optional(),
    dataset: z.string().optional(),
    subject: z.string().optional(),
    class: z.string().optional(),
    reference_answer: z.string().optional(),
    reference_solution: z.string().optional(),
  })
  .superRefine((trace, ctx) => {
    const hasPrompt = trace.prompt !== undefined;
    const hasMessages = trace.messages !== undefined;
    if (hasPrompt === hasMessages) {
      ctx.addIssue({
        code: 'custom',
        path: hasPrompt ? ['messages'] : ['prompt'],
        message: hasPrompt
          ? 'give either `prompt` or `messages`, not both'
          : 'one of `prompt` (string) or `messages` (chat) is required',
      });
    }
  });
export type Trace = z.infer<typeof TraceSchema>;

function contentText(content: Message['content']): string {
  if (content === null) return '';
  if (typeof content === 'string') return content;
  return content
    .filter((part) => part.type === 'text' && part.text !== undefined)
    .map((part) => part.text)
    .join('\n');
}

/**
 * The prompt as one string. A chat is flattened as `role: text` blocks separated by a blank line, always
 * with the role (even for a single user message), so that the same text always means the same chat and
 * hashes of it can key caches. Non-text content parts are skipped.
 */
export function promptText(trace: Pick<Trace, 'prompt' | 'messages'>): string {
  if (trace.prompt !== undefined) return trace.prompt;
  return (trace.messages ?? []).map((m) => `${m.role}: ${contentText(m.content)}`).join('\n\n');
}

/**
 * Whether an outcome counts as a success. An explicit `success` wins over `score` (it is the label the
 * grader chose); a score alone counts as a success when it is ≥ 0.5 — the midpoint of [0, 1], so a
 * graded score and a boolean agree on what "better than a coin flip" means.
 */
export function successOf(outcome: Outcome): boolean {
  if (typeof outcome === 'boolean') return outcome;
  if (outcome.success !== undefined) return outcome.success;
  if (outcome.score !== undefined) return outcome.score >= 0.5;
  // Unreachable for parsed traces (the schema requires one of them); an object built by hand may lack both.
  throw new TypeError('an outcome needs `success` or `score`');
}

/** The outcome as a number in [0, 1]: the score when there is one, else 1 for success and 0 for failure. */
export function scoreOf(outcome: Outcome): number {
  if (typeof outcome === 'object' && outcome.score !== undefined) return outcome.score;
  return successOf(outcome) ? 1 : 0;
}
