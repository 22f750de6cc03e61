import type { Rng } from '../src/seeded-rng.js';

/**
 * The yardsticks scored on the same folds as the probes, with only the training rows to learn from.
 *
 * - group prior (`subject-prior` on MMLU): each row gets its group's success rate on the training rows,
 *   or the overall training rate for a group the training rows lack — so on whole held-out subjects it
 *   is a constant and ranks nothing, which is the point of that split (../shared/data/README.md).
 * - `random`: the training base rate plus a negligible random jitter, i.e. a random ranking with the
 *   calibration of a constant: AUROC ≈ 0.5, APGR ≈ 0.5, Brier of the base rate.
 */
export function groupPrior(
  labels: readonly (boolean | null)[],
  groups: readonly string[] | undefined,
  trainRows: readonly number[],
  testRows: readonly number[],
): Float64Array {
  let successes = 0;
  let count = 0;
  const byGroup = new Map<string, { s: number; n: number }>();
  for (const i of trainRows) {
    const label = labels[i];
    if (label === null || label === undefined) continue;
    successes += label ? 1 : 0;
    count += 1;
    if (groups) {
      const g = byGroup.get(groups[i]!) ?? { s: 0, n: 0 };
      g.s += label ? 1 : 0;
      g.n += 1;
      byGroup.set(groups[i]!, g);
    }
  }
  const overall = count === 0 ? 0.5 : successes / count;
  return Float64Array.from(testRows, (i) => {
    const g = groups ? byGroup.get(groups[i]!) : undefined;
    return g ? g.s / g.n : overall;
  });
}

export function randomBaseline(
  labels: readonly (boolean | null)[],
  trainRows: readonly number[],
  testRows: readonly number[],
  rng: Rng,
): Float64Array {
  const rate = groupPrior(labels, undefined, trainRows, testRows)[0] ?? 0.5;
  return Float64Array.from(testRows, () => Math.min(1, Math.max(0, rate + 1e-6 * (rng.next() - 0.5))));
}
