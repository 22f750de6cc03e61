import type { SentenceEncoder } from '../src/baselines/sentence-encoder.js';
import type { EncoderHost, Pooling as EncoderPooling } from '../src/encoder/encoder-host.js';
import type { Pooling } from '../src/probes/layer-selection.js';
import { concatColumns, type FeatureMatrix } from '../src/probes/matrix.js';
import type { Rng } from '../src/seeded-rng.js';
import { type FittedKnnHead, fitKnnHead } from './fit-baselines.js';
import { allCandidates, fitProbes } from './fit-probes.js';
import { fitHybrid, tfidfFeatures } from './hybrid.js';
import {
  type Featurizer,
  type FittedSignal,
  fitClassPriorSignal,
  fitLinearSignal,
  fitTrunkSignal,
  type SignalData,
  type SignalFitter,
  stackSignals,
} from './router-signals.js';
import type { FeatureSource } from './training-data.js';

/**
 * The router signals `bench routing` compares, each as a fitter over the bench's rows (train then test):
 *
 * | method | features (request time) | head |
 * |---|---|---|
 * | probes | encoder blocks chosen by inner CV | per-tier L2 logistic + Platt |
 * | encoder-last-lr | the encoder's final-norm last-token vector | same |
 * | probes-multi | several blocks (MULTI_BLOCKS), last-token and mean pooling side by side | same |
 * | probes-trunk | the same multi-block features | one MLP trunk shared by the tiers, a head per tier |
 * | probes+task | the probes and a task-class head over the encoder features | stacked |
 * | hybrid | the probes and TF-IDF | stacked (reads text: a hybrid) |
 * | tfidf-lr, sentence-lr, sentence-knn | TF-IDF / all-MiniLM-L6-v2 | logistic / kNN |
 * | task-prior | a task-class head over TF-IDF → that class's training success rates | — |
 * | text-stack | TF-IDF LR and sentence LR | stacked (the text-only control for `hybrid`) |
 */
export const BENCH_METHODS = [
  'probes',
  'encoder-last-lr',
  'probes-multi',
  'probes-trunk',
  'probes+task',
  'hybrid',
  'tfidf-lr',
  'sentence-lr',
  'sentence-knn',
  'task-prior',
  'text-stack',
] as const;
export type BenchMethod = (typeof BENCH_METHODS)[number];

/** Methods that read no encoder activations: the yardsticks. */
export const TEXT_METHODS: readonly BenchMethod[] = [
  'tfidf-lr',
  'sentence-lr',
  'sentence-knn',
  'task-prior',
  'text-stack',
];

/** The multi-layer features: last-token and mean pooling of blocks spread over the depth (ablation, fixed a priori). */
export const MULTI_BLOCKS: readonly number[] = [4, 8, 12, 16];

/**
 * The sentence encoder reads a long prompt's last 256 tokens: the question of a few-shot prompt is at its
 * end, and its opening examples (all sentence-transformers' default would keep) are the same for every
 * question. Prompts that fit are read whole either way.
 */
export const SENTENCE_KEEP = 'tail';

export interface Block {
  layer: number;
  pooling: Pooling;
}

export interface SignalContext extends SignalData {
  texts: readonly string[];
  nTrain: number;
  features: FeatureSource;
  /** Per row: the task class a trace field names (for the task-class heads), when the traces have one. */
  classes?: readonly string[];
  encoder?: EncoderHost;
  sentence?: SentenceEncoder;
  sentenceMatrix?: FeatureMatrix;
  knnK: number;
  /** Fixed probe layers (else chosen by inner CV). */
  probeLayers?: readonly number[];
  probePooling?: 'last' | 'mean';
  /** The encoder's name and sha256, for saved models that run it. */
  identity?: { name: string; sha256: string };
}

export function blocksKey(blocks: readonly Block[]): string {
  return `encoder:${blocks.map((b) => `${b.layer}${b.pooling[0]}`).join('+')}`;
}

/** Prefill to the deepest block (early exit), then the pooled vectors side by side in `blocks` order. */
export function encoderFeaturizer(encoder: EncoderHost, blocks: readonly Block[]): Featurizer {
  const layers = [...new Set(blocks.map((b) => b.layer))].sort((a, b) => a - b);
  const poolings = new Set(blocks.map((b) => b.pooling));
  const pooling: EncoderPooling = poolings.size > 1 ? 'both' : blocks[0]!.pooling;
  return {
    key: blocksKey(blocks),
    async vector(text) {
      const [encoded] = await encoder.encode([text], { layers, pooling });
      const parts = blocks.map((b) => encoded![b.pooling]![layers.indexOf(b.layer)]!);
      const width = parts[0]!.length;
      const vector = new Float32Array(width * parts.length);
      for (const [k, v] of parts.entries()) vector.set(v, k * width);
      return { vector, tokens: encoded!.tokens };
    },
  };
}

export function blocksMatrix(features: FeatureSource, blocks: readonly Block[]): FeatureMatrix {
  const parts = blocks.map((b) => features.layer(b.layer, b.pooling));
  return parts.length === 1 ? parts[0]! : concatColumns(parts);
}

/** Fitters per method; shared inputs (TF-IDF, the probes' layer choice) are computed once, when first needed. */
export function createSignalFitters(context: SignalContext) {
  const trainRows = Array.from({ length: context.nTrain }, (_, i) => i);
  const cache = new Map<string, unknown>();
  const once = <T>(key: string, make: () => T): T => {
    if (!cache.has(key)) cache.set(key, make());
    return cache.get(key) as T;
  };
  const encoder = () => {
    if (!context.encoder) throw new Error('this method needs the encoder');
    return context.encoder;
  };
  const encoderLinear = (blocks: readonly Block[]): SignalFitter => {
    const x = once(blocksKey(blocks), () => blocksMatrix(context.features, blocks));
    return (rows, rng) => fitLinearSignal(encoderFeaturizer(encoder(), blocks), x, context, rows, rng);
  };
  const tfidf = () => once('tfidf', () => tfidfFeatures(context.texts, context.nTrain));
  const sentenceFeaturizer = (): Featurizer => {
    const sentence = context.sentence;
    if (!sentence || !context.sentenceMatrix) throw new Error('this method needs the sentence encoder');
    return {
      key: 'sentence',
      vector: async (text) => ({ vector: (await sentence.embed([text], { keep: SENTENCE_KEEP }))[0]! }),
      saved: {
        kind: 'sentence',
        model: sentence.name,
        sha256: sentence.sha256,
        dim: sentence.dim,
        keep: SENTENCE_KEEP,
      },
    };
  };
  /** The probes' layer choice, made once on every training row by inner CV (or fixed by the caller). */
  const probeBlocks = (rng: Rng): Block[] =>
    once('probe-blocks', () => {
      if (context.probeLayers) {
        return context.probeLayers.map((layer) => ({ layer, pooling: context.probePooling ?? 'last' }));
      }
      const fitted = fitProbes(context, trainRows, {
        rng,
        candidates: allCandidates(context.features),
        mlp: false,
        ...(context.groups ? { groups: context.groups } : {}),
      });
      return fitted.layers.map((layer) => ({ layer, pooling: fitted.pooling }));
    });
  const multiBlocks = (): Block[] =>
    MULTI_BLOCKS.filter((l) => l < context.features.meanLayers).flatMap((layer) => [
      { layer, pooling: 'last' as const },
      { layer, pooling: 'mean' as const },
    ]);
  const classPrior = (featurizer: () => Featurizer, x: () => FeatureMatrix): SignalFitter => {
    if (!context.classes) throw new Error('task-class methods need a class field in the traces');
    const classes = context.classes;
    return (rows) => fitClassPriorSignal(featurizer(), x(), classes, context, rows);
  };
  const encoderClassPrior = (rng: Rng) => {
    const blocks = probeBlocks(rng);
    return classPrior(
      () => encoderFeaturizer(encoder(), blocks),
      () => once(blocksKey(blocks), () => blocksMatrix(context.features, blocks)),
    );
  };
  const tfidfLinear: SignalFitter = (rows, rng) =>
    fitLinearSignal(tfidf().featurizer, tfidf().x, context, rows, rng);
  const sentenceLinear: SignalFitter = (rows, rng) =>
    fitLinearSignal(sentenceFeaturizer(), context.sentenceMatrix!, context, rows, rng);

  /** What each method is, in words, and its fitter (the rng seeds the one-off layer choice too). */
  return (method: BenchMethod, rng: Rng): { describe: string; fit: SignalFitter } => {
    const width = context.features.width;
    switch (method) {
      case 'probes': {
        const blocks = probeBlocks(rng);
        return {
          describe: `blocks ${blocks.map((b) => b.layer).join('+')} (${blocks[0]!.pooling}), chosen by inner CV`,
          fit: encoderLinear(blocks),
        };
      }
      case 'encoder-last-lr': {
        const layer = context.features.lastLayers - 1;
        const blocks: Block[] = [{ layer, pooling: 'last' }];
        const x = once(blocksKey(blocks), () => blocksMatrix(context.features, blocks));
        const saved = context.identity && {
          kind: 'encoder' as const,
          model: context.identity.name,
          sha256: context.identity.sha256,
          layer,
          pooling: 'last' as const,
          dim: width,
        };
        return {
          describe: `final-norm last-token vector (layer ${layer}, ${width} dims)`,
          fit: (rows, r) =>
            fitLinearSignal(
              { ...encoderFeaturizer(encoder(), blocks), ...(saved ? { saved } : {}) },
              x,
              context,
              rows,
              r,
            ),
        };
      }
      case 'probes-multi':
      case 'probes-trunk': {
        const blocks = multiBlocks();
        const x = once(blocksKey(blocks), () => blocksMatrix(context.features, blocks));
        const text = `blocks ${blocks
          .filter((b) => b.pooling === 'last')
          .map((b) => b.layer)
          .join(', ')} × last and mean (${blocks.length * width} dims)`;
        return method === 'probes-multi'
          ? { describe: text, fit: encoderLinear(blocks) }
          : {
              describe: `${text}, shared MLP trunk (32 units), one head per tier`,
              fit: (rows, r) => fitTrunkSignal(encoderFeaturizer(encoder(), blocks), x, context, rows, r),
            };
      }
      case 'probes+task': {
        const probes = encoderLinear(probeBlocks(rng));
        const prior = encoderClassPrior(rng);
        return {
          describe: 'stack of the probes and a task-class head over the same encoder features',
          fit: (rows, r) => stackSignals([probes, prior], context, rows, r),
        };
      }
      case 'hybrid': {
        const blocks = probeBlocks(rng);
        const x = once(blocksKey(blocks), () => blocksMatrix(context.features, blocks));
        return {
          describe: 'stack of the probes and TF-IDF LR (reads the text: a hybrid)',
          fit: (rows, r) =>
            fitHybrid({ featurizer: encoderFeaturizer(encoder(), blocks), x }, tfidf(), context, rows, r),
        };
      }
      case 'tfidf-lr':
        return {
          describe: `${tfidf().model.terms.length} word 1–2-gram + char 3–5-gram terms`,
          fit: tfidfLinear,
        };
      case 'sentence-lr':
        return { describe: `${context.sentence?.name} (${context.sentence?.dim} dims)`, fit: sentenceLinear };
      case 'sentence-knn':
        return {
          describe: `${context.sentence?.name} (${context.sentence?.dim} dims), k = ${context.knnK}`,
          fit: (rows): FittedSignal => {
            const featurizer = sentenceFeaturizer();
            return knnSignal(
              featurizer,
              fitKnnHead(context.sentenceMatrix!, context.labels, rows, { k: context.knnK }),
            );
          },
        };
      case 'task-prior':
        return {
          describe: 'task-class head over TF-IDF → the class’s training success rates',
          fit: classPrior(
            () => tfidf().featurizer,
            () => tfidf().x,
          ),
        };
      case 'text-stack':
        return {
          describe: 'stack of TF-IDF LR and sentence LR (text only)',
          fit: (rows, r) => stackSignals([tfidfLinear, sentenceLinear], context, rows, r),
        };
    }
  };
}

function knnSignal(featurizer: Featurizer, fitted: FittedKnnHead): FittedSignal {
  return {
    predict: fitted.predict,
    predictOne: (vectors) => fitted.predictOne(vectors.get(featurizer.key)!),
    featurizers: [featurizer],
    baselineHead: fitted.head,
  };
}
