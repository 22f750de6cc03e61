import { createRng } from '../seeded-rng.js';

/**
 * Seeded, reproducible subsets: the same seed picks the same prompts on every machine and every run,
 * which is what lets an interrupted `extract --sample` resume onto the same subset.
 */

/**
 * Picks `n` of `items`, stratified by `stratum`: each stratum gets its proportional share (largest
 * remainder, ties to the larger stratum, then the earlier one), so a small dataset mixed with a large one
 * is neither dropped nor over-sampled. Within a stratum the choice is a seeded partial Fisher–Yates
 * shuffle. The result keeps the input order. `n` ≥ the item count returns every item.
 */
export function stratifiedSample<T>(
  items: readonly T[],
  n: number,
  seed: number,
  stratum: (item: T) => string = () => '',
): T[] {
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`sample size must be a non-negative integer, got ${n}`);
  if (n >= items.length) return [...items];

  const groups = new Map<string, number[]>();
  items.forEach((item, index) => {
    const key = stratum(item);
    const group = groups.get(key);
    if (group) group.push(index);
    else groups.set(key, [index]);
  });

  const shares = [...groups.entries()].map(([key, members], order) => {
    const exact = (n * members.length) / items.length;
    return { key, members, order, take: Math.floor(exact), remainder: exact - Math.floor(exact) };
  });
  let left = n - shares.reduce((sum, s) => sum + s.take, 0);
  const byRemainder = [...shares].sort(
    (a, b) => b.remainder - a.remainder || b.members.length - a.members.length || a.order - b.order,
  );
  for (const share of byRemainder) {
    if (left === 0) break;
    share.take += 1;
    left -= 1;
  }

  const random = createRng(seed).next;
  const chosen: number[] = [];
  // Strata in first-appearance order, so the draws (and so the subset) depend only on the seed and data.
  for (const { members, take } of shares) {
    const pool = [...members];
    for (let i = 0; i < take; i++) {
      const j = i + Math.floor(random() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      chosen.push(pool[i]!);
    }
  }
  return chosen.sort((a, b) => a - b).map((index) => items[index]!);
}
