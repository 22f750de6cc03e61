import type { ActivationStore } from '../src/activations/activation-store.js';
import { type BaselineModel, predictLinearHead } from '../src/baselines/baseline-model.js';
import { createSentenceEncoder, type SentenceEncoder } from '../src/baselines/sentence-encoder.js';
import { fitTfidf, tfidfVector } from '../src/baselines/tfidf.js';
import { baselineScorer, encoderFeatures, type TierScorer } from '../src/baselines/tier-scorer.js';
import { EncoderHost } from '../src/encoder/encoder-host.js';
import { TrainingDataError } from '../src/errors.js';
import type { CalibrationBin } from '../src/metrics/classification.js';
import { resolveCachedModel } from '../src/models/manifest-registry.js';
import { createRng } from '../src/seeded-rng.js';
import { promptText } from '../src/traces/trace-schema.js';
import { methodCurves } from './bench-curves.js';
import { type RoutingEvalMetrics, routingEvalMetrics } from './evaluate-bundle.js';
import { type FittedHead, fitKnnHead, fitLinearHead, linearHeadOf, stackRows } from './fit-baselines.js';
import { allCandidates, fitProbes } from './fit-probes.js';
import { headMetrics } from './split-metrics.js';
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
export const BENCH_METHODS = [
  'probes',
  'encoder-last-lr',
  'tfidf-lr',
  'sentence-lr',
  'sentence-knn',
] as const;
export type BenchMethod = (typeof BENCH_METHODS)[number];

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
  latency_samples: number;
  methods: Record<string, MethodResult>;
  curves: BenchCurves;
  /** The trained text-classifier routers, ready to save (`policy.signal: text-embedding`). */
  models: Record<string, BaselineModel>;
}

const _orNull = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : null);

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Sequential decisions, one warm-up first: what one request waits for on an idle router. */
async function measureLatency(
  scorer: TierScorer,
  texts: readonly string[],
): Promise<{ p50: number; p95: number }> {
  if (texts.length === 0) return { p50: Number.NaN, p95: Number.NaN };
  await scorer.score(texts[0]!);
  const times: number[] = [];
  for (const text of texts) {
    const started = performance.now();
    await scorer.score(text);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: quantile(times, 0.5), p95: quantile(times, 0.95) };
}

function droppedOf(data: TrainingData): Record<string, number> {
  return {
    bad_lines: data.badLines.length,
    missing_activations: data.missingActivations.length,
    without_outcomes: data.withoutOutcomes.length,
  };
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
    const trainRows = Array.from({ length: nTrain }, (_, i) => i);
    const testRows = Array.from({ length: nTest }, (_, i) => nTrain + i);
    const texts = [...train.traces, ...test.traces].map((t) => promptText(t));
    const testTexts = texts.slice(nTrain);
    // Labels and costs of the test file in the train file's tier order (cheapest first).
    const testLabels = tiers.map((tier) => test!.labels[test!.tiers.indexOf(tier)]!);
    const labels = tiers.map((_, t) => [...train.labels[t]!, ...testLabels[t]!]);
    const testCosts = tiers.map((tier) => test!.costTable.costs[tier]!);
    const groups = train.groups;

    const identity = encoderIdentity(options.model);
    store = await openStoreReadOnly(identity, options.storeDir, options.trainFile);
    const features = createFeatureSource(store, [...train.hashes, ...test.hashes]);
    const finalLayer = features.lastLayers - 1;
    const latencyTexts = testTexts.slice(0, options.latencySamples ?? 50);

    const needsEncoder = methods.includes('probes') || methods.includes('encoder-last-lr');
    if (needsEncoder && !encoder) {
      encoder = await EncoderHost.create({ modelPath: resolveCachedModel(identity.name).path });
    }
    const needsSentence = methods.some((m) => m.startsWith('sentence-'));
    let sentenceMatrix: ReturnType<typeof stackRows> | undefined;
    if (needsSentence) {
      sentence ??= await createSentenceEncoder(options.sentenceModel ? { model: options.sentenceModel } : {});
      const vectors: Float32Array[] = [];
      const step = 256;
      for (let start = 0; start < texts.length; start += step) {
        progress('sentence embeddings', start, texts.length);
        vectors.push(...(await sentence.embed(texts.slice(start, start + step))));
      }
      progress('sentence embeddings', texts.length, texts.length);
      sentenceMatrix = stackRows(vectors, sentence.dim);
    }

    const results: Record<string, MethodResult> = {};
    const models: Record<string, BaselineModel> = {};
    const curves: BenchCurves = { deferral: {}, calibration: {}, q_weak: 0, q_strong: 0, q_oracle: 0 };
    const base = (method: BenchMethod): Omit<BaselineModel, 'featurizer' | 'head'> => ({
      format: 'mechroute-baseline',
      version: 1,
      method: method as BaselineModel['method'],
      tiers,
      trained_on: { traces: options.trainFile, rows: nTrain },
    });
    // A fresh generator per method: each method's fit is the same whichever others run with it.
    const fitOptions = () => ({ rng: createRng(seed), reference, ...(groups ? { groups } : {}) });

    for (const [m, method] of methods.entries()) {
      progress(`training ${method}`, m, methods.length);
      const started = performance.now();
      let fitted: FittedHead;
      let scorer: TierScorer;
      let describe: string;
      switch (method) {
        case 'probes': {
          const probes = fitProbes({ features, labels, reference }, trainRows, {
            rng: createRng(seed),
            candidates: allCandidates(features),
            mlp: false,
            ...(options.probeLayers
              ? { layers: options.probeLayers, pooling: options.probePooling ?? 'last' }
              : {}),
            ...(groups ? { groups } : {}),
          });
          const { layers, pooling } = probes;
          const head = linearHeadOf(probes, tiers);
          fitted = { predict: (rows) => probes.predict(rows).linear, head };
          // The probes as the router runs them: prefill to the deepest chosen layer, then the linear heads.
          const probeEncoder = encoder!;
          scorer = {
            method,
            tiers,
            async score(text) {
              const { vector, tokens } = await encoderFeatures(probeEncoder, text, layers, pooling);
              return { tiers: predictLinearHead(head, vector), encoderTokens: tokens };
            },
          };
          describe = `layers ${layers.join('+')} (${pooling})`;
          break;
        }
        case 'encoder-last-lr': {
          fitted = fitLinearHead(features.layer(finalLayer, 'last'), labels, tiers, trainRows, fitOptions());
          const model: BaselineModel = {
            ...base(method),
            featurizer: {
              kind: 'encoder',
              model: identity.name,
              sha256: identity.sha256,
              layer: finalLayer,
              pooling: 'last',
              dim: features.width,
            },
            head: fitted.head,
          };
          scorer = baselineScorer(model, { encoder: encoder! });
          models[method] = model;
          describe = `final-norm last-token vector (layer ${finalLayer}, ${features.width} dims)`;
          break;
        }
        case 'tfidf-lr': {
          const tfidf = fitTfidf(texts.slice(0, nTrain));
          const x = stackRows(
            texts.map((t) => tfidfVector(tfidf, t)),
            tfidf.terms.length,
          );
          fitted = fitLinearHead(x, labels, tiers, trainRows, fitOptions());
          const model: BaselineModel = {
            ...base(method),
            featurizer: { kind: 'tfidf', tfidf },
            head: fitted.head,
          };
          scorer = baselineScorer(model, {});
          models[method] = model;
          describe = `${tfidf.terms.length} word 1–2-gram + char 3–5-gram terms`;
          break;
        }
        case 'sentence-lr':
        case 'sentence-knn': {
          fitted =
            method === 'sentence-lr'
              ? fitLinearHead(sentenceMatrix!, labels, tiers, trainRows, fitOptions())
              : fitKnnHead(sentenceMatrix!, labels, trainRows, { k: options.knnK ?? 25 });
          const model: BaselineModel = {
            ...base(method),
            featurizer: {
              kind: 'sentence',
              model: sentence!.name,
              sha256: sentence!.sha256,
              dim: sentence!.dim,
            },
            head: fitted.head,
          };
          scorer = baselineScorer(model, { sentence: sentence! });
          models[method] = model;
          describe = `${sentence!.name} (${sentence!.dim} dims)${method === 'sentence-knn' ? `, k = ${options.knnK ?? 25}` : ''}`;
          break;
        }
      }
      const trainMs = performance.now() - started;
      const probs = fitted.predict(testRows);
      progress(`timing ${method}`, m, methods.length);
      const latency = await measureLatency(scorer, latencyTexts);
      const local = testRows.map((_, k) => k);
      const metrics = headMetrics(tiers, probs, testLabels, testCosts, local, reference);
      results[method] = {
        ...routingEvalMetrics(nTest, metrics),
        latency_ms_p50: latency.p50,
        latency_ms_p95: latency.p95,
        train_ms: Math.round(trainMs),
        features: describe,
      };
      Object.assign(curves, methodCurves(curves, method, probs, testLabels, testCosts, reference));
    }
    progress('done', methods.length, methods.length);
    return {
      train_file: options.trainFile,
      test_file: options.testFile,
      n_train: nTrain,
      n_test: nTest,
      tiers,
      weak_tier: tiers[reference]!,
      strong_tier: tiers[tiers.length - 1]!,
      dropped: { train: droppedOf(train), test: droppedOf(test) },
      latency_samples: latencyTexts.length,
      methods: results,
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

export function checkMethods(names: readonly string[]): BenchMethod[] {
  const unknown = names.filter((n) => !(BENCH_METHODS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new TrainingDataError(`unknown method ${unknown.join(', ')} (known: ${BENCH_METHODS.join(', ')})`);
  }
  return names as BenchMethod[];
}
