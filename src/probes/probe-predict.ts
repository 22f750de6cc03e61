import { InvalidProbeInputError } from '../errors.js';
import { applyCalibration, type Calibration } from './calibration.js';
import { topClass } from './class-head.js';
import { softAssignmentOf, squaredDistances } from './kmeans.js';
import type { FeatureMatrix, FloatArray } from './matrix.js';
import { type MlpModel, mlpLogitsOne } from './mlp.js';
import { bundleFeatureDim, mlpModelOf, type ProbeBundle } from './probe-bundle.js';
import { standardizeVector } from './standardizer.js';

/**
 * Serving-side prediction from a loaded probe bundle: a pure function of the bundle and one feature
 * vector (the concatenated pooled activations, in `features.layers` order).
 */
export interface ProbePrediction {
  /** Calibrated P(success) per tier id. */
  tiers: Record<string, number>;
  /** In [0, 1], higher = harder; its meaning is the bundle's `difficulty.kind` (see probe-bundle.ts). */
  difficulty: number;
  /** The most probable task class and its probability, when the bundle has a class head. */
  task_class?: { name: string; p: number };
}

interface CompiledLinear {
  weights: Float64Array;
  bias: number;
  calibration: Calibration;
}

/** A tier's head ready to score: a folded linear probe, per-cluster rates, or one number. */
type CompiledHead =
  | ({ kind: 'linear' } & CompiledLinear)
  | { kind: 'cluster'; rates: Float64Array }
  | { kind: 'constant'; p: number };

interface CompiledBundle {
  dim: number;
  heads: Map<string, CompiledHead>;
  /** The bundle's clusters, when a cluster head reads them. */
  clusters?: { centroids: Float64Array[]; temperature: number };
  mlp?: { model: MlpModel; tiers: string[]; calibration: Calibration[] };
  preferMlp: boolean;
  difficultyProbe?: CompiledLinear;
  /** The class head with the standardizer folded in, like the linear probes. */
  classes?: { names: string[]; heads: { weights: Float64Array; bias: number }[] };
}

/**
 * The standardizer folded into each linear probe, w·((x − μ)/σ) + b = (w/σ)·x + (b − Σ wⱼμⱼ/σⱼ), so
 * scoring a request is one dot product per tier with no standardised copy of the vector. Cached per
 * bundle object, which is why bundles are treated as immutable once loaded.
 */
const compiledBundles = new WeakMap<ProbeBundle, CompiledBundle>();

function compileLinear(
  bundle: ProbeBundle,
  probe: { weights: number[]; bias: number; calibration: Calibration },
): CompiledLinear {
  const { mean, std } = bundle.standardizer;
  const weights = new Float64Array(probe.weights.length);
  let bias = probe.bias;
  for (let j = 0; j < weights.length; j += 1) {
    weights[j] = probe.weights[j]! / std[j]!;
    bias -= weights[j]! * mean[j]!;
  }
  return { weights, bias, calibration: probe.calibration };
}

function compileHead(bundle: ProbeBundle, tier: ProbeBundle['tiers'][number]): CompiledHead {
  if (tier.kind === 'linear') return { kind: 'linear', ...compileLinear(bundle, tier) };
  if (tier.kind === 'cluster') return { kind: 'cluster', rates: Float64Array.from(tier.rates) };
  return { kind: 'constant', p: tier.p };
}

function compile(bundle: ProbeBundle): CompiledBundle {
  let compiled = compiledBundles.get(bundle);
  if (compiled) return compiled;
  const dim = bundleFeatureDim(bundle);
  const { clusters } = bundle;
  compiled = {
    dim,
    heads: new Map(bundle.tiers.map((t) => [t.id, compileHead(bundle, t)])),
    ...(clusters && bundle.tiers.some((t) => t.kind === 'cluster')
      ? {
          clusters: {
            centroids: clusters.centroids.map((c) => Float64Array.from(c)),
            temperature: clusters.temperature,
          },
        }
      : {}),
    preferMlp: bundle.prefer === 'mlp',
    ...(bundle.mlp
      ? {
          mlp: {
            model: mlpModelOf(bundle.mlp, dim),
            tiers: bundle.mlp.tiers,
            calibration: bundle.mlp.calibration,
          },
        }
      : {}),
    ...(bundle.difficulty.kind === 'linear'
      ? { difficultyProbe: compileLinear(bundle, bundle.difficulty) }
      : {}),
    ...(bundle.classes
      ? {
          classes: {
            names: bundle.classes.names,
            heads: bundle.classes.heads.map((h) => {
              const { weights, bias } = compileLinear(bundle, { ...h, calibration: { kind: 'none' } });
              return { weights, bias };
            }),
          },
        }
      : {}),
  };
  compiledBundles.set(bundle, compiled);
  return compiled;
}

function scoreLinear(probe: CompiledLinear, x: FloatArray, offset: number): number {
  let z = probe.bias;
  const w = probe.weights;
  for (let j = 0; j < w.length; j += 1) z += w[j]! * x[offset + j]!;
  return applyCalibration(probe.calibration, z);
}

/** The row's soft assignment to the bundle's clusters (its standardised vector against the centroids). */
function assignmentAt(bundle: ProbeBundle, compiled: CompiledBundle, x: FloatArray, offset: number) {
  const { centroids, temperature } = compiled.clusters!;
  const z = standardizeVector(bundle.standardizer, x.subarray(offset, offset + compiled.dim));
  return softAssignmentOf(squaredDistances(centroids, z), temperature);
}

function predictAt(
  bundle: ProbeBundle,
  compiled: CompiledBundle,
  x: FloatArray,
  offset: number,
): ProbePrediction {
  const tiers: Record<string, number> = {};
  const assignment = compiled.clusters ? assignmentAt(bundle, compiled, x, offset) : undefined;
  for (const [id, head] of compiled.heads) {
    if (head.kind === 'linear') tiers[id] = scoreLinear(head, x, offset);
    else if (head.kind === 'constant') tiers[id] = head.p;
    else {
      let p = 0;
      for (let k = 0; k < head.rates.length; k += 1) p += assignment![k]! * head.rates[k]!;
      tiers[id] = p;
    }
  }
  const { mlp } = compiled;
  if (mlp && (compiled.preferMlp || mlp.tiers.some((id) => !(id in tiers)))) {
    // Only the MLP needs the standardised copy (its first layer could absorb the standardizer like the
    // linear probes do, but then the stored weights would no longer be the trained ones).
    const row = x.subarray(offset, offset + compiled.dim);
    const logits = mlpLogitsOne(mlp.model, standardizeVector(bundle.standardizer, row));
    for (const [k, id] of mlp.tiers.entries()) {
      if (compiled.preferMlp || !(id in tiers)) tiers[id] = applyCalibration(mlp.calibration[k]!, logits[k]!);
    }
  }
  const { difficulty } = bundle;
  let value: number;
  if (difficulty.kind === 'tier-failure') value = 1 - tiers[difficulty.tier]!;
  else if (difficulty.kind === 'expected-failures') {
    const ps = Object.values(tiers);
    value = ps.reduce((sum, p) => sum + (1 - p), 0) / ps.length;
  } else value = scoreLinear(compiled.difficultyProbe!, x, offset);
  if (!compiled.classes) return { tiers, difficulty: value };
  return { tiers, difficulty: value, task_class: topClass(compiled.classes, x, offset) };
}

/** Calibrated P(success) per tier and the difficulty of one prompt's feature vector. */
export function predictProbes(bundle: ProbeBundle, featureVector: ArrayLike<number>): ProbePrediction {
  const compiled = compile(bundle);
  if (featureVector.length !== compiled.dim) {
    throw new InvalidProbeInputError(
      `the probe bundle expects ${compiled.dim} features (${bundle.features.layers.length} layers × ` +
        `${bundle.encoder.embedding_width}, ${bundle.features.pooling} pooling), got ${featureVector.length}`,
    );
  }
  const vector =
    featureVector instanceof Float32Array || featureVector instanceof Float64Array
      ? featureVector
      : Float64Array.from(featureVector);
  return predictAt(bundle, compiled, vector, 0);
}

/** `predictProbes` for every row of a matrix (raw, unstandardised features). */
export function predictProbesBatch(bundle: ProbeBundle, features: FeatureMatrix): ProbePrediction[] {
  const compiled = compile(bundle);
  if (features.cols !== compiled.dim) {
    throw new InvalidProbeInputError(
      `the probe bundle expects ${compiled.dim} features, got ${features.cols}`,
    );
  }
  return Array.from({ length: features.rows }, (_, i) =>
    predictAt(bundle, compiled, features.data, i * features.cols),
  );
}

/** Concatenates the pooled activations in the bundle's layer order: the probes' feature vector. */
export function featureVector(layers: readonly Float32Array[]): Float32Array {
  const width = layers[0]?.length ?? 0;
  const out = new Float32Array(width * layers.length);
  for (const [i, v] of layers.entries()) out.set(v, i * width);
  return out;
}
