import { fitLogistic, type LogisticModel } from '../../../src/probes/logistic-regression.js';
import { createMatrix, type FeatureMatrix } from '../../../src/probes/matrix.js';
import type { Rng } from '../../../src/seeded-rng.js';

/**
 * Synthetic prompts in K well-separated Gaussian blobs (blob k centred at `spread`·e_k, unit noise), with
 * a planted success rate per blob for each tier: what a cluster head, a low-rank head and a logistic
 * head should each recover. Not a test file itself.
 */
export interface PlantedData {
  x: FeatureMatrix;
  /** Blob of each row. */
  blob: number[];
  /** Per tier name, per row. */
  outcomes: Record<string, boolean[]>;
}

export const PLANTED_RATES = {
  // Two "existing" tiers and a new one whose logit is about the sum of theirs (so in their span).
  a: [0.9, 0.1, 0.6, 0.4],
  b: [0.8, 0.5, 0.2, 0.6],
  fresh: [0.95, 0.1, 0.25, 0.5],
} as const;

export function plantedClusters(rng: Rng, n: number, d: number, spread = 6): PlantedData {
  const k = PLANTED_RATES.fresh.length;
  const data = new Float32Array(n * d);
  const blob: number[] = [];
  for (let i = 0; i < n; i += 1) {
    const b = i % k;
    blob.push(b);
    for (let j = 0; j < d; j += 1) data[i * d + j] = (j === b ? spread : 0) + rng.normal();
  }
  const outcomes = Object.fromEntries(
    Object.entries(PLANTED_RATES).map(([tier, rates]) => [tier, blob.map((b) => rng.next() < rates[b]!)]),
  );
  return { x: createMatrix(data, n, d), blob, outcomes };
}

/** A linear head fitted on every row (the "trained" head of an existing tier). */
export function trainedHead(x: FeatureMatrix, labels: readonly boolean[]): LogisticModel {
  return fitLogistic(x, labels, { lambda: 1e-2 }).model;
}

/** Mean of `values` over the rows of each blob. */
export function meanByBlob(values: ArrayLike<number>, blob: readonly number[], k: number): number[] {
  const sum = new Array<number>(k).fill(0);
  const count = new Array<number>(k).fill(0);
  for (const [i, b] of blob.entries()) {
    sum[b]! += values[i]!;
    count[b]! += 1;
  }
  return sum.map((s, b) => s / count[b]!);
}
