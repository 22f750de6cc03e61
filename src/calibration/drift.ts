import { InvalidMetricInputError } from '../errors.js';
import { costPerCorrect } from '../metrics/routing.js';
import { SINGLE_CLASS } from '../policy/calibration-record.js';
import type { Policy, RoutePrediction, RouteTier } from '../policy/policy-schema.js';
import { route } from '../policy/route.js';

/**
 * `drift`'s core: route recent labelled requests with a calibrated policy exactly as the server would
 * (`route()`), and hold the realized quality and cost per correct outcome of each task class against
 * what calibration promised. A row counts only when it has the outcome of the tier the policy picks
 * (traces exported from feedback carry the served tier's outcome only). Pure.
 */
export interface DriftRow {
  prediction: RoutePrediction;
  /** Tier → success; absent where unknown. */
  outcomes: Readonly<Record<string, boolean | undefined>>;
  /** Tier → USD to answer this row with it. */
  costs: Readonly<Record<string, number>>;
}

export interface DriftOptions {
  /** Flag a class whose quality falls more than this below the promise (absolute, e.g. 0.03). */
  qualityTolerance: number;
  /** Flag a class whose cost per correct rises more than this share above the promise (e.g. 0.25). */
  costTolerance: number;
  /** Classes with fewer scored rows are reported but never flagged. */
  minRows: number;
}

export interface ClassDrift {
  name: string;
  /** Rows scored (the chosen tier's outcome known). */
  n: number;
  /** Rows of this class without the chosen tier's outcome. */
  unscored: number;
  quality: number | null;
  cost_per_correct: number | null;
  expected_quality: number;
  expected_quality_ci: [number, number];
  expected_cost_per_correct: number | null;
  quality_within_ci: boolean | null;
  status: 'ok' | 'drift' | 'too few rows';
  reasons: string[];
}

export interface DriftReport {
  policy_version: string;
  classes: ClassDrift[];
  drifted: boolean;
}

export function checkDrift(
  policy: Policy,
  tiers: readonly RouteTier[],
  rows: readonly DriftRow[],
  options: DriftOptions,
): DriftReport {
  const record = policy.calibration;
  if (!record) {
    throw new InvalidMetricInputError(
      'drift',
      `policy ${policy.version} has no calibration record (write one with mechroute calibrate)`,
    );
  }
  const tally = new Map<string, { n: number; unscored: number; correct: number; cost: number }>();
  for (const row of rows) {
    const predicted = row.prediction.task_class?.name;
    const name =
      record.per_class && predicted !== undefined && predicted in record.classes ? predicted : SINGLE_CLASS;
    let t = tally.get(name);
    if (!t) {
      t = { n: 0, unscored: 0, correct: 0, cost: 0 };
      tally.set(name, t);
    }
    const decision = route({ prediction: row.prediction, tiers, input_tokens: 0 }, policy, 0);
    const outcome = row.outcomes[decision.tier];
    const cost = row.costs[decision.tier];
    if (outcome === undefined || cost === undefined) {
      t.unscored += 1;
      continue;
    }
    t.n += 1;
    t.correct += outcome ? 1 : 0;
    t.cost += cost;
  }
  const classes: ClassDrift[] = [];
  for (const [name, t] of [...tally].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const promise = record.classes[name]!;
    const quality = t.n > 0 ? t.correct / t.n : null;
    const cpcRaw = costPerCorrect(t.cost, t.correct);
    const cpc = t.n > 0 && Number.isFinite(cpcRaw) ? cpcRaw : null;
    const reasons: string[] = [];
    let status: ClassDrift['status'] = 'ok';
    if (t.n < options.minRows) {
      status = 'too few rows';
      reasons.push(`${t.n} scored rows < ${options.minRows}: not judged`);
    } else {
      if (quality! < promise.quality - options.qualityTolerance) {
        reasons.push(
          `quality ${quality!.toFixed(4)} is more than ${options.qualityTolerance} below the promised ${promise.quality.toFixed(4)}`,
        );
      }
      if (promise.cost_per_correct !== null) {
        const limit = promise.cost_per_correct * (1 + options.costTolerance);
        if (cpc === null || cpc > limit) {
          reasons.push(
            `cost per correct ${cpc === null ? '∞' : cpc.toExponential(3)} exceeds the promised ` +
              `${promise.cost_per_correct.toExponential(3)} by more than ${(options.costTolerance * 100).toFixed(0)}%`,
          );
        }
      }
      if (reasons.length > 0) status = 'drift';
    }
    classes.push({
      name,
      n: t.n,
      unscored: t.unscored,
      quality,
      cost_per_correct: cpc,
      expected_quality: promise.quality,
      expected_quality_ci: promise.quality_ci,
      expected_cost_per_correct: promise.cost_per_correct,
      quality_within_ci:
        quality === null ? null : quality >= promise.quality_ci[0] && quality <= promise.quality_ci[1],
      status,
      reasons,
    });
  }
  return { policy_version: policy.version, classes, drifted: classes.some((c) => c.status === 'drift') };
}
