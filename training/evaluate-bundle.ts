import { type ActivationStore, promptHash } from '../src/activations/activation-store.js';
import { predictHybrid } from '../src/baselines/hybrid-predict.js';
import { EncoderHost } from '../src/encoder/encoder-host.js';
import { TrainingDataError } from '../src/errors.js';
import type { MultiTierMetrics } from '../src/metrics/multi-tier.js';
import { resolveCachedModel } from '../src/models/manifest-registry.js';
import { createMatrix, type FeatureMatrix } from '../src/probes/matrix.js';
import { checkPromptWindow, loadProbeBundle, type ProbeBundle } from '../src/probes/probe-bundle.js';
import { type ProbePrediction, predictProbesBatch } from '../src/probes/probe-predict.js';
import { readTraces } from '../src/traces/jsonl-reader.js';
import { promptText, successOf, type Trace } from '../src/traces/trace-schema.js';
import {
  type HeadMetrics,
  headMetrics,
  ladderOf,
  meanCosts,
  multiOf,
  type RoutingMetricsOut,
  type TierMetricsOut,
} from './split-metrics.js';
import { type CostOptions, costTable } from './tier-costs.js';
import { encoderIdentity, openStoreReadOnly } from './training-data.js';

/**
 * `mechroute eval`: a bundle's metrics on a trace file. Features come from the activation store where the
 * prompt is cached and from the encoder otherwise (only the bundle's layers are encoded), so any trace
 * file can be scored, including one never extracted. Routing is between the bundle's cheapest tier and
 * its dearest tier that the traces have outcomes for; definitions as in split-metrics.ts.
 */
export interface EvaluateOptions {
  probes: string;
  tracesFile: string;
  /** The encoder that produces the features (default the default encoder); must match the bundle's. */
  model?: string;
  storeDir?: string;
  /** An already loaded host of the same model (tests share one). */
  encoder?: EncoderHost;
  costs?: CostOptions;
  /** Progress of encoding the prompts the store lacks (not called when every prompt is cached). */
  onProgress?: (done: number, total: number, elapsedMs: number) => void;
  /** Which of the bundle's heads gives P(success | tier): the probes (default) or its hybrid head. */
  signal?: 'probes' | 'hybrid';
}

/** The metrics `mechroute eval` and `bench routing` share, under the names the eval JSON promises. */
export interface RoutingEvalMetrics {
  n: number;
  auroc: Record<string, number>;
  brier: Record<string, number>;
  ece: Record<string, number>;
  /** At 0.5 on the calibrated probability. */
  accuracy: Record<string, number>;
  apgr: number | null;
  cpt50: number | null;
  cpt80: number | null;
  oracle_gap_closed: number | null;
  cost_saving: number | null;
  cost_per_correct: number | null;
  tiers: Record<string, TierMetricsOut>;
  routing: RoutingMetricsOut | null;
  /** Routing over every tier with an outcome on every row (src/metrics/multi-tier.ts); null below two. */
  multi: MultiTierMetrics | null;
}

export interface EvalResult extends RoutingEvalMetrics {
  /** How the costs behind cost_saving and cost_per_correct were counted (tokenizer, prices, sources). */
  cost_basis: {
    tokenizer: string;
    prices: Record<string, { input_usd_per_mtok: number; output_usd_per_mtok: number }>;
    assumed_output_tokens: Record<string, number>;
    sources: Record<string, { trace_cost: number; trace_tokens: number; encoder_tokens: number }>;
    /** USD per call the policies of `multi` rank tiers by, and where it comes from. */
    router_prices: Record<string, number>;
    router_prices_from: 'bundle' | 'traces';
  };
  head: 'linear' | 'mlp' | 'hybrid';
  features: { layers: number[]; pooling: string; from_store: number; encoded: number };
  probes: string;
  traces_file: string;
  lines: number;
  bad_lines: number;
  /** Traces with none of the bundle's tiers' outcomes (not scored). */
  without_outcomes: number;
}

export async function tryOpenStore(bundle: ProbeBundle, storeDir: string | undefined, traces: string) {
  try {
    return await openStoreReadOnly(bundle.encoder, storeDir, traces);
  } catch (error) {
    if (error instanceof TrainingDataError && storeDir === undefined) return undefined;
    throw error;
  }
}

/** Features (rows × layers·width, the bundle's order) and encoder token counts of the prompts. */
export async function featuresOf(
  bundle: ProbeBundle,
  texts: readonly string[],
  store: ActivationStore | undefined,
  options: EvaluateOptions,
): Promise<{ data: Float32Array; tokens: number[]; fromStore: number; encoded: number }> {
  const { layers, pooling } = bundle.features;
  const width = bundle.encoder.embedding_width;
  const dim = layers.length * width;
  const data = new Float32Array(texts.length * dim);
  const tokens = new Array<number>(texts.length).fill(0);
  const hashes = texts.map((t) => promptHash(t));
  const cached = hashes.flatMap((h, i) => (store?.has(h) ? [i] : []));
  if (store && cached.length > 0) {
    for (const [l, layer] of layers.entries()) {
      const block = store.matrix(
        cached.map((i) => hashes[i]!),
        layer,
        pooling,
      );
      for (const [r, i] of cached.entries())
        data.set(block.subarray(r * width, (r + 1) * width), i * dim + l * width);
    }
    for (const i of cached) tokens[i] = store.get(hashes[i]!)!.tokens;
  }
  const inStore = new Set(cached);
  const todo = texts.flatMap((_, i) => (inStore.has(i) ? [] : [i]));
  if (todo.length > 0) {
    let encoder = options.encoder;
    if (!encoder) {
      const { path } = resolveCachedModel(options.model ?? bundle.encoder.name);
      const window = bundle.features.max_prompt_tokens;
      encoder = await EncoderHost.create({ modelPath: path, ...(window ? { maxPromptTokens: window } : {}) });
    }
    checkPromptWindow(bundle, encoder.info.maxPromptTokens);
    const started = performance.now();
    try {
      // Chunks of 32: the encoder decodes one prompt at a time on CPU anyway, and progress stays lively.
      for (let start = 0; start < todo.length; start += 32) {
        options.onProgress?.(start, todo.length, performance.now() - started);
        const chunk = todo.slice(start, start + 32);
        const results = await encoder.encode(
          chunk.map((i) => texts[i]!),
          { layers: [...layers], pooling },
        );
        for (const [r, i] of chunk.entries()) {
          const vectors = results[r]![pooling]!;
          for (const [l, v] of vectors.entries()) data.set(v, i * dim + l * width);
          tokens[i] = results[r]!.tokens;
        }
      }
      options.onProgress?.(todo.length, todo.length, performance.now() - started);
    } finally {
      if (!options.encoder) await encoder.dispose();
    }
  }
  return { data, tokens, fromStore: cached.length, encoded: todo.length };
}

const orNull = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : null);

/** The eval JSON's metric fields from one head's metrics over `n` rows (eval and bench routing alike). */
export function routingEvalMetrics(
  n: number,
  metrics: HeadMetrics,
  multi: MultiTierMetrics | null = null,
): RoutingEvalMetrics {
  const pick = (key: 'auroc' | 'brier' | 'ece' | 'accuracy') =>
    Object.fromEntries(Object.entries(metrics.tiers).map(([id, m]) => [id, m[key]]));
  const r = metrics.routing;
  return {
    n,
    auroc: pick('auroc'),
    brier: pick('brier'),
    ece: pick('ece'),
    accuracy: pick('accuracy'),
    apgr: orNull(r?.apgr),
    cpt50: orNull(r?.cpt50),
    cpt80: orNull(r?.cpt80),
    oracle_gap_closed: orNull(r?.oracle_gap_closed),
    cost_saving: orNull(r?.cost_saving),
    cost_per_correct: orNull(r?.cost_per_correct),
    tiers: metrics.tiers,
    routing: r ?? null,
    multi,
  };
}

/** A bundle's predictions on every trace with an outcome for one of its tiers (the shared first half of eval and calibrate). */
export interface ScoredTraces {
  bundle: ProbeBundle;
  traces: Trace[];
  predictions: ProbePrediction[];
  /** Prompt tokens per trace, counted by the encoder's tokenizer. */
  tokens: number[];
  lines: number;
  badLines: number;
  /** Valid traces without an outcome for any of the bundle's tiers. */
  skipped: number;
  /** Feature vectors read from the activation store / computed by the encoder. */
  fromStore: number;
  encoded: number;
}

/** The hybrid head's P(success | tier) per row, with the probes' difficulty definition. */
function hybridPredictions(
  bundle: ProbeBundle,
  x: FeatureMatrix,
  texts: readonly string[],
): ProbePrediction[] {
  const reference = bundle.difficulty.kind === 'tier-failure' ? bundle.difficulty.tier : bundle.tiers[0]!.id;
  return texts.map((text, i) => {
    const tiers = predictHybrid(bundle, x.data.subarray(i * x.cols, (i + 1) * x.cols), text);
    return { tiers, difficulty: 1 - tiers[reference]! };
  });
}

export async function scoreBundleOnTraces(options: EvaluateOptions): Promise<ScoredTraces> {
  const identity = encoderIdentity(options.model ?? undefined);
  const bundle = await loadProbeBundle(options.probes, identity);
  const { traces: all, errors, lines } = await readTraces(options.tracesFile);
  const bundleTiers = bundle.tiers.map((t) => t.id);
  const traces = all.filter((t) => bundleTiers.some((id) => t.outcomes[id] !== undefined));
  if (traces.length === 0) {
    throw new TrainingDataError(
      `no trace in ${options.tracesFile} has an outcome for the bundle's tiers (${bundleTiers.join(', ')})`,
    );
  }
  const texts = traces.map((t) => promptText(t));
  const store = await tryOpenStore(bundle, options.storeDir, options.tracesFile);
  let features: Awaited<ReturnType<typeof featuresOf>>;
  try {
    features = await featuresOf(bundle, texts, store, options);
  } finally {
    await store?.close();
  }
  const dim = bundle.features.layers.length * bundle.encoder.embedding_width;
  const matrix = createMatrix(features.data, traces.length, dim);
  const predictions =
    options.signal === 'hybrid'
      ? hybridPredictions(bundle, matrix, texts)
      : predictProbesBatch(bundle, matrix);
  return {
    bundle,
    traces,
    predictions,
    tokens: features.tokens,
    lines,
    badLines: errors.length,
    skipped: all.length - traces.length,
    fromStore: features.fromStore,
    encoded: features.encoded,
  };
}

export async function evaluateBundle(options: EvaluateOptions): Promise<EvalResult> {
  const scored = await scoreBundleOnTraces(options);
  const { bundle, traces, predictions } = scored;
  const bundleTiers = bundle.tiers.map((t) => t.id);
  const features = { tokens: scored.tokens };

  // Routing: the bundle's reference tier (its difficulty tier, else the cheapest) against its dearest one
  // that the traces have outcomes for.
  const { difficulty } = bundle;
  const weak =
    difficulty.kind === 'tier-failure' && bundleTiers.includes(difficulty.tier)
      ? difficulty.tier
      : bundleTiers[0]!;
  const present = bundleTiers.filter((id) => traces.some((t) => t.outcomes[id] !== undefined));
  const tiers = present.includes(weak)
    ? present
    : bundleTiers.filter((id) => id === weak || present.includes(id));
  const prices = Object.fromEntries(bundle.tiers.flatMap((t) => (t.price ? [[t.id, t.price]] : [])));
  const costs = costTable(traces, features.tokens, tiers, {
    ...options.costs,
    prices: { ...prices, ...options.costs?.prices },
  });
  const labels = tiers.map((id) =>
    traces.map((t) => (t.outcomes[id] === undefined ? null : successOf(t.outcomes[id]!))),
  );
  const probs = tiers.map((id) => Float64Array.from(predictions, (p) => p.tiers[id]!));
  const rows = traces.map((_, i) => i);
  const metrics = headMetrics(
    tiers,
    probs,
    labels,
    tiers.map((id) => costs.costs[id]!),
    rows,
    tiers.indexOf(weak),
  );
  // The price the policies know before calling: the training traces' mean cost per call, which the bundle
  // records; a bundle from before that field falls back on this file's mean.
  const recorded = tiers.map((id) => bundle.tiers.find((t) => t.id === id)?.mean_cost_usd);
  const fromBundle = recorded.every((c) => c !== undefined);
  const routerPrices = fromBundle ? (recorded as number[]) : meanCosts(tiers.map((id) => costs.costs[id]!));
  const ladder = ladderOf(
    labels,
    tiers.map((id) => costs.costs[id]!),
    routerPrices,
  );
  return {
    ...routingEvalMetrics(traces.length, metrics, ladder ? multiOf(ladder, tiers, probs) : null),
    cost_basis: {
      tokenizer: `${bundle.encoder.name}'s own tokenizer (prompt tokens; output tokens assumed where a trace gives none)`,
      prices: costs.prices,
      assumed_output_tokens: costs.assumedOutputTokens,
      sources: costs.sources,
      router_prices: Object.fromEntries(tiers.map((id, t) => [id, routerPrices[t]!])),
      router_prices_from: fromBundle ? 'bundle' : 'traces',
    },
    head: options.signal === 'hybrid' ? 'hybrid' : (bundle.prefer ?? 'linear'),
    features: {
      layers: bundle.features.layers,
      pooling: bundle.features.pooling,
      from_store: scored.fromStore,
      encoded: scored.encoded,
    },
    probes: options.probes,
    traces_file: options.tracesFile,
    lines: scored.lines,
    bad_lines: scored.badLines,
    without_outcomes: scored.skipped,
  };
}
