import { InvalidProbeInputError } from '../errors.js';
import { createMatrix, type FeatureMatrix } from './matrix.js';

/**
 * Per-feature standardisation z = (x − mean) / std, fitted on training rows only and stored in the probe
 * bundle, so the router applies exactly the transform the probes were trained behind. It matters more
 * than usual here: residual-stream features differ in scale by orders of magnitude ("massive
 * activations", Sun et al. 2024, arXiv:2402.17762), and an L2 penalty on unscaled features would
 * shrink the small-scale ones hardest regardless of how informative they are.
 */
export interface StandardizerStats {
  mean: number[];
  std: number[];
}

export interface StandardizerOptions {
  /** Only these rows are used (the training split); default all. */
  rows?: readonly number[];
  /** Absolute lower bound on a std (default 1e-6). */
  minStd?: number;
  /**
   * Lower bound as a share of the median std (default 1e-3). A feature that is (nearly) constant on the
   * training rows would otherwise be divided by ~0, and any deviation at serving time would become an
   * enormous input; flooring relative to the typical scale keeps such features inert instead.
   */
  relativeFloor?: number;
}

export function fitStandardizer(x: FeatureMatrix, options: StandardizerOptions = {}): StandardizerStats {
  const { cols, data } = x;
  const rows = options.rows ?? Array.from({ length: x.rows }, (_, i) => i);
  if (rows.length === 0) throw new InvalidProbeInputError('fitStandardizer: no rows');
  const mean = new Float64Array(cols);
  for (const i of rows) {
    const base = i * cols;
    for (let j = 0; j < cols; j += 1) mean[j]! += data[base + j]!;
  }
  for (let j = 0; j < cols; j += 1) mean[j]! /= rows.length;
  // Two passes (mean first, then squared deviations) rather than E[x²] − E[x]²: the one-pass form
  // cancels catastrophically for features whose mean dwarfs their spread, which massive activations do.
  const variance = new Float64Array(cols);
  for (const i of rows) {
    const base = i * cols;
    for (let j = 0; j < cols; j += 1) {
      const deviation = data[base + j]! - mean[j]!;
      variance[j]! += deviation * deviation;
    }
  }
  // Population variance (÷ n): the transform only has to be consistent, not unbiased.
  const std = Array.from(variance, (v) => Math.sqrt(v / rows.length));
  const sorted = [...std].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const floor = Math.max(options.minStd ?? 1e-6, (options.relativeFloor ?? 1e-3) * median);
  return { mean: Array.from(mean), std: std.map((s) => Math.max(s, floor)) };
}

function checkWidth(stats: StandardizerStats, width: number): void {
  if (stats.mean.length !== width || stats.std.length !== width) {
    throw new InvalidProbeInputError(
      `the standardizer has ${stats.mean.length} features but the input has ${width}`,
    );
  }
}

/** A new float32 matrix with every row standardised. */
export function applyStandardizer(stats: StandardizerStats, x: FeatureMatrix): FeatureMatrix {
  checkWidth(stats, x.cols);
  const { rows, cols, data } = x;
  const out = new Float32Array(rows * cols);
  const mean = Float64Array.from(stats.mean);
  const inverse = Float64Array.from(stats.std, (s) => 1 / s);
  for (let i = 0; i < rows; i += 1) {
    const base = i * cols;
    for (let j = 0; j < cols; j += 1) out[base + j] = (data[base + j]! - mean[j]!) * inverse[j]!;
  }
  return createMatrix(out, rows, cols);
}

/** One standardised vector, in float64 (the serving path scores single prompts). */
export function standardizeVector(stats: StandardizerStats, vector: ArrayLike<number>): Float64Array {
  checkWidth(stats, vector.length);
  const out = new Float64Array(vector.length);
  for (let j = 0; j < vector.length; j += 1) out[j] = (vector[j]! - stats.mean[j]!) / stats.std[j]!;
  return out;
}
