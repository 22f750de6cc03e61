import type { ActivationStore } from '../src/activations/activation-store.js';
import { BaselineMethodSchema, type BaselineModel } from '../src/baselines/baseline-model.js';
import { createSentenceEncoder, type SentenceEncoder } from '../src/baselines/sentence-encoder.js';
import type { TierScorer } from '../src/baselines/tier-scorer.js';
import { EncoderHost } from '../src/encoder/encoder-host.js';
import { TrainingDataError } from '../src/errors.js';
import type { CalibrationBin } from '../src/metrics/classification.js';
import type { CostQuality } from '../src/metrics/cost-quality-hull.js';
import { oraclePoint, singleTierPoints } from '../src/metrics/multi-tier.js';
import { resolveCachedModel } from '../src/models/manifest-registry.js';
import { createRng } from '../src/seeded-rng.js';
import { promptText, type Trace } from '../src/traces/trace-schema.js';
import { type Comparison, compareToBestText } from './bench-comparisons.js';
import { methodCurves } from './bench-curves.js';
import {
  BENCH_METHODS,
  type BenchMethod,
  createSignalFitters,
  SENTENCE_KEEP,
  TEXT_METHODS,
} from './bench-signals.js';
import { measureLatency } from './decision-latency.js';
import { type RoutingEvalMetrics, routingEvalMetrics } from './evaluate-bundle.js';
import { stackRows } from './fit-baselines.js';
import type { FittedSignal } from './router-signals.js';
import { headMetrics, type Ladder, ladderOf, meanCosts, multiOf } from './split-metrics.js';
import type { CostOptions } from './tier-costs.js';
import {
  createFeatureSource,
  encoderIdentity,
  loadTrainingData,
  openStoreReadOnly,
  type TrainingData,
} from './training-data.js';

/**
 * `mechroute bench routing`: every router signal — the probes and the text classifiers — trained on the
 * same train file and scored on the same test file, with `mechroute eval`'s metric code, plus the
 * per-decision latency of each (text → P(success | tier), measured through the TierScorer the router
 * would use, in this run, on this machine) and its training time.
 *
 * Features of the training and test prompts come from the activation store (probes, encoder last layer),
 * from the shipped ONNX sentence encoder, or from TF-IDF; latency re-runs the full path on a sample of
 * test prompts, encoder prefill or ONNX model included.
 */
export { BENCH_METHODS, type BenchMethod, TEXT_METHODS };

export interface BenchOptions {
  trainFile: string;
  testFile: string;
  /** Encoder model (default the default encoder); the store must hold its activations. */
  model?: string;
  storeDir?: string;
  sentenceModel?: string;
  methods?: readonly BenchMethod[];
  /** Test prompts timed per method (default 50). */
  latencySamples?: number;
  seed?: number;
  /** Hold out whole groups of this trace field in the inner splits (calibration, λ, layer scoring). */
  groupBy?: string;
  /** Fixed probe layers (skips layer selection), with `pooling`. */
  probeLayers?: readonly number[];
  probePooling?: 'last' | 'mean';
  knnK?: number;
  costs?: CostOptions;
  /** Paired bootstrap resamples of the comparisons (default 1000). */
  resamples?: number;
  /** Shared instances (tests). */
  encoder?: EncoderHost;
  sentence?: SentenceEncoder;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface MethodResult extends RoutingEvalMetrics {
  latency_ms_p50: number;
  latency_ms_p95: number;
  train_ms: number;
  /** What the features are, e.g. the probe layers chosen. */
  features: string;
}

export interface BenchCurves {
  /** Deferral curve (strong share → quality) per method, on the test rows with both outcomes. */
  deferral: Record<string, { x: number; y: number }[]>;
  /** Calibration of P(weak tier succeeds) per method. */
  calibration: Record<string, CalibrationBin[]>;
  q_weak: number;
  q_strong: number;
  q_oracle: number;
}

export interface BenchResult {
  train_file: string;
  test_file: string;
  n_train: number;
  n_test: number;
  tiers: string[];
  weak_tier: string;
  strong_tier: string;
  /** Traces not used, and why (no activations in the store, no outcomes, bad lines). */
  dropped: { train: Record<string, number>; test: Record<string, number> };
  /** USD per call each policy ranks tiers by: the mean cost of a call in the training traces. */
  router_prices: Record<string, number>;
  latency_samples: number;
  methods: Record<string, MethodResult>;
  /** The tiers `multi` routes over, each alone and the oracle, on the test rows (null below two tiers). */
  ladder: {
    tiers: string[];
    singles: (CostQuality & { tier: string })[];
    oracle: CostQuality;
  } | null;
  /** Per method (not a text one): AUROC per tier and the multi fields against the best text method. */
  comparisons: Record<string, Comparison[]>;
  curves: BenchCurves;
  /** The trained text-classifier routers, ready to save (`policy.signal: text-embedding`). */
  models: Record<string, BaselineModel>;
}

function droppedOf(data: TrainingData): Record<string, number> {
  return {
    bad_lines: data.badLines.length,
    missing_activations: data.missingActivations.length,
    without_outcomes: data.withoutOutcomes.length,
  };
}

/** Prompt text → P(success | tier) through a fitted signal's featurizers (each computed once). */
function signalScorer(method: string, tiers: readonly string[], signal: FittedSignal): TierScorer {
  return {
    method,
    tiers,
    async score(text) {
      const vectors = new Map<string, ArrayLike<number>>();
      let encoderTokens: number | undefined;
      for (const f of signal.featurizers) {
        const { vector, tokens } = await f.vector(text);
        vectors.set(f.key, vector);
        encoderTokens ??= tokens;
      }
      const p = signal.predictOne(vectors);
      return {
        tiers: Object.fromEntries(tiers.map((id, t) => [id, p[t]!])),
        ...(encoderTokens === undefined ? {} : { encoderTokens }),
      };
    },
  };
}

/** The trace field a task-class head learns: `subject` where the traces have one, else `dataset`. */
function classField(traces: readonly Trace[]): string | undefined {
  if (traces.some((t) => typeof t.subject === 'string')) return 'subject';
  if (traces.some((t) => typeof t.dataset === 'string')) return 'dataset';
  return undefined;
}

export async function benchRouting(options: BenchOptions): Promise<BenchResult> {
  const methods = options.methods ?? BENCH_METHODS;
  const progress = options.onProgress ?? (() => {});
  const seed = options.seed ?? 1;
  const common = {
    ...(options.model ? { model: options.model } : {}),
    ...(options.storeDir ? { storeDir: options.storeDir } : {}),
    ...(options.costs ? { costs: options.costs } : {}),
    groupBy: options.groupBy ?? 'none',
  };
  const train = await loadTrainingData({ tracesFile: options.trainFile, ...common });
  let test: TrainingData | undefined;
  let store: ActivationStore | undefined;
  let encoder = options.encoder;
  let sentence = options.sentence;
  try {
    test = await loadTrainingData({ tracesFile: options.testFile, ...common, tiers: train.tiers });
    const tiers = train.tiers;
    const reference = train.reference;
    const nTrain = train.traces.length;
    const nTest = test.traces.length;
    const testRows = Array.from({ length: nTest }, (_, i) => nTrain + i);
    const traces = [...train.traces, ...test.traces];
    const texts = traces.map((t) => promptText(t));
    const testTexts = texts.slice(nTrain);
    // Labels and costs of the test file in the train file's tier order (cheapest first).
    const testLabels = tiers.map((tier) => test!.labels[test!.tiers.indexOf(tier)]!);
    const labels = tiers.map((_, t) => [...train.labels[t]!, ...testLabels[t]!]);
    const testCosts = tiers.map((tier) => test!.costTable.costs[tier]!);
    // What a call of each tier costs on average in the training traces: the price the policies rank by.
    const prices = meanCosts(train.costs);
    const ladder = ladderOf(testLabels, testCosts, prices);

    const identity = encoderIdentity(options.model);
    store = await openStoreReadOnly(identity, options.storeDir, options.trainFile);
    const features = createFeatureSource(store, [...train.hashes, ...test.hashes]);
    const latencyTexts = testTexts.slice(0, options.latencySamples ?? 50);

    const text = (m: BenchMethod) => (TEXT_METHODS as readonly string[]).includes(m);
    // The encoder reads the window the store's activations were read with (its truncation setting).
    const window = store.meta.max_prompt_tokens;
    if (methods.some((m) => !text(m)) && !encoder) {
      encoder = await EncoderHost.create({
        modelPath: resolveCachedModel(identity.name).path,
        maxPromptTokens: window,
      });
    }
    if (encoder && encoder.info.maxPromptTokens !== window) {
      throw new TrainingDataError(
        `the store's activations read ${window} prompt tokens at most, the encoder ${encoder.info.maxPromptTokens}`,
      );
    }
    const needsSentence = methods.some((m) => m.startsWith('sentence-') || m === 'text-stack');
    let sentenceMatrix: ReturnType<typeof stackRows> | undefined;
    if (needsSentence) {
      sentence ??= await createSentenceEncoder(options.sentenceModel ? { model: options.sentenceModel } : {});
      const vectors: Float32Array[] = [];
      const step = 256;
      for (let start = 0; start < texts.length; start += step) {
        progress('sentence embeddings', start, texts.length);
        vectors.push(...(await sentence.embed(texts.slice(start, start + step), { keep: SENTENCE_KEEP })));
      }
      progress('sentence embeddings', texts.length, texts.length);
      sentenceMatrix = stackRows(vectors, sentence.dim);
    }
    const field = classField(traces);
    const fitters = createSignalFitters({
      tiers,
      labels,
      reference,
      ...(train.groups ? { groups: train.groups } : {}),
      texts,
      nTrain,
      features,
      ...(field
        ? { classes: traces.map((t) => String((t as Record<string, unknown>)[field] ?? '(none)')) }
        : {}),
      ...(encoder ? { encoder } : {}),
      ...(sentence ? { sentence } : {}),
      ...(sentenceMatrix ? { sentenceMatrix } : {}),
      knnK: options.knnK ?? 25,
      identity,
      ...(options.probeLayers
        ? { probeLayers: options.probeLayers, probePooling: options.probePooling ?? 'last' }
        : {}),
    });

    const trainRows = Array.from({ length: nTrain }, (_, i) => i);
    const results: Record<string, MethodResult> = {};
    const models: Record<string, BaselineModel> = {};
    const testProbs: Record<string, Float64Array[]> = {};
    const curves: BenchCurves = { deferral: {}, calibration: {}, q_weak: 0, q_strong: 0, q_oracle: 0 };
    for (const [m, method] of methods.entries()) {
      progress(`training ${method}`, m, methods.length);
      const started = performance.now();
      // A fresh generator per method: each method's fit is the same whichever others run with it.
      const { describe, fit } = fitters(method, createRng(seed));
      const signal = fit(trainRows, createRng(seed + 1));
      const trainMs = performance.now() - started;
      const probs = signal.predict(testRows);
      testProbs[method] = probs;
      const model = baselineModelOf(method, signal, { tiers, trainFile: options.trainFile, nTrain });
      if (model) models[method] = model;
      progress(`timing ${method}`, m, methods.length);
      const scorer = signalScorer(method, tiers, signal);
      const latency = await measureLatency((t) => scorer.score(t), latencyTexts);
      const local = testRows.map((_, k) => k);
      const metrics = headMetrics(tiers, probs, testLabels, testCosts, local, reference);
      results[method] = {
        ...routingEvalMetrics(nTest, metrics, ladder ? multiOf(ladder, tiers, probs) : null),
        latency_ms_p50: latency.p50,
        latency_ms_p95: latency.p95,
        train_ms: Math.round(trainMs),
        features: describe,
      };
      Object.assign(curves, methodCurves(curves, method, probs, testLabels, testCosts, reference));
    }
    progress('comparing with the best text method', methods.length, methods.length);
    const comparisons = compareToBestText(
      {
        tiers,
        probs: testProbs,
        labels: testLabels,
        ...(ladder ? { ladder } : {}),
        textMethods: TEXT_METHODS,
      },
      { resamples: options.resamples ?? 1000, seed, confidence: 0.95 },
    );
    progress('done', methods.length, methods.length);
    return {
      train_file: options.trainFile,
      test_file: options.testFile,
      n_train: nTrain,
      n_test: nTest,
      tiers,
      weak_tier: tiers[reference]!,
      strong_tier: tiers[tiers.length - 1]!,
      router_prices: Object.fromEntries(tiers.map((id, t) => [id, prices[t]!])),
      ladder: ladder ? ladderSummary(ladder, tiers) : null,
      dropped: { train: droppedOf(train), test: droppedOf(test) },
      latency_samples: latencyTexts.length,
      methods: results,
      comparisons,
      curves,
      models,
    };
  } finally {
    await store?.close();
    await test?.close();
    await train.close();
    if (encoder && !options.encoder) await encoder.dispose();
    if (sentence && !options.sentence) await sentence.dispose();
  }
}

function ladderSummary(ladder: Ladder, tierIds: readonly string[]): NonNullable<BenchResult['ladder']> {
  const rows = { tiers: ladder.tiers.map((t) => tierIds[t]!), correct: ladder.correct, cost: ladder.cost };
  return { tiers: rows.tiers, singles: singleTierPoints(rows), oracle: oraclePoint(rows) };
}

/** A text-classifier router as a saveable model (`policy.signal: text-embedding`), when it is one. */
function baselineModelOf(
  method: BenchMethod,
  signal: FittedSignal,
  info: { tiers: readonly string[]; trainFile: string; nTrain: number },
): BaselineModel | undefined {
  const head = signal.baselineHead;
  const saved = signal.featurizers.length === 1 ? signal.featurizers[0]!.saved : undefined;
  const known = BaselineMethodSchema.safeParse(method);
  if (!head || !saved || !known.success) return undefined;
  return {
    format: 'mechroute-baseline',
    version: 1,
    method: known.data,
    tiers: [...info.tiers],
    featurizer: saved,
    head,
    trained_on: { traces: info.trainFile, rows: info.nTrain },
  };
}

export function checkMethods(names: readonly string[]): BenchMethod[] {
  const unknown = names.filter((n) => !(BENCH_METHODS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new TrainingDataError(`unknown method ${unknown.join(', ')} (known: ${BENCH_METHODS.join(', ')})`);
  }
  return names as BenchMethod[];
}
