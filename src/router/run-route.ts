import { shouldEscalate } from '../policy/cascade.js';
import type { AnswerGate, TierPlan } from '../policy/policy-schema.js';
import type { TierError } from '../tiers/tier-errors.js';
import {
  canFailOver,
  type GenerateResult,
  resultAsParts,
  type TierRequest,
  toTierError,
  type Usage,
} from '../tiers/tier-model.js';
import {
  type AttemptRecord,
  addUsage,
  type ExecuteOptions,
  type ExecutionPart,
  type ExecutorDeps,
  tierBudgetMs,
  type Via,
} from './execution.js';

/**
 * Route mode: the plan's first tier answers. A tier that fails before sending anything hands the
 * request to the next tier of the plan (when the plan allows failover and the failure is one another
 * tier may not share); with a gate (cascade), each whole answer is judged and a failed one moves the
 * request one tier up, at most `max_escalations` times. A stream commits at its first content part:
 * after that a failure ends it with an error, never with another tier's answer spliced in.
 *
 * A gated answer must be complete before it is judged, so with a gate even a streamed request is
 * answered whole and then sent as one content part.
 */
export async function* runRoute(
  deps: ExecutorDeps,
  plan: TierPlan,
  request: TierRequest,
  options: ExecuteOptions,
): AsyncGenerator<ExecutionPart> {
  const attempts: AttemptRecord[] = [];
  const usageByTier: Record<string, Usage> = {};
  let cost = 0;
  let escalations = 0;
  let index = 0;
  let via: Via = 'chosen';
  const { signal } = options;
  const gate = plan.max_escalations > 0 ? plan.gate : undefined;
  // The logprob gate reads the answer's token logprobs, which the tier must then be asked for.
  const call: TierRequest = gate?.kind === 'logprob' ? { ...request, logprobs: true } : request;
  const callOptions = () => ({
    signal,
    timeoutMs: tierBudgetMs(options.remainingMs(), plan.tiers.length - index),
  });
  const charge = (tier: string, usage: Usage) => {
    const usd = deps.charge(tier, usage);
    cost += usd;
    addUsage(usageByTier, tier, usage);
    return { type: 'usage' as const, tier, usage, cost_usd: usd };
  };
  const summary = (tier: string, finish: GenerateResult['finish_reason']) => ({
    type: 'done' as const,
    summary: {
      mode: 'route' as const,
      answered_by: tier,
      attempts,
      escalations,
      cost_usd: cost,
      usage_by_tier: usageByTier,
      finish_reason: finish,
    },
  });
  /** The next tier after a failure, or undefined when this failure ends the request. */
  const failoverTarget = (error: TierError) =>
    plan.failover && canFailOver(error) && !signal.aborted ? plan.tiers[index + 1] : undefined;
  /** Records a failed attempt; false when it ends the request (its error then yielded), else fails over. */
  function* fail(
    tier: string,
    error: TierError,
    next: string | undefined,
  ): Generator<ExecutionPart, boolean> {
    attempts.push({ tier, via, outcome: 'failed', code: error.code });
    yield { type: 'attempt-failed', tier, error, next };
    if (next === undefined) {
      yield { type: 'error', error };
      return false;
    }
    index += 1;
    via = 'failover';
    return true;
  }

  while (index < plan.tiers.length) {
    const tier = plan.tiers[index]!;
    yield { type: 'attempt-start', tier, via };

    if (!options.stream || gate) {
      let result: GenerateResult;
      try {
        result = await deps.generate(tier, call, callOptions());
      } catch (thrown) {
        const error = toTierError(thrown, undefined);
        if (yield* fail(tier, error, failoverTarget(error))) continue;
        return;
      }
      yield charge(tier, result.usage);
      const next = plan.tiers[index + 1];
      if (gate && next !== undefined) {
        const measured = await measure(deps, gate, result, signal);
        const verdict = shouldEscalate(measured, gate, escalations, plan.max_escalations);
        yield { type: 'gate', tier, value: measured, verdict: verdict.reason, escalate: verdict.escalate };
        if (verdict.escalate) {
          attempts.push({ tier, via, outcome: 'escalated' });
          yield { type: 'escalated', from: tier, to: next };
          escalations += 1;
          index += 1;
          via = 'escalation';
          continue;
        }
      }
      attempts.push({ tier, via, outcome: 'answered' });
      const answer = gate && request.logprobs !== true ? withoutLogprobs(result) : result;
      if (options.stream) yield* resultAsParts(answer) as ExecutionPart[];
      else yield { type: 'answer', result: answer };
      yield summary(tier, answer.finish_reason);
      return;
    }

    let committed = false;
    let failed: TierError | undefined;
    for await (const part of deps.stream(tier, call, callOptions())) {
      if (part.type === 'start') continue;
      if (part.type === 'error') {
        failed = part.error;
        break;
      }
      if (part.type === 'finish') {
        attempts.push({ tier, via, outcome: 'answered' });
        yield charge(tier, part.usage);
        yield part;
        yield summary(tier, part.finish_reason);
        return;
      }
      committed = true;
      yield part;
    }
    const error = failed ?? toTierError(new Error('the stream ended without a finish'), tier);
    if (!(yield* fail(tier, error, committed ? undefined : failoverTarget(error)))) return;
  }
}

/** The gate's reading of an answer: its mean token logprob, or the probe's P(success) of it. */
async function measure(
  deps: ExecutorDeps,
  gate: AnswerGate,
  result: GenerateResult,
  signal: AbortSignal,
): Promise<number> {
  if (gate.kind === 'logprob') return result.logprobs?.mean_logprob ?? Number.NaN;
  if (!deps.scoreResponse) return Number.NaN;
  return deps.scoreResponse(result.text, signal);
}

function withoutLogprobs(result: GenerateResult): GenerateResult {
  const { logprobs: _, ...rest } = result;
  return rest;
}
