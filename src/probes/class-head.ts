import { InvalidProbeInputError } from '../errors.js';
import { fitLogistic, sigmoid } from './logistic-regression.js';
import type { FeatureMatrix } from './matrix.js';

/**
 * The task-class head: one L2 logistic regression per class (one-vs-rest, fitted with the probes' own
 * L-BFGS code), over the same standardised features as the tier probes. The classes' probabilities are
 * the one-vs-rest sigmoids normalised to sum to one, so a request's class probability is comparable
 * across classes.
 */
export interface ClassHeadModel {
  names: string[];
  /** One per class, in `names` order. */
  heads: { weights: number[]; bias: number }[];
  lambda: number;
}

export interface ClassFitOptions {
  lambda: number;
  rows?: readonly number[];
  maxIterations?: number;
}

/** Fits one head per distinct label (sorted names) on the standardised features `z`. */
export function fitClassHead(
  z: FeatureMatrix,
  labels: readonly string[],
  options: ClassFitOptions,
): ClassHeadModel {
  if (labels.length !== z.rows)
    throw new InvalidProbeInputError(`${labels.length} class labels for ${z.rows} rows`);
  const rows = options.rows ?? Array.from({ length: z.rows }, (_, i) => i);
  const names = [...new Set(rows.map((i) => labels[i]!))].sort();
  if (names.length < 2)
    throw new InvalidProbeInputError(
      `a class head needs at least 2 classes, got ${names.join(', ') || 'none'}`,
    );
  const heads = names.map((name) => {
    const { model } = fitLogistic(
      z,
      labels.map((l) => l === name),
      {
        lambda: options.lambda,
        rows,
        ...(options.maxIterations === undefined ? {} : { maxIterations: options.maxIterations }),
      },
    );
    return { weights: Array.from(model.weights), bias: model.bias };
  });
  return { names, heads, lambda: options.lambda };
}

/** Class probabilities of one standardised vector at `offset` of `z` (normalised one-vs-rest). */
export interface ClassHeadWeights {
  names: readonly string[];
  heads: readonly { weights: ArrayLike<number>; bias: number }[];
}

export function classProbabilities(
  head: Pick<ClassHeadWeights, 'heads'>,
  z: ArrayLike<number>,
  offset = 0,
): number[] {
  const raw = head.heads.map((h) => {
    let s = h.bias;
    for (let j = 0; j < h.weights.length; j += 1) s += h.weights[j]! * z[offset + j]!;
    return sigmoid(s);
  });
  const total = raw.reduce((a, b) => a + b, 0);
  return total > 0 ? raw.map((p) => p / total) : raw.map(() => 1 / raw.length);
}

/** The most probable class and its probability. */
export function topClass(head: ClassHeadWeights, z: ArrayLike<number>, offset = 0) {
  const p = classProbabilities(head, z, offset);
  let best = 0;
  for (let k = 1; k < p.length; k += 1) if (p[k]! > p[best]!) best = k;
  return { name: head.names[best]!, p: p[best]! };
}
