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
