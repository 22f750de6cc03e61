import { InvalidProbeInputError } from '../errors.js';
import type { Rng } from '../seeded-rng.js';
import { selectLambda } from './logistic-regression.js';
import { checkLabels, type FeatureMatrix } from './matrix.js';
import type { Fold } from './splits.js';
import { applyStandardizer, fitStandardizer } from './standardizer.js';

/**
 * Which layer (and pooling) of the encoder to read: three numbers per candidate, all over the training
 * rows only. Fisher J says how far apart the two classes' means sit relative to their spread, the
 * participation ratio how many directions the activations really use, and the cross-validated AUROC of
 * an L2 logistic probe is what the choice is made on — J and the participation ratio are reported to
 * explain it (a layer with high J but low AUROC overfits; a very low participation ratio means the
 * layer is dominated by a few directions).
 */
export type Pooling = 'last' | 'mean';

function subsampleRows(n: number, maxRows: number, rng: Rng): number[] {
  const all = Array.from({ length: n }, (_, i) => i);
  return n <= maxRows
    ? all
    : rng
        .shuffle(all)
        .slice(0, maxRows)
        .sort((a, b) => a - b);
}

/**
 * Σᵢⱼ Gᵢⱼ² and G for G = ZᵀZ (d×d) or ZZᵀ (m×m), whichever is smaller; both have the same non-zero
 * eigenvalues, so either serves for traces of powers. `z` is m×d row-major, float64.
 */
function gram(z: Float64Array, m: number, d: number, primal: boolean): Float64Array {
  const size = primal ? d : m;
  const g = new Float64Array(size * size);
  if (primal) {
    // Rank-1 updates row by row keep both the row and G's rows sequential in memory.
    for (let r = 0; r < m; r += 1) {
      const base = r * d;
      for (let j = 0; j < d; j += 1) {
        const v = z[base + j]!;
        if (v === 0) continue;
        const row = j * d;
        for (let k = j; k < d; k += 1) g[row + k]! += v * z[base + k]!;
      }
    }
  } else {
    const d4 = d - (d % 4);
    for (let a = 0; a < m; a += 1) {
      const ra = a * d;
      for (let b = a; b < m; b += 1) {
        const rb = b * d;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        let k = 0;
        for (; k < d4; k += 4) {
          s0 += z[ra + k]! * z[rb + k]!;
          s1 += z[ra + k + 1]! * z[rb + k + 1]!;
          s2 += z[ra + k + 2]! * z[rb + k + 2]!;
          s3 += z[ra + k + 3]! * z[rb + k + 3]!;
        }
        for (; k < d; k += 1) s0 += z[ra + k]! * z[rb + k]!;
        g[a * size + b] = s0 + s1 + s2 + s3;
      }
    }
  }
  for (let j = 0; j < size; j += 1) for (let k = 0; k < j; k += 1) g[j * size + k] = g[k * size + j]!;
  return g;
}

/** Solves A v = b in place of b for symmetric positive definite A (size×size), by Cholesky. */
function choleskySolve(a: Float64Array, size: number, b: Float64Array): Float64Array {
  const l = Float64Array.from(a);
  for (let j = 0; j < size; j += 1) {
    let diagonal = l[j * size + j]!;
    for (let k = 0; k < j; k += 1) diagonal -= l[j * size + k]! ** 2;
    if (!(diagonal > 0)) throw new InvalidProbeInputError('scatter matrix is not positive definite');
    const root = Math.sqrt(diagonal);
    l[j * size + j] = root;
    for (let i = j + 1; i < size; i += 1) {
      let s = l[i * size + j]!;
      for (let k = 0; k < j; k += 1) s -= l[i * size + k]! * l[j * size + k]!;
      l[i * size + j] = s / root;
    }
  }
  const v = Float64Array.from(b);
  for (let i = 0; i < size; i += 1) {
    let s = v[i]!;
    for (let k = 0; k < i; k += 1) s -= l[i * size + k]! * v[k]!;
    v[i] = s / l[i * size + i]!;
  }
  for (let i = size - 1; i >= 0; i -= 1) {
    let s = v[i]!;
    for (let k = i + 1; k < size; k += 1) s -= l[k * size + i]! * v[k]!;
    v[i] = s / l[i * size + i]!;
  }
  return v;
}

export interface FisherOptions {
  rng: Rng;
  /** α in S_w(α) = (1 − α)·S_w + α·(tr S_w / d)·I, in (0, 1]; default 0.1. */
  shrinkage?: number;
  /** Rows used to estimate S_w (default 1000); class means use every row. */
  maxRows?: number;
}

/**
 * Regularised two-class Fisher criterion
 *   J = π₀π₁ · Δμᵀ S_w(α)⁻¹ Δμ,   S_w(α) = (1 − α)·S_w + α·(tr S_w / d)·I,
 * where Δμ is the difference of the class means, S_w the pooled within-class covariance and π the class
 * shares. For two classes the between-class scatter S_b = π₀π₁ΔμΔμᵀ has rank 1, so this is the maximum
 * over directions w of wᵀS_b w / wᵀS_w(α) w — Fisher's ratio of the best LDA direction (Duda, Hart &
 * Stork, "Pattern Classification", §3.8; Fukunaga 1990, ch. 10). The shrinkage towards a scaled
 * identity (Friedman 1989, "Regularized discriminant analysis") makes it finite when d ≥ n, and scaling
 * it by tr S_w / d keeps J unchanged when a layer's activations are multiplied by a constant, so layers
 * of different norm compare fairly. When d exceeds the rows used, S_w(α)⁻¹Δμ is computed in the
 * m-dimensional row space by the Woodbury identity, so the cost is min(m, d)²·max(m, d).
 * In-sample: with d near n, J grows even for random labels; compare it across layers, not to a constant.
 */
export function fisherSeparability(
  x: FeatureMatrix,
  labels: readonly boolean[],
  options: FisherOptions,
): number {
  checkLabels('fisherSeparability', x, labels);
  const alpha = options.shrinkage ?? 0.1;
  if (!(alpha > 0 && alpha <= 1))
    throw new InvalidProbeInputError(`Fisher shrinkage must be in (0, 1], got ${alpha}`);
  const { rows: n, cols: d, data } = x;
  const mean = [new Float64Array(d), new Float64Array(d)];
  const counts = [0, 0];
  for (let i = 0; i < n; i += 1) {
    const c = labels[i] ? 1 : 0;
    counts[c]! += 1;
    const mu = mean[c]!;
    for (let j = 0; j < d; j += 1) mu[j]! += data[i * d + j]!;
  }
  if (counts[0] === 0 || counts[1] === 0) return Number.NaN;
  for (const c of [0, 1]) for (let j = 0; j < d; j += 1) mean[c]![j]! /= counts[c]!;
  const delta = Float64Array.from({ length: d }, (_, j) => mean[1]![j]! - mean[0]![j]!);

  const sample = subsampleRows(n, options.maxRows ?? 1000, options.rng);
  const m = sample.length;
  const z = new Float64Array(m * d);
  let trace = 0;
  for (const [r, i] of sample.entries()) {
    const mu = mean[labels[i] ? 1 : 0]!;
    for (let j = 0; j < d; j += 1) {
      const v = data[i * d + j]! - mu[j]!;
      z[r * d + j] = v;
      trace += v * v;
    }
  }
  const gamma = (alpha * trace) / (m * d);
  const c = (1 - alpha) / m;
  if (!(gamma > 0)) return Number.NaN; // every row equals its class mean: no spread to compare against
  let v: Float64Array;
  if (d <= m) {
    const a = gram(z, m, d, true);
    for (let p = 0; p < a.length; p += 1) a[p]! *= c;
    for (let j = 0; j < d; j += 1) a[j * d + j]! += gamma;
    v = choleskySolve(a, d, delta);
  } else {
    // Woodbury: (γI + c·ZᵀZ)⁻¹ = γ⁻¹[I − c·Zᵀ(γI + c·ZZᵀ)⁻¹Z].
    const k = gram(z, m, d, false);
    for (let p = 0; p < k.length; p += 1) k[p]! *= c;
    for (let r = 0; r < m; r += 1) k[r * m + r]! += gamma;
    const zDelta = Float64Array.from({ length: m }, (_, r) => {
      let s = 0;
      for (let j = 0; j < d; j += 1) s += z[r * d + j]! * delta[j]!;
      return s;
    });
    const u = choleskySolve(k, m, zDelta);
    v = Float64Array.from(delta);
    for (let r = 0; r < m; r += 1) {
      const coefficient = c * u[r]!;
      for (let j = 0; j < d; j += 1) v[j]! -= coefficient * z[r * d + j]!;
    }
    for (let j = 0; j < d; j += 1) v[j]! /= gamma;
  }
  let quadratic = 0;
  for (let j = 0; j < d; j += 1) quadratic += delta[j]! * v[j]!;
  return (counts[0]! / n) * (counts[1]! / n) * quadratic;
}

/**
 * Participation ratio PR = (Σλ)² / Σλ² of the covariance eigenvalues λ (Gao et al. 2017, "A theory of
 * multineuronal dimensionality"; Recanatesi et al. 2019): 1 when one direction holds all the variance, k
 * for k equal-variance directions. No eigendecomposition is needed: Σλ = tr C and Σλ² = tr C² = ‖C‖²_F,
 * and ‖XᵀX‖_F = ‖XXᵀ‖_F, so the smaller Gram matrix of a row subsample suffices. The finite sample biases
 * PR downwards when the rows used are not ≫ the true dimensionality (it cannot exceed ~m); use the same
 * `maxRows` for every layer so the numbers compare.
 */
export function participationRatio(x: FeatureMatrix, options: { rng: Rng; maxRows?: number }): number {
  const { cols: d, data } = x;
  const sample = subsampleRows(x.rows, options.maxRows ?? 1000, options.rng);
  const m = sample.length;
  if (m < 2) return Number.NaN;
  const mean = new Float64Array(d);
  for (const i of sample) for (let j = 0; j < d; j += 1) mean[j]! += data[i * d + j]!;
  for (let j = 0; j < d; j += 1) mean[j]! /= m;
  const z = new Float64Array(m * d);
  let trace = 0;
  for (const [r, i] of sample.entries()) {
    for (let j = 0; j < d; j += 1) {
      const v = data[i * d + j]! - mean[j]!;
      z[r * d + j] = v;
      trace += v * v;
    }
  }
  const g = gram(z, m, d, d <= m);
  let frobenius = 0;
  for (let p = 0; p < g.length; p += 1) frobenius += g[p]! * g[p]!;
  return frobenius > 0 ? (trace * trace) / frobenius : Number.NaN;
}

export interface LayerCandidate {
  layer: number;
  pooling: Pooling;
  /** Training rows only (the test split never enters layer choice). */
  features: FeatureMatrix;
}

export interface LayerScore {
  layer: number;
  pooling: Pooling;
  dim: number;
  fisherJ: number;
  participationRatio: number;
  cvAuroc: number;
  cvAurocStd: number;
  /** The λ the cross-validation chose for this candidate. */
  lambda: number;
}

export interface LayerSelectionOptions {
  /** Over the candidates' rows, e.g. `kFold` or `groupKFold` of the training split. */
  folds: readonly Fold[];
  rng: Rng;
  /** λ grid for the probe (default [1e-2]: one λ keeps a sweep over every layer affordable). */
  lambdas?: readonly number[];
  fisherShrinkage?: number;
  /** Rows subsampled for J's scatter and for the participation ratio (default 1000). */
  maxRows?: number;
}

/** Best first: by cross-validated AUROC, then by Fisher J. NaN AUROCs sort last. */
export function rankLayers(table: readonly LayerScore[]): LayerScore[] {
  const key = (v: number) => (Number.isNaN(v) ? Number.NEGATIVE_INFINITY : v);
  return [...table].sort((a, b) => key(b.cvAuroc) - key(a.cvAuroc) || key(b.fisherJ) - key(a.fisherJ));
}

/**
 * The shallowest candidate whose CV AUROC is within one standard error (its fold spread / √folds) of the
 * best's (ties: the higher AUROC). A decision's encoder pass stops at the probe's block, so a shallower
 * block that scores as well costs less per decision; the one-SE rule keeps noise from buying depth.
 */
export function shallowestWithinOneSe(table: readonly LayerScore[], folds: number): LayerScore {
  const ranked = rankLayers(table);
  const best = ranked[0];
  if (!best) throw new InvalidProbeInputError('shallowestWithinOneSe: no candidates');
  const floor = best.cvAuroc - best.cvAurocStd / Math.sqrt(Math.max(folds, 1));
  const within = ranked.filter((s) => s.cvAuroc >= floor);
  return within.reduce((pick, s) => (s.layer < pick.layer ? s : pick), best);
}

/**
 * Scores every (layer, pooling) candidate on standardised features (the standardizer fitted on the same
 * training rows, as the probe will be) and returns the whole table ranked, with its first row as `best`.
 */
export function scoreLayers(
  candidates: readonly LayerCandidate[],
  labels: readonly boolean[],
  options: LayerSelectionOptions,
): { table: LayerScore[]; best: LayerScore } {
  if (candidates.length === 0) throw new InvalidProbeInputError('scoreLayers: no candidates');
  const maxRows = options.maxRows ?? 1000;
  const table = candidates.map((candidate): LayerScore => {
    checkLabels(`layer ${candidate.layer} (${candidate.pooling})`, candidate.features, labels);
    // One standardizer over all the candidate's rows, fold test parts included: it sees means and
    // variances, never labels, so the leak into the CV estimate is negligible, and it saves a
    // standardised copy of the matrix per fold.
    const x = applyStandardizer(fitStandardizer(candidate.features), candidate.features);
    const search = selectLambda(x, labels, { folds: options.folds, lambdas: options.lambdas ?? [1e-2] });
    const chosen = search.table.find((s) => s.lambda === search.lambda)!;
    return {
      layer: candidate.layer,
      pooling: candidate.pooling,
      dim: x.cols,
      fisherJ: fisherSeparability(x, labels, {
        rng: options.rng,
        shrinkage: options.fisherShrinkage,
        maxRows,
      }),
      participationRatio: participationRatio(x, { rng: options.rng, maxRows }),
      cvAuroc: chosen.auroc,
      cvAurocStd: chosen.aurocStd,
      lambda: search.lambda,
    };
  });
  const ranked = rankLayers(table);
  return { table: ranked, best: ranked[0]! };
}
