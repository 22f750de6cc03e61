import type { Policy, RouteInput, RouteTier } from './policy-schema.js';
import type { Price } from './price.js';

/**
 * The per-request table every policy kind reads: one row per configured tier, in price order, with its
 * prediction, its expected cost and whether it fits under the cost ceiling. Built once, so the kinds
 * differ only in their rule over these rows.
 */
export interface Candidate {
  id: string;
  price: Price;
  available: boolean;
  unavailable_reason?: string;
  retry_after_ms?: number;
  /** Calibrated P(success); undefined when the probe bundle has no (finite) prediction for this tier. */
  p: number | undefined;
  output_tokens: number;
  cost_usd: number;
  /** Within the request's cost ceiling. */
  eligible: boolean;
}

export interface RouteView {
  /** Cheapest first (see `orderTiers`). */
  candidates: Candidate[];
  /** The effective policy: the configured one with the request's overrides applied. */
  policy: Policy;
  /** min(max cost per request, remaining rolling budget); Infinity when neither applies. */
  ceiling_usd: number;
  /** Share of the key's rolling budget already spent, in [0, 1] (0 without a rolling budget). */
  used_fraction: number;
  /** The request's predicted task class, which selects per-class thresholds. */
  task_class?: string;
}

/** What a kind's rule picks among the rows it is given. */
export interface Choice {
  tier: Candidate | undefined;
  reasons: string[];
  fallback?: boolean;
}

export type Rule = (candidates: readonly Candidate[], view: RouteView) => Choice;

/**
 * Tiers cheapest first by blended list price (input + output per Mtok), ties in config order. A
 * static order, not the per-request expected cost, so that "one tier up" and "the frontier" mean the
 * same tiers for every request and every kind.
 */
export function orderTiers<T extends Pick<RouteTier, 'price'>>(tiers: readonly T[]): T[] {
  const blended = (t: T) => t.price.input_per_mtok + t.price.output_per_mtok;
  return tiers
    .map((tier, index) => ({ tier, index }))
    .sort((a, b) => blended(a.tier) - blended(b.tier) || a.index - b.index)
    .map((e) => e.tier);
}

/** USD for one request at list price. */
export function costUsd(price: Price, inputTokens: number, outputTokens: number): number {
  return (inputTokens * price.input_per_mtok + outputTokens * price.output_per_mtok) / 1e6;
}

export function outputTokensFor(policy: Policy, tier: string, maxOutputTokens?: number): number {
  const estimate = policy.output_tokens.tiers[tier] ?? policy.output_tokens.default;
  return maxOutputTokens === undefined ? estimate : Math.min(estimate, maxOutputTokens);
}

export function buildView(input: RouteInput, policy: Policy): { view: RouteView; reasons: string[] } {
  const reasons: string[] = [];
  const remaining = input.budget ? Math.max(0, input.budget.remaining_usd) : Number.POSITIVE_INFINITY;
  const maxCost = policy.budget.max_cost_usd ?? Number.POSITIVE_INFINITY;
  const ceiling = Math.min(maxCost, remaining);
  const candidates = orderTiers(input.tiers).map((tier): Candidate => {
    const raw = input.prediction.tiers[tier.id];
    const output = outputTokensFor(policy, tier.id, input.max_output_tokens);
    const cost = costUsd(tier.price, input.input_tokens, output);
    const eligible = cost <= ceiling;
    if (!eligible) {
      const which = remaining < maxCost ? 'the remaining budget' : 'the max cost per request';
      reasons.push(`${tier.id}: expected cost ${usd(cost)} exceeds ${which} ${usd(ceiling)}, excluded`);
    }
    return {
      id: tier.id,
      price: tier.price,
      available: tier.available,
      ...(tier.unavailable_reason === undefined ? {} : { unavailable_reason: tier.unavailable_reason }),
      ...(tier.retry_after_ms === undefined ? {} : { retry_after_ms: tier.retry_after_ms }),
      p: raw !== undefined && Number.isFinite(raw) ? raw : undefined,
      output_tokens: output,
      cost_usd: cost,
      eligible,
    };
  });
  const used = input.budget && input.budget.limit_usd > 0 ? 1 - remaining / input.budget.limit_usd : 0;
  const used_fraction = Math.min(1, Math.max(0, used));
  const taskClass = input.prediction.task_class?.name;
  return {
    view: {
      candidates,
      policy,
      ceiling_usd: ceiling,
      used_fraction,
      ...(taskClass === undefined ? {} : { task_class: taskClass }),
    },
    reasons,
  };
}

/** The most expensive row: where a rule goes when it cannot decide. */
export function frontierOf(candidates: readonly Candidate[], why: string): Choice {
  const frontier = candidates.at(-1);
  return {
    tier: frontier,
    reasons: frontier ? [`${why}: frontier tier ${frontier.id}`] : [],
    fallback: true,
  };
}

export const prob = (p: number): string => p.toFixed(3);
export const usd = (v: number): string =>
  Number.isFinite(v) ? `$${v >= 0.01 ? v.toFixed(4) : v.toPrecision(3)}` : '$∞';
export const unavailableText = (c: Pick<Candidate, 'id' | 'unavailable_reason'>): string =>
  `${c.id} is unavailable${c.unavailable_reason ? ` (${c.unavailable_reason})` : ''}`;
