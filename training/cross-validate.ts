import { type Fold, groupKFold, kFold } from '../src/probes/splits.js';
import { createRng } from '../src/seeded-rng.js';
import { groupPrior, randomBaseline } from './baselines.js';
import { type FitOptions, fitProbes, type LayerSpec } from './fit-probes.js';
import { type HeadMetrics, headMetrics, type TierMetricsOut, tierMetrics } from './split-metrics.js';
import type { TrainingData } from './training-data.js';

/**
 * Outer k-fold cross-validation of the whole fitting procedure: each outer fold's training rows go
 * through `fitProbes` (layer choice, λ, calibration, MLP — all refit), and only its test rows are
 * predicted. The pooled out-of-fold predictions are scored, next to the baselines fitted on the same
 * training rows. `random` folds are stratified by the reference tier's outcome (`data.reference`, default
 * the cheapest); `group` folds hold whole
 * groups (MMLU subjects) out, and then the inner splits hold out groups too.
 */
export type SplitKind = 'random' | 'group';

export type CvData = Pick<TrainingData, 'features' | 'labels' | 'costs' | 'tiers' | 'groups' | 'groupBy'> &
  Partial<Pick<TrainingData, 'reference'>>;

export interface CvOptions extends Omit<FitOptions, 'rng' | 'groups' | 'onLayer' | 'candidates'> {
  /** Outer folds (default 5). */
  folds?: number;
  seed: number;
  onFold?: (fold: number, folds: number, seconds: number) => void;
}

export interface FoldChoice {
  layers: number[];
  pooling: string;
  mode: string;
  lambdas: number[];
  mlp_best_epoch?: number;
}

export interface CvResult {
  kind: SplitKind;
  description: string;
  folds: number;
  n: number;
  linear: HeadMetrics;
  mlp?: HeadMetrics;
  /** By name: `<group field>-prior` (e.g. `subject-prior`) and `random`. */
  baselines: Record<string, HeadMetrics>;
  /** Of the difficulty score (P̂(reference fails)) for the event "the reference tier fails". */
  difficulty: TierMetricsOut;
  /** What each outer fold's procedure chose, to show how stable the choice is. */
  choices: FoldChoice[];
  seconds: number;
}

export function outerFolds(data: CvData, kind: SplitKind, k: number, seed: number): Fold[] {
  const rng = createRng(seed);
  const n = data.labels[0]!.length;
  if (kind === 'group') return groupKFold(data.groups!, k, rng);
  return kFold(
    n,
    k,
    rng,
    data.labels[data.reference ?? 0]!.map((l) => l === true),
  );
}

/** Why a group split cannot be made, or undefined when it can. */
export function groupSplitProblem(data: CvData, k: number): string | undefined {
  if (!data.groups) return 'the traces have no subject or dataset to group by';
  const distinct = new Set(data.groups).size;
  return distinct < k ? `${distinct} ${data.groupBy} group(s) are too few for ${k} folds` : undefined;
}

export function crossValidate(
  data: CvData,
  kind: SplitKind,
  candidates: readonly LayerSpec[],
  options: CvOptions,
): CvResult {
  const started = performance.now();
  const k = options.folds ?? 5;
  const n = data.labels[0]!.length;
  const folds = outerFolds(data, kind, k, options.seed);
  const tiers = data.tiers.length;
  const ref = data.reference ?? 0;
  const oof = {
    linear: data.tiers.map(() => new Float64Array(n)),
    mlp: data.tiers.map(() => new Float64Array(n)),
    prior: data.tiers.map(() => new Float64Array(n)),
    random: data.tiers.map(() => new Float64Array(n)),
  };
  let hasMlp = options.mlp !== false;
  const choices: FoldChoice[] = [];
  const baselineRng = createRng(options.seed + 7919);
  for (const [f, fold] of folds.entries()) {
    const foldStarted = performance.now();
    const fitted = fitProbes(data, fold.train, {
      ...options,
      candidates,
      rng: createRng(options.seed * 1009 + f + (kind === 'group' ? 101 : 0)),
      ...(kind === 'group' && data.groups ? { groups: data.groups } : {}),
    });
    const predicted = fitted.predict(fold.test);
    for (let t = 0; t < tiers; t += 1) {
      const prior = groupPrior(data.labels[t]!, data.groups, fold.train, fold.test);
      const random = randomBaseline(data.labels[t]!, fold.train, fold.test, baselineRng);
      for (const [r, i] of fold.test.entries()) {
        oof.linear[t]![i] = predicted.linear[t]![r]!;
        if (predicted.mlp) oof.mlp[t]![i] = predicted.mlp[t]![r]!;
        oof.prior[t]![i] = prior[r]!;
        oof.random[t]![i] = random[r]!;
      }
    }
    hasMlp &&= predicted.mlp !== undefined;
    choices.push({
      layers: fitted.layers,
      pooling: fitted.pooling,
      mode: fitted.selection.mode,
      lambdas: fitted.linear.map((l) => l.model.lambda),
      ...(fitted.mlp ? { mlp_best_epoch: fitted.mlp.bestEpoch } : {}),
    });
    options.onFold?.(f + 1, k, (performance.now() - foldStarted) / 1000);
  }
  // Metrics per outer fold, then averaged: pooling the folds' predictions would rank rows of different
  // folds against each other, and a model's per-fold offset (its training base rate, which runs opposite
  // to the held-out fold's) would then count as signal — a constant group prior scores 0.42 pooled, not
  // the 0.5 it is worth on each fold.
  const perFold = (probs: Float64Array[]) =>
    folds.map((fold) =>
      headMetrics(
        data.tiers,
        probs.map((p) => Float64Array.from(fold.test, (i) => p[i]!)),
        data.labels,
        data.costs,
        fold.test,
        ref,
      ),
    );
  const difficultyTarget = data.labels[ref]!.map((l) => (l === null ? null : !l));
  const priorName = `${data.groupBy ?? 'group'}-prior`;
  return {
    kind,
    description:
      kind === 'group'
        ? `${k}-fold over whole ${data.groupBy} groups (no ${data.groupBy} in both parts), procedure refit per fold`
        : `${k}-fold over random rows (stratified by the ${ref === 0 ? 'cheapest' : 'reference'} tier's outcome), procedure refit per fold`,
    folds: k,
    n,
    linear: averageHeads(perFold(oof.linear)),
    ...(hasMlp ? { mlp: averageHeads(perFold(oof.mlp)) } : {}),
    baselines: {
      [priorName]: averageHeads(perFold(oof.prior)),
      random: averageHeads(perFold(oof.random)),
    },
    difficulty: averageRecords(
      folds.map((fold) =>
        tierMetrics(
          Float64Array.from(fold.test, (i) => 1 - oof.linear[ref]![i]!),
          difficultyTarget,
          fold.test,
        ),
      ),
    ),
    choices,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * Field-wise mean over folds of numeric fields (NaN folds skipped), `n` summed; strings are taken from the
 * first fold. Adds `auroc_std` (over folds) where there is an `auroc`.
 */
function averageRecords<T extends object>(items: readonly T[]): T {
  const first = items[0] as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(first)) {
    if (typeof value !== 'number') {
      out[key] = value;
      continue;
    }
    const values = items.map((m) => (m as Record<string, number>)[key]!);
    if (key === 'n') {
      out[key] = values.reduce((s, v) => s + v, 0);
      continue;
    }
    const finite = values.filter(Number.isFinite);
    const mean = finite.length === 0 ? Number.NaN : finite.reduce((s, v) => s + v, 0) / finite.length;
    out[key] = mean;
    if (key === 'auroc') {
      const variance = finite.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(finite.length - 1, 1);
      out.auroc_std = Math.sqrt(variance);
    }
  }
  return out as T;
}

function averageHeads(folds: readonly HeadMetrics[]): HeadMetrics {
  const first = folds[0]!;
  const tiers = Object.fromEntries(
    Object.keys(first.tiers).map((t) => [t, averageRecords(folds.map((f) => f.tiers[t]!))]),
  );
  const routings = folds.flatMap((f) => (f.routing ? [f.routing] : []));
  return { tiers, ...(routings.length > 0 ? { routing: averageRecords(routings) } : {}) };
}
