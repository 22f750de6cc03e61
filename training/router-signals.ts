import { type BaselineModel, type LinearHead, predictLinearHead } from '../src/baselines/baseline-model.js';
import { clippedLogit } from '../src/baselines/hybrid-predict.js';
import { applyCalibration } from '../src/probes/calibration.js';
import { type ClassHeadModel, classProbabilities, fitClassHead } from '../src/probes/class-head.js';
import { createMatrix, type FeatureMatrix } from '../src/probes/matrix.js';
import { mlpLogitsOne } from '../src/probes/mlp.js';
import { applyStandardizer, fitStandardizer, standardizeVector } from '../src/probes/standardizer.js';
import type { Rng } from '../src/seeded-rng.js';
import { type FittedHead, fitLinearHead, matrixFeatureSource } from './fit-baselines.js';
import { fitProbes, innerFolds } from './fit-probes.js';

/**
 * Router signals as `bench routing` fits them: a featurizer (what turns a prompt into a vector at request
 * time) and a head over it, fitted on some training rows of the bench's matrix and able to predict both
 * rows of that matrix and one live vector. Signals compose: a stacked signal (`stackSignals`) learns a
 * per-tier logistic head over its bases' out-of-fold log-odds, so the encoder and text features can be
 * combined without one scale swamping the other.
 */
export interface Featurizer {
  /** Distinct featurizers of a stack are computed once per prompt, keyed by this. */
  key: string;
  vector(text: string): Promise<{ vector: ArrayLike<number>; tokens?: number }>;
  /** How a saved text-classifier model names this featurizer, where it can be one. */
  saved?: BaselineModel['featurizer'];
}

/** A featurizer for features that exist only offline (the stacker's inputs, a store's matrix). */
export function offlineFeaturizer(key: string): Featurizer {
  return {
    key,
    vector: async () => {
      throw new Error(`${key}: features computed offline only`);
    },
  };
}

export interface FittedSignal {
  /** Calibrated P(success) per tier (cheapest first) for rows of the bench's matrix. */
  predict(rows: readonly number[]): Float64Array[];
  /** The same from live feature vectors (by featurizer key), in tier order. */
  predictOne(vectors: ReadonlyMap<string, ArrayLike<number>>): number[];
  featurizers: readonly Featurizer[];
  /** The head, when the signal is one linear or kNN head (saveable as a text-classifier model). */
  baselineHead?: BaselineModel['head'];
}

export interface SignalData {
  tiers: readonly string[];
  /** Per tier, per row of the bench's matrix (train rows then test rows). */
  labels: readonly (readonly (boolean | null)[])[];
  reference: number;
  /** Whole groups held out in inner splits (the training rows' groups), when grouping. */
  groups?: readonly string[];
}

function vectorOf(vectors: ReadonlyMap<string, ArrayLike<number>>, key: string): ArrayLike<number> {
  const v = vectors.get(key);
  if (!v) throw new Error(`no features of ${key}`);
  return v;
}

/** Per-tier L2 logistic + Platt over a feature matrix (fit-probes.ts' procedure, no layer selection). */
export function fitLinearSignal(
  featurizer: Featurizer,
  x: FeatureMatrix,
  data: SignalData,
  trainRows: readonly number[],
  rng: Rng,
): FittedSignal {
  const fitted: FittedHead = fitLinearHead(x, data.labels, data.tiers, trainRows, {
    rng,
    reference: data.reference,
    ...(data.groups ? { groups: data.groups } : {}),
  });
  const head = fitted.head as LinearHead;
  return {
    predict: fitted.predict,
    predictOne: (vectors) => {
      const p = predictLinearHead(head, vectorOf(vectors, featurizer.key));
      return data.tiers.map((t) => p[t]!);
    },
    featurizers: [featurizer],
    baselineHead: head,
  };
}

/** One trunk shared by every tier and a head per tier (src/probes/mlp.ts), each head Platt-calibrated. */
export function fitTrunkSignal(
  featurizer: Featurizer,
  x: FeatureMatrix,
  data: SignalData,
  trainRows: readonly number[],
  rng: Rng,
): FittedSignal {
  const fitted = fitProbes(
    { features: matrixFeatureSource(x), labels: data.labels, reference: data.reference },
    trainRows,
    {
      rng,
      candidates: [],
      layers: [0],
      pooling: 'last',
      ...(data.groups ? { groups: data.groups } : {}),
    },
  );
  const mlp = fitted.mlp!;
  return {
    predict: (rows) => fitted.predict(rows).mlp!,
    predictOne: (vectors) => {
      const z = standardizeVector(fitted.standardizer, vectorOf(vectors, featurizer.key));
      const logits = mlpLogitsOne(mlp.model, z);
      return data.tiers.map((_, t) => applyCalibration(mlp.calibration[t]!, logits[t]!));
    },
    featurizers: [featurizer],
  };
}

/**
 * A per-task prior router: a task-class head (one-vs-rest logistic, src/probes/class-head.ts) predicts
 * the prompt's class from the features, and P(success | tier) is the class-probability-weighted mean of
 * each class's success rate on the training rows — what a router that only knows the kind of request
 * can say. The class comes from a trace field (dataset or subject), which the server never sees; the
 * head that predicts it from the prompt is what it has at request time.
 */
export function fitClassPriorSignal(
  featurizer: Featurizer,
  x: FeatureMatrix,
  classes: readonly string[],
  data: SignalData,
  trainRows: readonly number[],
): FittedSignal {
  const stats = fitStandardizer(x, { rows: trainRows });
  const z = applyStandardizer(stats, x);
  const names = [...new Set(trainRows.map((i) => classes[i]!))];
  // One class in the training rows: nothing to tell apart, the prior is the overall rate.
  const head: Pick<ClassHeadModel, 'names' | 'heads'> =
    names.length >= 2
      ? fitClassHead(z, classes, { lambda: 1, rows: trainRows, maxIterations: 200 })
      : { names, heads: [{ weights: new Array<number>(x.cols).fill(0), bias: 0 }] };
  // Success rate per class and tier, shrunk towards the tier's overall rate by one pseudo-row.
  const rates = data.labels.map((labels) => {
    const known = trainRows.filter((i) => labels[i] !== null && labels[i] !== undefined);
    const overall = known.filter((i) => labels[i]).length / Math.max(1, known.length);
    return head.names.map((name) => {
      const rows = known.filter((i) => classes[i] === name);
      return (rows.filter((i) => labels[i]).length + overall) / (rows.length + 1);
    });
  });
  const mix = (p: readonly number[]) => rates.map((r) => r.reduce((s, rate, c) => s + rate * p[c]!, 0));
  return {
    predict(rows) {
      const out = data.labels.map(() => new Float64Array(rows.length));
      for (const [r, i] of rows.entries()) {
        for (const [t, p] of mix(classProbabilities(head, z.data, i * z.cols)).entries()) out[t]![r] = p;
      }
      return out;
    },
    predictOne: (vectors) =>
      mix(classProbabilities(head, standardizeVector(stats, vectorOf(vectors, featurizer.key)))),
    featurizers: [featurizer],
  };
}

export type SignalFitter = (trainRows: readonly number[], rng: Rng) => FittedSignal;

/**
 * Stacking (Wolpert 1992): each base is fitted on k − 1 inner folds of the training rows and predicts the
 * k-th, so every training row gets out-of-fold P(success | tier) from every base; a per-tier logistic head
 * (the probes' procedure, Platt included) is fitted on those log-odds — all bases × all tiers, so one
 * tier's head can read another tier's prediction. For new rows the bases are refitted on every training
 * row. Inner folds hold out whole groups when the data is grouped, as the test split does.
 */
export interface StackedSignal extends FittedSignal {
  /** The bases refitted on every training row, and the stacker over their log-odds. */
  bases: FittedSignal[];
  stacker: FittedSignal;
}

export function stackSignals(
  bases: readonly SignalFitter[],
  data: SignalData,
  trainRows: readonly number[],
  rng: Rng,
  folds = 5,
): StackedSignal {
  const n = data.labels[0]!.length;
  const k = data.tiers.length;
  const width = bases.length * k;
  const x = new Float32Array(n * width);
  const fill = (fitted: FittedSignal, b: number, rows: readonly number[]) => {
    const probs = fitted.predict(rows);
    for (const [r, i] of rows.entries())
      for (let t = 0; t < k; t += 1) x[i * width + b * k + t] = clippedLogit(probs[t]![r]!);
  };
  const stratify = data.labels[data.reference]!.map((l) => l === true);
  for (const fold of innerFolds(trainRows, folds, rng, stratify, data.groups)) {
    for (const [b, fit] of bases.entries()) fill(fit(fold.train, rng), b, fold.test);
  }
  const inTrain = new Set(trainRows);
  const others = Array.from({ length: n }, (_, i) => i).filter((i) => !inTrain.has(i));
  const refit = bases.map((fit) => fit(trainRows, rng));
  for (const [b, fitted] of refit.entries()) if (others.length > 0) fill(fitted, b, others);
  const stackKey = 'stack';
  const stacker = fitLinearSignal(
    offlineFeaturizer(stackKey),
    createMatrix(x, n, width),
    data,
    trainRows,
    rng,
  );
  const featurizers = [...new Map(refit.flatMap((f) => f.featurizers).map((f) => [f.key, f])).values()];
  return {
    predict: stacker.predict,
    predictOne(vectors) {
      const z = refit.flatMap((f) => f.predictOne(vectors).map(clippedLogit));
      return stacker.predictOne(new Map([[stackKey, z]]));
    },
    featurizers,
    bases: refit,
    stacker,
  };
}
