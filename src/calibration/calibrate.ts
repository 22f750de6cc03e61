import { InvalidMetricInputError } from '../errors.js';
import {
  checkRows,
  choosePoint,
  evaluatePoint,
  type LabelledRows,
  type OperatingPoint,
  paretoFront,
  sweepThresholds,
} from '../metrics/operating-points.js';
import { SINGLE_CLASS } from '../policy/calibration-record.js';
import { type BootstrapOptions, bootstrapIntervals, type PointIntervals } from './bootstrap.js';

/**
 * `calibrate`'s core: per task class, sweep the threshold policy's operating points on the golden rows,
 * keep the Pareto front of quality against cost per correct outcome, and pick the cheapest point whose
 * quality reaches target × the frontier tier's quality on that class. Pure; the CLI does the I/O.
 */
export interface CalibrateOptions {
  /** Share of the frontier tier's quality to hold, e.g. 0.95. */
  target: number;
  /** Per-row task class; without it (or without perClass) every row is one class. */
  classes?: readonly string[];
  perClass?: boolean;
  bootstrap: BootstrapOptions;
  /** Cap on the grid size per class (default 4000). */
  maxPoints?: number;
}

export interface ScoredPoint extends OperatingPoint {
  ci: PointIntervals;
}

export interface ClassCalibration {
  name: string;
  n: number;
  frontier: ScoredPoint;
  targetQuality: number;
  reached: boolean;
  chosen: ScoredPoint;
  /** Cheapest per correct answer first. */
  pareto: ScoredPoint[];
  /** How many points the sweep scored. */
  swept: number;
}

export interface CalibrationResult {
  frontierTier: string;
  target: number;
  classes: ClassCalibration[];
}

function groupRows(n: number, options: CalibrateOptions): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  const byClass = options.perClass === true && options.classes !== undefined;
  if (byClass && options.classes!.length !== n) {
    throw new InvalidMetricInputError('calibration', `${options.classes!.length} classes for ${n} rows`);
  }
  for (let i = 0; i < n; i += 1) {
    const name = byClass ? options.classes![i]! : SINGLE_CLASS;
    let rows = groups.get(name);
    if (!rows) {
      rows = [];
      groups.set(name, rows);
    }
    rows.push(i);
  }
  return new Map([...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function calibrate(rows: LabelledRows, options: CalibrateOptions): CalibrationResult {
  const n = checkRows(rows);
  if (n === 0) throw new InvalidMetricInputError('calibration', 'no rows');
  if (!(options.target > 0)) throw new InvalidMetricInputError('calibration', `target ${options.target}`);
  const k = rows.tiers.length;
  const classes: ClassCalibration[] = [];
  for (const [name, subset] of groupRows(n, options)) {
    const points = sweepThresholds(rows, subset, options.maxPoints);
    // The frontier's own point: every threshold unreachable, so every row goes to the frontier.
    const frontier = evaluatePoint(rows, subset, new Array<number>(k - 1).fill(Number.POSITIVE_INFINITY));
    const targetQuality = options.target * frontier.quality;
    const choice = choosePoint(points, targetQuality);
    const front = paretoFront(points);
    const scored = [...front, choice.point, frontier];
    const ci = bootstrapIntervals(rows, subset, scored, options.bootstrap);
    const withCi = (p: OperatingPoint, j: number): ScoredPoint => ({ ...p, ci: ci[j]! });
    classes.push({
      name,
      n: subset.length,
      frontier: withCi(frontier, scored.length - 1),
      targetQuality,
      reached: choice.reached,
      chosen: withCi(choice.point, scored.length - 2),
      pareto: front.map(withCi),
      swept: points.length,
    });
  }
  return { frontierTier: rows.tiers[k - 1]!, target: options.target, classes };
}
