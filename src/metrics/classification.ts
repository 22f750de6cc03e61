import { InvalidMetricInputError } from '../errors.js';

/**
 * Metrics of a probe as a binary classifier: does P(success | tier) rank and calibrate well?
 * Pure functions over arrays. Mismatched lengths and probabilities outside [0, 1] throw
 * `InvalidMetricInputError` (a bug upstream, not a property of the data); empty inputs give NaN, because
 * "no data" is a legitimate outcome of a split and a number would hide it.
 */

function checkPairs(metric: string, values: readonly number[], labels: readonly boolean[]): void {
  if (values.length !== labels.length) {
    throw new InvalidMetricInputError(metric, `${values.length} scores but ${labels.length} labels`);
  }
  for (const [i, v] of values.entries()) {
    if (Number.isNaN(v)) throw new InvalidMetricInputError(metric, `score ${i} is NaN`);
  }
}

function checkProbabilities(metric: string, probs: readonly number[], labels: readonly boolean[]): void {
  checkPairs(metric, probs, labels);
  for (const [i, p] of probs.entries()) {
    if (!(p >= 0 && p <= 1))
      throw new InvalidMetricInputError(metric, `probability ${i} is ${p}, not in [0, 1]`);
  }
}

/**
 * Area under the ROC curve for "label is true", computed from ranks (the Mann–Whitney U statistic):
 * AUROC = (sum of positive ranks − nPos(nPos+1)/2) / (nPos · nNeg). Tied scores get the average of the ranks
 * they span, which counts a positive–negative tie as half a correct ordering — the same as the trapezoid
 * under the ROC curve. Returns NaN when either class is absent: the ranking question has no answer then,
 * and 0.5 or 1 would both be made up. Scores may be any finite or infinite numbers; only their order matters.
 */
export function auroc(scores: readonly number[], labels: readonly boolean[]): number {
  checkPairs('auroc', scores, labels);
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]! || 0);
  let positives = 0;
  let positiveRankSum = 0;
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && scores[order[end]!] === scores[order[start]!]) end += 1;
    // Ranks are 1-based: the group occupies ranks start+1 … end, whose mean is (start + 1 + end) / 2.
    const averageRank = (start + 1 + end) / 2;
    for (let k = start; k < end; k += 1) {
      if (labels[order[k]!]) {
        positives += 1;
        positiveRankSum += averageRank;
      }
    }
    start = end;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Mean squared error of the probabilities against the 0/1 labels; lower is better, 0.25 is a constant 0.5. */
export function brierScore(probs: readonly number[], labels: readonly boolean[]): number {
  checkProbabilities('brierScore', probs, labels);
  if (probs.length === 0) return Number.NaN;
  let sum = 0;
  for (const [i, p] of probs.entries()) sum += (p - (labels[i] ? 1 : 0)) ** 2;
  return sum / probs.length;
}

export interface CalibrationBin {
  /** [lower, upper) except the last bin, which includes 1. */
  lower: number;
  upper: number;
  count: number;
  /** Mean predicted probability in the bin; NaN when empty. */
  meanProb: number;
  /** Share of true labels in the bin; NaN when empty. */
  accuracy: number;
}

/**
 * Equal-width bins over [0, 1] (a reliability diagram). Equal width rather than equal mass so that the
 * bins mean the same thing across probes and splits, which is what lets ECE numbers be compared.
 */
export function calibrationBins(
  probs: readonly number[],
  labels: readonly boolean[],
  bins = 10,
): CalibrationBin[] {
  checkProbabilities('calibrationBins', probs, labels);
  if (!Number.isInteger(bins) || bins < 1)
    throw new InvalidMetricInputError('calibrationBins', `bins is ${bins}`);
  const sums = Array.from({ length: bins }, () => ({ count: 0, prob: 0, positives: 0 }));
  for (const [i, p] of probs.entries()) {
    // p = 1 falls in the last bin rather than a bin of its own.
    const bin = sums[Math.min(Math.floor(p * bins), bins - 1)]!;
    bin.count += 1;
    bin.prob += p;
    if (labels[i]) bin.positives += 1;
  }
  return sums.map((s, b) => ({
    lower: b / bins,
    upper: (b + 1) / bins,
    count: s.count,
    meanProb: s.count === 0 ? Number.NaN : s.prob / s.count,
    accuracy: s.count === 0 ? Number.NaN : s.positives / s.count,
  }));
}

/**
 * Expected calibration error: Σ over bins of (bin size / n) · |mean probability − share of true labels|,
 * with equal-width bins (default 10). Empty bins contribute nothing. NaN for empty input.
 */
export function expectedCalibrationError(
  probs: readonly number[],
  labels: readonly boolean[],
  bins = 10,
): number {
  if (probs.length === 0 && labels.length === 0) return Number.NaN;
  const n = probs.length;
  let ece = 0;
  for (const bin of calibrationBins(probs, labels, bins)) {
    if (bin.count > 0) ece += (bin.count / n) * Math.abs(bin.meanProb - bin.accuracy);
  }
  return ece;
}

/** Share of items where (prob ≥ threshold) equals the label. NaN for empty input. */
export function accuracyAtThreshold(
  probs: readonly number[],
  labels: readonly boolean[],
  threshold = 0.5,
): number {
  checkProbabilities('accuracyAtThreshold', probs, labels);
  if (probs.length === 0) return Number.NaN;
  let correct = 0;
  for (const [i, p] of probs.entries()) if (p >= threshold === labels[i]) correct += 1;
  return correct / probs.length;
}
