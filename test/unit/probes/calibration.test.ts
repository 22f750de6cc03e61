import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { brierScore, expectedCalibrationError } from '../../../src/metrics/classification.js';
import {
  applyCalibration,
  applyCalibrationAll,
  fitCalibration,
  fitIsotonic,
  fitPlatt,
} from '../../../src/probes/calibration.js';
import { sigmoid } from '../../../src/probes/logistic-regression.js';
import { createRng, type Rng } from '../../../src/seeded-rng.js';

/**
 * A skewed, miscalibrated probe: its logits z are over-confident (spread 3× too wide) and its base rate
 * is off (the truth is σ(z/3 + 1), so ~70 % positives while σ(z) says ~50 %).
 */
function miscalibrated(rng: Rng, n: number): { scores: number[]; labels: boolean[] } {
  const scores = Array.from({ length: n }, () => 3 * rng.normal());
  const labels = scores.map((z) => rng.next() < sigmoid(z / 3 + 1));
  return { scores, labels };
}

describe('calibration', () => {
  const rng = createRng(11);
  const fitSet = miscalibrated(rng, 3000);
  const testSet = miscalibrated(rng, 5000);
  const rawProbs = testSet.scores.map(sigmoid);
  const rawEce = expectedCalibrationError(rawProbs, testSet.labels);

  for (const kind of ['platt', 'isotonic'] as const) {
    test(`${kind} fitted on a held-out set lowers ECE and Brier on a fresh one`, () => {
      const calibration = fitCalibration(kind, fitSet.scores, fitSet.labels);
      const probs = Array.from(applyCalibrationAll(calibration, testSet.scores));
      const ece = expectedCalibrationError(probs, testSet.labels);
      assert.ok(rawEce > 0.1, `the raw probe should be miscalibrated (ECE ${rawEce})`);
      assert.ok(ece < 0.04, `${kind} ECE ${ece} (raw ${rawEce})`);
      assert.ok(brierScore(probs, testSet.labels) < brierScore(rawProbs, testSet.labels));
      // Plain JSON: survives a round trip unchanged.
      assert.deepEqual(JSON.parse(JSON.stringify(calibration)), calibration);
    });
  }

  test('Platt recovers the generating a, b on a large sample', () => {
    const r = createRng(12);
    const scores = Array.from({ length: 20000 }, () => 2 * r.normal());
    const labels = scores.map((z) => r.next() < sigmoid(2 * z - 1));
    const platt = fitPlatt(scores, labels);
    assert.ok(Math.abs(platt.a - 2) < 0.15, `a = ${platt.a}`);
    assert.ok(Math.abs(platt.b + 1) < 0.1, `b = ${platt.b}`);
  });

  test('Platt stays finite on perfectly separated scores (smoothed targets)', () => {
    const platt = fitPlatt([-2, -1, 1, 2], [false, false, true, true]);
    assert.ok(Number.isFinite(platt.a) && Number.isFinite(platt.b) && platt.a > 0);
    assert.ok(applyCalibration(platt, 2) < 1 && applyCalibration(platt, -2) > 0);
  });

  test('isotonic: pool-adjacent-violators on a hand-worked case', () => {
    // Labels by score 1 0 1 1 → the violation at scores 1–2 pools them to 0.5.
    const iso = fitIsotonic([3, 1, 4, 2], [true, true, true, false]);
    assert.deepEqual(iso, { kind: 'isotonic', x: [1, 2, 3, 4], y: [0.5, 0.5, 1, 1] });
    assert.equal(applyCalibration(iso, 0), 0.5);
    assert.equal(applyCalibration(iso, 2.5), 0.75); // linear between the knots (2, 0.5) and (3, 1)
    assert.equal(applyCalibration(iso, 9), 1);
    // Tied scores share one value whatever their order.
    const tied = fitIsotonic([1, 1, 2], [true, false, true]);
    assert.equal(applyCalibration(tied, 1), 0.5);
  });

  test('isotonic output is monotone in the score', () => {
    const r = createRng(13);
    const scores = Array.from({ length: 2000 }, () => r.normal());
    const labels = scores.map((z) => r.next() < sigmoid(Math.sin(3 * z) + z));
    const iso = fitIsotonic(scores, labels);
    for (let i = 1; i < iso.y.length; i += 1)
      assert.ok(iso.y[i]! >= iso.y[i - 1]! && iso.x[i]! >= iso.x[i - 1]!);
    let previous = Number.NEGATIVE_INFINITY;
    for (let z = -4; z <= 4; z += 0.01) {
      const p = applyCalibration(iso, z);
      assert.ok(p >= previous && p >= 0 && p <= 1, `not monotone at ${z}`);
      previous = p;
    }
  });
});
