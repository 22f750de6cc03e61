import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidMetricInputError } from '../../../src/errors.js';
import {
  apgr,
  cpt,
  deferralCurve,
  pointAtStrongShare,
  pointAtThreshold,
  type RoutingInput,
} from '../../../src/metrics/routing.js';
import { createRng } from '../../../src/seeded-rng.js';

const close = (actual: number, expected: number, tolerance = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} is not within ${tolerance} of ${expected}`);

/** Seeded, so the randomised cases are the same on every run. */
const rng = (seed: number): (() => number) => createRng(seed).next;

/**
 * Five items, chosen so that every kind of item appears:
 *   i0 score 0.9  weak ✗ strong ✓  (only strong right: moving it gains 1)
 *   i1 score 0.6  weak ✗ strong ✗  (neither: no change)
 *   i2 score 0.3  weak ✓ strong ✗  (only weak right: moving it loses 1)
 *   i3 score 0.1  weak ✓ strong ✓  (both: no change)
 *   i4 score 0.05 weak ✗ strong ✓  (only strong right)
 * q_weak = 2/5 = 0.4, q_strong = 3/5 = 0.6, q_oracle = 4/5 = 0.8, q_best_single = 0.6.
 */
const five: RoutingInput = {
  pStrongNeeded: [0.9, 0.6, 0.3, 0.1, 0.05],
  weakCorrect: [false, false, true, true, false],
  strongCorrect: [true, false, false, true, true],
  costs: { weak: 1, strong: 10 },
};

describe('deferralCurve on five hand-made items', () => {
  const curve = deferralCurve(five);

  test('base rates', () => {
    close(curve.qWeak, 0.4);
    close(curve.qStrong, 0.6);
    close(curve.qOracle, 0.8);
    close(curve.qBestSingle, 0.6);
    assert.equal(curve.costWeakOnly, 5);
    assert.equal(curve.costStrongOnly, 50);
  });

  test('points', () => {
    // share:   0    0.2  0.4  0.6  0.8  1
    // correct: 2    3    3    2    2    3     (+1 i0, 0 i1, −1 i2, 0 i3, +1 i4)
    // PGR = (correct/5 − 0.4) / 0.2: 0, 1, 1, 0, 0, 1
    assert.deepEqual(
      curve.points.map((p) => p.strongShare),
      [0, 0.2, 0.4, 0.6, 0.8, 1],
    );
    assert.deepEqual(
      curve.points.map((p) => p.correct),
      [2, 3, 3, 2, 2, 3],
    );
    assert.deepEqual(
      curve.points.map((p) => p.threshold),
      [Infinity, 0.9, 0.6, 0.3, 0.1, 0.05],
    );
    const pgr = curve.points.map((p) => p.pgr);
    for (const [k, expected] of [0, 1, 1, 0, 0, 1].entries()) close(pgr[k]!, expected);
  });

  test('APGR by the trapezoid rule', () => {
    // five segments of width 0.2: (0+1)/2 + (1+1)/2 + (1+0)/2 + (0+0)/2 + (0+1)/2 = 2.5; × 0.2 = 0.5
    close(apgr(curve), 0.5);
  });

  test('CPT interpolates inside the first segment that crosses', () => {
    // PGR goes 0 → 1 between share 0 and 0.2: PGR 0.5 at 0.1, PGR 0.8 at 0.16
    close(cpt(curve, 0.5), 0.1);
    close(cpt(curve, 0.8), 0.16);
    close(cpt(curve, 1), 0.2);
    assert.equal(cpt(curve, 0), 0);
    assert.ok(Number.isNaN(cpt(curve, 1.01)), 'PGR never exceeds 1 here');
  });

  test('oracle gap, cost saving and cost per correct at an operating point', () => {
    const p = pointAtThreshold(curve, 0.9); // only i0 strong
    // quality 0.6 = best single → (0.6 − 0.6) / (0.8 − 0.6) = 0
    close(p.oracleGapClosed, 0);
    // cost = 4 weak × 1 + 1 strong × 10 = 14; saving = 1 − 14/50 = 0.72; per correct = 14 / 3
    close(p.cost, 14);
    close(p.costSaving, 0.72);
    close(p.costPerCorrect, 14 / 3);
    // all weak: (0.4 − 0.6) / 0.2 = −1; cost 5 → saving 0.9
    const start = curve.points[0]!;
    close(start.oracleGapClosed, -1);
    close(start.costSaving, 0.9);
    // all strong saves nothing
    close(curve.points.at(-1)!.costSaving, 0);
  });

  test('operating points by threshold and by strong-call budget', () => {
    // score ≥ 0.5 → i0, i1 → the 0.6 point
    assert.equal(pointAtThreshold(curve, 0.5).threshold, 0.6);
    assert.equal(pointAtThreshold(curve, 0.95).strongCalls, 0);
    assert.equal(pointAtThreshold(curve, 0).strongCalls, 5);
    assert.equal(pointAtStrongShare(curve, 0.5).strongShare, 0.4);
    assert.equal(pointAtStrongShare(curve, 0).strongCalls, 0);
  });

  test('per-item costs', () => {
    const c = deferralCurve({ ...five, costs: { weak: [1, 1, 1, 1, 1], strong: [10, 20, 30, 40, 50] } });
    // strong only = 150; at threshold 0.6 (i0, i1 strong): 10 + 20 + 3 × 1 = 33 → 1 − 33/150 = 0.78
    const p = pointAtThreshold(c, 0.6);
    close(p.cost, 33);
    close(p.costSaving, 0.78);
  });

  test('without costs the cost figures are NaN, quality figures are not', () => {
    const c = deferralCurve({ ...five, costs: undefined });
    assert.ok(Number.isNaN(c.points[1]!.costSaving));
    close(apgr(c), 0.5);
  });
});

describe('ties and degenerate inputs', () => {
  test('tied items move to the strong tier together', () => {
    // scores 0.5, 0.5, 0.2, 0.2; weak ✗ ✓ ✓ ✗; strong all ✓ → q_weak 0.5, q_strong 1
    // points: share 0 (2 right, PGR 0), share 0.5 (+1 → 3 right, PGR 0.5), share 1 (+1 → 4, PGR 1)
    const curve = deferralCurve({
      pStrongNeeded: [0.5, 0.5, 0.2, 0.2],
      weakCorrect: [false, true, true, false],
      strongCorrect: [true, true, true, true],
    });
    assert.equal(curve.points.length, 3);
    // APGR = (0 + 0.5)/2 × 0.5 + (0.5 + 1)/2 × 0.5 = 0.125 + 0.375 = 0.5
    close(apgr(curve), 0.5);
    // PGR 0.25 lies halfway along the first segment: share 0.25
    close(cpt(curve, 0.25), 0.25);
    close(cpt(curve, 0.5), 0.5);
  });

  test('one score for everything is a straight line: APGR 0.5, CPT(x) = x', () => {
    const curve = deferralCurve({
      pStrongNeeded: [0.3, 0.3, 0.3, 0.3],
      weakCorrect: [false, false, true, false],
      strongCorrect: [true, true, true, false],
    });
    assert.equal(curve.points.length, 2);
    close(apgr(curve), 0.5);
    close(cpt(curve, 0.8), 0.8);
  });

  test('equal tiers have no gap to recover; equal oracle and best tier no gap to close', () => {
    const curve = deferralCurve({
      pStrongNeeded: [0.1, 0.2],
      weakCorrect: [true, false],
      strongCorrect: [true, false],
    });
    assert.ok(Number.isNaN(apgr(curve)));
    assert.ok(Number.isNaN(cpt(curve, 0.5)));
    assert.ok(Number.isNaN(curve.points[0]!.oracleGapClosed));
  });

  test('nothing correct gives an infinite cost per correct answer', () => {
    const curve = deferralCurve({
      pStrongNeeded: [0.1],
      weakCorrect: [false],
      strongCorrect: [false],
      costs: { weak: 1, strong: 2 },
    });
    assert.equal(curve.points[0]!.costPerCorrect, Infinity);
  });

  test('bad input throws', () => {
    assert.throws(
      () => deferralCurve({ pStrongNeeded: [], weakCorrect: [], strongCorrect: [] }),
      InvalidMetricInputError,
    );
    assert.throws(
      () => deferralCurve({ pStrongNeeded: [0.1, 0.2], weakCorrect: [true], strongCorrect: [true, true] }),
      InvalidMetricInputError,
    );
    assert.throws(
      () => deferralCurve({ pStrongNeeded: [Number.NaN], weakCorrect: [true], strongCorrect: [true] }),
      InvalidMetricInputError,
    );
    assert.throws(
      () => deferralCurve({ ...five, costs: { weak: [1, 2], strong: 1 } }),
      InvalidMetricInputError,
    );
    assert.throws(() => deferralCurve({ ...five, costs: { weak: -1, strong: 1 } }), InvalidMetricInputError);
  });
});

describe('reference routers', () => {
  test('a random router gives APGR ≈ 0.5 and CPT(x) ≈ x', () => {
    // Random scores carry no information: quality rises linearly with the strong share in expectation,
    // so PGR(s) ≈ s, whose area is 0.5.
    const random = rng(42);
    const n = 20_000;
    const input: RoutingInput = {
      pStrongNeeded: Array.from({ length: n }, () => random()),
      weakCorrect: Array.from({ length: n }, () => random() < 0.6),
      strongCorrect: Array.from({ length: n }, () => random() < 0.8),
    };
    const curve = deferralCurve(input);
    close(apgr(curve), 0.5, 0.03);
    close(cpt(curve, 0.5), 0.5, 0.05);
  });

  test('a perfect router without weak-only items: CPT(x) = x × share of strong-only items', () => {
    // 1000 items: 200 only strong right (score 1), 600 both right, 200 neither (score 0).
    // Moving the 200 strong-only items recovers the whole gap at share 0.2, linearly:
    //   CPT(50%) = 0.5 × 0.2 = 0.1, CPT(80%) = 0.8 × 0.2 = 0.16;
    //   APGR = ½ × 0.2 × 1 (the ramp) + 0.8 × 1 (flat at PGR 1) = 0.9.
    const weakCorrect: boolean[] = [];
    const strongCorrect: boolean[] = [];
    const scores: number[] = [];
    for (let i = 0; i < 1000; i += 1) {
      const kind = i % 5; // 0 → only strong, 1–3 → both, 4 → neither
      weakCorrect.push(kind >= 1 && kind <= 3);
      strongCorrect.push(kind <= 3);
      scores.push(kind === 0 ? 1 : 0);
    }
    const curve = deferralCurve({ pStrongNeeded: scores, weakCorrect, strongCorrect });
    close(cpt(curve, 0.5), 0.1);
    close(cpt(curve, 0.8), 0.16);
    close(apgr(curve), 0.9);
    // without weak-only items the oracle is no better than always-strong (800/1000 both): no gap to close
    assert.ok(Number.isNaN(pointAtStrongShare(curve, 0.2).oracleGapClosed));
    close(pointAtStrongShare(curve, 0.2).quality, curve.qOracle);
  });

  test('a perfect router with weak-only items: CPT(50%) = ½ × (S − W) / n and PGR above 1', () => {
    // n = 1000: S = 200 only strong (score 1), W = 50 only weak (score 0), 750 both (score 0.5).
    // q_weak = 800/1000, q_strong = 950/1000, gap = 150/1000.
    // After the 200 strong-only items: q = 1000/1000 → PGR = 200/150 = 4/3 > 1.
    // PGR 0.5 → 75 items → CPT(50%) = 0.075 = ½ × (200 − 50) / 1000.
    const weakCorrect: boolean[] = [];
    const strongCorrect: boolean[] = [];
    const scores: number[] = [];
    for (let i = 0; i < 1000; i += 1) {
      const kind = i < 200 ? 'strong' : i < 250 ? 'weak' : 'both';
      weakCorrect.push(kind !== 'strong');
      strongCorrect.push(kind !== 'weak');
      scores.push(kind === 'strong' ? 1 : kind === 'weak' ? 0 : 0.5);
    }
    const curve = deferralCurve({ pStrongNeeded: scores, weakCorrect, strongCorrect });
    close(cpt(curve, 0.5), 0.075);
    close(pointAtThreshold(curve, 1).pgr, 4 / 3);
    close(pointAtThreshold(curve, 1).oracleGapClosed, 1);
    assert.ok(apgr(curve) > 1);
  });
});
