import { type Candidate, type Choice, frontierOf, prob, type RouteView, usd } from './route-view.js';

/**
 * The `budget` kind: an online multiple-choice knapsack. Each request is an arriving item set (one
 * option per tier), the key's rolling budget is the knapsack, and the choice must be made now, without
 * knowing the requests still to come in the period.
 *
 * The cheapest option is the baseline (a request must be answered); every dearer option is an
 * *upgrade* with value v = Δp (gain in P(success)) and weight w = Δcost (extra USD). An upgrade is worth
 * taking only if its efficiency v/w reaches the threshold
 *
 *   ψ(z) = (U·e / L)^z · (L / e)
 *
 * of Zhou, Chakrabarty & Lukose, "Budget constrained bidding in keyword auctions and online knapsack
 * problems" (WINE 2008), where z ∈ [0, 1] is the share of the budget already spent and [L, U] bounds the
 * efficiencies that occur. With items small against the budget it is (ln(U/L) + 1)-competitive for the
 * online knapsack problem. ψ(z) < L for z < 1/(1 + ln(U/L)); we clamp it to L there, which changes
 * nothing for upgrades inside the assumed bounds and refuses those below L.
 *
 * Several upgrades may pass; we take the one with the largest surplus v − ψ(z)·w, reading ψ(z) as the
 * price of a dollar at the current fill level (the paper's analysis is of the acceptance threshold;
 * this choice among passing options is ours). At z = 0 this is the `utility` kind with λ = L, and it
 * grows stricter as the budget drains, reaching U when it is spent.
 */
export function knapsackThreshold(usedFraction: number, efficiency: { min: number; max: number }): number {
  const { min: low, max: high } = efficiency;
  const z = Math.min(1, Math.max(0, usedFraction));
  return Math.max(low, ((high * Math.E) / low) ** z * (low / Math.E));
}

export interface KnapsackOption {
  id: string;
  /** Predicted P(success). */
  p: number;
  cost_usd: number;
}

export interface KnapsackSettings {
  /** Most this request may cost: min(per-request ceiling, remaining budget). */
  allowance_usd: number;
  /** Share of the period's budget already spent, in [0, 1]. */
  used_fraction: number;
  efficiency: { min: number; max: number };
}

export interface KnapsackChoice {
  /** Undefined when no option fits the allowance. */
  id: string | undefined;
  psi: number;
  reasons: string[];
}

/** The pure knapsack choice for one request. Options may come in any order. */
export function chooseWithinBudget(
  options: readonly KnapsackOption[],
  settings: KnapsackSettings,
): KnapsackChoice {
  const psi = knapsackThreshold(settings.used_fraction, settings.efficiency);
  const reasons = [
    `budget: ${(settings.used_fraction * 100).toFixed(1)} % spent, ψ = ${psi.toPrecision(4)} P(success) per USD`,
  ];
  const fitting = options
    .filter((o) => o.cost_usd <= settings.allowance_usd)
    .sort((a, b) => a.cost_usd - b.cost_usd || b.p - a.p);
  const base = fitting[0];
  if (!base) {
    reasons.push(`no option fits the allowance ${usd(settings.allowance_usd)}`);
    return { id: undefined, psi, reasons };
  }
  reasons.push(`${base.id}: baseline (cheapest), P(success) ${prob(base.p)} at ${usd(base.cost_usd)}`);
  let best: { option: KnapsackOption; surplus: number } | undefined;
  for (const option of fitting.slice(1)) {
    const gain = option.p - base.p;
    const extra = option.cost_usd - base.cost_usd;
    if (gain <= 0) {
      reasons.push(`${option.id}: no gain over ${base.id}`);
      continue;
    }
    // Equal cost with a gain: the baseline sort already put the better one first, so extra > 0 here.
    const efficiency = gain / extra;
    if (efficiency < psi) {
      reasons.push(`${option.id}: upgrade efficiency ${efficiency.toPrecision(4)} < ψ`);
      continue;
    }
    const surplus = gain - psi * extra;
    reasons.push(
      `${option.id}: upgrade efficiency ${efficiency.toPrecision(4)} ≥ ψ, surplus ${surplus.toFixed(4)}`,
    );
    if (best === undefined || surplus > best.surplus) best = { option, surplus };
  }
  const chosen = best?.option ?? base;
  reasons.push(`${chosen.id}: ${best ? 'largest surplus upgrade' : 'no upgrade worth its cost'}`);
  return { id: chosen.id, psi, reasons };
}

/** `budget` over the policy's candidate rows (already cut to those under the cost ceiling). */
export function budgetRule(candidates: readonly Candidate[], view: RouteView): Choice {
  const scored = candidates.filter((c): c is Candidate & { p: number } => c.p !== undefined);
  if (scored.length === 0) return frontierOf(candidates, 'no tier has a probe prediction');
  const choice = chooseWithinBudget(scored, {
    allowance_usd: view.ceiling_usd,
    used_fraction: view.used_fraction,
    efficiency: view.policy.budget.efficiency,
  });
  const tier = candidates.find((c) => c.id === choice.id);
  return { tier, reasons: choice.reasons };
}
