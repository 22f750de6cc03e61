import { InvalidMetricInputError } from '../errors.js';

/**
 * Deferral metrics for routing between a weak (cheap) and a strong (expensive) tier, as defined by
 * RouteLLM (Ong et al. 2024, "RouteLLM: Learning to Route LLMs with Preference Data", arXiv:2406.18665,
 * the metrics of its problem-formulation section; reference code: lm-sys/RouteLLM, routellm/evals/evaluate.py):
 *
 * - a router with threshold t sends an item to the strong tier when its score ≥ t; sweeping t traces
 *   quality against the share of strong calls (the deferral curve);
 * - PGR (performance gap recovered) of a point = (q − q_weak) / (q_strong − q_weak);
 * - APGR = area under PGR over the strong-call share in [0, 1] (the paper approximates it by averaging
 *   PGR at ten evenly spaced call shares; we integrate the exact piecewise-linear curve instead);
 * - CPT(x%) (call-performance threshold) = the least share of strong calls at which PGR reaches x%.
 *
 * Pure functions; no I/O.
 */

export interface RoutingCosts {
  /** Cost of answering each item with the weak tier (USD, or any unit), or one price per call. */
  weak: number | readonly number[];
  strong: number | readonly number[];
}

export interface RoutingInput {
  /** Per item, higher = more in need of the strong tier (e.g. 1 − P(weak succeeds)). Finite numbers. */
  pStrongNeeded: readonly number[];
  weakCorrect: readonly boolean[];
  strongCorrect: readonly boolean[];
  /** Without costs, every cost figure is NaN; quality metrics do not need them. */
  costs?: RoutingCosts;
}

export interface DeferralPoint {
  /** Items with score ≥ threshold go to the strong tier; +Infinity for the all-weak point. */
  threshold: number;
  strongCalls: number;
  strongShare: number;
  /** Items answered correctly by the tier they were routed to. */
  correct: number;
  quality: number;
  pgr: number;
  oracleGapClosed: number;
  cost: number;
  costSaving: number;
  costPerCorrect: number;
}

export interface DeferralCurve {
  n: number;
  qWeak: number;
  qStrong: number;
  /** Either tier right: what a perfect router reaches. */
  qOracle: number;
  /** The better of always-weak and always-strong. */
  qBestSingle: number;
  costWeakOnly: number;
  costStrongOnly: number;
  /** From 0 strong calls to all of them, one point per distinct score (tied items move together). */
  points: DeferralPoint[];
}

/** PGR = (q − q_weak) / (q_strong − q_weak); NaN when the tiers are equally good (there is no gap). */
export function performanceGapRecovered(quality: number, qWeak: number, qStrong: number): number {
  return qStrong === qWeak ? Number.NaN : (quality - qWeak) / (qStrong - qWeak);
}

/**
 * (q_route − q_best_single) / (q_oracle − q_best_single): how much of the headroom above the best single
 * tier a router captures. Negative when it is worse than that tier; NaN when the oracle is no better.
 */
export function oracleGapClosed(quality: number, qBestSingle: number, qOracle: number): number {
  return qOracle === qBestSingle ? Number.NaN : (quality - qBestSingle) / (qOracle - qBestSingle);
}

/** 1 − cost_route / cost_strong_only; NaN when the strong tier costs nothing. */
export function costSaving(cost: number, costStrongOnly: number): number {
  return costStrongOnly === 0 ? Number.NaN : 1 - cost / costStrongOnly;
}

/** Total cost / number of correct answers; Infinity when nothing is correct (and cost > 0). */
export function costPerCorrect(cost: number, correct: number): number {
  return cost / correct;
}

function perItemCosts(metric: string, costs: number | readonly number[], n: number, name: string): number[] {
  const values = typeof costs === 'number' ? new Array<number>(n).fill(costs) : [...costs];
  if (values.length !== n)
    throw new InvalidMetricInputError(metric, `${values.length} ${name} costs for ${n} items`);
  for (const [i, c] of values.entries()) {
    if (!(Number.isFinite(c) && c >= 0))
      throw new InvalidMetricInputError(metric, `${name} cost ${i} is ${c}`);
  }
  return values;
}

/**
 * The deferral curve: thresholds swept over every distinct score, from above the highest (no strong calls)
 * down to the lowest (all strong). Items with equal scores cannot be split by a threshold, so they move to
 * the strong tier together; the straight line between two points is what randomly routing part of a tied
 * group would give, which is why APGR and CPT interpolate linearly.
 */
export function deferralCurve(input: RoutingInput): DeferralCurve {
  const metric = 'deferralCurve';
  const { pStrongNeeded: scores, weakCorrect, strongCorrect } = input;
  const n = scores.length;
  if (weakCorrect.length !== n || strongCorrect.length !== n) {
    throw new InvalidMetricInputError(
      metric,
      `${n} scores, ${weakCorrect.length} weak and ${strongCorrect.length} strong outcomes`,
    );
  }
  if (n === 0) throw new InvalidMetricInputError(metric, 'no items');
  for (const [i, s] of scores.entries()) {
    if (!Number.isFinite(s)) throw new InvalidMetricInputError(metric, `score ${i} is ${s}`);
  }
  const weakCost = input.costs
    ? perItemCosts(metric, input.costs.weak, n, 'weak')
    : new Array<number>(n).fill(Number.NaN);
  const strongCost = input.costs
    ? perItemCosts(metric, input.costs.strong, n, 'strong')
    : new Array<number>(n).fill(Number.NaN);

  let weakRight = 0;
  let strongRight = 0;
  let eitherRight = 0;
  let costWeakOnly = 0;
  let costStrongOnly = 0;
  for (let i = 0; i < n; i += 1) {
    if (weakCorrect[i]) weakRight += 1;
    if (strongCorrect[i]) strongRight += 1;
    if (weakCorrect[i] || strongCorrect[i]) eitherRight += 1;
    costWeakOnly += weakCost[i]!;
    costStrongOnly += strongCost[i]!;
  }
  const qWeak = weakRight / n;
  const qStrong = strongRight / n;
  const qOracle = eitherRight / n;
  const qBestSingle = Math.max(qWeak, qStrong);

  // Counts stay integers so the all-strong point has exactly q_strong (PGR exactly 1), whatever n is.
  const point = (threshold: number, strongCalls: number, correct: number, cost: number): DeferralPoint => {
    const quality = correct / n;
    return {
      threshold,
      strongCalls,
      strongShare: strongCalls / n,
      correct,
      quality,
      pgr: performanceGapRecovered(quality, qWeak, qStrong),
      oracleGapClosed: oracleGapClosed(quality, qBestSingle, qOracle),
      cost,
      costSaving: costSaving(cost, costStrongOnly),
      costPerCorrect: costPerCorrect(cost, correct),
    };
  };

  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const points = [point(Number.POSITIVE_INFINITY, 0, weakRight, costWeakOnly)];
  let correct = weakRight;
  let cost = costWeakOnly;
  for (let start = 0; start < n; ) {
    const threshold = scores[order[start]!]!;
    let end = start;
    for (; end < n && scores[order[end]!] === threshold; end += 1) {
      const i = order[end]!;
      correct += (strongCorrect[i] ? 1 : 0) - (weakCorrect[i] ? 1 : 0);
      cost += strongCost[i]! - weakCost[i]!;
    }
    // The last point is "everything strong"; use the summed figure so float drift cannot leave it off.
    points.push(point(threshold, end, correct, end === n ? costStrongOnly : cost));
    start = end;
  }
  return { n, qWeak, qStrong, qOracle, qBestSingle, costWeakOnly, costStrongOnly, points };
}

/**
 * APGR: ∫₀¹ PGR(s) ds over the strong-call share s, by the trapezoid rule over the curve's points.
 * RouteLLM computes it as (AUC_router − AUC_weak) / (AUC_strong − AUC_weak) over the shares it sampled,
 * which is the same integral when the shares span [0, 1], as ours always do. 0.5 is a random router;
 * a router that exploits items only the weak tier gets right can exceed 1. NaN when q_strong = q_weak.
 */
export function apgr(curve: DeferralCurve): number {
  let area = 0;
  for (let k = 1; k < curve.points.length; k += 1) {
    const a = curve.points[k - 1]!;
    const b = curve.points[k]!;
    area += ((a.pgr + b.pgr) / 2) * (b.strongShare - a.strongShare);
  }
  return area;
}

/**
 * CPT(x): the least share of strong calls at which PGR reaches x (x = 0.5 for CPT(50%)), linearly
 * interpolated inside the first segment that crosses x. RouteLLM's code interpolates share against
 * quality with np.interp, which assumes quality rises with the share; taking the first crossing gives the
 * same answer on a rising curve and the honest minimum on one that dips. NaN when PGR never reaches x
 * (only possible for x > 1) or when q_strong = q_weak.
 */
export function cpt(curve: DeferralCurve, x: number): number {
  const { points } = curve;
  if (!(points[0]!.pgr < x)) return points[0]!.pgr >= x ? 0 : Number.NaN;
  for (let k = 1; k < points.length; k += 1) {
    const b = points[k]!;
    if (b.pgr >= x) {
      const a = points[k - 1]!;
      return a.strongShare + ((x - a.pgr) / (b.pgr - a.pgr)) * (b.strongShare - a.strongShare);
    }
  }
  return Number.NaN;
}

/** The operating point of threshold t: items with score ≥ t go to the strong tier. */
export function pointAtThreshold(curve: DeferralCurve, threshold: number): DeferralPoint {
  let chosen = curve.points[0]!;
  for (const p of curve.points) if (p.threshold >= threshold) chosen = p;
  return chosen;
}

/**
 * The realisable operating point with the most strong calls whose share stays ≤ maxShare (a budget on
 * strong calls); ties make some shares unreachable, so the result may sit below the budget.
 */
export function pointAtStrongShare(curve: DeferralCurve, maxShare: number): DeferralPoint {
  let chosen = curve.points[0]!;
  for (const p of curve.points) if (p.strongShare <= maxShare) chosen = p;
  return chosen;
}
