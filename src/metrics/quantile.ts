/**
 * The q-quantile (q in [0, 1]) of an ascending-sorted list, linearly interpolated between the two nearest
 * ranks (numpy's default); NaN for an empty list. What every percentile interval and latency figure uses.
 */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Median, 95th percentile and mean of latency samples (ms), rounded to 0.01. */
export interface LatencySummary {
  p50: number;
  p95: number;
  mean: number;
  n: number;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    p50: round(quantile(sorted, 0.5)),
    p95: round(quantile(sorted, 0.95)),
    mean: round(sorted.reduce((s, x) => s + x, 0) / (sorted.length || 1)),
    n: sorted.length,
  };
}
