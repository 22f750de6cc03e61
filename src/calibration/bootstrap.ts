import type { LabelledRows, OperatingPoint } from '../metrics/operating-points.js';
import { quantile } from '../metrics/quantile.js';
import { createRng } from '../seeded-rng.js';

/**
 * Percentile bootstrap intervals for operating points: the rows are resampled with replacement (seeded),
 * and each point's quality and cost per correct outcome recomputed on every resample with its routing
 * fixed. The interval says how much the golden set's luck of the draw moves a point's figures, which is
 * what a check on fresh traces from the same distribution should fall inside.
 */
export interface BootstrapOptions {
  resamples: number;
  seed: number;
  /** e.g. 0.95 for a 95 % interval. */
  confidence: number;
}

export interface PointIntervals {
  quality: [number, number];
  /** null when some resample has no correct answer at this point. */
  costPerCorrect: [number, number] | null;
}

/** Intervals for each of `points`, all scored on the same `subset` they were evaluated on. */
export function bootstrapIntervals(
  rows: LabelledRows,
  subset: readonly number[],
  points: readonly OperatingPoint[],
  options: BootstrapOptions,
): PointIntervals[] {
  const n = subset.length;
  const rng = createRng(options.seed);
  const quality = points.map(() => new Float64Array(options.resamples));
  const cpc = points.map(() => new Float64Array(options.resamples));
  const weights = new Uint32Array(n);
  for (let b = 0; b < options.resamples; b += 1) {
    weights.fill(0);
    for (let draw = 0; draw < n; draw += 1) weights[rng.int(n)]! += 1;
    for (const [j, point] of points.entries()) {
      let correct = 0;
      let cost = 0;
      for (let r = 0; r < n; r += 1) {
        const w = weights[r]!;
        if (w === 0) continue;
        const t = point.choice[r]!;
        const i = subset[r]!;
        if (rows.correct[t]![i]) correct += w;
        cost += w * rows.cost[t]![i]!;
      }
      quality[j]![b] = n === 0 ? 0 : correct / n;
      cpc[j]![b] = correct === 0 ? Number.POSITIVE_INFINITY : cost / correct;
    }
  }
  return points.map((_, j) => {
    const c = cpc[j]!;
    return {
      quality: percentileInterval(quality[j]!, options.confidence),
      costPerCorrect: c.every(Number.isFinite) ? percentileInterval(c, options.confidence) : null,
    };
  });
}

/**
 * The percentile bootstrap interval of a statistic from its values on the resamples: the central
 * `confidence` share of them (e.g. 0.95: from the 2.5th to the 97.5th percentile). Sorts `values`.
 */
export function percentileInterval(values: Float64Array, confidence: number): [number, number] {
  const sorted = values.sort();
  const alpha = (1 - confidence) / 2;
  return [quantile(sorted, alpha), quantile(sorted, 1 - alpha)];
}
