import { type Candidate, type Choice, frontierOf, prob, type RouteView, usd } from './route-view.js';

/** p − λ·cost: the quantity the `utility` kind maximises. */
export function utilityOf(p: number, costUsd: number, lambda: number): number {
  return p - lambda * costUsd;
}

/**
 * `utility`: the tier maximising P(success) − λ·cost, ties to the cheaper tier. Between a cheaper tier a
 * and a dearer b the choice flips at λ* = (p_b − p_a) / (cost_b − cost_a): below λ*, b wins.
 */
export function utilityRule(candidates: readonly Candidate[], view: RouteView): Choice {
  const lambda = view.policy.utility.lambda;
  const reasons: string[] = [];
  let best: { c: Candidate; u: number } | undefined;
  for (const c of candidates) {
    if (c.p === undefined) {
      reasons.push(`${c.id}: no probe prediction, not considered`);
      continue;
    }
    const u = utilityOf(c.p, c.cost_usd, lambda);
    reasons.push(`${c.id}: ${prob(c.p)} − ${lambda}·${usd(c.cost_usd)} = ${u.toFixed(4)}`);
    if (best === undefined || u > best.u) best = { c, u };
  }
  if (!best) {
    const fallback = frontierOf(candidates, 'no tier has a probe prediction');
    return { ...fallback, reasons: [...reasons, ...fallback.reasons] };
  }
  reasons.push(`${best.c.id}: highest utility at λ = ${lambda}`);
  return { tier: best.c, reasons };
}
