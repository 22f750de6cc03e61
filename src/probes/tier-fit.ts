import { InvalidProbeInputError } from '../errors.js';
import { auroc } from '../metrics/classification.js';
import type { Rng } from '../seeded-rng.js';
import { softAssignments } from './kmeans.js';
import { fitLogistic, logisticLogits, sigmoid } from './logistic-regression.js';
import { createMatrix, type FeatureMatrix } from './matrix.js';
import type { ProbeBundle } from './probe-bundle.js';
import { kFold } from './splits.js';
import type { TierFit } from './tier-head-schema.js';

/**
 * Fitting a new tier's head from its outcomes on a few hundred anchor prompts, leaving the encoder and
 * every other head alone (`mechroute tiers add`). Five methods, simplest first:
 *
 * - `constant`: the anchors' success rate (Jeffreys-smoothed, (s + ½)/(n + 1), so 0 of 25 is not P = 0);
 * - `consensus`: a scale and a bias on the pool's consensus — the mean of the existing heads' logits,
 *   each standardised over the anchors. Most tiers fail on the same hard prompts, so the other heads'
 *   agreement is a one-number difficulty a new tier tends to share; two parameters are estimable from 25
 *   anchors where `low-rank`'s one coefficient per head is not. λ (on the scale) is the setting;
 * - `cluster` (UniRoute, Jitkrittum et al. 2025): the tier's success rate per cluster of the bundle's
 *   features, counted with each anchor's soft assignment and shrunk toward its overall rate,
 *   (Sₖ + m·p̄)/(Nₖ + m); P(success | x) = Σₖ aₖ(x)·rateₖ. m is the setting;
 * - `low-rank`: a logistic head whose weight vector is a combination of the existing linear heads'
 *   (w = Σₜ αₜ wₜ, plus its own bias): fitted as a logistic regression on the existing heads' logits,
 *   L2 penalty λ on α (columns standardised, so λ weighs every head alike);
 * - `logistic`: a plain L2 logistic head over the standardised features, λ the setting.
 *
 * The pick is by stratified k-fold cross-validation on the anchors, by mean out-of-fold log loss — not
 * AUROC: the constant floor has no ranking at all (its AUROC is undefined), so AUROC cannot say when it
 * is the better choice; and the policies threshold P(success), so calibration counts, which log loss (a
 * proper scoring rule) rewards and AUROC ignores. With a few hundred anchors the candidates' losses are
 * noisy, so the one-standard-error rule (Breiman et al. 1984; Hastie et al., ESL §7.10) picks the
 * simplest head whose loss is within one standard error of the best's, paired over anchors. The constant
 * is the exception: it is picked only when its loss is the lowest outright, not for being simplest —
 * it cannot rank, and a ranking is what a policy routes on, while a head within one SE of the best costs
 * at most about one SE of log loss (measured on noise: DEFAULT_STANDARD_ERRORS). The folds are drawn
 * three times and each anchor's losses averaged, so one lucky split does not decide.
 */
export type TierFitMethod = TierFit['method'];

/** A head as the bundle stores it (probe-bundle.ts, TierHeadSchema without id, price and fit). */
export type FittedHead =
  | { kind: 'constant'; p: number }
  | { kind: 'cluster'; rates: number[]; base_rate: number; prior_strength: number }
  | {
      kind: 'linear';
      weights: number[];
      bias: number;
      lambda: number;
      calibration: { kind: 'none' };
    };

export interface TierFitInputs {
  /** Standardised anchor features (the bundle's standardizer applied), one row per anchor. */
  z: FeatureMatrix;
  labels: readonly boolean[];
  /** The bundle's linear heads over the same standardised features (for low-rank transfer). */
  heads: readonly { weights: ArrayLike<number>; bias: number }[];
  /** The bundle's clusters (for the cluster method). */
  clusters?: { centroids: readonly Float64Array[]; temperature: number };
}

export interface Candidate {
  method: TierFitMethod;
  setting?: number;
}

export interface TierFitOptions {
  rng: Rng;
  /** Default 5 (fewer when the minority class is smaller). */
  folds?: number;
  /** Only these methods (default all that the inputs allow). */
  methods?: readonly TierFitMethod[];
  /** The tolerance of the simplicity rule, in standard errors (default 1). */
  standardErrors?: number;
  /** Repeats of the k-fold split (default 3). */
  repeats?: number;
}

export interface TierFitResult {
  head: FittedHead;
  method: TierFitMethod;
  setting?: number;
  cv: Record<string, { log_loss: number; auroc: number | null }>;
  reason: string;
  anchorSuccessRate: number;
}

/** The bundle's clusters as tier fitting reads them. */
export function clustersOf(bundle: ProbeBundle): TierFitInputs['clusters'] {
  const c = bundle.clusters;
  return c
    ? { centroids: c.centroids.map((v) => Float64Array.from(v)), temperature: c.temperature }
    : undefined;
}

/** The bundle's linear heads (what low-rank transfer combines). */
export function linearHeadsOf(bundle: ProbeBundle): TierFitInputs['heads'] {
  return bundle.tiers.flatMap((t) => (t.kind === 'linear' ? [{ weights: t.weights, bias: t.bias }] : []));
}

/** Grids, most regularised first within each method (the simplicity order of the 1-SE rule). */
const CLUSTER_STRENGTHS = [32, 8, 2];
const CONSENSUS_LAMBDAS = [0.1, 0.01];
const LOW_RANK_LAMBDAS = [1, 0.1, 0.01];
const LOGISTIC_LAMBDAS = [30, 3, 0.3];
/**
 * The textbook one SE, over three repeats of the folds. On features of pure noise (30 seeds, 200
 * anchors, every method offered) the constant is picked 6 times in 30 (where its loss is the lowest);
 * the heads picked the other times cost 0.0025 nats of held-out log loss on average, 0.0094 at most
 * (tier-fit.test.ts). Before the constant had to be lowest outright it was also picked whenever it was
 * within one SE of the best, 27 times in 30 on the noise, but then it was kept as well for tiers whose
 * features carry signal: on RouterBench's inner split (training prompts only) that rule ranked no better
 * at any anchor count and worse at most, e.g. mean AUROC 0.561 against 0.622 from 25 random anchors
 * (BENCHMARKS.md).
 */
export const DEFAULT_STANDARD_ERRORS = 1;
export const DEFAULT_REPEATS = 3;
const METHOD_ORDER: readonly TierFitMethod[] = ['constant', 'consensus', 'cluster', 'low-rank', 'logistic'];

export const candidateName = (c: Candidate): string =>
  c.method === 'constant' ? 'constant' : `${c.method} ${c.method === 'cluster' ? 'm' : 'λ'}=${c.setting}`;

const jeffreys = (successes: number, n: number) => (successes + 0.5) / (n + 1);

/** Per-anchor inputs every fold reuses: soft assignments and standardised logits of the existing heads. */
interface Prepared {
  z: FeatureMatrix;
  y: Float64Array;
  assignments?: Float64Array[];
  headLogits?: { u: FeatureMatrix; mean: Float64Array; std: Float64Array };
  /** The row means of `headLogits.u`, standardised over the anchors (one column). */
  consensus?: { c: FeatureMatrix; mean: number; std: number };
}

function prepare(inputs: TierFitInputs): Prepared {
  const { z } = inputs;
  const y = Float64Array.from(inputs.labels, (v) => (v ? 1 : 0));
  const prepared: Prepared = { z, y };
  if (inputs.clusters) {
    const { centroids, temperature } = inputs.clusters;
    prepared.assignments = softAssignments(z, centroids, temperature);
  }
  const t = inputs.heads.length;
  if (t > 0) {
    const raw = inputs.heads.map((h) =>
      logisticLogits({ weights: Float64Array.from(h.weights), bias: h.bias }, z),
    );
    // Standardised over the anchors (label-free, so no leak across folds).
    const centre = Float64Array.from(raw, (l) => mean(l));
    const std = Float64Array.from(raw, (l, c) => {
      const v = l.reduce((s, x) => s + (x - centre[c]!) ** 2, 0) / l.length;
      return Math.max(Math.sqrt(v), 1e-9);
    });
    const data = new Float64Array(z.rows * t);
    for (let i = 0; i < z.rows; i += 1)
      for (let c = 0; c < t; c += 1) data[i * t + c] = (raw[c]![i]! - centre[c]!) / std[c]!;
    prepared.headLogits = { u: createMatrix(data, z.rows, t), mean: centre, std };
    const rowMeans = Float64Array.from({ length: z.rows }, (_, i) => mean(data.subarray(i * t, (i + 1) * t)));
    const m = mean(rowMeans);
    const sd = Math.max(Math.sqrt(rowMeans.reduce((s, v) => s + (v - m) ** 2, 0) / z.rows), 1e-9);
    const c = createMatrix(
      rowMeans.map((v) => (v - m) / sd),
      z.rows,
      1,
    );
    prepared.consensus = { c, mean: m, std: sd };
  }
  return prepared;
}

interface Fitted {
  /** P(success) of the given anchor rows. */
  predict(rows: readonly number[]): Float64Array;
  head(): FittedHead;
}

function fitCandidate(c: Candidate, data: Prepared, inputs: TierFitInputs, rows: readonly number[]): Fitted {
  const successes = rows.reduce((s, i) => s + data.y[i]!, 0);
  const base = jeffreys(successes, rows.length);
  if (c.method === 'constant') {
    return {
      predict: (r) => new Float64Array(r.length).fill(base),
      head: () => ({ kind: 'constant', p: base }),
    };
  }
  if (c.method === 'cluster') {
    const a = data.assignments!;
    const k = a[0]!.length;
    const [count, hits] = [new Float64Array(k), new Float64Array(k)];
    for (const i of rows) {
      for (let j = 0; j < k; j += 1) {
        count[j]! += a[i]![j]!;
        hits[j]! += a[i]![j]! * data.y[i]!;
      }
    }
    const m = c.setting!;
    const rates = Array.from(count, (n, j) => (hits[j]! + m * base) / (n + m));
    return {
      predict: (r) => Float64Array.from(r, (i) => a[i]!.reduce((s, w, j) => s + w * rates[j]!, 0)),
      head: () => ({ kind: 'cluster', rates, base_rate: base, prior_strength: m }),
    };
  }
  const lambda = c.setting!;
  const x =
    c.method === 'low-rank' ? data.headLogits!.u : c.method === 'consensus' ? data.consensus!.c : data.z;
  const { model } = fitLogistic(x, data.y, { lambda, rows });
  return {
    predict: (r) => logisticLogits(model, x, r).map(sigmoid),
    head: (): FittedHead => {
      if (c.method === 'logistic') {
        return {
          kind: 'linear',
          weights: Array.from(model.weights),
          bias: model.bias,
          lambda,
          calibration: { kind: 'none' },
        };
      }
      if (c.method === 'low-rank')
        return {
          ...combinedHead(model.weights, model.bias, data, inputs),
          lambda,
          calibration: { kind: 'none' },
        };
      // a·(mean of the T standardised logits − μ)/σ + b is the combination with every αₜ = a/(σ·T).
      const { mean: mu, std: sigma } = data.consensus!;
      const a = model.weights[0]!;
      const alpha = new Float64Array(inputs.heads.length).fill(a / (sigma * inputs.heads.length));
      return {
        ...combinedHead(alpha, model.bias - (a * mu) / sigma, data, inputs),
        lambda,
        calibration: { kind: 'none' },
      };
    },
  };
}

/**
 * A combination α of the existing heads' standardised logits (plus a bias) as one weight vector over the
 * features: Σₜ αₜ (wₜ·z + bₜ − μₜ)/σₜ + bias.
 */
function combinedHead(
  alpha: ArrayLike<number>,
  bias0: number,
  data: Prepared,
  inputs: TierFitInputs,
): { kind: 'linear'; weights: number[]; bias: number } {
  const { mean: mu, std } = data.headLogits!;
  const weights = new Float64Array(data.z.cols);
  let bias = bias0;
  for (const [t, h] of inputs.heads.entries()) {
    const scale = alpha[t]! / std[t]!;
    for (let j = 0; j < weights.length; j += 1) weights[j]! += scale * h.weights[j]!;
    bias += scale * (h.bias - mu[t]!);
  }
  return { kind: 'linear', weights: Array.from(weights), bias };
}

/** The candidates the inputs allow, in simplicity order. */
export function tierFitCandidates(
  inputs: Pick<TierFitInputs, 'heads' | 'clusters'>,
  methods: readonly TierFitMethod[] = METHOD_ORDER,
): Candidate[] {
  const out: Candidate[] = [];
  for (const method of METHOD_ORDER) {
    if (!methods.includes(method)) continue;
    if (method === 'constant') out.push({ method });
    if (method === 'consensus' && inputs.heads.length > 0)
      out.push(...CONSENSUS_LAMBDAS.map((setting) => ({ method, setting })));
    if (method === 'cluster' && inputs.clusters)
      out.push(...CLUSTER_STRENGTHS.map((setting) => ({ method, setting })));
    if (method === 'low-rank' && inputs.heads.length > 0)
      out.push(...LOW_RANK_LAMBDAS.map((setting) => ({ method, setting })));
    if (method === 'logistic') out.push(...LOGISTIC_LAMBDAS.map((setting) => ({ method, setting })));
  }
  return out;
}

const clip = (p: number) => Math.min(1 - 1e-6, Math.max(1e-6, p));
const rowLoss = (p: number, y: number) => -(y * Math.log(clip(p)) + (1 - y) * Math.log(1 - clip(p)));
function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i += 1) sum += values[i]!;
  return sum / values.length;
}

/** Fits every candidate on the anchors' folds, picks one by the 1-SE rule on log loss, refits it on all. */
export function fitTierHead(inputs: TierFitInputs, options: TierFitOptions): TierFitResult {
  const n = inputs.labels.length;
  if (inputs.z.rows !== n) throw new InvalidProbeInputError(`${inputs.z.rows} anchor rows, ${n} labels`);
  const positives = inputs.labels.filter(Boolean).length;
  const minority = Math.min(positives, n - positives);
  const data = prepare(inputs);
  const all = Array.from({ length: n }, (_, i) => i);
  const k = Math.min(options.folds ?? 5, minority);
  const candidates = tierFitCandidates(inputs, options.methods);
  if (candidates.length === 0) throw new InvalidProbeInputError('no tier-fit method to try');
  if (k < 2) {
    const c = candidates.find((x) => x.method === 'constant') ?? candidates[0]!;
    return {
      head: fitCandidate(c, data, inputs, all).head(),
      method: c.method,
      ...(c.setting === undefined ? {} : { setting: c.setting }),
      cv: {},
      reason: `${positives} of ${n} anchors succeeded: too few of one outcome to cross-validate, so ${candidateName(c)}`,
      anchorSuccessRate: positives / n,
    };
  }
  // Per anchor, its loss and prediction averaged over the repeats (each a fresh split into k folds),
  // so one lucky split does not decide the method.
  const repeats = options.repeats ?? DEFAULT_REPEATS;
  const losses = candidates.map(() => new Float64Array(n));
  const oof = candidates.map(() => new Float64Array(n));
  for (let repeat = 0; repeat < repeats; repeat += 1) {
    for (const fold of kFold(n, k, options.rng, inputs.labels)) {
      for (const [ci, c] of candidates.entries()) {
        const p = fitCandidate(c, data, inputs, fold.train).predict(fold.test);
        for (const [r, i] of fold.test.entries()) {
          oof[ci]![i]! += p[r]! / repeats;
          losses[ci]![i]! += rowLoss(p[r]!, data.y[i]!) / repeats;
        }
      }
    }
  }
  const meanLoss = losses.map(mean);
  let best = 0;
  for (let c = 1; c < candidates.length; c += 1) if (meanLoss[c]! < meanLoss[best]!) best = c;
  // Paired over anchors: how much worse candidate c is than the best, and that difference's SE.
  const gap = (c: number) => {
    const diff = Array.from(losses[c]!, (v, i) => v - losses[best]![i]!);
    const d = mean(diff);
    const sd = Math.sqrt(diff.reduce((s, v) => s + (v - d) ** 2, 0) / Math.max(n - 1, 1));
    return { d, se: sd / Math.sqrt(n) };
  };
  const tolerance = options.standardErrors ?? DEFAULT_STANDARD_ERRORS;
  let chosen = best;
  for (let c = 0; c < best; c += 1) {
    if (candidates[c]!.method === 'constant') continue;
    if (gap(c).d <= tolerance * gap(c).se) {
      chosen = c;
      break;
    }
  }
  const labels = inputs.labels as boolean[];
  const cv = Object.fromEntries(
    candidates.map((c, ci) => {
      const a = c.method === 'constant' ? Number.NaN : auroc(Array.from(oof[ci]!), labels);
      return [candidateName(c), { log_loss: meanLoss[ci]!, auroc: Number.isFinite(a) ? a : null }];
    }),
  );
  const c = candidates[chosen]!;
  const f = (v: number) => v.toFixed(4);
  const lead = `${k}-fold out-of-fold log loss on ${n} anchors`;
  const bestName = candidateName(candidates[best]!);
  const constant = candidates.findIndex((x) => x.method === 'constant');
  const within = `within ${tolerance} standard error${tolerance === 1 ? '' : 's'} (SE ${f(gap(chosen).se)})`;
  const heads = candidates.flatMap((x, ci) => (x.method === 'constant' ? [] : [ci]));
  const bestHead = heads.reduce((b, ci) => (meanLoss[ci]! < meanLoss[b]! ? ci : b), heads[0] ?? best);
  const reason =
    c.method === 'constant'
      ? `constant has the lowest ${lead} (${f(meanLoss[best]!)}` +
        `${bestHead !== best ? `; best head ${candidateName(candidates[bestHead]!)} ${f(meanLoss[bestHead]!)}` : ''}): ` +
        'no head beats the anchors’ success rate, so no reliable signal in the features'
      : chosen === best
        ? `${candidateName(c)} has the lowest ${lead} (${f(meanLoss[best]!)}` +
          `${constant >= 0 ? `; constant ${f(meanLoss[constant]!)}` : ''})`
        : `${candidateName(c)} is the simplest head ${within} of the lowest ${lead} ` +
          `(${f(meanLoss[chosen]!)} vs ${f(meanLoss[best]!)} for ${bestName}` +
          `${constant >= 0 ? `; constant ${f(meanLoss[constant]!)}, which cannot rank, is picked only when lowest` : ''})`;
  return {
    head: fitCandidate(c, data, inputs, all).head(),
    method: c.method,
    ...(c.setting === undefined ? {} : { setting: c.setting }),
    cv,
    reason,
    anchorSuccessRate: positives / n,
  };
}
