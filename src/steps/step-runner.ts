import {
  type ChatMessage,
  canFailOver,
  type FinishReason,
  TierError,
  type TierRequest,
  type Usage,
} from '../tiers/tier-model.js';
import { stepTrusted } from './step-rule.js';
import type { WrittenStep } from './step-writer.js';

/**
 * Live per-step routing: the worker writes one step at a time; after each, the step probe reads the
 * prompt plus the steps so far and gives P(this trajectory ends correct). Below τ the next step is
 * handed to the next tier up; at or above τ it goes (back) to the worker. Every change of writer is a
 * switch; once `maxSwitches` are spent (or `maxSteps` steps were written one by one), whoever writes
 * then finishes the answer in a single call, since no further decision could change the writer.
 */

/**
 * The continuation turn. OpenAI's chat API has no "continue this assistant message" (a trailing
 * assistant turn is a finished turn there; prefilling it is a vendor extension: Anthropic, DeepSeek's
 * beta prefix, vLLM's continue_final_message), so the portable form is the steps so far as the
 * assistant's turn followed by a user turn asking to go on. Every OpenAI-compatible endpoint takes it,
 * and the local tier renders it with its own chat template the same way.
 */
export const CONTINUE_INSTRUCTION =
  'Continue your answer exactly where it stops. Do not repeat or restate the steps above; write the next step.';

export interface StepRecord {
  index: number;
  tier: string;
  text: string;
  /** P(success) of the prompt plus the steps up to this one; null when not probed (see `probed`). */
  p_success: number | null;
  /** Written as "the rest of the answer" in one call, after the step budget or switch cap was spent. */
  rest: boolean;
  usage: Usage;
  usage_estimated: boolean;
}

export interface StepSwitch {
  after_step: number;
  from: string;
  to: string;
  reason: 'probe' | 'failover';
  p_success: number | null;
}

export interface StepRunResult {
  steps: StepRecord[];
  /** The answer: the steps joined by line breaks. */
  text: string;
  finish_reason: FinishReason;
  switches: StepSwitch[];
  /** Tokens by tier, summed over its calls. */
  usage_by_tier: Record<string, Usage>;
}

export interface StepRunnerDeps {
  write(
    tier: string,
    request: TierRequest,
    options: { oneStep: boolean; signal?: AbortSignal },
  ): Promise<WrittenStep>;
  /** P(success) read by the step probe on the prompt plus this response prefix. */
  score(responsePrefix: string): Promise<number>;
  /** The next available tier up, or undefined at the top. */
  tierAbove(tier: string): string | undefined;
}

export interface StepRunOptions {
  /** The client's request; its max_tokens bounds the answer's output tokens over all calls. */
  request: TierRequest;
  worker: string;
  threshold: number;
  maxSwitches: number;
  maxSteps: number;
  maxStepTokens: number;
  /** Lines shorter than this are not steps of the bundle's segmentation: no decision after them. */
  minStepChars: number;
  signal?: AbortSignal;
  /** Called as each step is written and scored (a stream sends it on). */
  onStep?: (step: StepRecord, run: { switches: readonly StepSwitch[] }) => void | Promise<void>;
}

/** The messages for the next call: the client's, then the steps so far as a continuation. */
export function continuationMessages(messages: readonly ChatMessage[], response: string): ChatMessage[] {
  if (response.length === 0) return [...messages];
  return [
    ...messages,
    { role: 'assistant', content: response },
    { role: 'user', content: CONTINUE_INSTRUCTION },
  ];
}

/** Who writes after a scored step: the worker when trusted, else one tier above the current writer. */
export function nextWriter(
  p: number,
  threshold: number,
  current: string,
  worker: string,
  tierAbove: (tier: string) => string | undefined,
): string {
  if (stepTrusted(p, threshold)) return worker;
  return tierAbove(current) ?? current;
}

export async function runSteps(deps: StepRunnerDeps, options: StepRunOptions): Promise<StepRunResult> {
  const { request } = options;
  const steps: StepRecord[] = [];
  const switches: StepSwitch[] = [];
  const usageByTier: Record<string, Usage> = {};
  let response = '';
  let writer = options.worker;
  let outputTokens = 0;
  let finish: FinishReason = 'stop';

  while (true) {
    const remaining =
      request.max_tokens === undefined ? Number.POSITIVE_INFINITY : request.max_tokens - outputTokens;
    if (remaining <= 0) {
      finish = 'length';
      break;
    }
    const probeSwitches = switches.filter((s) => s.reason === 'probe').length;
    const rest = steps.length >= options.maxSteps || probeSwitches >= options.maxSwitches;
    const call: TierRequest = {
      ...request,
      messages: continuationMessages(request.messages, response),
      ...(rest
        ? Number.isFinite(remaining)
          ? { max_tokens: remaining }
          : {}
        : { max_tokens: Math.min(options.maxStepTokens, remaining) }),
    };
    let written: WrittenStep;
    try {
      written = await deps.write(writer, call, {
        oneStep: !rest,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (error) {
      const above =
        error instanceof TierError && canFailOver(error) && !options.signal?.aborted
          ? deps.tierAbove(writer)
          : undefined;
      if (!above) throw error;
      switches.push({
        after_step: steps.length,
        from: writer,
        to: above,
        reason: 'failover',
        p_success: null,
      });
      writer = above;
      continue;
    }
    const used = usageByTier[writer] ?? { input_tokens: 0, output_tokens: 0 };
    usageByTier[writer] = {
      input_tokens: used.input_tokens + written.usage.input_tokens,
      output_tokens: used.output_tokens + written.usage.output_tokens,
    };
    outputTokens += written.usage.output_tokens;
    if (written.text.length === 0) {
      // Nothing more: the tier ended (or a step budget ran out on whitespace alone).
      finish = written.finish_reason;
      break;
    }
    response = response.length === 0 ? written.text : `${response}\n${written.text}`;
    const step: StepRecord = {
      index: steps.length,
      tier: writer,
      text: written.text,
      p_success: null,
      rest,
      usage: written.usage,
      usage_estimated: written.usage_estimated,
    };
    steps.push(step);
    // With the token budget spent no step can follow, so a decision would be wasted encoder time.
    const spent = request.max_tokens !== undefined && outputTokens >= request.max_tokens;
    const done = rest || written.ended || spent;
    // A line too short to be a step of the bundle's segmentation is no decision point (it joins the next).
    if (!done && written.text.length >= options.minStepChars) {
      step.p_success = await deps.score(response);
      const next = nextWriter(step.p_success, options.threshold, writer, options.worker, deps.tierAbove);
      if (next !== writer) {
        switches.push({
          after_step: step.index,
          from: writer,
          to: next,
          reason: 'probe',
          p_success: step.p_success,
        });
        writer = next;
      }
    }
    await options.onStep?.(step, { switches });
    if (done) {
      finish = spent && !written.ended ? 'length' : written.finish_reason;
      break;
    }
  }
  return { steps, text: response, finish_reason: finish, switches, usage_by_tier: usageByTier };
}
