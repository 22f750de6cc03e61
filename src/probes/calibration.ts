import { InvalidProbeInputError } from '../errors.js';
import { sigmoid } from './logistic-regression.js';

/**
 * Post-hoc calibration of a probe's raw score (its logit z = w·x + b) into P(success), fitted on a
 * held-out calibration part — never on the rows the probe was trained on, whose scores are
 * over-confident, nor on the test part. The objects are plain JSON and go into the probe bundle as they are.
 *
 * - `none`: σ(z), the probe's own probability.
 * - `platt`: σ(a·z + b), a 1-D logistic fit (Platt 1999, "Probabilistic outputs for support vector
 *   machines"), with the smoothed targets and the Newton iteration of Lin, Lin & Weng 2007, "A note on
 *   Platt's probabilistic outputs for support vector machines" (Mach. Learn. 68:267–276). Two parameters,
 *   so it fixes over- or under-confidence and a shifted base rate without overfitting small sets.
 * - `isotonic`: the best monotone step function in squared error, by pool-adjacent-violators (Barlow et
 *   al. 1972; used for calibration by Zadrozny & Elkan 2002). Corrects any monotone distortion, but
 *   needs more data than Platt (Niculescu-Mizil & Caruana 2005 suggest ≳1,000 calibration points).
 */
export type Calibration =
  | { kind: 'none' }
  | { kind: 'platt'; a: number; b: number }
  /** Knots (x ascending, y non-decreasing); linear between knots, flat outside them (as scikit-learn's). */
  | { kind: 'isotonic'; x: number[]; y: number[] };

export type CalibrationKind = Calibration['kind'];

function checkInput(what: string, scores: ArrayLike<number>, labels: readonly boolean[]): void {
  if (scores.length !== labels.length) {
    throw new InvalidProbeInputError(`${what}: ${scores.length} scores but ${labels.length} labels`);
  }
  if (scores.length === 0) throw new InvalidProbeInputError(`${what}: no calibration data`);
  for (let i = 0; i < scores.length; i += 1) {
    if (!Number.isFinite(scores[i])) throw new InvalidProbeInputError(`${what}: score ${i} is ${scores[i]}`);
  }
}

/** Lin, Lin & Weng's Algorithm 1 (Newton's method with backtracking on the 2-parameter log-loss). */
export function fitPlatt(
  scores: ArrayLike<number>,
  labels: readonly boolean[],
): Calibration & { kind: 'platt' } {
  checkInput('fitPlatt', scores, labels);
  const n = scores.length;
  const positives = labels.filter(Boolean).length;
  const negatives = n - positives;
  // Platt's out-of-sample targets: a Bayesian prior that keeps the fit finite on separable sets.
  const hiTarget = (positives + 1) / (positives + 2);
  const loTarget = 1 / (negatives + 2);
  const t = labels.map((l) => (l ? hiTarget : loTarget));
  // Their parametrisation is p = 1 / (1 + exp(A·f + B)); we store a = −A, b = −B so p = σ(a·z + b).
  let A = 0;
  let B = Math.log((negatives + 1) / (positives + 1));
  const objective = (a: number, b: number): number => {
    let f = 0;
    for (let i = 0; i < n; i += 1) {
      const fApB = scores[i]! * a + b;
      // −[t log p + (1 − t) log(1 − p)] with p = 1/(1 + e^{fApB}), in the overflow-safe form.
      f +=
        fApB >= 0
          ? t[i]! * fApB + Math.log1p(Math.exp(-fApB))
          : (t[i]! - 1) * fApB + Math.log1p(Math.exp(fApB));
    }
    return f;
  };
  let fval = objective(A, B);
  const sigma = 1e-12; // keeps the Hessian positive definite
  for (let iteration = 0; iteration < 100; iteration += 1) {
    let h11 = sigma;
    let h22 = sigma;
    let h21 = 0;
    let g1 = 0;
    let g2 = 0;
    for (let i = 0; i < n; i += 1) {
      const fApB = scores[i]! * A + B;
      const p = fApB >= 0 ? Math.exp(-fApB) / (1 + Math.exp(-fApB)) : 1 / (1 + Math.exp(fApB));
      const q = 1 - p;
      const d2 = p * q;
      const s = scores[i]!;
      h11 += s * s * d2;
      h22 += d2;
      h21 += s * d2;
      const d1 = t[i]! - p;
      g1 += s * d1;
      g2 += d1;
    }
    if (Math.abs(g1) < 1e-5 && Math.abs(g2) < 1e-5) break;
    const det = h11 * h22 - h21 * h21;
    const dA = -(h22 * g1 - h21 * g2) / det;
    const dB = -(-h21 * g1 + h11 * g2) / det;
    const gd = g1 * dA + g2 * dB;
    let step = 1;
    let moved = false;
    while (step >= 1e-10) {
      const newA = A + step * dA;
      const newB = B + step * dB;
      const newF = objective(newA, newB);
      if (newF < fval + 1e-4 * step * gd) {
        A = newA;
        B = newB;
        fval = newF;
        moved = true;
        break;
      }
      step /= 2;
    }
    if (!moved) break; // no descent possible: already at the optimum to rounding
  }
  return { kind: 'platt', a: -A, b: -B };
}

/** Pool-adjacent-violators on (score, label) sorted by score; tied scores are pooled from the start. */
export function fitIsotonic(
  scores: ArrayLike<number>,
  labels: readonly boolean[],
): Calibration & { kind: 'isotonic' } {
  checkInput('fitIsotonic', scores, labels);
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((i, j) => scores[i]! - scores[j]!);
  // Blocks on a stack: each has a summed label, a count, and the score range it covers.
  const sum: number[] = [];
  const count: number[] = [];
  const lo: number[] = [];
  const hi: number[] = [];
  for (const i of order) {
    const s = scores[i]!;
    const y = labels[i] ? 1 : 0;
    const top = sum.length - 1;
    if (top >= 0 && hi[top] === s) {
      sum[top]! += y;
      count[top]! += 1;
    } else {
      sum.push(y);
      count.push(1);
      lo.push(s);
      hi.push(s);
    }
    // Merge while the last block's mean is below its predecessor's (a violation of monotonicity).
    while (sum.length > 1) {
      const last = sum.length - 1;
      if (sum[last - 1]! / count[last - 1]! <= sum[last]! / count[last]!) break;
      sum[last - 1]! += sum[last]!;
      count[last - 1]! += count[last]!;
      hi[last - 1] = hi[last]!;
      sum.pop();
      count.pop();
      lo.pop();
      hi.pop();
    }
  }
  const x: number[] = [];
  const y: number[] = [];
  for (let b = 0; b < sum.length; b += 1) {
    const value = sum[b]! / count[b]!;
    x.push(lo[b]!);
    y.push(value);
    if (hi[b]! > lo[b]!) {
      x.push(hi[b]!);
      y.push(value);
    }
  }
  return { kind: 'isotonic', x, y };
}

export function fitCalibration(
  kind: CalibrationKind,
  scores: ArrayLike<number>,
  labels: readonly boolean[],
): Calibration {
  if (kind === 'platt') return fitPlatt(scores, labels);
  if (kind === 'isotonic') return fitIsotonic(scores, labels);
  return { kind: 'none' };
}

/** P(success) for one raw score (logit). */
export function applyCalibration(calibration: Calibration, score: number): number {
  switch (calibration.kind) {
    case 'none':
      return sigmoid(score);
    case 'platt':
      return sigmoid(calibration.a * score + calibration.b);
    case 'isotonic': {
      const { x, y } = calibration;
      if (score <= x[0]!) return y[0]!;
      if (score >= x[x.length - 1]!) return y[y.length - 1]!;
      // Binary search for the knot interval [x[lo], x[lo + 1]] holding the score.
      let lo = 0;
      let hi = x.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (x[mid]! <= score) lo = mid;
        else hi = mid;
      }
      const span = x[hi]! - x[lo]!;
      return span > 0 ? y[lo]! + ((score - x[lo]!) / span) * (y[hi]! - y[lo]!) : y[hi]!;
    }
  }
}

export function applyCalibrationAll(calibration: Calibration, scores: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: scores.length }, (_, i) => applyCalibration(calibration, scores[i]!));
}
