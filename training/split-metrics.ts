import {
  accuracyAtThreshold,
  auroc,
  brierScore,
  expectedCalibrationError,
} from '../src/metrics/classification.js';
import { type MultiTierMetrics, multiTierMetrics } from '../src/metrics/multi-tier.js';
import { apgr, cpt, type DeferralPoint, deferralCurve, pointAtThreshold } from '../src/metrics/routing.js';

/**
 * The numbers a set of predictions earns on a set of rows: per tier how well P(success) ranks and is
 * calibrated, and how well routing between the cheapest and the dearest tier does with it. Shared by
 * `train` (out-of-fold predictions) and `eval` (a bundle on a trace file), so both print the same metrics
 * by the same definitions.
 *
 * Routing score: 1 − P̂(cheapest tier succeeds) — the cheap tier's predicted failure is what calls for the
 * strong one. Two operating points are reported:
 * - `best`: the point of the deferral curve with the highest quality (fewest strong calls among ties).
 *   Like CPT, it is read off the curve of the rows being scored, so it is the best a threshold could do
 *   here, not a threshold chosen beforehand; `oracle_gap_closed` and `cost_saving` are taken there.
 * - `p50`: strong exactly when P̂(cheapest succeeds) < 0.5 — fixed in advance, so an honest point for
 *   calibrated probes (`*_at_p50`).
 */
export interface TierMetricsOut {
  n: number;
  auroc: number;
  /** Over outer folds, where metrics are averaged over folds. */
  auroc_std?: number;
  brier: number;
  ece: number;
  /** At 0.5 on the calibrated probability. */
  accuracy: number;
  base_rate: number;
}

export interface RoutingMetricsOut {
  weak_tier: string;
  strong_tier: string;
  n: number;
  q_weak: number;
  q_strong: number;
  q_oracle: number;
  apgr: number;
  cpt50: number;
  cpt80: number;
  /** At the `best` point. */
  oracle_gap_closed: number;
  cost_saving: number;
  cost_per_correct: number;
  quality: number;
  strong_share: number;
  /** Strong when P̂(weak succeeds) is below this (the `best` point). */
  p_weak_threshold: number;
  oracle_gap_closed_at_p50: number;
  cost_saving_at_p50: number;
  strong_share_at_p50: number;
  quality_at_p50: number;
  cost_per_correct_weak_only: number;
  cost_per_correct_strong_only: number;
}

/** Rows of `rows` with a label; `probs` is indexed like `rows`. */
export function tierMetrics(
  probs: ArrayLike<number>,
  labels: readonly (boolean | null)[],
  rows: readonly number[],
): TierMetricsOut {
  const p: number[] = [];
  const y: boolean[] = [];
  for (const [k, i] of rows.entries()) {
    const label = labels[i];
    if (label === null || label === undefined) continue;
    p.push(Math.min(1, Math.max(0, probs[k]!)));
    y.push(label);
  }
  return {
    n: p.length,
    auroc: auroc(p, y),
    brier: brierScore(p, y),
    ece: expectedCalibrationError(p, y),
    accuracy: accuracyAtThreshold(p, y, 0.5),
    base_rate: y.length === 0 ? Number.NaN : y.filter(Boolean).length / y.length,
  };
}

export interface RoutingInputs {
  weakTier: string;
  strongTier: string;
  /** P̂(weak succeeds), indexed like `rows`. */
  pWeak: ArrayLike<number>;
  weakLabels: readonly (boolean | null)[];
  strongLabels: readonly (boolean | null)[];
  weakCosts: readonly number[];
  strongCosts: readonly number[];
  rows: readonly number[];
}

/** Undefined when no row has both tiers' outcomes. */
export function routingMetrics(input: RoutingInputs): RoutingMetricsOut | undefined {
  const score: number[] = [];
  const weak: boolean[] = [];
  const strong: boolean[] = [];
  const weakCost: number[] = [];
  const strongCost: number[] = [];
  for (const [k, i] of input.rows.entries()) {
    const w = input.weakLabels[i];
    const s = input.strongLabels[i];
    if (w === null || w === undefined || s === null || s === undefined) continue;
    score.push(1 - input.pWeak[k]!);
    weak.push(w);
    strong.push(s);
    weakCost.push(input.weakCosts[i]!);
    strongCost.push(input.strongCosts[i]!);
  }
  if (score.length === 0) return undefined;
  const curve = deferralCurve({
    pStrongNeeded: score,
    weakCorrect: weak,
    strongCorrect: strong,
    costs: { weak: weakCost, strong: strongCost },
  });
  let best: DeferralPoint = curve.points[0]!;
  for (const p of curve.points) if (p.correct > best.correct) best = p;
  const atP50 = pointAtThreshold(curve, 0.5 + 1e-12);
  const [weakOnly, strongOnly] = [curve.points[0]!, curve.points[curve.points.length - 1]!];
  return {
    weak_tier: input.weakTier,
    strong_tier: input.strongTier,
    n: curve.n,
    q_weak: curve.qWeak,
    q_strong: curve.qStrong,
    q_oracle: curve.qOracle,
    apgr: apgr(curve),
    cpt50: cpt(curve, 0.5),
    cpt80: cpt(curve, 0.8),
    oracle_gap_closed: best.oracleGapClosed,
    cost_saving: best.costSaving,
    cost_per_correct: best.costPerCorrect,
    quality: best.quality,
    strong_share: best.strongShare,
    p_weak_threshold: Number.isFinite(best.threshold) ? 1 - best.threshold : 0,
    oracle_gap_closed_at_p50: atP50.oracleGapClosed,
    cost_saving_at_p50: atP50.costSaving,
    strong_share_at_p50: atP50.strongShare,
    quality_at_p50: atP50.quality,
    cost_per_correct_weak_only: weakOnly.costPerCorrect,
    cost_per_correct_strong_only: strongOnly.costPerCorrect,
  };
}

/** Per-tier probabilities (in `tiers` order, each indexed like `rows`) → metrics per tier id. */
export function tiersMetrics(
  tiers: readonly string[],
  probs: readonly ArrayLike<number>[],
  labels: readonly (readonly (boolean | null)[])[],
  rows: readonly number[],
): Record<string, TierMetricsOut> {
  return Object.fromEntries(tiers.map((t, k) => [t, tierMetrics(probs[k]!, labels[k]!, rows)]));
}

export interface HeadMetrics {
  tiers: Record<string, TierMetricsOut>;
  routing?: RoutingMetricsOut;
}

/**
 * Tier and routing metrics of one head (a probe kind or a baseline); routing between the reference tier
 * (`tiers[reference]`, default the cheapest) and the last (dearest) one.
 */
export function headMetrics(
  tiers: readonly string[],
  probs: readonly ArrayLike<number>[],
  labels: readonly (readonly (boolean | null)[])[],
  costs: readonly (readonly number[])[],
  rows: readonly number[],
  reference = 0,
): HeadMetrics {
  const last = tiers.length - 1;
  const routing =
    last > reference
      ? routingMetrics({
          weakTier: tiers[reference]!,
          strongTier: tiers[last]!,
          pWeak: probs[reference]!,
          weakLabels: labels[reference]!,
          strongLabels: labels[last]!,
          weakCosts: costs[reference]!,
          strongCosts: costs[last]!,
          rows,
        })
      : undefined;
  return { tiers: tiersMetrics(tiers, probs, labels, rows), ...(routing ? { routing } : {}) };
}

/**
 * The ladder the multi-tier metrics route over: the tiers with an outcome on every row (a tier labelled on
 * a few rows only would drop the rest), in the order of the price the router knows, cheapest first.
 * Undefined when fewer than two tiers qualify.
 */
export interface Ladder {
  /** Indices into the caller's tiers, cheapest first. */
  tiers: number[];
  /** Per ladder tier, per row. */
  correct: boolean[][];
  cost: number[][];
  price: number[];
}

export function ladderOf(
  labels: readonly (readonly (boolean | null)[])[],
  costs: readonly (readonly number[])[],
  price: readonly number[],
): Ladder | undefined {
  const full = labels.flatMap((l, t) => (l.every((v) => v !== null && v !== undefined) ? [t] : []));
  if (full.length < 2) return undefined;
  const tiers = full.sort((a, b) => price[a]! - price[b]! || a - b);
  return {
    tiers,
    correct: tiers.map((t) => labels[t]!.map((v) => v === true)),
    cost: tiers.map((t) => [...costs[t]!]),
    price: tiers.map((t) => price[t]!),
  };
}

/** The ladder's rows with one head's P(success) per tier (indexed like the ladder's rows). */
export function ladderRows(ladder: Ladder, tierIds: readonly string[], probs: readonly ArrayLike<number>[]) {
  return {
    tiers: ladder.tiers.map((t) => tierIds[t]!),
    p: ladder.tiers.map((t) => probs[t]!),
    correct: ladder.correct,
    cost: ladder.cost,
  };
}

/** The `multi` object of one head's P(success) per tier (indexed like the ladder's rows). */
export function multiOf(
  ladder: Ladder,
  tierIds: readonly string[],
  probs: readonly ArrayLike<number>[],
): MultiTierMetrics {
  return multiTierMetrics(ladderRows(ladder, tierIds, probs), ladder.price);
}

/** Mean of each tier's costs: the price a router knows before it calls (USD per call). */
export function meanCosts(costs: readonly (readonly number[])[]): number[] {
  return costs.map((c) => (c.length === 0 ? 0 : c.reduce((s, v) => s + v, 0) / c.length));
}
