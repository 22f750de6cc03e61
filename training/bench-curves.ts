import { calibrationBins } from '../src/metrics/classification.js';
import { type DeferralCurve, deferralCurve } from '../src/metrics/routing.js';
import type { BenchCurves } from './bench-routing.js';

/** Deferral and calibration curves of one method, added to `curves`. */
export function methodCurves(
  curves: BenchCurves,
  method: string,
  probs: readonly Float64Array[],
  labels: readonly (readonly (boolean | null)[])[],
  costs: readonly (readonly number[])[],
  reference: number,
): BenchCurves {
  const strong = labels.length - 1;
  const rows = labels[reference]!.flatMap((w, i) =>
    w === null || labels[strong]![i] === null || labels[strong]![i] === undefined ? [] : [i],
  );
  const curve: DeferralCurve | undefined =
    strong > reference && rows.length > 0
      ? deferralCurve({
          pStrongNeeded: rows.map((i) => 1 - probs[reference]![i]!),
          weakCorrect: rows.map((i) => labels[reference]![i] === true),
          strongCorrect: rows.map((i) => labels[strong]![i] === true),
          costs: {
            weak: rows.map((i) => costs[reference]![i]!),
            strong: rows.map((i) => costs[strong]![i]!),
          },
        })
      : undefined;
  const known = labels[reference]!.flatMap((l, i) => (l === null || l === undefined ? [] : [i]));
  return {
    deferral: {
      ...curves.deferral,
      ...(curve ? { [method]: curve.points.map((p) => ({ x: p.strongShare, y: p.quality })) } : {}),
    },
    calibration: {
      ...curves.calibration,
      [method]: calibrationBins(
        known.map((i) => Math.min(1, Math.max(0, probs[reference]![i]!))),
        known.map((i) => labels[reference]![i] === true),
      ),
    },
    q_weak: curve?.qWeak ?? curves.q_weak,
    q_strong: curve?.qStrong ?? curves.q_strong,
    q_oracle: curve?.qOracle ?? curves.q_oracle,
  };
}
