import { InvalidProbeInputError } from '../errors.js';
import type { Rng } from '../seeded-rng.js';

/**
 * Deterministic data splits (the randomness comes from the seeded `Rng` passed in). Evaluation stays
 * honest by construction: the trainer splits off a test part first, and every tuning step — λ by
 * cross-validation, calibration, early stopping, layer choice — sees only the rest.
 *
 * Group splits hold whole groups (MMLU subjects) out together. On MMLU the subject alone predicts a tier's
 * success well (see ../shared/data/README.md), so a probe scored on random splits can look good by
 * recognising the topic; scoring on held-out subjects shows whether it reads difficulty.
 */
export interface Fold {
  /** Row indices, ascending. */
  train: number[];
  test: number[];
}

function checkK(k: number, units: number, what: string): void {
  if (!Number.isInteger(k) || k < 2)
    throw new InvalidProbeInputError(`k-fold needs an integer k ≥ 2, got ${k}`);
  if (k > units) throw new InvalidProbeInputError(`cannot make ${k} folds from ${units} ${what}`);
}

function foldsFromAssignment(assignment: Int32Array, k: number): Fold[] {
  const folds = Array.from({ length: k }, (): Fold => ({ train: [], test: [] }));
  for (let i = 0; i < assignment.length; i += 1) {
    for (let f = 0; f < k; f += 1) (assignment[i] === f ? folds[f]!.test : folds[f]!.train).push(i);
  }
  return folds;
}

/** Row indices per group, groups in order of first appearance (Map.groupBy is not in Node 20). */
function groupRows(groups: readonly string[]): Map<string, number[]> {
  const members = new Map<string, number[]>();
  for (const [i, g] of groups.entries()) {
    const list = members.get(g);
    if (list) list.push(i);
    else members.set(g, [i]);
  }
  return members;
}

/**
 * Random k-fold over n rows. With `stratify`, each label value is dealt round-robin across the folds
 * after shuffling, so every fold keeps the base rate (a fold without failures has no AUROC).
 */
export function kFold(n: number, k: number, rng: Rng, stratify?: readonly boolean[]): Fold[] {
  checkK(k, n, 'rows');
  if (stratify && stratify.length !== n) {
    throw new InvalidProbeInputError(`stratify has ${stratify.length} labels for ${n} rows`);
  }
  const assignment = new Int32Array(n);
  const strata = stratify
    ? [0, 1].map((v) => Array.from({ length: n }, (_, i) => i).filter((i) => Number(stratify[i]) === v))
    : [Array.from({ length: n }, (_, i) => i)];
  let next = rng.int(k); // where the deal starts, so fold 0 is not always the largest
  for (const stratum of strata) {
    for (const i of rng.shuffle(stratum)) {
      assignment[i] = next;
      next = (next + 1) % k;
    }
  }
  return foldsFromAssignment(assignment, k);
}

/**
 * Group k-fold: every row of a group lands in the same fold. Groups are shuffled, then placed largest
 * first into the fold with the fewest rows so far (the greedy balancing of scikit-learn's GroupKFold;
 * the shuffle only orders groups of equal size, so different seeds give different but equally balanced
 * folds).
 */
export function groupKFold(groups: readonly string[], k: number, rng: Rng): Fold[] {
  const members = groupRows(groups);
  checkK(k, members.size, 'groups');
  const ordered = rng.shuffle([...members.values()]);
  // Stable sort: equal sizes keep their shuffled order.
  ordered.sort((a, b) => b.length - a.length);
  const sizes = new Array<number>(k).fill(0);
  const assignment = new Int32Array(groups.length);
  for (const rows of ordered) {
    let smallest = 0;
    for (let f = 1; f < k; f += 1) if (sizes[f]! < sizes[smallest]!) smallest = f;
    sizes[smallest]! += rows.length;
    for (const i of rows) assignment[i] = smallest;
  }
  return foldsFromAssignment(assignment, k);
}

export interface ThreeWaySplit {
  train: number[];
  /** For fitting calibration (and early stopping), never for the reported numbers. */
  calibration: number[];
  test: number[];
}

export interface ThreeWaySplitOptions {
  /** Shares of the rows (or, with `groups`, of the groups); defaults 0.15 and 0.15. */
  calibrationShare?: number;
  testShare?: number;
  /** Hold whole groups out of calibration and test. */
  groups?: readonly string[];
}

/**
 * Train / calibration / test split. With groups, shares count groups, not rows, so the row shares vary
 * with group sizes; the test part then holds only subjects the probes never saw.
 */
export function trainCalibrationTestSplit(
  n: number,
  rng: Rng,
  options: ThreeWaySplitOptions = {},
): ThreeWaySplit {
  const calibrationShare = options.calibrationShare ?? 0.15;
  const testShare = options.testShare ?? 0.15;
  if (!(calibrationShare >= 0 && testShare > 0 && calibrationShare + testShare < 1)) {
    throw new InvalidProbeInputError(
      `shares calibration ${calibrationShare}, test ${testShare} do not fit in 1`,
    );
  }
  const { groups } = options;
  if (groups && groups.length !== n)
    throw new InvalidProbeInputError(`${groups.length} groups for ${n} rows`);
  // Units are rows, or groups of rows; each unit goes whole to one part.
  const units: number[][] = groups
    ? [...groupRows(groups).values()]
    : Array.from({ length: n }, (_, i) => [i]);
  rng.shuffle(units);
  const nTest = Math.max(1, Math.round(testShare * units.length));
  const nCalibration = Math.round(calibrationShare * units.length);
  if (nTest + nCalibration >= units.length) {
    throw new InvalidProbeInputError(`${units.length} ${groups ? 'groups' : 'rows'} are too few to split`);
  }
  const take = (from: number, to: number) =>
    units
      .slice(from, to)
      .flat()
      .sort((a, b) => a - b);
  return {
    test: take(0, nTest),
    calibration: take(nTest, nTest + nCalibration),
    train: take(nTest + nCalibration, units.length),
  };
}

/** Re-indexes folds made over a subset (e.g. k-fold over the training rows) into rows of the full set. */
export function mapFolds(folds: readonly Fold[], rows: readonly number[]): Fold[] {
  return folds.map((f) => ({ train: f.train.map((i) => rows[i]!), test: f.test.map((i) => rows[i]!) }));
}
