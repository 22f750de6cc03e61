import { EncoderHost } from '../src/encoder/encoder-host.js';
import { TrainingDataError } from '../src/errors.js';
import { resolveCachedModel } from '../src/models/manifest-registry.js';
import {
  layerTableJson,
  linearTier,
  mlpHead,
  PROBE_BUNDLE_FORMAT,
  PROBE_BUNDLE_VERSION,
  type ProbeBundle,
  type SplitMetrics,
  saveProbeBundle,
} from '../src/probes/probe-bundle.js';
import { createRng } from '../src/seeded-rng.js';
import { promptText } from '../src/traces/trace-schema.js';
import { type CvResult, crossValidate, groupSplitProblem, type SplitKind } from './cross-validate.js';
import { type Latency, layerLatency } from './decision-latency.js';
import { allCandidates, type FitOptions, type FittedProbes, fitProbes } from './fit-probes.js';
import { type FittedHybrid, fitHybrid, tfidfFeatures } from './hybrid.js';
import { offlineFeaturizer } from './router-signals.js';
import { type HeadMetrics, meanCosts } from './split-metrics.js';
import { loadTrainingData, type TrainingData, type TrainingDataOptions } from './training-data.js';

/**
 * `mechroute train`: traces + the activation store → a probe bundle, with the procedure's
 * cross-validated metrics on random and on whole-group folds. The shipped bundle is the same procedure
 * fit on every row; the CV numbers it carries are the estimate of how that procedure does on new data.
 */
export interface TrainOptions extends TrainingDataOptions {
  out: string;
  seed?: number;
  /** Fixed layers (else automatic selection over every stored layer). */
  layers?: number[];
  /** Restricts the candidates (or sets the pooling of fixed layers). */
  pooling?: 'last' | 'mean';
  folds?: number;
  fit?: Omit<FitOptions, 'rng' | 'candidates' | 'layers' | 'pooling' | 'groups' | 'onLayer'>;
  /** Outer folds score every `cvLayerStride`-th layer only (default 1: all of them), for speed. */
  cvLayerStride?: number;
  /** Skip cross-validation (the bundle then carries no CV metrics): for quick experiments only. */
  skipCv?: boolean;
  /** Also fit the hybrid head over the chosen features and the prompts' TF-IDF (training/hybrid.ts). */
  hybrid?: boolean;
  /** Time this many training prompts' prefill per layer of the layer table (0 or absent: not timed). */
  layerLatency?: number;
  /** The command line, recorded in the bundle's notes. */
  command?: string;
  onProgress?: (line: string) => void;
}

export interface TrainReport {
  out: string;
  traces_file: string;
  store: string;
  encoder: TrainingData['encoder'];
  lines: number;
  bad_lines: number;
  rows: number;
  missing_activations: number;
  missing_activation_ids: string[];
  without_outcomes: number;
  tiers: {
    id: string;
    n: number;
    base_rate: number;
    price: { input_usd_per_mtok: number; output_usd_per_mtok: number };
    price_assumed_local: boolean;
    assumed_output_tokens: number;
    cost_sources: { trace_cost: number; trace_tokens: number; encoder_tokens: number };
    mean_cost_usd: number;
  }[];
  group_by: string | null;
  /** Layer selection, fold stratification, difficulty and the weak side of the routing metrics use it. */
  reference_tier: string;
  reference_reason: string;
  layer_selection_tier: string;
  layer_table: ReturnType<typeof layerTableJson>;
  chosen: {
    layers: number[];
    pooling: string;
    mode: string;
    single_cv_auroc: number | null;
    concat_layers: number[] | null;
    concat_cv_auroc: number | null;
    lambdas: Record<string, number>;
    prefer: 'linear' | 'mlp';
    prefer_reason: string;
  };
  splits: Partial<Record<SplitKind, CvResult>>;
  skipped_splits: Record<string, string>;
  settings: Record<string, unknown>;
  notes: string;
  seconds: number;
}

const meanAuroc = (head: HeadMetrics | undefined, only: readonly string[]) => {
  if (!head) return Number.NaN;
  const values = Object.entries(head.tiers)
    .filter(([id]) => only.includes(id))
    .map(([, m]) => m.auroc)
    .filter(Number.isFinite);
  return values.length === 0 ? Number.NaN : values.reduce((s, v) => s + v, 0) / values.length;
};

/** A CV result in the bundle's metrics shape; the routing of the preferred head is the headline one. */
function splitMetrics(cv: CvResult, prefer: 'linear' | 'mlp'): SplitMetrics {
  const tierMap = (head: HeadMetrics) =>
    Object.fromEntries(Object.entries(head.tiers).map(([t, m]) => [t, { ...m }]));
  const heads: Record<string, HeadMetrics | undefined> = { linear: cv.linear, mlp: cv.mlp, ...cv.baselines };
  const main = (prefer === 'mlp' ? cv.mlp : cv.linear) ?? cv.linear;
  const routing: Record<string, number | string | null> = main.routing
    ? { ...main.routing, head: prefer }
    : {};
  for (const [name, head] of Object.entries(heads)) {
    if (!head?.routing || head === main) continue;
    for (const key of ['apgr', 'cpt50', 'cpt80', 'oracle_gap_closed', 'cost_saving'] as const)
      routing[`${name}:${key}`] = head.routing[key];
  }
  return {
    description: cv.description,
    n: cv.n,
    linear: tierMap(cv.linear),
    ...(cv.mlp ? { mlp: tierMap(cv.mlp) } : {}),
    baselines: Object.fromEntries(Object.entries(cv.baselines).map(([k, h]) => [k, tierMap(h)])),
    ...(main.routing ? { routing: routing as SplitMetrics['routing'] } : {}),
    difficulty: { ...cv.difficulty },
  };
}

export async function trainProbes(
  options: TrainOptions,
): Promise<{ report: TrainReport; bundle: ProbeBundle }> {
  const started = performance.now();
  const say = options.onProgress ?? (() => {});
  const seed = options.seed ?? 1;
  const data = await loadTrainingData(options);
  try {
    const n = data.traces.length;
    const referenceTier = data.tiers[data.reference]!;
    const referenceReason = referenceReasonOf(data, options);
    say(
      `${n} traces with activations (${data.missingActivations.length} without, not used), tiers cheapest first: ${data.tiers.join(', ')}; ` +
        `reference tier ${referenceTier} (${referenceReason})`,
    );
    if (options.layers) {
      const pooling = options.pooling ?? 'last';
      const count = pooling === 'mean' ? data.features.meanLayers : data.features.lastLayers;
      const bad = options.layers.filter((l) => !(Number.isInteger(l) && l >= 0 && l < count));
      if (bad.length > 0 || new Set(options.layers).size !== options.layers.length) {
        throw new TrainingDataError(
          `--layers ${options.layers.join(',')}: the store has ${pooling}-pooled layers 0..${count - 1} ` +
            '(mean pooling stops before the last block) and layers must not repeat',
        );
      }
    }
    const candidates = allCandidates(data.features);
    const stride = options.cvLayerStride ?? 1;
    const cvCandidates = candidates.filter((c) => c.layer % stride === 0);
    const fixed = options.layers ? { layers: options.layers, pooling: options.pooling ?? 'last' } : {};
    const restrict = !options.layers && options.pooling ? { pooling: options.pooling } : {};
    const fitSettings = { ...options.fit, ...fixed, ...restrict };
    const k = options.folds ?? 5;

    const splits: TrainReport['splits'] = {};
    const skipped: Record<string, string> = {};
    if (options.skipCv) skipped.all = 'cross-validation skipped (--no-cv)';
    else {
      const kinds: SplitKind[] = ['random', 'group'];
      for (const kind of kinds) {
        const problem = kind === 'group' ? groupSplitProblem(data, k) : undefined;
        if (problem) {
          skipped.group = problem;
          say(`no group split: ${problem}`);
          continue;
        }
        say(`cross-validating (${kind === 'group' ? `by ${data.groupBy}` : 'random'}, ${k} folds)…`);
        splits[kind] = crossValidate(data, kind, cvCandidates, {
          ...fitSettings,
          // Fisher J and the participation ratio of the outer folds' layer tables are never reported
          // (only their CV AUROC decides), so a token row count keeps them from costing anything.
          statsRows: 64,
          folds: k,
          seed: seed + (kind === 'group' ? 1 : 0),
          onFold: (f, total, s) => say(`  ${kind} fold ${f}/${total}: ${s.toFixed(1)} s`),
        });
      }
    }

    say('fitting the bundle on every row…');
    const all = Array.from({ length: n }, (_, i) => i);
    const final: FittedProbes = fitProbes(data, all, {
      ...fitSettings,
      candidates,
      rng: createRng(seed * 7 + 3),
      ...(data.groups && new Set(data.groups).size >= 5 ? { groups: data.groups } : {}),
      onLayer: (d, total) => {
        if (d === total || d % 6 === 0) say(`  layers scored: ${d}/${total}`);
      },
    });

    // The head that predicts: the one with the higher mean out-of-fold AUROC, on whole held-out groups
    // when that split exists (the deployment case: prompts unlike the training ones), else random.
    // Over the tiers with outcomes on every row: a tier labelled on a few traces (a local tier run on a
    // small set) has an AUROC too noisy to decide the head for all of them.
    const covering = data.tiers.filter((_, t) => data.labels[t]!.every((l) => l !== null));
    const judged = covering.length > 0 ? covering : data.tiers;
    const judge = splits.group ?? splits.random;
    const linearAuroc = meanAuroc(judge?.linear, judged);
    const mlpAuroc = meanAuroc(judge?.mlp, judged);
    const prefer: 'linear' | 'mlp' = final.mlp && mlpAuroc > linearAuroc ? 'mlp' : 'linear';
    const preferReason = judge
      ? `mean out-of-fold AUROC over ${judged.length === data.tiers.length ? 'tiers' : `${judged.join(', ')}`} on the ${judge.kind === 'group' ? `by-${data.groupBy}` : 'random'} split: ` +
        `linear ${linearAuroc.toFixed(4)}, MLP ${Number.isNaN(mlpAuroc) ? 'n/a' : mlpAuroc.toFixed(4)}`
      : 'no cross-validation: linear by default';

    let hybrid: FittedHybrid | undefined;
    if (options.hybrid) {
      say('fitting the hybrid head (probes + TF-IDF, stacked over 5 inner folds)…');
      const x = data.features.layers(final.layers, final.pooling);
      const texts = data.traces.map((t) => promptText(t));
      hybrid = fitHybrid(
        { featurizer: offlineFeaturizer('encoder'), x },
        tfidfFeatures(texts, n),
        {
          tiers: data.tiers,
          labels: data.labels,
          reference: data.reference,
          ...(data.groups ? { groups: data.groups } : {}),
        },
        all,
        createRng(seed * 7 + 5),
      );
    }
    let latency: Map<number, Latency> | undefined;
    if (options.layerLatency && final.layerTable.length > 0) {
      const sample = createRng(seed)
        .shuffle(data.traces.map((t) => promptText(t)))
        .slice(0, options.layerLatency);
      say(`timing each layer's prefill on ${sample.length} training prompts…`);
      const encoder = await EncoderHost.create({
        modelPath: resolveCachedModel(data.encoder.name).path,
        maxPromptTokens: data.maxPromptTokens,
      });
      try {
        const layers = [...new Set(final.layerTable.map((s) => s.layer))].sort((a, b) => a - b);
        latency = await layerLatency(encoder, sample, layers);
      } finally {
        await encoder.dispose();
      }
    }
    const notes = notesFor(data, options, final, stride);
    const bundleSplits: Record<string, SplitMetrics> = {};
    if (splits.random) bundleSplits['random-cv'] = splitMetrics(splits.random, prefer);
    if (splits.group) bundleSplits[`${data.groupBy}-cv`] = splitMetrics(splits.group, prefer);
    const bundle: ProbeBundle = {
      format: PROBE_BUNDLE_FORMAT,
      version: PROBE_BUNDLE_VERSION,
      encoder: data.encoder,
      features: { layers: final.layers, pooling: final.pooling, max_prompt_tokens: data.maxPromptTokens },
      standardizer: final.standardizer,
      tiers: data.tiers.map((id, t) =>
        linearTier(
          id,
          final.linear[t]!.model,
          final.linear[t]!.calibration,
          data.costTable.prices[id],
          meanCosts(data.costs)[t],
        ),
      ),
      ...(final.mlp ? { mlp: mlpHead(final.mlp.model, data.tiers, final.mlp.calibration) } : {}),
      ...(hybrid ? { hybrid: hybrid.head } : {}),
      prefer,
      difficulty: { kind: 'tier-failure', tier: referenceTier },
      metrics: {
        splits: bundleSplits,
        ...(final.layerTable.length > 0 ? { layers: layerTableJson(final.layerTable, latency) } : {}),
        layer_selection_tier: referenceTier,
      },
      trained_at: new Date().toISOString(),
      traces_sha256: data.tracesSha256,
      notes,
    };
    await saveProbeBundle(options.out, bundle);

    const report: TrainReport = {
      out: options.out,
      traces_file: data.tracesFile,
      store: data.store,
      encoder: data.encoder,
      lines: data.lines,
      bad_lines: data.badLines.length,
      rows: n,
      missing_activations: data.missingActivations.length,
      missing_activation_ids: data.missingActivations.slice(0, 20).map((m) => m.id),
      without_outcomes: data.withoutOutcomes.length,
      tiers: data.tiers.map((id, t) => {
        const labels = data.labels[t]!.filter((l): l is boolean => l !== null);
        const costs = data.costs[t]!;
        return {
          id,
          n: labels.length,
          base_rate: labels.filter(Boolean).length / labels.length,
          price: data.costTable.prices[id]!,
          price_assumed_local: data.costTable.assumedLocal.includes(id),
          assumed_output_tokens: data.costTable.assumedOutputTokens[id]!,
          cost_sources: data.costTable.sources[id]!,
          mean_cost_usd: costs.reduce((s, c) => s + c, 0) / costs.length,
        };
      }),
      group_by: data.groupBy ?? null,
      reference_tier: referenceTier,
      reference_reason: referenceReason,
      layer_selection_tier: referenceTier,
      layer_table: layerTableJson(final.layerTable, latency),
      chosen: {
        layers: final.layers,
        pooling: final.pooling,
        mode: final.selection.mode,
        single_cv_auroc: final.selection.single?.cvAuroc ?? null,
        concat_layers: final.selection.concat?.layers ?? null,
        concat_cv_auroc: final.selection.concat?.cvAuroc ?? null,
        lambdas: Object.fromEntries(data.tiers.map((id, t) => [id, final.linear[t]!.model.lambda])),
        prefer,
        prefer_reason: preferReason,
      },
      splits,
      skipped_splits: skipped,
      settings: {
        seed,
        folds: k,
        cv_layer_stride: stride,
        ...options.fit,
        ...fixed,
        ...restrict,
      },
      notes,
      seconds: (performance.now() - started) / 1000,
    };
    return { report, bundle };
  } finally {
    await data.close();
  }
}

function referenceReasonOf(data: TrainingData, options: TrainOptions): string {
  if (options.referenceTier !== undefined) return '--reference-tier';
  const covers = data.labels[data.reference]!.every((l) => l !== null);
  return covers
    ? 'the cheapest tier with outcomes on every row'
    : 'no tier has outcomes on every row: the one with the most';
}

function notesFor(data: TrainingData, options: TrainOptions, final: FittedProbes, stride: number): string {
  const tokens = data.tiers
    .map((t) => `${t}: ${data.costTable.assumedOutputTokens[t]} output token(s)`)
    .join(', ');
  const local = data.costTable.assumedLocal;
  const reference = data.tiers[data.reference]!;
  const partial = data.tiers.flatMap((t, k) => {
    const count = data.labels[k]!.filter((l) => l !== null).length;
    return count < data.traces.length ? [`${t} ${count}`] : [];
  });
  return [
    options.command ? `Trained with: ${options.command}` : undefined,
    `Data: ${data.traces.length} traces of ${data.tracesFile} with activations in the store` +
      (data.missingActivations.length > 0
        ? ` (${data.missingActivations.length} traces had no activations and were not used)`
        : '') +
      '.',
    `Reference tier: ${reference} (${referenceReasonOf(data, options)}); it is the label of layer selection, ` +
      'the stratum of the random folds, the difficulty head and the weak side of the routing metrics.' +
      (partial.length > 0
        ? ` Tiers with outcomes on only some rows, whose probes are fit on those rows: ${partial.join(', ')} of ${data.traces.length}.`
        : ''),
    `Costs: per-trace cost or token counts when the trace has them; otherwise prompt tokens counted with ` +
      `the encoder's tokenizer (${data.encoder.name}) and assumed outputs of ${tokens}. Prices (USD/Mtok in/out): ` +
      data.tiers
        .map(
          (t) =>
            `${t} ${data.costTable.prices[t]!.input_usd_per_mtok}/${data.costTable.prices[t]!.output_usd_per_mtok}`,
        )
        .join(', ') +
      (local.length > 0 ? ` (${local.join(', ')}: no price known, taken as a free local tier)` : '') +
      '.',
    `Features: ${final.pooling} pooling of layer(s) ${final.layers.join('+')} (${final.selection.mode}), ` +
      `chosen by ${
        options.layers
          ? 'the command line'
          : `inner-CV AUROC for ${reference} on the training rows${
              final.selection.mode === 'shallowest'
                ? ' (the shallowest layer within one standard error of the best)'
                : ''
            }`
      }.`,
    `Probes: per-tier L2 logistic (λ by inner CV), ${options.fit?.calibration ?? 'platt'} calibration on a held-out ` +
      `${Math.round(100 * (options.fit?.calibrationShare ?? 0.2))} % of the training rows` +
      (data.groups ? ` (whole ${data.groupBy} groups)` : '') +
      `; difficulty = P(${reference} fails).`,
    options.hybrid
      ? 'Hybrid head (policy.signal: hybrid): a linear probe stage over these features and a TF-IDF router ' +
        '(word 1–2-grams, char 3–5-grams, vocabulary from these traces), stacked by a per-tier logistic head ' +
        'over both stages’ out-of-fold log-odds (5 inner folds); it reads the prompt’s words. Not in the CV ' +
        'metrics below: `mechroute bench routing` (method hybrid) measures it on held-out splits.'
      : undefined,
    `Metrics: outer ${options.folds ?? 5}-fold CV of the whole procedure (layer choice, λ, calibration refit per fold), on random ` +
      `folds and on folds of whole ${data.groupBy ?? 'group'} groups` +
      (stride > 1 ? `; in the outer folds only every ${stride}th layer was a candidate` : '') +
      `. Routing: ${reference} (weak) → ${data.tiers[data.tiers.length - 1]} (strong), score 1 − P(${reference} succeeds); ` +
      'oracle_gap_closed and cost_saving at the highest-quality point of the deferral curve, *_at_p50 where ' +
      `P(${reference}) < 0.5.`,
  ]
    .filter((s) => s !== undefined)
    .join('\n');
}
