import { InvalidMetricInputError } from '../errors.js';
import { costPerCorrect } from './routing.js';

/**
 * Operating points of the `threshold` policy on labelled rows: for a vector of thresholds (one per tier
 * below the frontier), every row goes to the cheapest tier whose P(success) reaches its threshold, else
 * to the frontier — the rule of src/policy/threshold.ts, restated over arrays so that thousands of
 * candidate points can be scored in a sweep. Pure; no I/O.
 */
export interface LabelledRows {
  /** Cheapest first; the last one is the frontier (the fallback). */
  tiers: readonly string[];
  /** Per tier, per row: calibrated P(success). */
  p: readonly ArrayLike<number>[];
  /** Per tier, per row: whether that tier answered correctly. */
  correct: readonly ArrayLike<boolean>[];
  /** Per tier, per row: USD to answer with that tier. */
  cost: readonly ArrayLike<number>[];
}

export interface OperatingPoint {
  /** Tier → threshold, for every tier below the frontier. */
  thresholds: Record<string, number>;
  n: number;
  correct: number;
  cost: number;
  quality: number;
  /** USD per correct outcome; Infinity when nothing is correct. */
  costPerCorrect: number;
  /** Tier → share of rows sent there. */
  shares: Record<string, number>;
  /** Per row of the subset, the index of the tier it goes to (for bootstrapping). */
  choice: Uint8Array;
}

export function checkRows(rows: LabelledRows): number {
  const k = rows.tiers.length;
  if (k < 1) throw new InvalidMetricInputError('calibration', 'no tiers');
  if (k > 255) throw new InvalidMetricInputError('calibration', `${k} tiers (at most 255)`);
  if (rows.p.length !== k || rows.correct.length !== k || rows.cost.length !== k) {
    throw new InvalidMetricInputError('calibration', `arrays for ${k} tiers expected`);
  }
  const n = rows.correct[0]!.length;
  for (let t = 0; t < k; t += 1) {
    if (rows.p[t]!.length !== n || rows.correct[t]!.length !== n || rows.cost[t]!.length !== n) {
      throw new InvalidMetricInputError('calibration', `tier ${rows.tiers[t]}: not ${n} rows`);
    }
    for (let i = 0; i < n; i += 1) {
      const c = rows.cost[t]![i]!;
      if (!(Number.isFinite(c) && c >= 0))
        throw new InvalidMetricInputError('calibration', `tier ${rows.tiers[t]} row ${i}: cost ${c}`);
    }
  }
  return n;
}

/** Index of the tier row i goes to under thresholds θ (θ[k] for tier k < K−1). */
export function decideRow(rows: LabelledRows, theta: readonly number[], i: number): number {
  const last = rows.tiers.length - 1;
  for (let k = 0; k < last; k += 1) if (rows.p[k]![i]! >= theta[k]!) return k;
  return last;
}

/** Scores thresholds θ on the rows of `subset` (indices into the rows). */
export function evaluatePoint(
  rows: LabelledRows,
  subset: readonly number[],
  theta: readonly number[],
): OperatingPoint {
  const k = rows.tiers.length;
  const counts = new Array<number>(k).fill(0);
  const choice = new Uint8Array(subset.length);
  let correct = 0;
  let cost = 0;
  for (const [r, i] of subset.entries()) {
    const t = decideRow(rows, theta, i);
    choice[r] = t;
    counts[t]! += 1;
    if (rows.correct[t]![i]) correct += 1;
    cost += rows.cost[t]![i]!;
  }
  const n = subset.length;
  return {
    thresholds: Object.fromEntries(rows.tiers.slice(0, -1).map((id, j) => [id, theta[j]!])),
    n,
    correct,
    cost,
    quality: n === 0 ? 0 : correct / n,
    costPerCorrect: costPerCorrect(cost, correct),
    shares: Object.fromEntries(rows.tiers.map((id, j) => [id, n === 0 ? 0 : counts[j]! / n])),
    choice,
  };
}

/**
 * Thresholds worth trying for one tier: 0 (always passes), the midpoints between its distinct
 * predicted values (a midpoint sits as far as possible from both rows it separates, so a point does not
 * hinge on a float's last digit), and 1 (passes nothing short of certainty). More than `max` candidates
 * are thinned to evenly spaced quantiles, keeping both ends.
 */
export function candidateThresholds(values: ArrayLike<number>, max: number): number[] {
  const distinct = [...new Set(Array.from(values))].sort((a, b) => a - b);
  const mids: number[] = [];
  for (let j = 1; j < distinct.length; j += 1) mids.push((distinct[j - 1]! + distinct[j]!) / 2);
  let inner = mids;
  if (mids.length > Math.max(0, max - 2)) {
    const keep = Math.max(0, max - 2);
    inner = Array.from({ length: keep }, (_, j) =>
      keep === 1
        ? mids[Math.floor(mids.length / 2)]!
        : mids[Math.round((j * (mids.length - 1)) / (keep - 1))]!,
    );
  }
  return [...new Set([0, ...inner, 1])].sort((a, b) => a - b);
}

/**
 * Every point of a grid over the thresholds of the tiers below the frontier, on `subset`. With one such
 * tier (the usual weak/strong pair) the grid is every distinct split of the rows; with more, each axis
 * gets about maxPoints^(1/axes) candidates so the grid stays near `maxPoints` — only 3 per axis on an
 * 8-tier ladder, so the points of one threshold shared by every tier (its diagonal, up to `maxPoints`
 * values of τ over all the tiers' P) are added: on a long ladder they are most of the good points.
 */
export function sweepThresholds(
  rows: LabelledRows,
  subset: readonly number[],
  maxPoints = 4000,
): OperatingPoint[] {
  const axes = rows.tiers.length - 1;
  if (axes === 0) return [evaluatePoint(rows, subset, [])];
  const perAxis = Math.max(2, Math.floor(maxPoints ** (1 / axes)));
  const grids = Array.from({ length: axes }, (_, k) =>
    candidateThresholds(
      subset.map((i) => rows.p[k]![i]!),
      perAxis,
    ),
  );
  const points: OperatingPoint[] = [];
  const theta = new Array<number>(axes).fill(0);
  const walk = (k: number): void => {
    if (k === axes) {
      points.push(evaluatePoint(rows, subset, theta));
      return;
    }
    for (const value of grids[k]!) {
      theta[k] = value;
      walk(k + 1);
    }
  };
  walk(0);
  if (axes > 1) {
    const all = rows.p.slice(0, axes).flatMap((p) => subset.map((i) => p[i]!));
    for (const tau of candidateThresholds(all, maxPoints)) {
      points.push(evaluatePoint(rows, subset, new Array<number>(axes).fill(tau)));
    }
  }
  return points;
}

const cpcOrder = (a: OperatingPoint, b: OperatingPoint) =>
  a.costPerCorrect - b.costPerCorrect || b.quality - a.quality || a.cost - b.cost;

/**
 * The Pareto front of quality against cost per correct outcome: the points no other point beats on
 * both (cheaper per correct answer and at least as good). Ordered cheapest first, so quality rises.
 */
export function paretoFront(points: readonly OperatingPoint[]): OperatingPoint[] {
  const front: OperatingPoint[] = [];
  for (const p of [...points].filter((q) => !Number.isNaN(q.costPerCorrect)).sort(cpcOrder)) {
    if (front.length === 0 || p.quality > front.at(-1)!.quality) front.push(p);
  }
  return front;
}

export type Choice =
  | { reached: true; point: OperatingPoint }
  /** No point reaches the target: the closest one (highest quality, then cheapest per correct). */
  | { reached: false; point: OperatingPoint };

/** The cheapest point per correct outcome whose quality reaches `targetQuality`. */
export function choosePoint(points: readonly OperatingPoint[], targetQuality: number): Choice {
  if (points.length === 0) throw new InvalidMetricInputError('calibration', 'no operating points');
  // A hair of slack: target × frontier quality of exactly the frontier's own point must count as reached.
  const meets = points.filter((p) => p.quality >= targetQuality - 1e-12);
  if (meets.length > 0) return { reached: true, point: [...meets].sort(cpcOrder)[0]! };
  const best = [...points].sort((a, b) => b.quality - a.quality || cpcOrder(a, b))[0]!;
  return { reached: false, point: best };
}
