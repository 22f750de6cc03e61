import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LabelledRows } from '../../../src/metrics/operating-points.js';
import { sweepThreshold, sweepUtility } from '../../../src/metrics/policy-sweeps.js';
import { PolicySchema, type RouteTier } from '../../../src/policy/policy-schema.js';
import { route } from '../../../src/policy/route.js';
import { createRng } from '../../../src/seeded-rng.js';

/**
 * Random ladders of five tiers (seeded): P(success) and outcomes at random, each row's realised cost its
 * tier's price times a per-row length, so dearer tiers cost more on every row (as list prices make them).
 */
function ladder(seed: number, n = 200): { rows: LabelledRows; price: number[] } {
  const rng = createRng(seed);
  const price = [0.1, 0.3, 0.3001, 1, 5];
  const length = Array.from({ length: n }, () => 0.5 + rng.next());
  return {
    price,
    rows: {
      tiers: price.map((_, t) => `t${t}`),
      // Rounded to two decimals so that ties (equal P, equal λ) occur.
      p: price.map(() => Array.from({ length: n }, () => Math.round(99 * rng.next()) / 100)),
      correct: price.map((_, t) => Array.from({ length: n }, () => rng.next() < 0.4 + 0.1 * t)),
      cost: price.map((c) => length.map((l) => c * l)),
    },
  };
}

/** The live policy (src/policy/route.ts) on one row: list prices make a call cost exactly `price`. */
function liveChoice(rows: LabelledRows, price: readonly number[], i: number, policy: object): number {
  const tiers: RouteTier[] = rows.tiers.map((id, t) => ({
    id,
    price: { input_per_mtok: price[t]!, output_per_mtok: 0 },
    available: true,
  }));
  const decision = route(
    {
      prediction: {
        tiers: Object.fromEntries(rows.tiers.map((id, t) => [id, rows.p[t]![i]!])),
        difficulty: 0,
      },
      tiers,
      input_tokens: 1_000_000,
    },
    PolicySchema.parse({ version: 't', ...policy }),
    0,
  );
  return rows.tiers.indexOf(decision.tier);
}

function replay(rows: LabelledRows, price: readonly number[], policy: object) {
  const n = rows.correct[0]!.length;
  let correct = 0;
  let cost = 0;
  for (let i = 0; i < n; i += 1) {
    const t = liveChoice(rows, price, i, policy);
    if (rows.correct[t]![i]) correct += 1;
    cost += rows.cost[t]![i]!;
  }
  return { quality: correct / n, cost: cost / n };
}

describe('utility sweep', () => {
  test('cost rises monotonically as λ falls, from all-cheapest to every row on its most probable tier', () => {
    for (const seed of [1, 2, 3]) {
      const { rows, price } = ladder(seed);
      const points = sweepUtility(rows, price);
      for (let j = 1; j < points.length; j += 1) {
        assert.ok(points[j]!.dial < points[j - 1]!.dial, `dial falls at ${j}`);
        assert.ok(points[j]!.cost > points[j - 1]!.cost, `cost rises at ${j} (seed ${seed})`);
      }
      const n = rows.correct[0]!.length;
      const cheapest = Array.from(rows.cost[0]!).reduce((s, c) => s + c, 0) / n;
      assert.ok(Math.abs(points[0]!.cost - cheapest) < 1e-12);
    }
  });

  test('each point’s dial, given to the live utility policy, routes every row as the sweep did', () => {
    const { rows, price } = ladder(4, 60);
    for (const point of sweepUtility(rows, price)) {
      const live = replay(rows, price, { kind: 'utility', utility: { lambda: point.dial } });
      assert.equal(live.quality, point.quality, `λ = ${point.dial}`);
      assert.ok(Math.abs(live.cost - point.cost) < 1e-9, `λ = ${point.dial}`);
    }
  });
});

describe('threshold sweep', () => {
  test('each point’s τ, given to the live threshold policy, routes every row as the sweep did', () => {
    const { rows, price } = ladder(5, 60);
    const points = sweepThreshold(rows);
    assert.ok(points.length > 3);
    for (const point of points) {
      const live = replay(rows, price, { kind: 'threshold', threshold: { default: point.dial } });
      assert.equal(live.quality, point.quality, `τ = ${point.dial}`);
      assert.ok(Math.abs(live.cost - point.cost) < 1e-9, `τ = ${point.dial}`);
    }
    // Above every P: all rows on the frontier.
    const n = rows.correct[0]!.length;
    assert.equal(points[0]!.quality, Array.from(rows.correct[4]!).filter(Boolean).length / n);
  });
});
