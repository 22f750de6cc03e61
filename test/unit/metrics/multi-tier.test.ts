import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { costAtQuality, hullArea, qualityAtCost, upperHull } from '../../../src/metrics/cost-quality-hull.js';
import { multiTierFigures, multiTierMetrics } from '../../../src/metrics/multi-tier.js';
import type { LabelledRows } from '../../../src/metrics/operating-points.js';

const close = (actual: number | null, expected: number, tolerance = 1e-12) =>
  assert.ok(
    actual !== null && Math.abs(actual - expected) <= tolerance,
    `${actual} is not within ${tolerance} of ${expected}`,
  );

/**
 * Three tiers, cheap (cost 1), mid (2), dear (10), on four prompts:
 *   row 0: cheap ✓ mid ✓ dear ✓
 *   row 1: cheap ✗ mid ✓ dear ✓
 *   row 2: cheap ✗ mid ✗ dear ✓
 *   row 3: cheap ✓ mid ✗ dear ✗
 * Single tiers: cheap 0.5 @ 1, mid 0.5 @ 2, dear 0.75 @ 10 (the best single).
 * Oracle: cheap, mid, dear, cheap → quality 1, cost (1 + 2 + 10 + 1) / 4 = 3.5.
 */
const CORRECT = [
  [true, false, false, true],
  [true, true, false, false],
  [true, true, true, false],
];
const PRICE = [1, 2, 10];

function rows(p: number[][]): LabelledRows {
  return {
    tiers: ['cheap', 'mid', 'dear'],
    p,
    correct: CORRECT,
    cost: PRICE.map((c) => [c, c, c, c]),
  };
}

/** P(success) that knows every outcome: 0.9 when right, 0.1 when wrong. */
const knowing = rows(CORRECT.map((tier) => tier.map((ok) => (ok ? 0.9 : 0.1))));
/** The same P for every prompt: a router that cannot tell prompts apart. */
const blind = rows([
  [0.5, 0.5, 0.5, 0.5],
  [0.6, 0.6, 0.6, 0.6],
  [0.7, 0.7, 0.7, 0.7],
]);

describe('multi-tier metrics on hand-made 3-tier traces', () => {
  test('best single and oracle', () => {
    const m = multiTierMetrics(knowing, PRICE);
    assert.deepEqual(m.best_single, { tier: 'dear', quality: 0.75, cost: 10 });
    assert.deepEqual(m.oracle, { quality: 1, cost: 3.5 });
  });

  test('a router that knows the outcomes: parity reached at 1.25 of 10, the whole oracle gap closed', () => {
    // Utility: all cheap (0.5 @ 1); row 1 to mid below λ = 0.8 (0.75 @ 1.25); row 2 to dear below
    // λ = 0.8 / 9 (1 @ 3.5). Hull: (1, 0.5) → (1.25, 0.75) → (3.5, 1).
    const f = multiTierFigures(knowing, PRICE);
    assert.deepEqual(
      f.curves.utility.map((p) => [p.quality, p.cost]),
      [
        [0.5, 1],
        [0.75, 1.25],
        [1, 3.5],
      ],
    );
    assert.deepEqual(f.hull, [
      { cost: 1, quality: 0.5 },
      { cost: 1.25, quality: 0.75 },
      { cost: 3.5, quality: 1 },
    ]);
    const m = multiTierMetrics(knowing, PRICE);
    close(m.cost_saving_at_parity, 1 - 1.25 / 10);
    // 95 % of 0.75 = 0.7125, on the segment (1, 0.5)–(1.25, 0.75): cost 1 + 0.85 · 0.25.
    close(m.cost_saving_at_95, 1 - 1.2125 / 10);
    close(m.gap_closed_at_best_cost, 1);
    // Over costs [1, 10]: (0.5 + 0.75)/2 · 0.25 + (0.75 + 1)/2 · 2.25 + 1 · 6.5 = 8.625, / 9.
    close(m.hull_auc.router, 8.625 / 9);
    // The single tiers' hull is the chord (1, 0.5)–(10, 0.75) (mid lies under it): mean 0.625.
    close(m.hull_auc.single_tiers, 0.625);
  });

  test('a blind router never reaches parity: saving 0, no gap closed, its hull is the single tiers’', () => {
    const m = multiTierMetrics(blind, PRICE);
    assert.equal(m.cost_saving_at_parity, 0);
    assert.equal(m.gap_closed_at_best_cost, 0);
    close(m.hull_auc.router, m.hull_auc.single_tiers!);
    // 95 % of 0.75 on the chord (1, 0.5)–(10, 0.75): cost 1 + 0.85 · 9 = 8.65.
    close(m.cost_saving_at_95, 1 - 8.65 / 10);
    // Its operating points are exactly the three single tiers, in both sweeps.
    for (const policy of ['utility', 'threshold'] as const) {
      const points = m.frontier.filter((p) => p.policy === policy).map((p) => [p.cost, p.quality]);
      assert.deepEqual(points, [
        [1, 0.5],
        [10, 0.75],
      ]); // mid (2, 0.5) is no better than cheap, so it is not Pareto-efficient
    }
  });

  test('the oracle no better than the best single: the gap is undefined (null)', () => {
    const same: LabelledRows = { ...knowing, correct: [CORRECT[2]!, CORRECT[2]!, CORRECT[2]!] };
    const m = multiTierMetrics(same, PRICE);
    assert.equal(m.gap_closed_at_best_cost, null);
    assert.equal(m.best_single.tier, 'cheap');
  });
});

describe('upper convex hull', () => {
  const points = [
    { cost: 1, quality: 0.5 },
    { cost: 2, quality: 0.5 },
    { cost: 4, quality: 0.9 },
    { cost: 3, quality: 0.6 },
    { cost: 8, quality: 0.8 },
    { cost: 1, quality: 0.4 },
  ];

  test('keeps the rising part of the concave envelope', () => {
    // (2, .5) and (3, .6) lie under the chord (1, .5)–(4, .9); (8, .8) is past the top.
    assert.deepEqual(upperHull(points), [
      { cost: 1, quality: 0.5 },
      { cost: 4, quality: 0.9 },
    ]);
  });

  test('reads quality at a cost and cost at a quality by linear interpolation', () => {
    const hull = upperHull(points);
    close(qualityAtCost(hull, 2.5), 0.7);
    assert.ok(Number.isNaN(qualityAtCost(hull, 0.5)), 'below the cheapest point nothing is reachable');
    assert.equal(qualityAtCost(hull, 100), 0.9);
    close(costAtQuality(hull, 0.7), 2.5);
    assert.equal(costAtQuality(hull, 0.3), 1);
    assert.ok(Number.isNaN(costAtQuality(hull, 0.95)), 'never reached');
  });

  test('area: 0 left of the hull, flat right of its top', () => {
    const hull = upperHull(points);
    // [0, 1]: 0; [1, 4]: (0.5 + 0.9)/2 · 3 = 2.1; [4, 10]: 0.9 · 6 = 5.4 → 7.5 / 10.
    close(hullArea(hull, 0, 10), 0.75);
  });
});
