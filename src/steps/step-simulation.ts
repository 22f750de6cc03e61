import { z } from 'zod';
import { stepTrusted } from './step-rule.js';

/**
 * The offline simulation of per-step routing on recorded traces (issue 6). A cheap tier writes the
 * chain of thought step by step; before each step is kept going, a step probe scores the prompt plus
 * the steps so far. While P(success) ≥ τ the cheap tier goes on; at the first score below τ the request
 * escalates to the strong tier. Only the strong tier's full answers are recorded, so, conservatively,
 * it answers from scratch: the outcome is then the strong tier's, and the cost is what the cheap tier
 * spent so far plus the strong tier's whole answer.
 *
 * Checks happen at k = 0 (the prompt alone, before the cheap tier writes anything: escalating there
 * costs the cheap tier nothing) and after every step k = 1 … K, the last one being the finished answer
 * (a completed answer that reads as wrong is escalated too). Request-level routing is the same policy
 * with the k = 0 check only. Pure: numbers in, numbers out.
 */
const Probability = z.number().min(0).max(1);
const Tokens = z.number().int().nonnegative();

export const SimulationTraceSchema = z
  .object({
    id: z.string().min(1),
    /**
     * P̂(the cheap trajectory ends correct) after k = 0, 1, … steps. May be shorter than the response
     * (prefixes past a cap were not scored): there are no checks after the last entry.
     */
    cheap_scores: z.array(Probability).min(1),
    /** Output tokens of the cheap response up to the end of step k, for k = 0 … K (so entry 0 is 0). */
    cheap_tokens_after: z.array(Tokens).min(1),
    cheap_correct: z.boolean(),
    strong_correct: z.boolean(),
    prompt_tokens: Tokens,
    strong_output_tokens: Tokens,
  })
  .superRefine((t, ctx) => {
    if (t.cheap_tokens_after[0] !== 0)
      ctx.addIssue({ code: 'custom', path: ['cheap_tokens_after', 0], message: 'must be 0 (no steps yet)' });
    if (t.cheap_scores.length > t.cheap_tokens_after.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['cheap_scores'],
        message: `${t.cheap_scores.length} scores for ${t.cheap_tokens_after.length - 1} steps (at most one per step plus k = 0)`,
      });
    }
    for (let k = 1; k < t.cheap_tokens_after.length; k += 1) {
      if (t.cheap_tokens_after[k]! < t.cheap_tokens_after[k - 1]!) {
        ctx.addIssue({ code: 'custom', path: ['cheap_tokens_after', k], message: 'must not decrease' });
        break;
      }
    }
  });
export type SimulationTrace = z.infer<typeof SimulationTraceSchema>;

export interface Price {
  input_usd_per_mtok: number;
  output_usd_per_mtok: number;
}
export interface SimulationPrices {
  cheap: Price;
  strong: Price;
}

export type CheckMode = 'steps' | 'request';

export interface TraceOutcome {
  correct: boolean;
  cost: number;
  /** The k at which the request escalated; null when the cheap tier finished it. */
  escalatedAt: number | null;
}

export interface PolicyPoint {
  tau: number | null;
  accuracy: number;
  /** Mean USD per request. */
  cost_usd: number;
  /** Total cost over the strong tier answering every request alone. */
  cost_share: number;
  escalation_rate: number;
  /** Mean k of the escalations (0 = before the first step); null when nothing escalated. */
  mean_escalation_step: number | null;
}

const usd = (price: Price, input: number, output: number) =>
  (price.input_usd_per_mtok * input + price.output_usd_per_mtok * output) / 1e6;

/** What the strong tier costs answering the request from scratch. */
export function strongCost(trace: SimulationTrace, prices: SimulationPrices): number {
  return usd(prices.strong, trace.prompt_tokens, trace.strong_output_tokens);
}

/** What the cheap tier has cost after writing k steps (nothing before it starts). */
export function cheapCostAfter(trace: SimulationTrace, k: number, prices: SimulationPrices): number {
  if (k <= 0) return 0;
  const last = trace.cheap_tokens_after.length - 1;
  return usd(prices.cheap, trace.prompt_tokens, trace.cheap_tokens_after[Math.min(k, last)]!);
}

/** Steps of the cheap tier's whole answer (K): a check at k = K judges the finished answer. */
export function answerSteps(trace: SimulationTrace): number {
  return trace.cheap_tokens_after.length - 1;
}

/** The request escalated after the cheap tier wrote k steps: the strong tier answers from scratch. */
export function escalatedAfter(trace: SimulationTrace, k: number, prices: SimulationPrices): TraceOutcome {
  return {
    correct: trace.strong_correct,
    cost: cheapCostAfter(trace, k, prices) + strongCost(trace, prices),
    escalatedAt: k,
  };
}

/** The cheap tier's whole answer kept. */
export function cheapAnswered(trace: SimulationTrace, prices: SimulationPrices): TraceOutcome {
  return {
    correct: trace.cheap_correct,
    cost: cheapCostAfter(trace, answerSteps(trace), prices),
    escalatedAt: null,
  };
}

/** One request under threshold τ. */
export function simulateTrace(
  trace: SimulationTrace,
  tau: number,
  prices: SimulationPrices,
  mode: CheckMode = 'steps',
): TraceOutcome {
  const lastCheck = mode === 'request' ? 0 : Math.min(answerSteps(trace), trace.cheap_scores.length - 1);
  for (let k = 0; k <= lastCheck; k += 1) {
    if (!stepTrusted(trace.cheap_scores[k]!, tau)) return escalatedAfter(trace, k, prices);
  }
  return cheapAnswered(trace, prices);
}

function summarise(tau: number | null, outcomes: readonly TraceOutcome[], strongTotal: number): PolicyPoint {
  const n = outcomes.length;
  const escalated = outcomes.filter((o) => o.escalatedAt !== null);
  const cost = outcomes.reduce((s, o) => s + o.cost, 0);
  return {
    tau,
    accuracy: outcomes.filter((o) => o.correct).length / n,
    cost_usd: cost / n,
    cost_share: strongTotal > 0 ? cost / strongTotal : Number.NaN,
    escalation_rate: escalated.length / n,
    mean_escalation_step:
      escalated.length === 0 ? null : escalated.reduce((s, o) => s + o.escalatedAt!, 0) / escalated.length,
  };
}

export function simulatePolicy(
  traces: readonly SimulationTrace[],
  tau: number,
  prices: SimulationPrices,
  mode: CheckMode,
): PolicyPoint {
  const strongTotal = traces.reduce((s, t) => s + strongCost(t, prices), 0);
  return summarise(
    tau,
    traces.map((t) => simulateTrace(t, tau, prices, mode)),
    strongTotal,
  );
}

/** The best accuracy a swept policy reaches at a cost share of at most `share` (null: none that cheap). */
export function accuracyWithin(points: readonly PolicyPoint[], share: number): number | null {
  let best: number | null = null;
  for (const p of points)
    if (p.cost_share <= share + 1e-12 && (best === null || p.accuracy > best)) best = p.accuracy;
  return best;
}

export interface SimulationReport {
  n: number;
  taus: number[];
  /** Per-step routing, one point per τ. */
  per_step: PolicyPoint[];
  /** Request-level routing: the k = 0 check only. */
  request_level: PolicyPoint[];
  cheap_only: PolicyPoint;
  strong_only: PolicyPoint;
  /** Cheapest per-step point at least as accurate as the strong tier alone; null if none. */
  per_step_reaching_strong: PolicyPoint | null;
  request_level_reaching_strong: PolicyPoint | null;
  /** Best accuracy of each policy at a cost share of at most `cost_share`. */
  equal_cost: { cost_share: number; per_step: number | null; request_level: number | null }[];
}

export const DEFAULT_TAUS = Array.from({ length: 101 }, (_, i) => i / 100);
const EQUAL_COST_SHARES = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8];

export function simulateSweep(
  traces: readonly SimulationTrace[],
  prices: SimulationPrices,
  taus: readonly number[] = DEFAULT_TAUS,
): SimulationReport {
  const strongTotal = traces.reduce((s, t) => s + strongCost(t, prices), 0);
  const steps = taus.map((tau) => simulatePolicy(traces, tau, prices, 'steps'));
  const request = taus.map((tau) => simulatePolicy(traces, tau, prices, 'request'));
  // τ = 0 never escalates and τ > 1 always escalates at k = 0: the two single tiers.
  const cheapOnly = { ...simulatePolicy(traces, 0, prices, 'request'), tau: null };
  const strongOnly = summarise(
    null,
    traces.map((t) => ({ correct: t.strong_correct, cost: strongCost(t, prices), escalatedAt: null })),
    strongTotal,
  );
  const reaching = (points: PolicyPoint[]) =>
    points
      .filter((p) => p.accuracy >= strongOnly.accuracy - 1e-12)
      .sort((a, b) => a.cost_share - b.cost_share)[0] ?? null;
  return {
    n: traces.length,
    taus: [...taus],
    per_step: steps,
    request_level: request,
    cheap_only: cheapOnly,
    strong_only: strongOnly,
    per_step_reaching_strong: reaching(steps),
    request_level_reaching_strong: reaching(request),
    equal_cost: EQUAL_COST_SHARES.map((share) => ({
      cost_share: share,
      per_step: accuracyWithin(steps, share),
      request_level: accuracyWithin(request, share),
    })),
  };
}
