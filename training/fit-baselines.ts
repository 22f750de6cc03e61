import type { BaselineModel, LinearHead } from '../src/baselines/baseline-model.js';
import { encodeVectors } from '../src/baselines/baseline-model.js';
import { knnProbabilities } from '../src/baselines/knn.js';
import { createMatrix, type FeatureMatrix } from '../src/probes/matrix.js';
import { linearTier } from '../src/probes/probe-bundle.js';
import type { Rng } from '../src/seeded-rng.js';
import { type FittedProbes, fitProbes } from './fit-probes.js';
import type { FeatureSource } from './training-data.js';

/**
 * Fitting the text-classifier heads on any feature matrix, by the probes' own procedure (fit-probes.ts):
 * a calibration part held out, standardisation, per-tier L2 logistic regression with λ by inner CV, Platt
 * calibration — so a baseline differs from the probes in its features only, never in how it is fitted.
 */

/** A feature matrix as the one-"layer" feature source fitProbes reads. */
export function matrixFeatureSource(x: FeatureMatrix): FeatureSource {
  return {
    lastLayers: 1,
    meanLayers: 0,
    width: x.cols,
    layer: () => x,
    layers: () => x,
  };
}

export interface LinearBaselineOptions {
  rng: Rng;
  /** Whole groups held out in the inner splits (as for the probes). */
  groups?: readonly string[];
  /** Reference tier index (layer selection is skipped, so only fold stratification uses it). */
  reference?: number;
  lambdas?: readonly number[];
}

export interface FittedHead {
  /** Calibrated P(success) per tier (cheapest first) for the given rows of the matrix. */
  predict(rows: readonly number[]): Float64Array[];
  head: BaselineModel['head'];
}

export interface FittedKnnHead extends FittedHead {
  /** P(success) per tier (cheapest first) of one unit-length vector. */
  predictOne(vector: ArrayLike<number>): number[];
}

export function fitLinearHead(
  x: FeatureMatrix,
  labels: readonly (readonly (boolean | null)[])[],
  tiers: readonly string[],
  trainRows: readonly number[],
  options: LinearBaselineOptions,
): FittedHead {
  const fitted: FittedProbes = fitProbes(
    {
      features: matrixFeatureSource(x),
      labels,
      ...(options.reference === undefined ? {} : { reference: options.reference }),
    },
    trainRows,
    {
      rng: options.rng,
      candidates: [],
      layers: [0],
      pooling: 'last',
      mlp: false,
      ...(options.groups ? { groups: options.groups } : {}),
      ...(options.lambdas ? { lambdas: options.lambdas } : {}),
    },
  );
  return { predict: (rows) => fitted.predict(rows).linear, head: linearHeadOf(fitted, tiers) };
}

/** Fitted linear probes as a saved linear head (the standardizer kept apart from the weights). */
export function linearHeadOf(fitted: FittedProbes, tiers: readonly string[]): LinearHead {
  return {
    kind: 'linear',
    standardizer: { mean: [...fitted.standardizer.mean], std: [...fitted.standardizer.std] },
    tiers: fitted.linear.map(({ model, calibration }, t) => linearTier(tiers[t]!, model, calibration)),
  };
}

/** kNN over the training rows of a matrix of unit-length rows. */
export function fitKnnHead(
  x: FeatureMatrix,
  labels: readonly (readonly (boolean | null)[])[],
  trainRows: readonly number[],
  options: { k?: number; prior?: number } = {},
): FittedKnnHead {
  const vectors = new Float32Array(trainRows.length * x.cols);
  for (const [r, i] of trainRows.entries()) {
    vectors.set(x.data.subarray(i * x.cols, (i + 1) * x.cols), r * x.cols);
  }
  const trainLabels = labels.map((l) => trainRows.map((i) => l[i] ?? null));
  const k = options.k ?? 25;
  const prior = options.prior ?? 1;
  const index = { vectors, dim: x.cols, labels: trainLabels, k, prior };
  return {
    predict(rows) {
      const out = labels.map(() => new Float64Array(rows.length));
      for (const [r, i] of rows.entries()) {
        const probs = knnProbabilities(index, x.data.subarray(i * x.cols, (i + 1) * x.cols));
        for (const [t, p] of probs.entries()) out[t]![r] = p;
      }
      return out;
    },
    predictOne: (vector) => knnProbabilities(index, vector),
    head: { kind: 'knn', k, prior, vectors: encodeVectors(vectors), labels: trainLabels },
  };
}

/** Rows of vectors as one matrix. */
export function stackRows(rows: readonly ArrayLike<number>[], dim: number): FeatureMatrix {
  const data = new Float32Array(rows.length * dim);
  for (const [i, v] of rows.entries()) data.set(v, i * dim);
  return createMatrix(data, rows.length, dim);
}
