import type { LinearHead } from '../src/baselines/baseline-model.js';
import type { FeatureMatrix } from '../src/probes/matrix.js';
import type { HybridHead } from '../src/probes/probe-bundle.js';
import type { Rng } from '../src/seeded-rng.js';
import { fitTfidf, type TfidfModel, tfidfVector } from '../src/text/tfidf.js';
import { stackRows } from './fit-baselines.js';
import {
  type Featurizer,
  type FittedSignal,
  fitLinearSignal,
  type SignalData,
  type StackedSignal,
  stackSignals,
} from './router-signals.js';

/**
 * The hybrid router (`policy.signal: hybrid`): the probes over the encoder's features and a TF-IDF
 * logistic router over the prompt's words, stacked (router-signals.ts) — one procedure for `bench
 * routing`'s `hybrid` and for the hybrid head `mechroute train --hybrid` writes into a bundle.
 */
export interface TfidfFeatures {
  model: TfidfModel;
  /** Every row's TF-IDF vector. */
  x: FeatureMatrix;
  featurizer: Featurizer;
}

/** TF-IDF fitted on the training rows' texts, every row's vector, and its featurizer. */
export function tfidfFeatures(texts: readonly string[], trainRows: number): TfidfFeatures {
  const model = fitTfidf(texts.slice(0, trainRows));
  return {
    model,
    x: stackRows(
      texts.map((t) => tfidfVector(model, t)),
      model.terms.length,
    ),
    featurizer: {
      key: 'tfidf',
      vector: async (text) => ({ vector: tfidfVector(model, text) }),
      saved: { kind: 'tfidf', tfidf: model },
    },
  };
}

export interface FittedHybrid extends StackedSignal {
  /** The bundle's `hybrid` section. */
  head: HybridHead;
}

export function fitHybrid(
  encoder: { featurizer: Featurizer; x: FeatureMatrix },
  tfidf: TfidfFeatures,
  data: SignalData,
  trainRows: readonly number[],
  rng: Rng,
): FittedHybrid {
  const stacked = stackSignals(
    [
      (rows, r) => fitLinearSignal(encoder.featurizer, encoder.x, data, rows, r),
      (rows, r) => fitLinearSignal(tfidf.featurizer, tfidf.x, data, rows, r),
    ],
    data,
    trainRows,
    rng,
  );
  const stage = (signal: FittedSignal): LinearHead => {
    const head = signal.baselineHead;
    if (head?.kind !== 'linear') throw new Error('a hybrid stage is a linear head');
    return head;
  };
  return {
    ...stacked,
    head: {
      probes: stage(stacked.bases[0]!),
      tfidf: tfidf.model,
      text: stage(stacked.bases[1]!),
      stacker: stage(stacked.stacker),
    },
  };
}
