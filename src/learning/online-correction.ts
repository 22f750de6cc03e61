import { z } from 'zod';
import { MechrouteError } from '../errors.js';

/**
 * Online learning from feedback: a per-tier correction on the logit of the tier's P(success),
 *
 *   logit P'_t(x) = logit P_t(x) + w_t · z(x) + b_t,
 *
 * updated by one bounded SGD step on log loss per reported outcome. Pure: no I/O, no clock.
 *
 * z(x) is a fixed low-dimensional projection of the prompt's features: the logits of every head of the
 * probe bundle (calibrated P per tier, as logits), keyed by tier id. Why not the full standardised
 * feature vector (640–2,560 dims):
 * - a correction learnt from tens to hundreds of outcomes has K + 1 parameters (K tiers) instead of one
 *   per feature, so it cannot chase noise in directions no outcome constrains;
 * - a new tier's head fit on few anchors is noisiest in its direction, and the other heads (fit on full
 *   data) span the directions that predict success across models (the low-rank transfer argument of
 *   issue 13): the correction can borrow them;
 * - what each decision must keep for its later update is K numbers (its P per tier), not kilobytes of
 *   activations, so decisions can be kept for as long as feedback may come;
 * - keyed by tier id, it survives a hot reload that adds or removes a tier: a new head starts at weight 0,
 *   a removed head's weight is ignored; a full-width w would be void whenever the bundle changed.
 * The cost: it can only reweigh directions the bundle's heads already read.
 */

export interface LearningSettings {
  /** SGD step size. */
  learning_rate: number;
  /** L2 pull toward 0 (per step, scaled by the learning rate). */
  l2: number;
  /** The L2 norm of one update's change to (w, b) is clipped to this. */
  max_step: number;
}

/** One tier's correction: weights keyed by head (tier id), its bias, and how many updates built it. */
export interface TierCorrection {
  weights: Readonly<Record<string, number>>;
  bias: number;
  updates: number;
}

export type Corrections = Readonly<Record<string, TierCorrection>>;

const TierCorrectionSchema = z.object({
  weights: z.record(z.string(), z.number()),
  bias: z.number(),
  updates: z.number().int().min(0),
});
const CorrectionsSchema = z.record(z.string(), TierCorrectionSchema);

/** Corrections read back from the state file, validated (a hand-edited or torn row is refused). */
export function correctionsFromJson(value: unknown): Record<string, TierCorrection> {
  const parsed = CorrectionsSchema.safeParse(value);
  if (!parsed.success) {
    throw new MechrouteError(
      'MR_ERR_STATE_INVALID',
      `stored online-learning corrections are invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

/** A head's logit is clipped here, so a P of exactly 0 or 1 cannot make one update unbounded. */
export const MAX_ABS_LOGIT = 8;

export const zeroCorrection = (): TierCorrection => ({ weights: {}, bias: 0, updates: 0 });

const clip = (v: number, bound: number) => Math.max(-bound, Math.min(bound, v));

export function logit(p: number): number {
  const q = Math.min(1 - 1e-6, Math.max(1e-6, p));
  return clip(Math.log(q / (1 - q)), MAX_ABS_LOGIT);
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** z(x): the logit of every head's P(success), keyed by tier id (heads without a finite P left out). */
export function projection(tiers: Readonly<Record<string, number>>): Record<string, number> {
  const z: Record<string, number> = {};
  for (const [id, p] of Object.entries(tiers)) if (Number.isFinite(p)) z[id] = logit(p);
  return z;
}

/** w · z + b, over the heads both know. */
export function correctionLogit(correction: TierCorrection, z: Readonly<Record<string, number>>): number {
  let sum = correction.bias;
  for (const [id, w] of Object.entries(correction.weights)) {
    const v = z[id];
    if (v !== undefined) sum += w * v;
  }
  return sum;
}

/** Every tier's P with its correction applied (tiers without one, or without a finite P, unchanged). */
export function applyCorrections(
  tiers: Readonly<Record<string, number>>,
  corrections: Corrections,
): Record<string, number> {
  const z = projection(tiers);
  const out: Record<string, number> = { ...tiers };
  for (const [id, p] of Object.entries(tiers)) {
    const correction = corrections[id];
    if (!correction || !Number.isFinite(p)) continue;
    out[id] = sigmoid(logit(p) + correctionLogit(correction, z));
  }
  return out;
}

/** ‖(w, b)‖₂: how far a correction has moved the tier's logit scale from the head's. */
export function correctionNorm(correction: TierCorrection): number {
  let sum = correction.bias * correction.bias;
  for (const w of Object.values(correction.weights)) sum += w * w;
  return Math.sqrt(sum);
}

export interface UpdateResult {
  correction: TierCorrection;
  /** ‖Δ(w, b)‖₂ after clipping (≤ max_step). */
  step: number;
  /** P' of the tier before the update. */
  p: number;
}

/**
 * One SGD step on the log loss of `success` for `tier`, at the decision's uncorrected P per tier:
 *   g = (P' − y)·(z, 1) + l2·(w, b),   Δ = −learning_rate · g,   clipped to ‖Δ‖ ≤ max_step.
 * Returns undefined when the decision has no finite P for the tier (nothing to correct).
 */
export function updateCorrection(
  current: TierCorrection | undefined,
  decided: Readonly<Record<string, number>>,
  tier: string,
  success: boolean,
  settings: LearningSettings,
): UpdateResult | undefined {
  const base = decided[tier];
  if (base === undefined || !Number.isFinite(base)) return undefined;
  const correction = current ?? zeroCorrection();
  const z = projection(decided);
  const p = sigmoid(logit(base) + correctionLogit(correction, z));
  const error = p - (success ? 1 : 0);
  const ids = [...new Set([...Object.keys(z), ...Object.keys(correction.weights)])].sort();
  const delta = new Map<string, number>();
  for (const id of ids) {
    const w = correction.weights[id] ?? 0;
    delta.set(id, -settings.learning_rate * (error * (z[id] ?? 0) + settings.l2 * w));
  }
  let biasDelta = -settings.learning_rate * (error + settings.l2 * correction.bias);
  let norm = biasDelta * biasDelta;
  for (const d of delta.values()) norm += d * d;
  norm = Math.sqrt(norm);
  const scale = norm > settings.max_step ? settings.max_step / norm : 1;
  biasDelta *= scale;
  const weights: Record<string, number> = {};
  for (const id of ids) weights[id] = (correction.weights[id] ?? 0) + delta.get(id)! * scale;
  return {
    correction: { weights, bias: correction.bias + biasDelta, updates: correction.updates + 1 },
    step: norm * scale,
    p,
  };
}
