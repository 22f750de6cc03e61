import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainingDataError } from '../src/errors.js';
import { auroc } from '../src/metrics/classification.js';
import { multiTierFigures } from '../src/metrics/multi-tier.js';
import { type PairedDifference, pairedBootstrap } from '../src/metrics/paired-bootstrap.js';
import { selectAnchors } from '../src/probes/anchor-selection.js';
import { type FeatureMatrix, selectRows } from '../src/probes/matrix.js';
import type { ProbeBundle, TierHead } from '../src/probes/probe-bundle.js';
import { predictProbesBatch } from '../src/probes/probe-predict.js';
import { addTierHead, removeTierHead, withClusters } from '../src/probes/tier-edit.js';
import { clustersOf, fitTierHead, linearHeadsOf, type TierFitOptions } from '../src/probes/tier-fit.js';
import { createRng } from '../src/seeded-rng.js';
import { readTraces, writeTraces } from '../src/traces/jsonl-reader.js';
import { successOf } from '../src/traces/trace-schema.js';
import { bundleFeatures } from './bundle-features.js';
import { type Ladder, ladderOf, ladderRows, multiOf } from './split-metrics.js';
import { costTable } from './tier-costs.js';
import { clustersFromPool } from './tiers.js';
import { trainProbes } from './train-probes.js';

/**
 * Leave-one-tier-out (`npm run bench -- tiers`): a bundle is trained on the training split with every
 * tier; then each tier in turn is removed and added back with `tiers add`'s fitting from 25…400 anchors
 * of the training split — chosen as `tiers anchors` chooses them, and at random — and scored on the
 * held-out split beside the head trained on all of that tier's training rows: its AUROC, and the `multi`
 * routing fields of the whole pool with the re-added tier in it. Features come from the activation store
 * (no encoder run); the bundle is trained with fixed layers (no layer search) and no MLP, for time.
 */
export interface TiersBenchOptions {
  tracesFile: string;
  /** Files of trace ids, one per line. */
  trainIds: string;
  testIds: string;
  storeDir: string;
  layers: number[];
  pooling: 'last' | 'mean';
  sizes?: number[];
  /** Random anchor draws per size (default 3). */
  randomRepeats?: number;
  clusters?: number;
  seed?: number;
  /** Paired bootstrap resamples of the held-out prompts for the goal intervals (default 1000; 0: none). */
  resamples?: number;
  /** Settings of the tier fit (default its own). */
  fit?: Pick<TierFitOptions, 'standardErrors' | 'repeats' | 'methods'>;
  onProgress?: (line: string) => void;
}

export interface ReaddRow {
  tier: string;
  selection: 'anchors' | 'random';
  n: number;
  /** Random draws: the mean over them; the methods picked, one per draw. */
  methods: string[];
  auroc: number | null;
  cost_saving_at_parity: number | null;
  cost_saving_at_95: number | null;
  hull_auc: number | null;
}

export interface TiersBenchResult {
  traces: string;
  n_train: number;
  n_test: number;
  features: { layers: number[]; pooling: string };
  clusters: { k: number; sizes: number[] };
  tiers: string[];
  full: {
    auroc: Record<string, number | null>;
    cost_saving_at_parity: number | null;
    cost_saving_at_95: number | null;
    hull_auc: number | null;
  };
  /** The pool with each tier left out altogether (no head, not routed to). */
  without: Record<string, { cost_saving_at_parity: number | null }>;
  rows: ReaddRow[];
  /**
   * At the goal's anchor count (200, `tiers anchors`), per tier: paired bootstrap 95 % intervals over the
   * held-out prompts of the AUROC gap (full head − re-added) and of the pool's cost_saving_at_parity with
   * the re-added tier − the fully trained pool's (absent when the full pool saves nothing at parity).
   */
  goal_intervals?: {
    anchors: number;
    resamples: number;
    tiers: Record<string, { auroc_gap: PairedDifference; saving_difference?: PairedDifference }>;
  };
  seconds: number;
}

/** The anchor count the goals are stated at. */
export const GOAL_ANCHORS = 200;

const orNull = (v: number) => (Number.isFinite(v) ? v : null);

async function idsOf(file: string): Promise<Set<string>> {
  return new Set(
    (await readFile(file, 'utf8'))
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
  );
}

export async function benchTiers(options: TiersBenchOptions): Promise<TiersBenchResult> {
  const started = performance.now();
  const say = options.onProgress ?? (() => {});
  const seed = options.seed ?? 1;
  const sizes = options.sizes ?? [25, 50, 100, 200, 400];
  const dir = await mkdtemp(join(tmpdir(), 'mechroute-bench-tiers-'));
  try {
    const { traces, errors } = await readTraces(options.tracesFile);
    if (errors.length > 0)
      throw new TrainingDataError(`${options.tracesFile} has ${errors.length} bad lines`);
    const [trainIds, testIds] = await Promise.all([idsOf(options.trainIds), idsOf(options.testIds)]);
    const trainFile = join(dir, 'train.jsonl');
    const testFile = join(dir, 'test.jsonl');
    await writeTraces(
      trainFile,
      traces.filter((t) => trainIds.has(t.id)),
    );
    await writeTraces(
      testFile,
      traces.filter((t) => testIds.has(t.id)),
    );
    say(
      `training the full bundle on ${trainIds.size} traces (layers ${options.layers.join(',')}, ${options.pooling})`,
    );
    const trained = await trainProbes({
      tracesFile: trainFile,
      storeDir: options.storeDir,
      out: join(dir, 'full.json'),
      layers: options.layers,
      pooling: options.pooling,
      skipCv: true,
      groupBy: 'none',
      seed,
      fit: { mlp: false },
    });
    const train = await bundleFeatures(trained.bundle, trainFile, 'bench', { storeDir: options.storeDir });
    const test = await bundleFeatures(trained.bundle, testFile, 'bench', { storeDir: options.storeDir });
    const k = options.clusters ?? 16;
    const clusters = clustersFromPool(train.z, k, seed, train);
    const full = withClusters(trained.bundle, clusters);
    const tiers = full.tiers.map((t) => t.id);
    const label = (set: typeof train) =>
      tiers.map((id) =>
        set.traces.map((t) => (t.outcomes[id] === undefined ? null : successOf(t.outcomes[id]!))),
      );
    const [trainLabels, testLabels] = [label(train), label(test)];
    const table = costTable(test.traces, test.tokens, tiers);
    const testCosts = tiers.map((id) => table.costs[id]!);
    const prices = full.tiers.map((t) => t.mean_cost_usd ?? 0);
    const ladder = ladderOf(testLabels, testCosts, prices);
    if (!ladder) throw new TrainingDataError('fewer than two tiers have an outcome on every test trace');
    const score = (bundle: ProbeBundle, x: FeatureMatrix, only = tiers) => {
      const predictions = predictProbesBatch(bundle, x);
      return only.map((id) => Float64Array.from(predictions, (p) => p.tiers[id]!));
    };
    // The bundle scores raw features; bundleFeatures gave standardised ones, so score through an
    // identity-standardised copy (same heads, same clusters).
    const onZ = (bundle: ProbeBundle): ProbeBundle => ({
      ...bundle,
      standardizer: {
        mean: new Array(bundle.standardizer.mean.length).fill(0),
        std: new Array(bundle.standardizer.std.length).fill(1),
      },
    });
    const aurocOf = (p: Float64Array, t: number) => {
      const rows = testLabels[t]!.flatMap((l, i) => (l === null ? [] : [i]));
      return orNull(
        auroc(
          rows.map((i) => p[i]!),
          rows.map((i) => testLabels[t]![i]!),
        ),
      );
    };
    const multi = (probs: Float64Array[]) => multiOf(ladder, tiers, probs);
    const fullProbs = score(onZ(full), test.z);
    const fullMulti = multi(fullProbs);
    const result: TiersBenchResult = {
      traces: options.tracesFile,
      n_train: train.z.rows,
      n_test: test.z.rows,
      features: { layers: options.layers, pooling: options.pooling },
      clusters: { k, sizes: clusters.sizes },
      tiers,
      full: {
        auroc: Object.fromEntries(tiers.map((id, t) => [id, aurocOf(fullProbs[t]!, t)])),
        cost_saving_at_parity: fullMulti.cost_saving_at_parity,
        cost_saving_at_95: fullMulti.cost_saving_at_95,
        hull_auc: fullMulti.hull_auc.router,
      },
      without: {},
      rows: [],
      seconds: 0,
    };
    const random = createRng(seed + 7);
    const atGoal = new Map<number, Float64Array[]>();
    for (const [t, id] of tiers.entries()) {
      const removed = removeTierHead(full, id).bundle;
      result.without[id] = { cost_saving_at_parity: withoutTier(ladder, tiers, fullProbs, t) };
      const labelled = train.traces.flatMap((_, i) => (trainLabels[t]![i] === null ? [] : [i]));
      const readd = (rows: number[]) => {
        const fit = fitTierHead(
          {
            z: selectRows(train.z, rows),
            labels: rows.map((i) => trainLabels[t]![i]!),
            heads: linearHeadsOf(removed),
            clusters: clustersOf(removed),
          },
          {
            ...options.fit,
            rng: createRng(seed),
          },
        );
        const original = full.tiers[t]!;
        const head: TierHead = {
          id,
          ...fit.head,
          ...(original.mean_cost_usd === undefined ? {} : { mean_cost_usd: original.mean_cost_usd }),
        };
        const probs = score(onZ(addTierHead(removed, head).bundle), test.z);
        const m = multi(probs);
        return {
          probs,
          method: fit.method,
          auroc: aurocOf(probs[t]!, t),
          csp: m.cost_saving_at_parity,
          cs95: m.cost_saving_at_95,
          auc: m.hull_auc.router,
        };
      };
      for (const n of sizes) {
        if (n > labelled.length) continue;
        say(`tier ${id} (${t + 1}/${tiers.length}): ${n} anchors`);
        const chosen = selectAnchors(
          selectRows(train.z, labelled),
          clusters.centroids.map((c) => Float64Array.from(c)),
          n,
        );
        const a = readd(chosen.rows.map((r) => labelled[r]!));
        if (n === GOAL_ANCHORS) atGoal.set(t, a.probs);
        result.rows.push({
          tier: id,
          selection: 'anchors',
          n,
          methods: [a.method],
          auroc: a.auroc,
          cost_saving_at_parity: a.csp,
          cost_saving_at_95: a.cs95,
          hull_auc: a.auc,
        });
        const draws = Array.from({ length: options.randomRepeats ?? 3 }, () =>
          readd(random.shuffle([...labelled]).slice(0, n)),
        );
        const meanOf = (values: (number | null)[]) => {
          const v = values.filter((x): x is number => x !== null);
          return v.length === 0 ? null : v.reduce((s, x) => s + x, 0) / v.length;
        };
        result.rows.push({
          tier: id,
          selection: 'random',
          n,
          methods: draws.map((d) => d.method),
          auroc: meanOf(draws.map((d) => d.auroc)),
          cost_saving_at_parity: meanOf(draws.map((d) => d.csp)),
          cost_saving_at_95: meanOf(draws.map((d) => d.cs95)),
          hull_auc: meanOf(draws.map((d) => d.auc)),
        });
      }
    }
    const resamples = options.resamples ?? 1000;
    if (atGoal.size > 0 && resamples > 0) {
      say(`goal intervals: ${resamples} paired bootstrap resamples of the held-out prompts`);
      result.goal_intervals = goalIntervals(ladder, tiers, fullProbs, atGoal, testLabels, resamples, seed);
    }
    result.seconds = Math.round((performance.now() - started) / 1000);
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** cost_saving_at_parity of the pool without tier t (its row dropped from the ladder). */
function withoutTier(
  ladder: NonNullable<ReturnType<typeof ladderOf>>,
  tiers: readonly string[],
  probs: readonly Float64Array[],
  t: number,
): number | null {
  const keep = ladder.tiers.flatMap((tier, k) => (tier === t ? [] : [k]));
  if (keep.length < 2) return null;
  const smaller = {
    tiers: keep.map((k) => ladder.tiers[k]!),
    correct: keep.map((k) => ladder.correct[k]!),
    cost: keep.map((k) => ladder.cost[k]!),
    price: keep.map((k) => ladder.price[k]!),
  };
  return multiOf(smaller, tiers, probs).cost_saving_at_parity;
}

/**
 * One paired bootstrap over the held-out prompts for every re-added tier at once (the full pool's saving
 * is computed once per draw and shared): the AUROC gap and the difference in the pool's saving.
 */
function goalIntervals(
  ladder: Ladder,
  tiers: readonly string[],
  fullProbs: readonly Float64Array[],
  readded: ReadonlyMap<number, Float64Array[]>,
  labels: readonly (readonly (boolean | null)[])[],
  resamples: number,
  seed: number,
): NonNullable<TiersBenchResult['goal_intervals']> {
  const entries = [...readded.entries()];
  const saving = (probs: readonly Float64Array[], subset: readonly number[]) =>
    multiTierFigures(ladderRows(ladder, tiers, probs), ladder.price, subset).costSavingAtParity;
  const n = ladder.correct[0]!.length;
  const all = Array.from({ length: n }, (_, i) => i);
  const withSaving = saving(fullProbs, all) > 0;
  const aurocOn = (p: Float64Array, t: number, subset: readonly number[]) => {
    const rows = subset.filter((i) => labels[t]![i] !== null);
    return auroc(
      rows.map((i) => p[i]!),
      rows.map((i) => labels[t]![i]!),
    );
  };
  const differences = pairedBootstrap(
    n,
    (subset) => {
      const a: number[] = [];
      const b: number[] = [];
      for (const [t, probs] of entries) {
        a.push(aurocOn(fullProbs[t]!, t, subset));
        b.push(aurocOn(probs[t]!, t, subset));
      }
      if (withSaving) {
        const full = saving(fullProbs, subset);
        for (const [, probs] of entries) {
          a.push(saving(probs, subset));
          b.push(full);
        }
      }
      return { a, b };
    },
    { resamples, seed, confidence: 0.95 },
  );
  return {
    anchors: GOAL_ANCHORS,
    resamples,
    tiers: Object.fromEntries(
      entries.map(([t], k) => [
        tiers[t]!,
        {
          auroc_gap: differences[k]!,
          ...(withSaving ? { saving_difference: differences[entries.length + k]! } : {}),
        },
      ]),
    ),
  };
}
