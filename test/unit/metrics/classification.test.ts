import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidMetricInputError } from '../../../src/errors.js';
import {
  accuracyAtThreshold,
  auroc,
  brierScore,
  calibrationBins,
  expectedCalibrationError,
} from '../../../src/metrics/classification.js';
import { createRng } from '../../../src/seeded-rng.js';

const close = (actual: number, expected: number, tolerance = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} is not within ${tolerance} of ${expected}`);

/** Seeded, so the randomised cases are the same on every run. */
const rng = (seed: number): (() => number) => createRng(seed).next;

describe('auroc', () => {
  test('distinct scores', () => {
    // sorted: 0.1(F) rank 1, 0.35(T) rank 2, 0.4(F) rank 3, 0.8(T) rank 4
    // positive rank sum 2 + 4 = 6; U = 6 − 2·3/2 = 3; AUROC = 3 / (2·2) = 0.75
    close(auroc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 0.75);
  });

  test('ties get the average rank', () => {
    // 0.2(F) rank 1; the two 0.5s share ranks 2 and 3 → 2.5 each; 0.9(T) rank 4
    // positive rank sum 2.5 + 4 = 6.5; U = 6.5 − 3 = 3.5; AUROC = 3.5 / 4 = 0.875
    // pairwise: (0.5T,0.2F)=1, (0.5T,0.5F)=½, (0.9T,0.2F)=1, (0.9T,0.5F)=1 → 3.5/4
    close(auroc([0.2, 0.5, 0.5, 0.9], [false, true, false, true]), 0.875);
    // all tied: every pair counts ½ → 0.5
    close(auroc([0.5, 0.5, 0.5, 0.5], [true, false, true, false]), 0.5);
  });

  test('perfect, reversed and infinite scores', () => {
    assert.equal(auroc([1, 2, 3, 4], [false, false, true, true]), 1);
    assert.equal(auroc([4, 3, 2, 1], [false, false, true, true]), 0);
    assert.equal(auroc([-Infinity, 0, Infinity], [false, true, true]), 1);
  });

  test('one class absent or no data gives NaN', () => {
    assert.ok(Number.isNaN(auroc([0.1, 0.9], [true, true])));
    assert.ok(Number.isNaN(auroc([0.1, 0.9], [false, false])));
    assert.ok(Number.isNaN(auroc([], [])));
  });

  test('bad input throws', () => {
    assert.throws(() => auroc([0.1], [true, false]), InvalidMetricInputError);
    assert.throws(() => auroc([Number.NaN, 0.2], [true, false]), InvalidMetricInputError);
  });

  test('matches the pairwise definition on random data with many ties', () => {
    const random = rng(7);
    const scores = Array.from({ length: 300 }, () => Math.round(random() * 20) / 20);
    const labels = scores.map((s) => random() < s);
    let wins = 0;
    let pairs = 0;
    for (const [i, si] of scores.entries()) {
      if (!labels[i]) continue;
      for (const [j, sj] of scores.entries()) {
        if (labels[j]) continue;
        pairs += 1;
        wins += si > sj ? 1 : si === sj ? 0.5 : 0;
      }
    }
    close(auroc(scores, labels), wins / pairs, 1e-12);
  });
});

describe('brierScore', () => {
  test('hand-computed', () => {
    // (0.9−1)² + (0.2−0)² + (0.6−0)² = 0.01 + 0.04 + 0.36 = 0.41; / 3
    close(brierScore([0.9, 0.2, 0.6], [true, false, false]), 0.41 / 3);
    // a constant 0.5 scores 0.25 whatever the labels
    close(brierScore([0.5, 0.5, 0.5], [true, false, false]), 0.25);
    assert.equal(brierScore([1, 0], [true, false]), 0);
  });

  test('degenerate and bad input', () => {
    assert.ok(Number.isNaN(brierScore([], [])));
    assert.throws(() => brierScore([1.2], [true]), InvalidMetricInputError);
    assert.throws(() => brierScore([-0.1], [true]), InvalidMetricInputError);
    assert.throws(() => brierScore([0.5, 0.5], [true]), InvalidMetricInputError);
  });
});

describe('expectedCalibrationError', () => {
  test('hand-computed, 10 bins, 1.0 in the last bin', () => {
    // bin [0,0.1): {0.05 F}: |0.05 − 0| · 1/5 = 0.01
    // bin [0.1,0.2): {0.15 T, 0.15 F}: |0.15 − 0.5| · 2/5 = 0.14
    // bin [0.9,1]: {0.95 T, 1.0 T}: |0.975 − 1| · 2/5 = 0.01
    // ECE = 0.01 + 0.14 + 0.01 = 0.16
    close(expectedCalibrationError([0.05, 0.15, 0.15, 0.95, 1], [false, true, false, true, true]), 0.16);
    const bins = calibrationBins([0.05, 0.15, 0.15, 0.95, 1], [false, true, false, true, true]);
    assert.equal(bins.length, 10);
    assert.deepEqual(
      bins.map((b) => b.count),
      [1, 2, 0, 0, 0, 0, 0, 0, 0, 2],
    );
    assert.ok(Number.isNaN(bins[5]!.meanProb));
  });

  test('perfect calibration is 0; one bin is |mean p − base rate|', () => {
    // four items at 0.25 with one true: mean p 0.25 = base rate 0.25
    close(expectedCalibrationError([0.25, 0.25, 0.25, 0.25], [true, false, false, false]), 0);
    // one bin: mean p = (0.1 + 0.9 + 0.8) / 3 = 0.6, base rate 1/3 → 0.2666…
    close(expectedCalibrationError([0.1, 0.9, 0.8], [true, false, false], 1), 0.6 - 1 / 3);
  });

  test('degenerate and bad input', () => {
    assert.ok(Number.isNaN(expectedCalibrationError([], [])));
    assert.throws(() => expectedCalibrationError([0.5], [true], 0), InvalidMetricInputError);
    assert.throws(() => expectedCalibrationError([1.5], [true]), InvalidMetricInputError);
  });
});

describe('accuracyAtThreshold', () => {
  test('hand-computed', () => {
    // t = 0.5 → predictions F, T, T, F vs labels F, T, F, T → right, right, wrong, wrong = 0.5
    close(accuracyAtThreshold([0.2, 0.5, 0.7, 0.4], [false, true, false, true]), 0.5);
    // t = 0.3 → F, T, T, T → right, right, wrong, right = 0.75
    close(accuracyAtThreshold([0.2, 0.5, 0.7, 0.4], [false, true, false, true], 0.3), 0.75);
    assert.ok(Number.isNaN(accuracyAtThreshold([], [])));
  });
});
