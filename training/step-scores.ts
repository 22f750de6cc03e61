import { z } from 'zod';
import { auroc } from '../src/metrics/classification.js';
import { applyCalibration, fitCalibration } from '../src/probes/calibration.js';
import { fitLogisticCV, logisticLogits } from '../src/probes/logistic-regression.js';
import type { FeatureMatrix } from '../src/probes/matrix.js';
import { groupKFold, mapFolds } from '../src/probes/splits.js';
import { applyStandardizer, fitStandardizer } from '../src/probes/standardizer.js';
import { createRng } from '../src/seeded-rng.js';
import type { StepExample } from '../src/steps/step-examples.js';
import { holdOut } from './fit-probes.js';

/**
 * How well step probes rank step prefixes: AUROC by step index, and out-of-fold scores over every
 * problem (the estimate the offline simulation reads when the held-out split alone is too small).
 */
export interface StepAurocRow {
  k: number;
  n: number;
  auroc: number | null;
  base_rate: number | null;
  /** The same trajectories scored by their k = 0 (request-level) prediction: what the steps add. */
  request_auroc: number | null;
}

/** One out-of-fold prediction: P(the tier's trajectory ends correct) after k steps of a problem. */
export const StepScoreSchema = z.object({
  problem: z.string().min(1),
  tier: z.string().min(1),
  k: z.number().int().nonnegative(),
  p: z.number().min(0).max(1),
});
export type StepScore = z.infer<typeof StepScoreSchema>;

/**
 * Out-of-fold calibrated scores for every row: group k-fold over problems; in each fold, per tier, the
 * standardizer and probe see only the other folds' problems (λ by inner group CV), and Platt scaling a
 * held-out 15 % of those problems.
 */
export function outOfFoldScores(
  raw: FeatureMatrix,
  rows: readonly StepExample[],
  tiers: readonly string[],
  options: { folds: number; innerFolds: number; seed: number; lambdas: readonly number[] },
): Float64Array {
  const problemsOf = rows.map((r) => r.problem);
  const labels = rows.map((r) => r.label);
  const oof = new Float64Array(rows.length).fill(Number.NaN);
  const outer = groupKFold(problemsOf, options.folds, createRng(options.seed + 10));
  for (const [f, fold] of outer.entries()) {
    const x = applyStandardizer(fitStandardizer(raw, { rows: fold.train }), raw);
    for (const tier of tiers) {
      const tierRows = fold.train.filter((i) => rows[i]!.tier === tier);
      const test = fold.test.filter((i) => rows[i]!.tier === tier);
      if (test.length === 0) continue;
      const { kept, held } = holdOut(tierRows, 0.15, createRng(options.seed + 20 + f), problemsOf);
      const inner = mapFolds(
        groupKFold(
          kept.map((i) => problemsOf[i]!),
          Math.min(options.innerFolds, new Set(kept.map((i) => problemsOf[i]!)).size),
          createRng(options.seed + 30 + f),
        ),
        kept,
      );
      const fit = fitLogisticCV(x, labels, { folds: inner, lambdas: options.lambdas });
      const calibration = fitCalibration(
        'platt',
        logisticLogits(fit.model, x, held),
        held.map((i) => labels[i]!),
      );
      const logits = logisticLogits(fit.model, x, test);
      test.forEach((i, k) => {
        oof[i] = applyCalibration(calibration, logits[k]!);
      });
    }
  }
  return oof;
}

const finite = (v: number) => (Number.isFinite(v) ? v : null);

/** AUROC of the prefixes with exactly k steps, for every k present, next to the k = 0 score's AUROC. */
export function stepAurocByK(rows: readonly StepExample[], probs: ArrayLike<number>): StepAurocRow[] {
  const requestScore = new Map<string, number>();
  rows.forEach((r, i) => {
    if (r.k === 0) requestScore.set(`${r.problem}\u0000${r.tier}`, probs[i]!);
  });
  const maxK = rows.reduce((m, r) => Math.max(m, r.k), 0);
  const out: StepAurocRow[] = [];
  for (let k = 0; k <= maxK; k += 1) {
    const at = rows.flatMap((r, i) => (r.k === k ? [i] : []));
    if (at.length === 0) continue;
    const labels = at.map((i) => rows[i]!.label);
    const request = at.map(
      (i) => requestScore.get(`${rows[i]!.problem}\u0000${rows[i]!.tier}`) ?? Number.NaN,
    );
    out.push({
      k,
      n: at.length,
      auroc: finite(
        auroc(
          at.map((i) => probs[i]!),
          labels,
        ),
      ),
      base_rate: labels.filter(Boolean).length / labels.length,
      request_auroc: request.some(Number.isNaN) ? null : finite(auroc(request, labels)),
    });
  }
  return out;
}
