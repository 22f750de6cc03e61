import { z } from 'zod';
import { Sha256HexSchema as Sha256 } from '../hashes.js';
import { PriceSchema } from './price.js';

/**
 * What `mechroute calibrate` records in the policy file it writes: where the thresholds came from (the
 * golden traces' hash, the probe bundle's, the prices and the tokenizer that priced them) and what they
 * promise per task class (quality and cost per correct outcome, with bootstrap intervals). `mechroute
 * drift` holds recent traces against these promises; a reviewer can tell from the file alone whether two
 * policies were calibrated on the same data.
 */

const Interval = z
  .tuple([z.number(), z.number()])
  .refine(([lo, hi]) => lo <= hi, { message: 'interval must be [low, high] with low ≤ high' });

export const ClassPromiseSchema = z.strictObject({
  /** Golden traces of this class. */
  n: z.number().int().nonnegative(),
  frontier_quality: z.number().min(0).max(1),
  /** target × frontier_quality: the quality the chosen point had to reach. */
  target_quality: z.number().min(0),
  /** False when no operating point reached the target; the thresholds are then the closest point's. */
  reached: z.boolean(),
  /** The thresholds chosen for this class (tier → P(success) needed). */
  thresholds: z.record(z.string().min(1), z.number().min(0).max(1)),
  quality: z.number().min(0).max(1),
  quality_ci: Interval,
  /** USD per correct outcome; null when the point answers nothing correctly. */
  cost_per_correct: z.number().nonnegative().nullable(),
  cost_per_correct_ci: Interval.nullable(),
  frontier_cost_per_correct: z.number().nonnegative().nullable(),
  /** Share of requests sent to each tier at this point. */
  tier_shares: z.record(z.string().min(1), z.number().min(0).max(1)),
});
export type ClassPromise = z.infer<typeof ClassPromiseSchema>;

export const CalibrationRecordSchema = z.strictObject({
  /** ISO 8601 time the calibration ran. */
  date: z.iso.datetime(),
  traces: z.strictObject({ file: z.string(), sha256: Sha256, n: z.number().int().nonnegative() }),
  probes: z.strictObject({ file: z.string(), sha256: Sha256 }),
  /** Quality to hold, as a share of the frontier tier's quality on each class. */
  target: z.number().positive(),
  per_class: z.boolean(),
  frontier_tier: z.string().min(1),
  bootstrap: z.strictObject({
    resamples: z.number().int().positive(),
    seed: z.number().int(),
    confidence: z.number().gt(0).lt(1),
  }),
  costs: z.strictObject({
    /** Which tokenizer counted the tokens the costs come from (traces' own counts win where present). */
    tokenizer: z.string().min(1),
    output_tokens: z.record(z.string().min(1), z.number().nonnegative()),
    prices: z.record(z.string().min(1), PriceSchema),
  }),
  /** Keyed by task class; one key `all` without classes. */
  classes: z.record(z.string().min(1), ClassPromiseSchema),
});
export type CalibrationRecord = z.infer<typeof CalibrationRecordSchema>;

/** The class name used when the probes have no class head: everything is one class. */
export const SINGLE_CLASS = 'all';
