import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TrainingDataError } from '../src/errors.js';
import { auroc } from '../src/metrics/classification.js';
import { applyCalibration, fitCalibration } from '../src/probes/calibration.js';
import { type LayerCandidate, type Pooling, scoreLayers } from '../src/probes/layer-selection.js';
import { fitLogisticCV, logisticLogits } from '../src/probes/logistic-regression.js';
import {
  layerTableJson,
  linearTier,
  PROBE_BUNDLE_FORMAT,
  PROBE_BUNDLE_VERSION,
  type ProbeBundle,
  saveProbeBundle,
  type TierMetrics,
} from '../src/probes/probe-bundle.js';
import { groupKFold, mapFolds, trainCalibrationTestSplit } from '../src/probes/splits.js';
import { applyStandardizer, fitStandardizer } from '../src/probes/standardizer.js';
import { type StepSegmentationInput, StepSegmentationSchema } from '../src/probes/step-probe-info.js';
import { createRng } from '../src/seeded-rng.js';
import { tierMetrics } from './split-metrics.js';
import { loadStepData, stepFeatures } from './step-data.js';
import { outOfFoldScores, type StepAurocRow, type StepScore, stepAurocByK } from './step-scores.js';
import { DEFAULT_PRICES, type TierPrice } from './tier-costs.js';

/**
 * `mechroute train --steps`: per-tier step probes. Every prefix (prompt + first k steps) of a tier's
 * response is a row labelled with whether that trajectory ended correct; one L2 logistic probe per tier,
 * Platt-calibrated, on the layer chosen by cross-validation. Every split is by problem: all prefixes of a
 * problem — of every tier — fall on the same side, since neighbouring prefixes of one chain are nearly
 * the same text and would otherwise leak the label across the split.
 */
export interface TrainStepOptions {
  tracesFile: string;
  storeDir: string;
  out: string;
  model?: string;
  tiers?: readonly string[];
  /** Prefixes past this many steps are not rows (they were not extracted); recorded in the bundle. */
  maxK?: number;
  /** Only these problems (e.g. a seeded sample); default every trace. */
  problems?: ReadonlySet<string>;
  segmentation?: StepSegmentationInput;
  seed?: number;
  testShare?: number;
  calibrationShare?: number;
  folds?: number;
  lambdas?: readonly number[];
  /** Fixed features; default: chosen by CV over every stored layer and both poolings. */
  layers?: readonly number[];
  pooling?: Pooling;
  prices?: Record<string, TierPrice>;
  /**
   * Also score every row out of fold: k-fold over all problems (this many folds; 0 = off), each fold's
   * probes fitted (λ by inner CV, Platt on a held-out 15 % of the fold's training problems) without the
   * fold's problems. Written as JSONL (`StepScore` per line) for `eval-steps --scores`.
   */
  cvFolds?: number;
  cvScoresFile?: string;
  command?: string;
  onProgress?: (line: string) => void;
}

export interface TrainStepReport {
  out: string;
  traces_file: string;
  store: string;
  problems: { train: number; calibration: number; test: number };
  rows: Record<string, { train: number; calibration: number; test: number }>;
  incomplete_trajectories: Record<string, number>;
  features: { layers: number[]; pooling: Pooling };
  layer_table?: ReturnType<typeof layerTableJson>;
  tiers: Record<string, { lambda: number; test: TierMetrics; step_auroc: StepAurocRow[] }>;
  /** Out-of-fold step AUROC over every problem (cvFolds > 0). */
  cv?: {
    folds: number;
    problems: number;
    step_auroc: Record<string, StepAurocRow[]>;
    auroc: Record<string, number | null>;
  };
  seconds: number;
}

/**
 * λ grid: strong penalties first. A few hundred problems give a few thousand highly correlated prefix rows
 * for 640+ features, so the useful λ sits far above the request-level probes' (whose rows are independent).
 */
export const DEFAULT_STEP_LAMBDAS = [100, 10, 1, 0.1];

const finite = (v: number) => (Number.isFinite(v) ? v : null);
/** AUROC is undefined when the rows hold one class only (all right or all wrong): say so, not NaN. */
const auroc3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '– (one class only)');

export async function trainStepProbes(options: TrainStepOptions): Promise<TrainStepReport> {
  const started = performance.now();
  const say = options.onProgress ?? (() => {});
  const seed = options.seed ?? 1;
  const segmentation = StepSegmentationSchema.parse(options.segmentation ?? {});
  const data = await loadStepData({
    tracesFile: options.tracesFile,
    storeDir: options.storeDir,
    segmentation,
    ...(options.model ? { model: options.model } : {}),
    ...(options.tiers ? { tiers: options.tiers } : {}),
    ...(options.maxK === undefined ? {} : { maxK: options.maxK }),
    ...(options.problems ? { problems: options.problems } : {}),
  });
  try {
    const { rows, store } = data;
    const prices = { ...DEFAULT_PRICES, ...options.prices };
    const price = (tier: string) => prices[tier] ?? { input_usd_per_mtok: 0, output_usd_per_mtok: 0 };
    const tierCost = (tier: string) => price(tier).input_usd_per_mtok + price(tier).output_usd_per_mtok;
    const tiers = [...new Set(rows.map((r) => r.tier))].sort((a, b) => tierCost(a) - tierCost(b));
    const reference = tiers[0]!;
    const incomplete = Object.entries(data.incomplete).map(([tier, n]) => `${n} of ${tier}`);
    say(
      `${rows.length} prefix rows from ${data.trajectories.length} complete trajectories` +
        (incomplete.length
          ? ` (left out, a step prefix missing from the store: ${incomplete.join(', ')})`
          : '') +
        `; tiers ${tiers.join(', ')}`,
    );

    // One split of the problems, shared by every tier.
    const problems = [...new Set(data.trajectories.map((t) => t.problem))];
    const split = trainCalibrationTestSplit(problems.length, createRng(seed), {
      testShare: options.testShare ?? 0.2,
      calibrationShare: options.calibrationShare ?? 0.15,
    });
    const sideOf = new Map<string, 'train' | 'calibration' | 'test'>();
    for (const side of ['train', 'calibration', 'test'] as const) {
      for (const i of split[side]) sideOf.set(problems[i]!, side);
    }
    const rowsOn = (side: string, tier?: string) =>
      rows.flatMap((r, i) => (sideOf.get(r.problem) === side && (!tier || r.tier === tier) ? [i] : []));
    const labels = rows.map((r) => r.label);
    const hashes = rows.map((r) => r.hash);
    const folds = (rowIndices: number[]) => {
      const k = Math.min(options.folds ?? 5, new Set(rowIndices.map((i) => rows[i]!.problem)).size);
      if (k < 2) throw new TrainingDataError('too few training problems for cross-validation');
      return mapFolds(
        groupKFold(
          rowIndices.map((i) => rows[i]!.problem),
          k,
          createRng(seed + 1),
        ),
        rowIndices,
      );
    };

    // Layer choice on the reference tier's training rows.
    let layers = options.layers ? [...options.layers] : undefined;
    let pooling = options.pooling;
    let layerTable: ReturnType<typeof layerTableJson> | undefined;
    if (!layers || !pooling) {
      const refTrain = rowsOn('train', reference);
      const refHashes = refTrain.map((i) => hashes[i]!);
      const candidates: LayerCandidate[] = [];
      for (const p of pooling ? [pooling] : (['last', 'mean'] as const)) {
        const count = p === 'last' ? store.meta.layers : store.meta.mean_layers;
        for (let layer = 0; layer < count; layer += 1) {
          if (layers && !layers.includes(layer)) continue;
          candidates.push({ layer, pooling: p, features: stepFeatures(store, refHashes, [layer], p) });
        }
      }
      say(`scoring ${candidates.length} layer candidates on ${refTrain.length} ${reference} training rows…`);
      const local = refTrain.map((_, r) => r);
      const localFolds = mapFolds(
        groupKFold(
          refTrain.map((i) => rows[i]!.problem),
          Math.min(options.folds ?? 5, split.train.length),
          createRng(seed + 2),
        ),
        local,
      );
      const { table, best } = scoreLayers(
        candidates,
        refTrain.map((i) => labels[i]!),
        { folds: localFolds, rng: createRng(seed + 3), lambdas: options.lambdas ?? DEFAULT_STEP_LAMBDAS },
      );
      layerTable = layerTableJson(table);
      layers = [best.layer];
      pooling = best.pooling;
      say(`layer ${best.layer} (${best.pooling}): CV AUROC ${best.cvAuroc.toFixed(3)}`);
    }

    const raw = stepFeatures(store, hashes, layers, pooling);
    const allTrain = rowsOn('train');
    const standardizer = fitStandardizer(raw, { rows: allTrain });
    const x = applyStandardizer(standardizer, raw);
    const report: TrainStepReport['tiers'] = {};
    const bundleTiers: ProbeBundle['tiers'] = [];
    const rowCounts: TrainStepReport['rows'] = {};
    const testMetrics: Record<string, TierMetrics> = {};
    for (const tier of tiers) {
      const train = rowsOn('train', tier);
      const calibration = rowsOn('calibration', tier);
      const test = rowsOn('test', tier);
      rowCounts[tier] = { train: train.length, calibration: calibration.length, test: test.length };
      const fit = fitLogisticCV(x, labels, {
        folds: folds(train),
        lambdas: options.lambdas ?? DEFAULT_STEP_LAMBDAS,
      });
      const calibrationFit = fitCalibration(
        'platt',
        logisticLogits(fit.model, x, calibration),
        calibration.map((i) => labels[i]!),
      );
      const testProbs = Array.from(logisticLogits(fit.model, x, test), (z) =>
        applyCalibration(calibrationFit, z),
      );
      const metrics = tierMetrics(testProbs, labels, test);
      const tierTest: TierMetrics = {
        n: metrics.n,
        auroc: finite(metrics.auroc),
        brier: finite(metrics.brier),
        ece: finite(metrics.ece),
        accuracy: finite(metrics.accuracy),
        base_rate: finite(metrics.base_rate),
      };
      testMetrics[tier] = tierTest;
      const byK = stepAurocByK(
        test.map((i) => rows[i]!),
        testProbs,
      );
      report[tier] = { lambda: fit.model.lambda, test: tierTest, step_auroc: byK };
      bundleTiers.push(linearTier(tier, fit.model, calibrationFit, price(tier)));
      say(
        `${tier}: λ ${fit.model.lambda}, test AUROC ${auroc3(metrics.auroc)} over ${test.length} prefixes; ` +
          `by k: ${byK.map((r) => `${r.k}:${r.auroc?.toFixed(2) ?? '–'}`).join(' ')}`,
      );
    }

    let cv: TrainStepReport['cv'];
    if ((options.cvFolds ?? 0) >= 2) {
      say(`cross-validating over ${problems.length} problems (${options.cvFolds} folds)…`);
      const oof = outOfFoldScores(raw, rows, tiers, {
        folds: options.cvFolds!,
        innerFolds: options.folds ?? 5,
        seed,
        lambdas: options.lambdas ?? DEFAULT_STEP_LAMBDAS,
      });
      cv = { folds: options.cvFolds!, problems: problems.length, step_auroc: {}, auroc: {} };
      for (const tier of tiers) {
        const at = rows.flatMap((r, i) => (r.tier === tier ? [i] : []));
        cv.step_auroc[tier] = stepAurocByK(
          at.map((i) => rows[i]!),
          at.map((i) => oof[i]!),
        );
        cv.auroc[tier] = finite(
          auroc(
            at.map((i) => oof[i]!),
            at.map((i) => labels[i]!),
          ),
        );
        say(
          `${tier} out of fold: AUROC ${auroc3(cv.auroc[tier] ?? Number.NaN)}; by k: ` +
            cv.step_auroc[tier]!.map((r) => `${r.k}:${r.auroc?.toFixed(2) ?? '–'}`).join(' '),
        );
      }
      if (options.cvScoresFile) {
        await mkdir(dirname(options.cvScoresFile), { recursive: true });
        const lines = rows.map((r, i) =>
          JSON.stringify({ problem: r.problem, tier: r.tier, k: r.k, p: oof[i]! } satisfies StepScore),
        );
        await writeFile(options.cvScoresFile, `${lines.join('\n')}\n`);
      }
    }

    const testProblems = split.test.map((i) => problems[i]!).sort();
    const bundle: ProbeBundle = {
      format: PROBE_BUNDLE_FORMAT,
      version: PROBE_BUNDLE_VERSION,
      encoder: data.encoder,
      features: { layers, pooling },
      standardizer,
      tiers: bundleTiers,
      difficulty: { kind: 'tier-failure', tier: reference },
      metrics: {
        splits: {
          'problem-test': {
            description:
              'step prefixes of held-out problems (all prefixes of a problem on one side; seeded), ' +
              'pooled over k = 0 … max_k',
            n: testProblems.length,
            linear: testMetrics,
          },
        },
        ...(layerTable ? { layers: layerTable, layer_selection_tier: reference } : {}),
      },
      trained_at: new Date().toISOString(),
      traces_sha256: data.tracesSha256,
      notes:
        'Step probes: each tier’s P(success) is P(a trajectory of that tier that reads like this prefix ends ' +
        'correct), on the encoder input stepProbeText(prompt, first k steps). See probes/README.md.',
      steps: {
        segmentation,
        text_format: 'prompt-blank-line-steps',
        metrics: {
          max_k: options.maxK ?? null,
          sampled_problems: options.problems?.size ?? null,
          seed,
          split: {
            by: 'problem',
            train: split.train.length,
            calibration: split.calibration.length,
            test: testProblems.length,
            test_problems: testProblems,
          },
          step_auroc: Object.fromEntries(Object.entries(report).map(([t, r]) => [t, r.step_auroc])),
          ...(cv ? { cv } : {}),
          ...(options.command ? { command: options.command } : {}),
        },
      },
    };
    await saveProbeBundle(options.out, bundle);
    return {
      out: options.out,
      traces_file: options.tracesFile,
      store: options.storeDir,
      problems: {
        train: split.train.length,
        calibration: split.calibration.length,
        test: testProblems.length,
      },
      rows: rowCounts,
      incomplete_trajectories: data.incomplete,
      features: { layers, pooling },
      ...(layerTable ? { layer_table: layerTable } : {}),
      tiers: report,
      ...(cv ? { cv } : {}),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await data.store.close();
  }
}
