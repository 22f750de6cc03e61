import type { Encoder } from '../encoder/encoder.js';
import type { EncodeCall } from '../encoder/encoder-host.js';
import { checkPromptWindow, type ProbeBundle } from '../probes/probe-bundle.js';
import { featureVector, predictProbes } from '../probes/probe-predict.js';
import { tfidfVector } from '../text/tfidf.js';
import { inSpan } from '../tracing.js';
import { type BaselineModel, predictBaseline } from './baseline-model.js';
import { predictHybrid } from './hybrid-predict.js';
import type { SentenceEncoder } from './sentence-encoder.js';

/**
 * What every router signal is, probes and text classifiers alike: prompt text → calibrated
 * P(success | tier) per tier id. The router's `policy.signal` and `mechroute bench routing` both go
 * through it, so a baseline is measured exactly as it would route.
 */
export interface TierScorer {
  /** e.g. `probes`, `tfidf-lr`, `sentence-knn`. */
  readonly method: string;
  /** Cheapest first. */
  readonly tiers: readonly string[];
  /** `call` bounds the encoder prefill, where the scorer runs one (deadline, abort, admission). */
  score(text: string, call?: EncodeCall): Promise<TierScore>;
}

export interface TierScore {
  tiers: Record<string, number>;
  /** Tokens the encoder read, when the method runs it (the router prices requests with them). */
  encoderTokens?: number;
  truncated?: boolean;
}

/**
 * The prompt's own token count, which a tier bills: the encoder's count unless it read only a window of
 * a longer prompt (`encoder.max_prompt_tokens`), when the whole prompt is counted again.
 */
export function promptTokens(
  encoder: Pick<Encoder, 'tokenize'>,
  text: string,
  encoded: { tokens: number; truncated: boolean },
): number {
  return encoded.truncated ? encoder.tokenize(text).length : encoded.tokens;
}

/**
 * The pooled activations of the given layers side by side (the probes' feature vector): one encoder
 * prefill, early exit at the deepest layer asked for, traced as the request's `mechroute.encoder` span.
 */
export async function encoderFeatures(
  encoder: Encoder,
  text: string,
  layers: readonly number[],
  pooling: 'last' | 'mean',
  call?: EncodeCall,
): Promise<{ vector: Float32Array; tokens: number; truncated: boolean }> {
  const [encoded] = await inSpan(
    'mechroute.encoder',
    { 'mechroute.layers': layers.join(',') },
    async (span) => {
      const out = await encoder.encode([text], { layers: [...layers], pooling }, call);
      span.setAttributes({
        'mechroute.encoder.tokens': out[0]!.tokens,
        'mechroute.encoder.truncated': out[0]!.truncated,
        'mechroute.encoder.queued_ms': out[0]!.queuedMs,
        'mechroute.encoder.decode_ms': out[0]!.decodeMs,
      });
      return out;
    },
  );
  const vector = featureVector(pooling === 'last' ? encoded!.last! : encoded!.mean!);
  return { vector, tokens: promptTokens(encoder, text, encoded!), truncated: encoded!.truncated };
}

/**
 * A scorer over a bundle's features: encoder prefill (early exit at the bundle's deepest layer, in the
 * prompt window its probes were trained on), then `predict` on the feature vector and the text.
 */
function bundleScorer(
  method: string,
  bundle: ProbeBundle,
  encoder: Encoder,
  predict: (vector: Float32Array, text: string) => Record<string, number>,
): TierScorer {
  checkPromptWindow(bundle, encoder.info.maxPromptTokens);
  const { layers, pooling } = bundle.features;
  return {
    method,
    tiers: bundle.tiers.map((t) => t.id),
    async score(text, call) {
      const { vector, tokens, truncated } = await encoderFeatures(encoder, text, layers, pooling, call);
      return { tiers: predict(vector, text), encoderTokens: tokens, truncated };
    },
  };
}

/** The probes: encoder prefill, then the bundle's probes. */
export function probeScorer(bundle: ProbeBundle, encoder: Encoder): TierScorer {
  return bundleScorer('probes', bundle, encoder, (vector) => predictProbes(bundle, vector).tiers);
}

/**
 * The bundle's hybrid head (`policy.signal: hybrid`): the same encoder prefill as the probes, plus the
 * prompt's TF-IDF vector, stacked (src/baselines/hybrid-predict.ts).
 */
export function hybridScorer(bundle: ProbeBundle, encoder: Encoder): TierScorer {
  return bundleScorer('hybrid', bundle, encoder, (vector, text) => predictHybrid(bundle, vector, text));
}

export interface BaselineScorerDeps {
  /** Needed by `sentence-*` models. */
  sentence?: SentenceEncoder;
  /** Needed by `encoder-last-lr`. */
  encoder?: Encoder;
}

/** A saved text-classifier router; throws at construction when the model's feature extractor is missing. */
export function baselineScorer(model: BaselineModel, deps: BaselineScorerDeps): TierScorer {
  const { featurizer } = model;
  let features: (
    text: string,
    call?: EncodeCall,
  ) => Promise<{ vector: ArrayLike<number>; tokens?: number; truncated?: boolean }>;
  switch (featurizer.kind) {
    case 'tfidf':
      features = async (text) => ({ vector: tfidfVector(featurizer.tfidf, text) });
      break;
    case 'sentence': {
      const sentence = deps.sentence;
      if (!sentence)
        throw new Error(`baseline ${model.method} needs the sentence encoder ${featurizer.model}`);
      if (sentence.sha256 !== featurizer.sha256) {
        throw new Error(
          `baseline ${model.method} was trained with ${featurizer.model} (${featurizer.sha256.slice(0, 12)}…), ` +
            `not ${sentence.name} (${sentence.sha256.slice(0, 12)}…)`,
        );
      }
      const keep = featurizer.keep ?? 'head';
      features = async (text) => ({ vector: (await sentence.embed([text], { keep }))[0]! });
      break;
    }
    case 'encoder': {
      const encoder = deps.encoder;
      if (!encoder) throw new Error(`baseline ${model.method} needs the encoder ${featurizer.model}`);
      features = (text, call) => encoderFeatures(encoder, text, [featurizer.layer], 'last', call);
      break;
    }
  }
  return {
    method: model.method,
    tiers: model.tiers,
    async score(text, call) {
      const { vector, tokens, truncated } = await features(text, call);
      return {
        tiers: predictBaseline(model, vector),
        ...(tokens === undefined ? {} : { encoderTokens: tokens }),
        ...(truncated === undefined ? {} : { truncated }),
      };
    },
  };
}
