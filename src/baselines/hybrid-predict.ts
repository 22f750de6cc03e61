import { InvalidProbeInputError } from '../errors.js';
import type { HybridHead, ProbeBundle } from '../probes/probe-bundle.js';
import { tfidfVector } from '../text/tfidf.js';
import { predictLinearHead } from './baseline-model.js';

/**
 * The hybrid head of a probe bundle (probe-bundle.ts, `hybrid`): P(success | tier) from the bundle's
 * feature vector and the prompt's text together. Pure, like `predictProbes`.
 */
/** Log-odds of a probability clipped to [1e-4, 1 − 1e-4]: what a stacker reads of each base's P. */
export const clippedLogit = (p: number): number => {
  const q = Math.min(1 - 1e-4, Math.max(1e-4, p));
  return Math.log(q / (1 - q));
};

/** The stacker's input order: the probes' log-odds for every tier, then the text's. */
export function stackedLogits(
  tiers: readonly string[],
  probes: Record<string, number>,
  text: Record<string, number>,
) {
  return [...tiers.map((t) => clippedLogit(probes[t]!)), ...tiers.map((t) => clippedLogit(text[t]!))];
}

export function predictHybridHead(
  hybrid: HybridHead,
  features: ArrayLike<number>,
  text: string,
): Record<string, number> {
  const tiers = hybrid.stacker.tiers.map((t) => t.id);
  const probes = predictLinearHead(hybrid.probes, features);
  const words = predictLinearHead(hybrid.text, tfidfVector(hybrid.tfidf, text));
  return predictLinearHead(hybrid.stacker, stackedLogits(tiers, probes, words));
}

/** Calibrated P(success) per tier of one prompt: its feature vector (the bundle's layers) and its text. */
export function predictHybrid(
  bundle: ProbeBundle,
  features: ArrayLike<number>,
  text: string,
): Record<string, number> {
  if (!bundle.hybrid)
    throw new InvalidProbeInputError('the probe bundle has no hybrid head (train it with --hybrid)');
  return predictHybridHead(bundle.hybrid, features, text);
}
