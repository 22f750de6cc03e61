import { InvalidMetricInputError } from '../errors.js';
import { type CostQuality, costAtQuality, hullArea, qualityAtCost, upperHull } from './cost-quality-hull.js';
import type { LabelledRows } from './operating-points.js';
import { allRows, type SweepPoint, sweepThreshold, sweepUtility } from './policy-sweeps.js';

/**
 * Routing over a ladder of N tiers, judged against the single tiers and the oracle — the `multi` object of
 * `mechroute eval --json` and of every method of `bench routing --json`:
 *
 * - `best_single`: the tier with the highest quality on the rows (the cheaper on ties), its quality and
 *   mean cost;
 * - `oracle`: per row the cheapest tier that is right (the cheapest tier when none is);
 * - `frontier`: the utility policy swept over λ and the one-threshold policy swept over τ
 *   (src/metrics/policy-sweeps.ts), each curve's Pareto-efficient points;
 * - `cost_saving_at_parity`: 1 − (cost at which the hull reaches the best single's quality) / its cost;
 *   0 when only the best single itself reaches it;
 * - `cost_saving_at_95`: the same at 95 % of the best single's quality;
 * - `gap_closed_at_best_cost`: (hull quality at the best single's cost − its quality) / (oracle − its
 *   quality);
 * - `hull_auc`: the mean quality of the hull over the single tiers' cost range (RouterBench's AIQ),
 *   `router` next to `single_tiers`, the hull of the single tiers alone (mixing them at random, RouterBench's
 *   "zero router").
 *
 * "The hull" is the upper convex hull (src/metrics/cost-quality-hull.ts) of both frontier curves together
 * with the single tiers' points: a deployment can always mix operating points or send everything to one
 * tier. Cost is the mean realised cost per row; `price` (per tier) is what the policies rank tiers by
 * before calling (the mean cost of a call). Pure; no I/O.
 */
export interface FrontierPoint {
  policy: SweepPoint['policy'];
  dial: number;
  quality: number;
  cost: number;
}

export interface MultiTierMetrics {
  best_single: { tier: string; quality: number; cost: number };
  oracle: { quality: number; cost: number };
  frontier: FrontierPoint[];
  cost_saving_at_parity: number | null;
  cost_saving_at_95: number | null;
  gap_closed_at_best_cost: number | null;
  hull_auc: { router: number | null; single_tiers: number | null };
}

/** The numbers behind `MultiTierMetrics`, NaN where undefined (bootstrap resamples read these). */
export interface MultiTierFigures {
  singles: (CostQuality & { tier: string })[];
  best: CostQuality & { tier: string };
  oracle: CostQuality;
  curves: { utility: SweepPoint[]; threshold: SweepPoint[] };
  hull: CostQuality[];
  singleHull: CostQuality[];
  costSavingAtParity: number;
  costSavingAt95: number;
  gapClosedAtBestCost: number;
  hullAuc: number;
  singleHullAuc: number;
}

/** Quality share of the best single's quality that `cost_saving_at_95` holds. */
export const NEAR_PARITY = 0.95;

type Outcomes = Pick<LabelledRows, 'tiers' | 'correct' | 'cost'>;

/** Each tier alone: its quality and mean cost on the rows of `subset`. */
export function singleTierPoints(
  rows: Outcomes,
  subset: readonly number[] = allRows(rows),
): (CostQuality & { tier: string })[] {
  return rows.tiers.map((tier, t) => {
    let correct = 0;
    let cost = 0;
    for (const i of subset) {
      if (rows.correct[t]![i]) correct += 1;
      cost += rows.cost[t]![i]!;
    }
    return { tier, quality: correct / subset.length, cost: cost / subset.length };
  });
}

/** Per row the cheapest tier that is right (by that row's own cost), the cheapest tier when none is. */
export function oraclePoint(rows: Outcomes, subset: readonly number[] = allRows(rows)): CostQuality {
  let correct = 0;
  let cost = 0;
  for (const i of subset) {
    let right = -1;
    let cheapest = 0;
    for (let t = 0; t < rows.tiers.length; t += 1) {
      const c = rows.cost[t]![i]!;
      if (c < rows.cost[cheapest]![i]!) cheapest = t;
      if (rows.correct[t]![i] && (right < 0 || c < rows.cost[right]![i]!)) right = t;
    }
    if (right >= 0) correct += 1;
    cost += rows.cost[right >= 0 ? right : cheapest]![i]!;
  }
  return { quality: correct / subset.length, cost: cost / subset.length };
}

export function multiTierFigures(
  rows: LabelledRows,
  price: readonly number[],
  subset: readonly number[] = allRows(rows),
): MultiTierFigures {
  if (subset.length === 0) throw new InvalidMetricInputError('multi-tier metrics', 'no rows');
  const singles = singleTierPoints(rows, subset);
  let best = singles[0]!;
  for (const s of singles) {
    if (s.quality > best.quality || (s.quality === best.quality && s.cost < best.cost)) best = s;
  }
  const oracle = oraclePoint(rows, subset);
  const curves = { utility: sweepUtility(rows, price, subset), threshold: sweepThreshold(rows, subset) };
  const hull = upperHull([...curves.utility, ...curves.threshold, ...singles]);
  const singleHull = upperHull(singles);
  const saving = (quality: number) =>
    best.cost > 0 ? 1 - costAtQuality(hull, quality) / best.cost : Number.NaN;
  const costs = singles.map((s) => s.cost);
  const [lo, hi] = [Math.min(...costs), Math.max(...costs)];
  return {
    singles,
    best,
    oracle,
    curves,
    hull,
    singleHull,
    costSavingAtParity: saving(best.quality),
    costSavingAt95: saving(NEAR_PARITY * best.quality),
    gapClosedAtBestCost:
      oracle.quality > best.quality
        ? (qualityAtCost(hull, best.cost) - best.quality) / (oracle.quality - best.quality)
        : Number.NaN,
    hullAuc: hullArea(hull, lo, hi),
    singleHullAuc: hullArea(singleHull, lo, hi),
  };
}

/** A curve's points that no cheaper point of it matches in quality, cheapest first. */
export function paretoPoints<T extends CostQuality>(points: readonly T[]): T[] {
  const sorted = [...points].sort((a, b) => a.cost - b.cost || b.quality - a.quality);
  const kept: T[] = [];
  for (const p of sorted) if (kept.length === 0 || p.quality > kept.at(-1)!.quality) kept.push(p);
  return kept;
}

/**
 * At most `max` points of a Pareto curve: every hull vertex, then evenly spaced others; cheapest first.
 * The hull's vertices stay so that the reported frontier reproduces the fields read off it.
 */
function thinFrontier(
  points: readonly SweepPoint[],
  hull: readonly CostQuality[],
  max: number,
): SweepPoint[] {
  if (points.length <= max) return [...points];
  const vertex = new Set(hull.map((v) => `${v.cost}:${v.quality}`));
  const keep = new Set(points.flatMap((p, k) => (vertex.has(`${p.cost}:${p.quality}`) ? [k] : [])));
  const step = (points.length - 1) / Math.max(1, max - 1);
  for (let j = 0; j < max && keep.size < max; j += 1) keep.add(Math.round(j * step));
  return [...keep].sort((a, b) => a - b).map((k) => points[k]!);
}

const orNull = (v: number) => (Number.isFinite(v) ? v : null);

export function multiTierMetrics(
  rows: LabelledRows,
  price: readonly number[],
  options: { subset?: readonly number[]; maxFrontierPoints?: number } = {},
): MultiTierMetrics {
  const f = multiTierFigures(rows, price, options.subset);
  const max = options.maxFrontierPoints ?? 60;
  const frontier = (['utility', 'threshold'] as const).flatMap((policy) =>
    thinFrontier(paretoPoints(f.curves[policy]), f.hull, max).map((p) => ({
      policy,
      dial: p.dial,
      quality: p.quality,
      cost: p.cost,
    })),
  );
  return {
    best_single: { tier: f.best.tier, quality: f.best.quality, cost: f.best.cost },
    oracle: { quality: f.oracle.quality, cost: f.oracle.cost },
    frontier,
    cost_saving_at_parity: orNull(f.costSavingAtParity),
    cost_saving_at_95: orNull(f.costSavingAt95),
    gap_closed_at_best_cost: orNull(f.gapClosedAtBestCost),
    hull_auc: { router: orNull(f.hullAuc), single_tiers: orNull(f.singleHullAuc) },
  };
}
