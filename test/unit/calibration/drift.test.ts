import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { calibrate } from '../../../src/calibration/calibrate.js';
import { buildCalibratedPolicy } from '../../../src/calibration/calibrated-policy.js';
import { checkDrift, type DriftRow } from '../../../src/calibration/drift.js';
import type { LabelledRows } from '../../../src/metrics/operating-points.js';
import type { RouteTier } from '../../../src/policy/policy-schema.js';
import { createRng } from '../../../src/seeded-rng.js';

/** Rows where the weak tier is right with probability p (a calibrated probe), the strong one 90 % of the time. */
function draw(n: number, seed: number, weakAccuracy = (p: number) => p) {
  const rng = createRng(seed);
  const p = Array.from({ length: n }, () => rng.next());
  const weak = p.map((v) => rng.next() < weakAccuracy(v));
  const strong = p.map(() => rng.next() < 0.9);
  return { p, weak, strong };
}

const tiers: RouteTier[] = [
  { id: 'weak', price: { input_per_mtok: 1, output_per_mtok: 1 }, available: true },
  { id: 'strong', price: { input_per_mtok: 20, output_per_mtok: 20 }, available: true },
];
const options = { qualityTolerance: 0.03, costTolerance: 0.25, minRows: 30 };

function policyFrom(seed: number) {
  const d = draw(4000, seed);
  const rows: LabelledRows = {
    tiers: ['weak', 'strong'],
    p: [d.p, d.p.map(() => 0.9)],
    correct: [d.weak, d.strong],
    cost: [d.p.map(() => 1), d.p.map(() => 20)],
  };
  const pooled = calibrate(rows, { target: 0.95, bootstrap: { resamples: 100, seed: 1, confidence: 0.95 } });
  return buildCalibratedPolicy(pooled, undefined, {
    date: new Date('2026-11-28T00:00:00Z'),
    traces: { file: 'golden.jsonl', sha256: 'c'.repeat(64), n: 4000 },
    probes: { file: 'p.json', sha256: 'd'.repeat(64) },
    bootstrap: { resamples: 100, seed: 1, confidence: 0.95 },
    costs: { tokenizer: 'test', output_tokens: {}, prices: {} },
  });
}

const driftRows = (d: ReturnType<typeof draw>, strongCost = 20): DriftRow[] =>
  d.p.map((p, i) => ({
    prediction: { tiers: { weak: p, strong: 0.9 }, difficulty: 1 - p },
    outcomes: { weak: d.weak[i]!, strong: d.strong[i]! },
    costs: { weak: 1, strong: strongCost },
  }));

describe('drift', () => {
  const policy = policyFrom(1);

  test('fresh traces from the same distribution keep the promise', () => {
    const report = checkDrift(policy, tiers, driftRows(draw(3000, 2)), options);
    assert.equal(report.drifted, false, JSON.stringify(report.classes));
    assert.equal(report.classes[0]!.name, 'all');
    assert.equal(report.classes[0]!.status, 'ok');
  });

  test('a planted quality shift (the weak tier got worse) is flagged', () => {
    const worse = draw(3000, 3, (p) => p * 0.7);
    const report = checkDrift(policy, tiers, driftRows(worse), options);
    assert.equal(report.drifted, true);
    assert.match(report.classes[0]!.reasons.join('\n'), /quality .* below the promised/);
  });

  test('a planted cost shift (the strong tier got dearer) is flagged', () => {
    const report = checkDrift(policy, tiers, driftRows(draw(3000, 4), 40), options);
    assert.equal(report.drifted, true);
    assert.match(report.classes[0]!.reasons.join('\n'), /cost per correct .* exceeds/);
  });

  test("rows without the chosen tier's outcome are counted, not scored; too few rows are not judged", () => {
    const rows = driftRows(draw(20, 5, () => 0)).map((r) => ({ ...r, outcomes: { weak: false } }));
    const report = checkDrift(policy, tiers, rows, options);
    const c = report.classes[0]!;
    assert.equal(c.n + c.unscored, 20);
    assert.ok(c.unscored > 0);
    assert.equal(c.status, 'too few rows');
    assert.equal(report.drifted, false);
  });

  test('a policy without a calibration record is refused', () => {
    const { calibration: _, ...plain } = policy;
    assert.throws(() => checkDrift(plain, tiers, [], options), /no calibration record/);
  });
});
