import { InvalidProbeInputError } from '../errors.js';
import { auroc } from '../metrics/classification.js';
import { type LbfgsOptions, minimizeLbfgs } from './lbfgs.js';
import { checkLabels, type FeatureMatrix } from './matrix.js';
import type { Fold } from './splits.js';

/**
 * Binary logistic regression with an L2 penalty, for the per-tier linear probes.
 *
 * Our own fit rather than `ml-logistic-regression` (v2.0.0, read from its source): that package runs a
 * fixed number (50,000 by default) of plain gradient steps at a fixed learning rate, with no intercept,
 * no L2 penalty, no sample weights and no convergence test. A probe over ~1,000–2,600 correlated
 * activation features needs the penalty (otherwise the weights chase noise and, on separable folds,
 * diverge), needs the intercept (base rates differ by tier), and 50,000 full passes over an 8,000×1,280
 * matrix would take hours; L-BFGS converges in a few hundred passes at most.
 *
 * Objective (bias unpenalised), with sample weights sᵢ summing to S:
 *   f(w, b) = (1/S) Σᵢ sᵢ [log(1 + e^{zᵢ}) − yᵢ zᵢ] + (λ/2)‖w‖²,  zᵢ = w·xᵢ + b.
 * Dividing by S makes λ mean the same thing whatever the number of rows; it corresponds to
 * scikit-learn's C = 1 / (λ·n). Targets yᵢ may be soft (in [0, 1]), which the same loss handles.
 */
export interface LogisticModel {
  weights: Float64Array;
  bias: number;
  lambda: number;
}

export interface LogisticFitOptions extends LbfgsOptions {
  lambda: number;
  /** Fit only on these rows (a training fold) without copying the matrix; default all rows. */
  rows?: readonly number[];
  /** Per row of the full matrix; default 1. */
  sampleWeights?: ArrayLike<number>;
  /** Warm start (e.g. the solution at a neighbouring λ). */
  initial?: { weights: ArrayLike<number>; bias: number };
}

export interface LogisticFitResult {
  model: LogisticModel;
  loss: number;
  iterations: number;
  converged: boolean;
}

export type BinaryTargets = readonly boolean[] | ArrayLike<number>;

function targetsOf(labels: BinaryTargets): Float64Array {
  const out = new Float64Array(labels.length);
  for (let i = 0; i < labels.length; i += 1) {
    const v = Number(labels[i]);
    if (!(v >= 0 && v <= 1)) throw new InvalidProbeInputError(`label ${i} is ${labels[i]}, not in [0, 1]`);
    out[i] = v;
  }
  return out;
}

/** log(1 + e^z) without overflow. */
function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

export function fitLogistic(
  x: FeatureMatrix,
  labels: BinaryTargets,
  options: LogisticFitOptions,
): LogisticFitResult {
  checkLabels('fitLogistic', x, labels);
  const { lambda } = options;
  if (!(lambda >= 0)) throw new InvalidProbeInputError(`lambda is ${lambda}`);
  const y = targetsOf(labels);
  const { cols: d, data } = x;
  const rows = Int32Array.from(options.rows ?? Array.from({ length: x.rows }, (_, i) => i));
  if (rows.length === 0) throw new InvalidProbeInputError('fitLogistic: no rows');
  const weightOf = new Float64Array(rows.length);
  let totalWeight = 0;
  for (let k = 0; k < rows.length; k += 1) {
    const s = options.sampleWeights ? Number(options.sampleWeights[rows[k]!]) : 1;
    if (!(s >= 0)) throw new InvalidProbeInputError(`sample weight of row ${rows[k]} is ${s}`);
    weightOf[k] = s;
    totalWeight += s;
  }
  if (!(totalWeight > 0)) throw new InvalidProbeInputError('fitLogistic: sample weights sum to 0');

  // Parameters are [w₀ … w_{d−1}, b]. One pass over the rows computes both the loss and the gradient:
  // each row's logit, then at once its contribution r·xᵢ to Xᵀr while the row is still in cache, which
  // halves the memory traffic of the usual two passes (Xw, then Xᵀr). Four accumulators break the
  // floating-point add dependency chain; V8 does not vectorise this loop on its own.
  const objective = (theta: Float64Array, gradient: Float64Array): number => {
    const b = theta[d]!;
    let loss = 0;
    let biasGradient = 0;
    let penalty = 0;
    for (let j = 0; j < d; j += 1) {
      gradient[j] = lambda * theta[j]!;
      penalty += theta[j]! * theta[j]!;
    }
    const d4 = d - (d % 4);
    for (let k = 0; k < rows.length; k += 1) {
      const base = rows[k]! * d;
      let z0 = b;
      let z1 = 0;
      let z2 = 0;
      let z3 = 0;
      let j = 0;
      for (; j < d4; j += 4) {
        z0 += theta[j]! * data[base + j]!;
        z1 += theta[j + 1]! * data[base + j + 1]!;
        z2 += theta[j + 2]! * data[base + j + 2]!;
        z3 += theta[j + 3]! * data[base + j + 3]!;
      }
      for (; j < d; j += 1) z0 += theta[j]! * data[base + j]!;
      const z = z0 + z1 + z2 + z3;
      const target = y[rows[k]!]!;
      const s = weightOf[k]!;
      loss += s * (softplus(z) - target * z);
      const r = (s * (sigmoid(z) - target)) / totalWeight;
      biasGradient += r;
      if (r === 0) continue;
      for (j = 0; j < d4; j += 4) {
        gradient[j]! += r * data[base + j]!;
        gradient[j + 1]! += r * data[base + j + 1]!;
        gradient[j + 2]! += r * data[base + j + 2]!;
        gradient[j + 3]! += r * data[base + j + 3]!;
      }
      for (; j < d; j += 1) gradient[j]! += r * data[base + j]!;
    }
    gradient[d] = biasGradient;
    return loss / totalWeight + (lambda / 2) * penalty;
  };

  const start = new Float64Array(d + 1);
  if (options.initial) {
    if (options.initial.weights.length !== d) {
      throw new InvalidProbeInputError(`warm start has ${options.initial.weights.length} weights, not ${d}`);
    }
    start.set(Array.from(options.initial.weights));
    start[d] = options.initial.bias;
  } else {
    // Starting at the log-odds of the base rate saves the first iterations finding the intercept.
    let positive = 0;
    for (let k = 0; k < rows.length; k += 1) positive += weightOf[k]! * y[rows[k]!]!;
    const rate = Math.min(Math.max(positive / totalWeight, 1e-6), 1 - 1e-6);
    start[d] = Math.log(rate / (1 - rate));
  }
  // max |gradient| ≤ 1e-4 (scikit-learn's default tol): the loss is then stable to ~5 digits, and a
  // tighter tolerance costs ~40 % more passes for no change in the probe's ranking.
  const solution = minimizeLbfgs(objective, start, {
    ...options,
    gradientTolerance: options.gradientTolerance ?? 1e-4,
  });
  return {
    model: { weights: solution.x.slice(0, d), bias: solution.x[d]!, lambda },
    loss: solution.value,
    iterations: solution.iterations,
    converged: solution.converged,
  };
}

/** Raw scores z = w·x + b (logits) for the given rows, or all rows. */
export function logisticLogits(
  model: Pick<LogisticModel, 'weights' | 'bias'>,
  x: FeatureMatrix,
  rows?: readonly number[],
): Float64Array {
  const d = x.cols;
  if (model.weights.length !== d) {
    throw new InvalidProbeInputError(
      `the model has ${model.weights.length} weights but the input has ${d} features`,
    );
  }
  const indices = rows ?? Array.from({ length: x.rows }, (_, i) => i);
  const out = new Float64Array(indices.length);
  const w = model.weights;
  for (const [k, i] of indices.entries()) {
    const base = i * d;
    let z = model.bias;
    for (let j = 0; j < d; j += 1) z += w[j]! * x.data[base + j]!;
    out[k] = z;
  }
  return out;
}

export function logisticProbabilities(
  model: Pick<LogisticModel, 'weights' | 'bias'>,
  x: FeatureMatrix,
  rows?: readonly number[],
): Float64Array {
  return logisticLogits(model, x, rows).map(sigmoid);
}

export interface LambdaScore {
  lambda: number;
  /** Mean over folds (folds whose test part has one class only are skipped). */
  auroc: number;
  aurocStd: number;
  /** Mean per-row log-loss of the out-of-fold predictions. */
  logLoss: number;
}

export interface LambdaSearchOptions extends LbfgsOptions {
  folds: readonly Fold[];
  /** Default [1e-4, 1e-3, 1e-2, 1e-1, 1] (for standardised features, with the objective above). */
  lambdas?: readonly number[];
  /** What to maximise: AUROC (default; probes are used for ranking) or, negated, log-loss. */
  criterion?: 'auroc' | 'log-loss';
  sampleWeights?: ArrayLike<number>;
}

export interface LambdaSearchResult {
  lambda: number;
  table: LambdaScore[];
  /** Out-of-fold logits at the chosen λ, indexed like x's rows; NaN for rows in no test fold. */
  outOfFoldLogits: Float64Array;
}

/**
 * k-fold cross-validation over a λ grid, on the training data the caller passes (never the test split).
 * `x` is expected already standardised by a standardizer fitted on the training rows; refitting it per
 * fold would only remove the (label-free) leak of the held-out rows' means and variances.
 * Within each fold the grid runs from the largest λ to the smallest, each fit warm-started from the
 * previous one: the path of solutions is continuous in λ, so this cuts the iterations several-fold.
 */
export function selectLambda(
  x: FeatureMatrix,
  labels: BinaryTargets,
  options: LambdaSearchOptions,
): LambdaSearchResult {
  checkLabels('selectLambda', x, labels);
  const lambdas = [...(options.lambdas ?? [1e-4, 1e-3, 1e-2, 1e-1, 1])].sort((a, b) => b - a);
  if (lambdas.length === 0 || options.folds.length === 0) {
    throw new InvalidProbeInputError('selectLambda needs at least one λ and one fold');
  }
  const y = targetsOf(labels);
  const binary = Array.from(y, (v) => v >= 0.5);
  const oof = lambdas.map(() => new Float64Array(x.rows).fill(Number.NaN));
  const foldAurocs = lambdas.map((): number[] => []);
  for (const fold of options.folds) {
    let previous: LogisticModel | undefined;
    for (const [l, lambda] of lambdas.entries()) {
      const { model } = fitLogistic(x, labels, {
        ...options,
        lambda,
        rows: fold.train,
        initial: previous,
      });
      previous = model;
      const logits = logisticLogits(model, x, fold.test);
      for (const [k, i] of fold.test.entries()) oof[l]![i] = logits[k]!;
      const a = auroc(
        Array.from(logits),
        fold.test.map((i) => binary[i]!),
      );
      if (!Number.isNaN(a)) foldAurocs[l]!.push(a);
    }
  }
  const table = lambdas.map((lambda, l): LambdaScore => {
    const aurocs = foldAurocs[l]!;
    const mean = aurocs.reduce((s, a) => s + a, 0) / aurocs.length;
    const variance = aurocs.reduce((s, a) => s + (a - mean) ** 2, 0) / Math.max(aurocs.length - 1, 1);
    let loss = 0;
    let count = 0;
    for (let i = 0; i < x.rows; i += 1) {
      const z = oof[l]![i]!;
      if (Number.isNaN(z)) continue;
      loss += softplus(z) - y[i]! * z;
      count += 1;
    }
    return { lambda, auroc: mean, aurocStd: Math.sqrt(variance), logLoss: loss / count };
  });
  const score = (s: LambdaScore) => (options.criterion === 'log-loss' ? -s.logLoss : s.auroc);
  let best = 0;
  // Strictly greater, over λ sorted large to small: ties go to the stronger penalty (the simpler model).
  for (let l = 1; l < table.length; l += 1) if (score(table[l]!) > score(table[best]!)) best = l;
  return { lambda: table[best]!.lambda, table, outOfFoldLogits: oof[best]! };
}

/**
 * λ by cross-validation, then one fit at that λ on every row the folds cover (the union of their test
 * parts), so a caller whose folds span only the training split never fits on anything else.
 */
export function fitLogisticCV(
  x: FeatureMatrix,
  labels: BinaryTargets,
  options: LambdaSearchOptions,
): LogisticFitResult & { search: LambdaSearchResult } {
  const search = selectLambda(x, labels, options);
  const rows = [...new Set(options.folds.flatMap((f) => f.test))].sort((a, b) => a - b);
  const fit = fitLogistic(x, labels, { ...options, lambda: search.lambda, rows });
  return { ...fit, search };
}
