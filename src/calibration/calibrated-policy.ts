import { stringify } from 'yaml';
import { type CalibrationRecord, type ClassPromise, SINGLE_CLASS } from '../policy/calibration-record.js';
import { type Policy, type PolicyInput, PolicySchema } from '../policy/policy-schema.js';
import type { CalibrationResult, ClassCalibration } from './calibrate.js';

/**
 * The policy file `calibrate` writes: a `threshold` policy whose thresholds are the chosen operating
 * points (the pooled one for requests without a known class, one per class under `threshold.classes`),
 * a new version, and the calibration record. `threshold.default` is 1: a tier the calibration did not
 * score (no outcomes in the golden traces) is then never chosen below the frontier.
 */
export interface PolicyMeta {
  date: Date;
  traces: { file: string; sha256: string; n: number };
  probes: { file: string; sha256: string };
  bootstrap: CalibrationRecord['bootstrap'];
  costs: CalibrationRecord['costs'];
  /** The policy to start from (its kind-independent settings are kept); default: the default policy. */
  base?: PolicyInput;
  /** Default: cal-<UTC timestamp>-<first 8 of the traces' sha256>. */
  version?: string;
  /** The signal the thresholds were calibrated on (default the base policy's). */
  signal?: Policy['signal'];
}

const finiteOrNull = (v: number) => (Number.isFinite(v) ? v : null);

export function classPromise(c: ClassCalibration): ClassPromise {
  return {
    n: c.n,
    frontier_quality: c.frontier.quality,
    target_quality: c.targetQuality,
    reached: c.reached,
    thresholds: c.chosen.thresholds,
    quality: c.chosen.quality,
    quality_ci: c.chosen.ci.quality,
    cost_per_correct: finiteOrNull(c.chosen.costPerCorrect),
    cost_per_correct_ci: c.chosen.ci.costPerCorrect,
    frontier_cost_per_correct: finiteOrNull(c.frontier.costPerCorrect),
    tier_shares: c.chosen.shares,
  };
}

export function defaultVersion(date: Date, tracesSha256: string): string {
  const stamp = date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `cal-${stamp}-${tracesSha256.slice(0, 8)}`;
}

/**
 * @param pooled every row as one class (its thresholds serve requests of no known class)
 * @param perClass one calibration per task class, when asked for
 */
export function buildCalibratedPolicy(
  pooled: CalibrationResult,
  perClass: CalibrationResult | undefined,
  meta: PolicyMeta,
): Policy {
  const all = pooled.classes[0]!;
  let version = meta.version ?? defaultVersion(meta.date, meta.traces.sha256);
  if (meta.base?.version === version) version = `${version}-1`;
  const classes: Record<string, ClassPromise> = { [SINGLE_CLASS]: classPromise(all) };
  for (const c of perClass?.classes ?? []) classes[c.name] = classPromise(c);
  const record: CalibrationRecord = {
    date: meta.date.toISOString(),
    traces: meta.traces,
    probes: meta.probes,
    target: pooled.target,
    per_class: perClass !== undefined,
    frontier_tier: pooled.frontierTier,
    bootstrap: meta.bootstrap,
    costs: meta.costs,
    classes,
  };
  const base = meta.base ?? { version, kind: 'threshold' };
  return PolicySchema.parse({
    ...base,
    version,
    kind: 'threshold',
    ...(meta.signal ? { signal: meta.signal } : {}),
    description: `calibrated by mechroute calibrate: ${pooled.target} × ${pooled.frontierTier}'s quality at the least cost per correct outcome`,
    threshold: {
      default: 1,
      tiers: all.chosen.thresholds,
      classes: Object.fromEntries(
        (perClass?.classes ?? []).map((c) => [c.name, { default: 1, tiers: c.chosen.thresholds }]),
      ),
    },
    calibration: record,
  });
}

/** The policy as YAML, with a header saying where it came from. */
export function policyYaml(policy: Policy): string {
  const header = [
    '# Written by `mechroute calibrate`; validate with `mechroute config check`.',
    `# Calibrated on ${policy.calibration?.traces.file ?? '?'} (sha256 ${policy.calibration?.traces.sha256 ?? '?'}).`,
    '',
  ].join('\n');
  return header + stringify(policy, { lineWidth: 0 });
}
