import { applyCalibrationAll, type Calibration, fitCalibration } from '../src/probes/calibration.js';
import {
  type LayerScore,
  type Pooling,
  rankLayers,
  scoreLayers,
  shallowestWithinOneSe,
} from '../src/probes/layer-selection.js';
import {
  fitLogistic,
  fitLogisticCV,
  type LogisticModel,
  logisticLogits,
  selectLambda,
} from '../src/probes/logistic-regression.js';
import { type FeatureMatrix, selectRows } from '../src/probes/matrix.js';
import { type MlpModel, mlpLogits, trainMlp } from '../src/probes/mlp.js';
import { type Fold, groupKFold, kFold, mapFolds } from '../src/probes/splits.js';
import { applyStandardizer, fitStandardizer, type StandardizerStats } from '../src/probes/standardizer.js';
import type { Rng } from '../src/seeded-rng.js';
import type { FeatureSource } from './training-data.js';

/**
 * The fitting procedure, run on one set of training rows — an outer fold's, or every row for the shipped
 * bundle — and seeing nothing else: layer choice, λ, calibration and the MLP's early stopping all use
 * parts of those rows only. With `groups`, every inner split (layer-scoring folds, λ folds, the
 * calibration part) holds out whole groups, so the choices are made for unseen subjects.
 *
 * Order: split off a calibration part → score layers on (a subsample of) the rest, for the reference
 * tier's label (the cheapest by default) → maybe concatenate the top two → standardise → per tier, an L2 logistic probe with λ by
 * inner CV → Platt (or isotonic) on the calibration part → the shared-trunk MLP, calibrated the same way.
 */
export interface LayerSpec {
  layer: number;
  pooling: Pooling;
}

export interface FitOptions {
  rng: Rng;
  /** Candidates for automatic selection (ignored with `layers`). */
  candidates: readonly LayerSpec[];
  /** Fixed feature layers (with `pooling`), skipping selection. */
  layers?: readonly number[];
  pooling?: Pooling;
  /** Offer the concatenation of the two best layers of the best pooling (default true; not with `shallowest`). */
  concatTop2?: boolean;
  /**
   * Which scored layer the probes read: the best inner-CV AUROC (`best`, default), or the shallowest within
   * one standard error of it (`shallowest`: a cheaper encoder pass per decision for about the same AUROC).
   */
  layerRule?: 'best' | 'shallowest';
  /** Rows subsampled for layer scoring (default 1000). */
  layerRows?: number;
  /** Rows for Fisher J's scatter and the participation ratio (default 500). */
  statsRows?: number;
  /**
   * λ grid of layer scoring (default [1]). On MMLU activations λ = 1e-2 overfits badly (CV AUROC ~0.05
   * below λ = 1 at every layer), and a layer ranking under an overfit probe ranks noise.
   */
  layerLambdas?: readonly number[];
  /** λ grid of the per-tier probes (default [10, 1, 0.1]: λ = 1 wins most folds on MMLU). */
  lambdas?: readonly number[];
  /** Inner folds for layer scoring and λ (default 3). */
  innerFolds?: number;
  calibration?: 'platt' | 'isotonic';
  /** Share of the training rows (or groups) held out for calibration (default 0.2). */
  calibrationShare?: number;
  mlp?: false | { hidden?: number; maxEpochs?: number; patience?: number; learningRate?: number };
  groups?: readonly string[];
  /** Called after each layer candidate is scored. */
  onLayer?: (done: number, total: number) => void;
}

export interface FittedProbes {
  layers: number[];
  pooling: Pooling;
  /** The layer table of this fit, best first (empty when the layers were fixed). */
  layerTable: LayerScore[];
  selection: {
    mode: 'fixed' | 'single' | 'concat' | 'shallowest';
    single?: { layers: number[]; cvAuroc: number };
    concat?: { layers: number[]; cvAuroc: number };
  };
  standardizer: StandardizerStats;
  linear: { model: LogisticModel; calibration: Calibration }[];
  mlp?: { model: MlpModel; calibration: Calibration[]; bestEpoch: number };
  fitRows: number[];
  calibrationRows: number[];
  /** Calibrated P(success) per tier for the given rows: linear probes and (if fitted) the MLP. */
  predict(rows: readonly number[]): { linear: Float64Array[]; mlp?: Float64Array[] };
}

export interface ProbeData {
  features: FeatureSource;
  /** Per tier (cheapest first), per row. */
  labels: readonly (readonly (boolean | null)[])[];
  /** Index of the tier whose label layer selection scores (default 0, the cheapest). */
  reference?: number;
}

const labelled = (labels: readonly (boolean | null)[], rows: readonly number[]) =>
  rows.filter((i) => labels[i] !== null && labels[i] !== undefined);

const filled = (labels: readonly (boolean | null)[]) => labels.map((l) => l === true);

/** Holds out `share` of the rows (or of the groups), seeded; both parts non-empty when possible. */
export function holdOut(
  rows: readonly number[],
  share: number,
  rng: Rng,
  groups?: readonly string[],
): { kept: number[]; held: number[] } {
  const units = new Map<string, number[]>();
  for (const i of rows) {
    const key = groups ? groups[i]! : String(i);
    const list = units.get(key);
    if (list) list.push(i);
    else units.set(key, [i]);
  }
  const shuffled = rng.shuffle([...units.values()]);
  const nHeld = Math.min(shuffled.length - 1, Math.max(1, Math.round(share * shuffled.length)));
  const sort = (parts: number[][]) => parts.flat().sort((a, b) => a - b);
  return { held: sort(shuffled.slice(0, nHeld)), kept: sort(shuffled.slice(nHeld)) };
}

/** Inner folds over `rows` (indices of the full data): by group when there are enough groups. */
export function innerFolds(
  rows: readonly number[],
  k: number,
  rng: Rng,
  stratify: readonly boolean[],
  groups?: readonly string[],
): Fold[] {
  const sub = rows.map((i) => groups?.[i] ?? '');
  const folds =
    groups && new Set(sub).size >= k
      ? groupKFold(sub, k, rng)
      : kFold(
          rows.length,
          Math.min(k, rows.length),
          rng,
          rows.map((i) => stratify[i]!),
        );
  return mapFolds(folds, rows);
}

/** The rows as a new matrix of their own (row r = rows[r]) plus folds re-indexed onto it. */
function compact(folds: readonly Fold[], rows: readonly number[]): Fold[] {
  const position = new Map(rows.map((i, r) => [i, r]));
  return folds.map((f) => ({
    train: f.train.map((i) => position.get(i)!),
    test: f.test.map((i) => position.get(i)!),
  }));
}

interface Selection {
  layers: number[];
  pooling: Pooling;
  table: LayerScore[];
  mode: FittedProbes['selection'];
}

function selectLayers(data: ProbeData, rows: readonly number[], options: FitOptions): Selection {
  const { rng } = options;
  if (options.layers) {
    return {
      layers: [...options.layers],
      pooling: options.pooling ?? 'last',
      table: [],
      mode: { mode: 'fixed' },
    };
  }
  const target = data.labels[data.reference ?? 0]!;
  let scoring = labelled(target, rows);
  const maxRows = options.layerRows ?? 1000;
  if (scoring.length > maxRows)
    scoring = rng
      .shuffle([...scoring])
      .slice(0, maxRows)
      .sort((a, b) => a - b);
  const y = scoring.map((i) => target[i] === true);
  const folds = compact(
    innerFolds(scoring, options.innerFolds ?? 3, rng, filled(target), options.groups),
    scoring,
  );
  const lambdas = options.layerLambdas ?? [1];
  const candidates = options.candidates.filter((c) => !options.pooling || c.pooling === options.pooling);
  const table: LayerScore[] = [];
  for (const [k, c] of candidates.entries()) {
    const features = selectRows(data.features.layer(c.layer, c.pooling), scoring);
    const { table: one } = scoreLayers([{ ...c, features }], y, {
      folds,
      rng,
      lambdas,
      maxRows: options.statsRows ?? 500,
    });
    table.push(one[0]!);
    options.onLayer?.(k + 1, candidates.length);
  }
  const ranked = rankLayers(table);
  if (options.layerRule === 'shallowest') {
    const pick = shallowestWithinOneSe(ranked, folds.length);
    const single = { layers: [pick.layer], cvAuroc: pick.cvAuroc };
    return {
      layers: single.layers,
      pooling: pick.pooling,
      table: ranked,
      mode: { mode: 'shallowest', single },
    };
  }
  const best = ranked[0]!;
  const single = { layers: [best.layer], cvAuroc: best.cvAuroc };
  const second = ranked.find((s) => s.pooling === best.pooling && s.layer !== best.layer);
  if (options.concatTop2 === false || !second) {
    return { layers: single.layers, pooling: best.pooling, table: ranked, mode: { mode: 'single', single } };
  }
  // Ascending layer order: the bundle's feature order, and the same whichever of the two ranked first.
  const pair = [best.layer, second.layer].sort((a, b) => a - b);
  const x = selectRows(data.features.layers(pair, best.pooling), scoring);
  const search = selectLambda(applyStandardizer(fitStandardizer(x), x), y, { folds, lambdas });
  const concat = { layers: pair, cvAuroc: search.table.find((s) => s.lambda === search.lambda)!.auroc };
  // Strictly better, or the simpler single layer stays.
  const useConcat = concat.cvAuroc > single.cvAuroc;
  return {
    layers: useConcat ? pair : single.layers,
    pooling: best.pooling,
    table: ranked,
    mode: { mode: useConcat ? 'concat' : 'single', single, concat },
  };
}

export function fitProbes(data: ProbeData, trainRows: readonly number[], options: FitOptions): FittedProbes {
  const { rng, groups } = options;
  const { kept: fitRows, held: calibrationRows } = holdOut(
    trainRows,
    options.calibrationShare ?? 0.2,
    rng,
    groups,
  );
  const selection = selectLayers(data, fitRows, options);
  const raw: FeatureMatrix = data.features.layers(selection.layers, selection.pooling);
  // The standardizer sees every training row (no labels); the test rows are only transformed by it.
  const standardizer = fitStandardizer(raw, { rows: trainRows });
  const x = applyStandardizer(standardizer, raw);
  const kind = options.calibration ?? 'platt';

  const linear = data.labels.map((labels) => {
    const rows = labelled(labels, fitRows);
    const lambdas = options.lambdas ?? [10, 1, 0.1];
    const k = options.innerFolds ?? 3;
    if (rows.length === 0) {
      // A tier with outcomes on only some traces, none of them in the fit part (e.g. its only group went to
      // calibration): a constant at its smoothed success rate over the training rows it has outcomes on —
      // never a probe fit on rows without its outcomes as if they were failures.
      const known = labelled(labels, trainRows);
      const rate = (known.filter((i) => labels[i]).length + 0.5) / (known.length + 1);
      return {
        model: { weights: new Float64Array(x.cols), bias: Math.log(rate / (1 - rate)), lambda: 0 },
        calibration: { kind: 'none' } as Calibration,
      };
    }
    const positives = rows.filter((i) => labels[i]).length;
    // Too few rows (or one class) for inner CV — a tier with outcomes on few traces: the grid's middle λ.
    const model =
      Math.min(positives, rows.length - positives) >= k
        ? fitLogisticCV(x, filled(labels), {
            folds: innerFolds(rows, k, rng, filled(labels), groups),
            lambdas,
          }).model
        : fitLogistic(x, filled(labels), {
            lambda: [...lambdas].sort((a, b) => a - b)[Math.floor(lambdas.length / 2)]!,
            rows,
          }).model;
    const held = labelled(labels, calibrationRows);
    const calibration =
      held.length > 0
        ? fitCalibration(
            kind,
            logisticLogits(model, x, held),
            held.map((i) => labels[i] === true),
          )
        : ({ kind: 'none' } as const);
    return { model, calibration };
  });

  let mlp: FittedProbes['mlp'];
  if (options.mlp !== false) {
    const settings = options.mlp ?? {};
    const trained = trainMlp(x, data.labels, {
      rng,
      rows: fitRows,
      hidden: settings.hidden ?? 32,
      maxEpochs: settings.maxEpochs ?? 40,
      patience: settings.patience ?? 4,
      ...(settings.learningRate === undefined ? {} : { learningRate: settings.learningRate }),
    });
    const tiers = data.labels.length;
    const logits = mlpLogits(trained.model, x, calibrationRows);
    const calibration = data.labels.map((labels, t): Calibration => {
      const ks = calibrationRows.flatMap((i, k) => (labels[i] === null ? [] : [k]));
      if (ks.length === 0) return { kind: 'none' };
      return fitCalibration(
        kind,
        ks.map((k) => logits[k * tiers + t]!),
        ks.map((k) => labels[calibrationRows[k]!] === true),
      );
    });
    mlp = { model: trained.model, calibration, bestEpoch: trained.bestEpoch };
  }

  return {
    layers: selection.layers,
    pooling: selection.pooling,
    layerTable: selection.table,
    selection: selection.mode,
    standardizer,
    linear,
    ...(mlp ? { mlp } : {}),
    fitRows,
    calibrationRows,
    predict(rows) {
      const out = {
        linear: linear.map(({ model, calibration }) =>
          applyCalibrationAll(calibration, logisticLogits(model, x, rows)),
        ),
      };
      if (!mlp) return out;
      const tiers = data.labels.length;
      const logits = mlpLogits(mlp.model, x, rows);
      return {
        ...out,
        mlp: mlp.calibration.map((c, t) =>
          applyCalibrationAll(
            c,
            Float64Array.from(rows, (_, k) => logits[k * tiers + t]!),
          ),
        ),
      };
    },
  };
}

/** Every (layer, pooling) pair the store holds: last-token 0..lastLayers-1, mean 0..meanLayers-1. */
export function allCandidates(features: Pick<FeatureSource, 'lastLayers' | 'meanLayers'>): LayerSpec[] {
  return [
    ...Array.from({ length: features.lastLayers }, (_, layer): LayerSpec => ({ layer, pooling: 'last' })),
    ...Array.from({ length: features.meanLayers }, (_, layer): LayerSpec => ({ layer, pooling: 'mean' })),
  ];
}
