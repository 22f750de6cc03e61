import { readFile } from 'node:fs/promises';
import {
  applyCorrections,
  type LearningSettings,
  sigmoid,
  type TierCorrection,
  updateCorrection,
} from '../src/learning/online-correction.js';
import { auroc } from '../src/metrics/classification.js';
import { multiTierFigures } from '../src/metrics/multi-tier.js';
import type { LabelledRows } from '../src/metrics/operating-points.js';
import { utilityOf } from '../src/policy/utility.js';
import { clusterTemperature, kMeans, softAssignments } from '../src/probes/kmeans.js';
import type { Pooling } from '../src/probes/layer-selection.js';
import { fitLogisticCV, type LogisticModel, logisticLogits } from '../src/probes/logistic-regression.js';
import { type FeatureMatrix, selectRows } from '../src/probes/matrix.js';
import { kFold, mapFolds } from '../src/probes/splits.js';
import { applyStandardizer, fitStandardizer } from '../src/probes/standardizer.js';
import { type FittedHead, fitTierHead, type TierFitInputs } from '../src/probes/tier-fit.js';
import { createRng, type Rng } from '../src/seeded-rng.js';
import { ladderOf, meanCosts } from './split-metrics.js';
import { loadTrainingData } from './training-data.js';

/**
 * Issue 13's online simulation: a tier whose head was fit on few anchor prompts learns from a replayed
 * stream of outcomes (src/learning/online-correction.ts, the update the server applies on /v1/feedback),
 * and is scored on held-out prompts after 0, 50, 100, … feedback events: its AUROC, and the pool's
 * cost_saving_at_parity with the corrected tier in it.
 *
 * Rows: the held-out split's training ids are halved at random. Half A trains the pool (a standardizer
 * and a regularised logistic head per tier, λ by 5-fold CV) and supplies the new tier's anchors; half B
 * is the feedback stream, so no head has seen a streamed prompt (their logits, which the correction
 * reads, are out of sample as in serving). The evaluation rows are the split's whole test side.
 * The new tier's head is fitted on its anchors as `mechroute tiers add` fits it (src/probes/tier-fit.ts:
 * the method picked by CV on the anchors, reading the other tiers' heads and 16 k-means clusters of half
 * A), or, with `newHead: 'logistic'`, as a plain regularised logistic head; every other tier keeps its
 * full head.
 */
export interface OnlineSimulationOptions {
  tracesFile: string;
  storeDir?: string;
  trainIds: string;
  testIds: string;
  layer: number;
  pooling: Pooling;
  anchors: number;
  /** Feedback events after which the tier is scored; `Infinity` means the whole stream. */
  checkpoints: readonly number[];
  seeds: number;
  settings: LearningSettings;
  /** Tiers to re-add in turn (default every tier). */
  tiers?: readonly string[];
  /** How the new tier's head is fitted on its anchors (default `tiers-add`, the CLI's fitting). */
  newHead?: 'tiers-add' | 'logistic';
  /**
   * Without it every streamed prompt reports the tier's outcome (shadow traffic). With it only the prompts
   * the utility policy argmax P − λ·price (λ = `routedLambda`, prices the pool's mean cost per call) sends
   * to the tier, with its P as corrected so far: the feedback a deployment gets from routed traffic.
   */
  routedLambda?: number;
  /**
   * With routed feedback: the share of streamed prompts sent to the re-added tier whatever the policy says
   * (exploration, which the server does not do): each reports its outcome too.
   */
  exploreShare?: number;
  /**
   * What the correction reads: every head's logit (`all-heads`, the server's correction), or only the
   * re-added tier's own (`own-head`: a scale and a bias on its logit — recalibration, which cannot change
   * its ranking).
   */
  correctionInputs?: 'all-heads' | 'own-head';
  progress?: (message: string) => void;
}

export interface CheckpointResult {
  /** Streamed prompts so far (each an outcome of the tier when every prompt reports one). */
  events: number;
  /** With routed feedback: the outcomes the tier got from them (mean over seeds). */
  feedback_events?: number;
  auroc: { mean: number; sd: number };
  cost_saving_at_parity: { mean: number; sd: number };
}

/** The change since 0 events over every (tier, seed) run: its mean and a normal 95 % interval. */
export interface GainResult {
  events: number;
  auroc: { mean: number; ci95: [number, number] };
  cost_saving_at_parity: { mean: number; ci95: [number, number] };
}

export interface TierSimulation {
  tier: string;
  /** AUROC of the tier's head fit on all of half A. */
  full_head_auroc: number;
  /**
   * Prequential log loss over the whole stream (each event scored before it updates; mean over seeds):
   * what a deployment can measure without held-out rows, so settings are compared on it, not on `eval`.
   */
  prequential_log_loss: number;
  checkpoints: CheckpointResult[];
}

export interface OnlineSimulationReport {
  traces: string;
  layer: number;
  pooling: Pooling;
  rows: { pool_train: number; stream: number; eval: number };
  anchors: number;
  seeds: number;
  settings: LearningSettings;
  new_head: 'tiers-add' | 'logistic';
  correction_inputs: 'all-heads' | 'own-head';
  /** `every` streamed prompt reports the tier's outcome, or only those `routed` to it (λ given). */
  feedback: { kind: 'every' } | { kind: 'routed'; lambda: number; explore_share: number };
  /** With `tiers-add`: how often each method was picked over every (tier, seed) run. */
  methods_picked?: Record<string, number>;
  /** The pool with every tier's full head. */
  full_pool_cost_saving_at_parity: number;
  tiers: TierSimulation[];
  /** Per checkpoint, the mean over tiers of each tier's seed mean. */
  mean: CheckpointResult[];
  /** Mean over tiers of `prequential_log_loss`. */
  prequential_log_loss: number;
  /**
   * Paired gains over all tiers × seeds. The interval covers the draw of anchors and stream order, not
   * the choice of the (fixed) evaluation prompts.
   */
  gains: GainResult[];
}

const readIds = async (file: string) =>
  new Set(
    (await readFile(file, 'utf8'))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== ''),
  );

const gainOf = (values: readonly number[]) => {
  const { mean, sd } = meanSd(values);
  const half = (1.96 * sd) / Math.sqrt(values.length);
  return { mean, ci95: [mean - half, mean + half] as [number, number] };
};

const meanSd = (values: readonly number[]) => {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, values.length - 1));
  return { mean, sd };
};

/** A regularised logistic head on `rows` (λ by stratified 5-fold CV on them). */
function fitHead(
  x: FeatureMatrix,
  labels: readonly boolean[],
  rows: readonly number[],
  rng: Rng,
): LogisticModel {
  const local = rows.map((i) => labels[i]!);
  const folds = mapFolds(kFold(rows.length, Math.min(5, rows.length), rng, local), rows);
  return fitLogisticCV(x, labels, { folds, lambdas: [1e-3, 1e-2, 1e-1, 1, 10] }).model;
}

const probabilities = (model: LogisticModel, x: FeatureMatrix) =>
  Float64Array.from(logisticLogits(model, x), sigmoid);

/** P(success) of every row under a head as `tiers add` stores it. */
function fittedP(head: FittedHead, x: FeatureMatrix, clusters: TierFitInputs['clusters']): Float64Array {
  if (head.kind === 'constant') return new Float64Array(x.rows).fill(head.p);
  if (head.kind === 'linear') return probabilities({ ...head, weights: Float64Array.from(head.weights) }, x);
  const a = softAssignments(x, clusters!.centroids, clusters!.temperature);
  return Float64Array.from(a, (w) => w.reduce((s, v, k) => s + v * head.rates[k]!, 0));
}

export async function simulateOnline(options: OnlineSimulationOptions): Promise<OnlineSimulationReport> {
  const log = options.progress ?? (() => {});
  const data = await loadTrainingData({
    tracesFile: options.tracesFile,
    ...(options.storeDir ? { storeDir: options.storeDir } : {}),
  });
  try {
    const [trainIds, testIds] = await Promise.all([readIds(options.trainIds), readIds(options.testIds)]);
    const full = (i: number) => data.labels.every((l) => l[i] !== null);
    const train = data.traces.flatMap((t, i) => (trainIds.has(t.id) && full(i) ? [i] : []));
    const test = data.traces.flatMap((t, i) => (testIds.has(t.id) && full(i) ? [i] : []));
    const shuffled = createRng(0).shuffle([...train]);
    const half = Math.floor(shuffled.length / 2);
    const poolRows = shuffled.slice(0, half).sort((a, b) => a - b);
    const streamRows = shuffled.slice(half);
    log(`rows: ${poolRows.length} pool, ${streamRows.length} stream, ${test.length} eval`);

    const raw = data.features.layer(options.layer, options.pooling);
    const x = applyStandardizer(fitStandardizer(raw, { rows: poolRows }), raw);
    const labels = data.labels.map((l) => l.map((v) => v === true));
    const fullModels = data.tiers.map((tier, t) => {
      log(`full head: ${tier}`);
      return fitHead(x, labels[t]!, poolRows, createRng(1 + t));
    });
    const fullP = fullModels.map((m) => probabilities(m, x));
    const newHead = options.newHead ?? 'tiers-add';
    const ownHead = options.correctionInputs === 'own-head';
    const methodsPicked: Record<string, number> = {};
    // What `tiers clusters` stores: k-means over the pool (half A), 16 clusters, seed 1.
    const pool = selectRows(x, poolRows);
    const kmeans = kMeans(pool, 16, createRng(1));
    const clusters = { centroids: kmeans.centroids, temperature: clusterTemperature(pool, kmeans.centroids) };
    const anchorHead = (t: number, anchors: readonly number[], rng: Rng): Float64Array => {
      if (newHead === 'logistic') return probabilities(fitHead(x, labels[t]!, anchors, rng), x);
      const fit = fitTierHead(
        {
          z: selectRows(x, anchors),
          labels: anchors.map((i) => labels[t]![i]!),
          heads: fullModels.filter((_, k) => k !== t),
          clusters,
        },
        { rng },
      );
      methodsPicked[fit.method] = (methodsPicked[fit.method] ?? 0) + 1;
      return fittedP(fit.head, x, clusters);
    };
    const price = meanCosts(data.costs.map((c) => poolRows.map((i) => c[i]!)));
    const sub = <T>(values: readonly T[]) => test.map((i) => values[i]!);
    const ladder = ladderOf(data.labels.map(sub), data.costs.map(sub), price)!;
    const savingOf = (probs: readonly ArrayLike<number>[]) => {
      const rows: LabelledRows = {
        tiers: ladder.tiers.map((t) => data.tiers[t]!),
        p: ladder.tiers.map((t) => Array.from(test, (i) => probs[t]![i]!)),
        correct: ladder.correct,
        cost: ladder.cost,
      };
      return multiTierFigures(rows, ladder.price).costSavingAtParity;
    };
    const aurocOn = (p: ArrayLike<number>, t: number) =>
      auroc(
        test.map((i) => p[i]!),
        test.map((i) => labels[t]![i]!),
      );

    const wanted = options.tiers ?? data.tiers;
    const tiers: TierSimulation[] = [];
    // Per checkpoint, per (tier, seed) run: the change since 0 events.
    const gains = options.checkpoints.map(() => ({ auroc: [] as number[], saving: [] as number[] }));
    for (const tier of wanted) {
      const t = data.tiers.indexOf(tier);
      if (t < 0) throw new Error(`no tier ${tier} in ${options.tracesFile}`);
      const prequential: number[] = [];
      const perCheckpoint = options.checkpoints.map(() => ({
        auroc: [] as number[],
        saving: [] as number[],
        taught: [] as number[],
      }));
      for (let seed = 0; seed < options.seeds; seed += 1) {
        const rng = createRng(1000 * (t + 1) + seed);
        const anchors = rng.shuffle([...poolRows]).slice(0, options.anchors);
        const headP = anchorHead(t, anchors, rng);
        const stream = rng.shuffle([...streamRows]);
        const decided = (i: number) =>
          Object.fromEntries(data.tiers.map((id, k) => [id, k === t ? headP[i]! : fullP[k]![i]!]));
        let correction: TierCorrection | undefined;
        let events = 0;
        let taught = 0;
        const exploration = createRng(99 + seed);
        const explored = () => exploration.next() < (options.exploreShare ?? 0);
        let loss = 0;
        /** Whether the utility policy, with the tier's P as corrected so far, sends prompt i to it. */
        const routedHere = (i: number) => {
          const lambda = options.routedLambda!;
          const p = correction ? applyCorrections(decided(i), { [tier]: correction }) : decided(i);
          // Tiers are cheapest first, so keeping the first maximum breaks ties to the cheaper, as the policy does.
          let pick = 0;
          let top = Number.NEGATIVE_INFINITY;
          for (const [k, id] of data.tiers.entries()) {
            const u = utilityOf(p[id]!, price[k]!, lambda);
            if (u > top) [pick, top] = [k, u];
          }
          return pick === t;
        };
        for (const [c, checkpoint] of options.checkpoints.entries()) {
          const until = Math.min(checkpoint, stream.length);
          for (; events < until; events += 1) {
            const i = stream[events]!;
            if (options.routedLambda !== undefined && !explored() && !routedHere(i)) continue;
            const inputs = ownHead ? { [tier]: decided(i)[tier]! } : decided(i);
            const update = updateCorrection(correction, inputs, tier, labels[t]![i]!, options.settings);
            if (!update) continue;
            correction = update.correction;
            taught += 1;
            const p = Math.min(1 - 1e-9, Math.max(1e-9, update.p));
            loss -= labels[t]![i]! ? Math.log(p) : Math.log(1 - p);
          }
          perCheckpoint[c]!.taught.push(taught);
          const corrected = new Float64Array(data.traces.length);
          for (const i of test) {
            corrected[i] = correction
              ? applyCorrections(decided(i), { [tier]: correction })[tier]!
              : headP[i]!;
          }
          perCheckpoint[c]!.auroc.push(aurocOn(corrected, t));
          gains[c]!.auroc.push(perCheckpoint[c]!.auroc.at(-1)! - perCheckpoint[0]!.auroc.at(-1)!);
          if (c === options.checkpoints.length - 1) prequential.push(loss / Math.max(1, taught));
          perCheckpoint[c]!.saving.push(
            savingOf(data.tiers.map((_, k) => (k === t ? corrected : fullP[k]!))),
          );
          gains[c]!.saving.push(perCheckpoint[c]!.saving.at(-1)! - perCheckpoint[0]!.saving.at(-1)!);
        }
      }
      const result: TierSimulation = {
        tier,
        full_head_auroc: aurocOn(fullP[t]!, t),
        prequential_log_loss: prequential.reduce((a, b) => a + b, 0) / prequential.length,
        checkpoints: options.checkpoints.map((checkpoint, c) => ({
          events: Math.min(checkpoint, streamRows.length),
          ...(options.routedLambda === undefined
            ? {}
            : { feedback_events: meanSd(perCheckpoint[c]!.taught).mean }),
          auroc: meanSd(perCheckpoint[c]!.auroc),
          cost_saving_at_parity: meanSd(perCheckpoint[c]!.saving),
        })),
      };
      log(
        `${tier}: full ${result.full_head_auroc.toFixed(3)}; ` +
          result.checkpoints.map((c) => `${c.events}: ${c.auroc.mean.toFixed(3)}`).join(', '),
      );
      tiers.push(result);
    }
    return {
      traces: options.tracesFile,
      layer: options.layer,
      pooling: options.pooling,
      rows: { pool_train: poolRows.length, stream: streamRows.length, eval: test.length },
      anchors: options.anchors,
      seeds: options.seeds,
      settings: options.settings,
      new_head: newHead,
      correction_inputs: options.correctionInputs ?? 'all-heads',
      feedback:
        options.routedLambda === undefined
          ? { kind: 'every' }
          : { kind: 'routed', lambda: options.routedLambda, explore_share: options.exploreShare ?? 0 },
      ...(newHead === 'tiers-add' ? { methods_picked: methodsPicked } : {}),
      full_pool_cost_saving_at_parity: savingOf(fullP),
      tiers,
      prequential_log_loss: tiers.reduce((a, s) => a + s.prequential_log_loss, 0) / tiers.length,
      gains: options.checkpoints.map((checkpoint, c) => ({
        events: Math.min(checkpoint, streamRows.length),
        auroc: gainOf(gains[c]!.auroc),
        cost_saving_at_parity: gainOf(gains[c]!.saving),
      })),
      mean: options.checkpoints.map((checkpoint, c) => ({
        events: Math.min(checkpoint, streamRows.length),
        ...(options.routedLambda === undefined
          ? {}
          : { feedback_events: meanSd(tiers.map((s) => s.checkpoints[c]!.feedback_events!)).mean }),
        auroc: meanSd(tiers.map((s) => s.checkpoints[c]!.auroc.mean)),
        cost_saving_at_parity: meanSd(tiers.map((s) => s.checkpoints[c]!.cost_saving_at_parity.mean)),
      })),
    };
  } finally {
    await data.close();
  }
}
