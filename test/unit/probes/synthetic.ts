import { createMatrix, type FeatureMatrix } from '../../../src/probes/matrix.js';
import type { Rng } from '../../../src/seeded-rng.js';

/** Shared synthetic data for the probe tests (not a test file itself). */

/**
 * Two Gaussian classes in d dimensions: unit-variance noise, class means ±shift/2 along the first
 * `informative` coordinates (so the Bayes-optimal separator is linear), base rate `positiveRate`.
 */
export function gaussianClasses(
  rng: Rng,
  n: number,
  d: number,
  options: { shift: number; informative?: number; positiveRate?: number; scale?: number },
): { x: FeatureMatrix; labels: boolean[] } {
  const informative = options.informative ?? d;
  const scale = options.scale ?? 1;
  const labels = Array.from({ length: n }, () => rng.next() < (options.positiveRate ?? 0.5));
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i += 1) {
    const sign = labels[i] ? 0.5 : -0.5;
    for (let j = 0; j < d; j += 1) {
      const mean = j < informative ? (sign * options.shift) / Math.sqrt(informative) : 0;
      data[i * d + j] = scale * (mean + rng.normal());
    }
  }
  return { x: createMatrix(data, n, d), labels };
}

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
