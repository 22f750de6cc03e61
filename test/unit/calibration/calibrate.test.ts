import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { calibrate } from '../../../src/calibration/calibrate.js';
import { buildCalibratedPolicy, policyYaml } from '../../../src/calibration/calibrated-policy.js';
import { renderCalibration } from '../../../src/calibration/render-calibration.js';
import { parsePolicy } from '../../../src/config/policy-file.js';
import {
  decideRow,
  type LabelledRows,
  paretoFront,
  sweepThresholds,
} from '../../../src/metrics/operating-points.js';
import { route } from '../../../src/policy/route.js';
import { createRng } from '../../../src/seeded-rng.js';

const bootstrap = { resamples: 100, seed: 3, confidence: 0.95 };

/**
 * 1,000 rows with P(weak succeeds) = 0.000, 0.001, …, 0.999; the weak tier is right exactly when p ≥ 0.6
 * (a perfectly calibrated-in-rank probe), the strong tier always. Weak costs 1, strong 10. So:
 * - target 1.0: every row with p < 0.6 must go strong; the optimum threshold lies in (0.599, 0.6],
 *   quality 1, cost 400·1 + 600·10 = 6400, 6.4 per correct;
 * - target 0.95: the 50 rows with p in [0.55, 0.6) may go weak (wrong): threshold in (0.549, 0.55],
 *   quality 0.95, cost 450 + 5500 = 5950, 5950 / 950 per correct.
 */
function synthetic(boundary = 0.6, offset = 0): LabelledRows & { n: number } {
  const n = 1000;
  const p = Float64Array.from({ length: n }, (_, i) => i / n);
  return {
    n,
    tiers: ['weak', 'strong'],
    p: [p, new Float64Array(n).fill(0.99)],
    correct: [Array.from(p, (v) => v >= boundary - 1e-12), new Array<boolean>(n).fill(true)],
    cost: [new Float64Array(n).fill(1 + offset), new Float64Array(n).fill(10)],
  };
}

describe('calibrate on synthetic traces with a known optimum', () => {
  test('target 1.0 finds the boundary threshold and its exact figures', () => {
    const result = calibrate(synthetic(), { target: 1, bootstrap });
    const c = result.classes[0]!;
    assert.equal(c.name, 'all');
    assert.equal(c.reached, true);
    assert.equal(c.frontier.quality, 1);
    const t = c.chosen.thresholds.weak!;
    assert.ok(t > 0.599 && t <= 0.6, `threshold ${t}`);
    assert.equal(c.chosen.quality, 1);
    assert.equal(c.chosen.cost, 6400);
    assert.equal(c.chosen.costPerCorrect, 6.4);
    assert.deepEqual(c.chosen.shares, { weak: 0.4, strong: 0.6 });
  });

  test('target 0.95 trades exactly the 50 allowed errors for cost', () => {
    const c = calibrate(synthetic(), { target: 0.95, bootstrap }).classes[0]!;
    const t = c.chosen.thresholds.weak!;
    assert.ok(t > 0.549 && t <= 0.55, `threshold ${t}`);
    assert.equal(c.chosen.correct, 950);
    assert.equal(c.chosen.cost, 5950);
    assert.ok(c.chosen.costPerCorrect < 6.4);
  });

  test('an unreachable target is reported with the closest point', () => {
    const c = calibrate(synthetic(), { target: 1.2, bootstrap }).classes[0]!;
    assert.equal(c.reached, false);
    assert.equal(c.targetQuality, 1.2);
    // The best quality there is (1.0), at its cheapest: the boundary point.
    assert.equal(c.chosen.quality, 1);
    assert.equal(c.chosen.cost, 6400);
    const text = renderCalibration(calibrate(synthetic(), { target: 1.2, bootstrap }), 0.95);
    assert.match(text, /TARGET UNREACHABLE: no operating point reaches 120\.0%; closest: quality 100\.0%/);
    assert.match(text, /1\.000 × frontier/);
  });

  test('per class: each class gets its own boundary', () => {
    const a = synthetic(0.6);
    const b = synthetic(0.3);
    const join = <T>(x: ArrayLike<T>, y: ArrayLike<T>) => [...Array.from(x), ...Array.from(y)];
    const rows: LabelledRows = {
      tiers: a.tiers,
      p: [0, 1].map((t) => join(a.p[t]!, b.p[t]!)),
      correct: [0, 1].map((t) => join(a.correct[t]!, b.correct[t]!)),
      cost: [0, 1].map((t) => join(a.cost[t]!, b.cost[t]!)),
    };
    const classes = [...new Array<string>(1000).fill('A'), ...new Array<string>(1000).fill('B')];
    const result = calibrate(rows, { target: 1, bootstrap, perClass: true, classes });
    const [ca, cb] = result.classes;
    assert.equal(ca!.name, 'A');
    assert.equal(cb!.name, 'B');
    assert.ok(ca!.chosen.thresholds.weak! > 0.599 && ca!.chosen.thresholds.weak! <= 0.6);
    assert.ok(cb!.chosen.thresholds.weak! > 0.299 && cb!.chosen.thresholds.weak! <= 0.3);
    // Pooled, one threshold must serve both: it cannot be cheaper per correct than the two together.
    const pooled = calibrate(rows, { target: 1, bootstrap }).classes[0]!;
    assert.ok(pooled.chosen.cost > ca!.chosen.cost + cb!.chosen.cost);
  });
});

describe('Pareto front and bootstrap intervals', () => {
  test('the front rises in quality as cost per correct rises, and dominates every swept point', () => {
    const rows = synthetic();
    const subset = Array.from({ length: rows.n }, (_, i) => i);
    const points = sweepThresholds(rows, subset);
    const front = paretoFront(points);
    for (let j = 1; j < front.length; j += 1) {
      assert.ok(front[j]!.quality > front[j - 1]!.quality);
      assert.ok(front[j]!.costPerCorrect >= front[j - 1]!.costPerCorrect);
    }
    for (const p of points) {
      assert.ok(front.some((f) => f.quality >= p.quality && f.costPerCorrect <= p.costPerCorrect));
    }
  });

  test('intervals are seeded, contain the estimate, and narrow with more rows', () => {
    const noisy = (n: number, seed: number): LabelledRows => {
      const rng = createRng(seed);
      const p = Float64Array.from({ length: n }, () => rng.next());
      return {
        tiers: ['weak', 'strong'],
        p: [p, new Float64Array(n).fill(0.9)],
        correct: [Array.from(p, (v) => rng.next() < v), Array.from(p, () => rng.next() < 0.85)],
        cost: [new Float64Array(n).fill(1), new Float64Array(n).fill(10)],
      };
    };
    const small = calibrate(noisy(300, 5), { target: 0.95, bootstrap }).classes[0]!;
    const again = calibrate(noisy(300, 5), { target: 0.95, bootstrap }).classes[0]!;
    assert.deepEqual(small.chosen.ci, again.chosen.ci);
    const [lo, hi] = small.chosen.ci.quality;
    assert.ok(lo <= small.chosen.quality && small.chosen.quality <= hi);
    const [clo, chi] = small.chosen.ci.costPerCorrect!;
    assert.ok(clo <= small.chosen.costPerCorrect && small.chosen.costPerCorrect <= chi);
    const large = calibrate(noisy(3000, 5), { target: 0.95, bootstrap }).classes[0]!;
    const width = (c: typeof small) => c.chosen.ci.quality[1] - c.chosen.ci.quality[0];
    assert.ok(width(large) < width(small));
  });
});

describe('the calibrated policy', () => {
  const meta = {
    date: new Date('2026-11-28T12:00:00Z'),
    traces: { file: 'golden.jsonl', sha256: 'a'.repeat(64), n: 2000 },
    probes: { file: 'probes.json', sha256: 'b'.repeat(64) },
    bootstrap,
    costs: {
      tokenizer: 'test',
      output_tokens: { weak: 1, strong: 1 },
      prices: {
        weak: { input_per_mtok: 1, output_per_mtok: 1 },
        strong: { input_per_mtok: 10, output_per_mtok: 10 },
      },
    },
  };

  test('round-trips through YAML and the policy validator, with a new version', () => {
    const pooled = calibrate(synthetic(), { target: 0.95, bootstrap });
    const policy = buildCalibratedPolicy(pooled, undefined, {
      ...meta,
      base: { version: 'cal-20261128T120000Z-aaaaaaaa', kind: 'utility' },
    });
    assert.equal(policy.version, 'cal-20261128T120000Z-aaaaaaaa-1');
    const back = parsePolicy(parse(policyYaml(policy)), 'policy.yaml', ['weak', 'strong']);
    assert.deepEqual(back, policy);
    assert.equal(back.kind, 'threshold');
    assert.equal(back.threshold.default, 1);
    assert.equal(back.calibration!.classes.all!.quality, 0.95);
    assert.equal(back.calibration!.traces.sha256, 'a'.repeat(64));
  });

  test("route() with the written policy makes the sweep's decisions, per class", () => {
    const a = synthetic(0.6);
    const rng = createRng(9);
    const rows: LabelledRows = {
      ...a,
      p: [Float64Array.from(a.p[0]!, () => rng.next()), a.p[1]!],
    };
    const classes = Array.from({ length: a.n }, (_, i) => (i % 3 === 0 ? 'A' : 'B'));
    const pooled = calibrate(rows, { target: 0.9, bootstrap });
    const perClass = calibrate(rows, { target: 0.9, bootstrap, perClass: true, classes });
    const policy = buildCalibratedPolicy(pooled, perClass, meta);
    const tiers = [
      { id: 'strong', price: { input_per_mtok: 10, output_per_mtok: 10 }, available: true },
      { id: 'weak', price: { input_per_mtok: 1, output_per_mtok: 1 }, available: true },
    ];
    for (let i = 0; i < a.n; i += 1) {
      const cls = classes[i]!;
      const own = perClass.classes.find((c) => c.name === cls)!;
      const expected = rows.tiers[decideRow(rows, [own.chosen.thresholds.weak!], i)];
      const decision = route(
        {
          prediction: {
            tiers: { weak: rows.p[0]![i]!, strong: 0.99 },
            difficulty: 0,
            task_class: { name: cls, p: 0.9 },
          },
          tiers,
          input_tokens: 10,
        },
        policy,
        0,
      );
      assert.equal(decision.tier, expected, `row ${i}`);
      const unclassed = route(
        {
          prediction: { tiers: { weak: rows.p[0]![i]!, strong: 0.99 }, difficulty: 0 },
          tiers,
          input_tokens: 10,
        },
        policy,
        0,
      );
      assert.equal(
        unclassed.tier,
        rows.tiers[decideRow(rows, [pooled.classes[0]!.chosen.thresholds.weak!], i)],
      );
    }
  });

  test('with several tiers below the frontier, one threshold shared by all of them is swept too', () => {
    const ladder: LabelledRows = {
      tiers: ['a', 'b', 'c', 'd'],
      p: [
        [0.1, 0.9, 0.35, 0.62],
        [0.2, 0.8, 0.45, 0.71],
        [0.3, 0.7, 0.55, 0.83],
        [0.9, 0.9, 0.9, 0.9],
      ],
      correct: [
        [false, true, false, true],
        [true, true, false, true],
        [true, true, true, true],
        [true, true, true, true],
      ],
      cost: [1, 2, 3, 10].map((c) => [c, c, c, c]),
    };
    const points = sweepThresholds(ladder, [0, 1, 2, 3], 8);
    const shared = points.filter((p) => new Set(Object.values(p.thresholds)).size === 1);
    // Grid: 2 values per axis (8^(1/3)); diagonal: τ at 0, 1 and the midpoints of the 12 P's, thinned to 8.
    assert.equal(points.length, 2 ** 3 + 8);
    assert.ok(
      shared.some((p) => p.thresholds.a! > 0 && p.thresholds.a! < 1),
      'an inner shared τ',
    );
  });
});
