import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  benchTable,
  calibrationSeries,
  deferralSeries,
  renderBenchMarkdown,
} from '../../../training/bench-report.js';
import type { BenchResult, MethodResult } from '../../../training/bench-routing.js';

const method = (auroc: number, p50: number): MethodResult => ({
  n: 10,
  auroc: { weak: auroc, strong: 0.6 },
  brier: { weak: 0.2, strong: 0.2 },
  ece: { weak: 0.05, strong: 0.05 },
  accuracy: { weak: 0.7, strong: 0.7 },
  apgr: 0.5,
  cpt50: 0.4,
  cpt80: 0.7,
  oracle_gap_closed: 0.1,
  cost_saving: 0.3,
  cost_per_correct: 0.001,
  tiers: {},
  routing: null,
  multi: null,
  latency_ms_p50: p50,
  latency_ms_p95: 2 * p50,
  train_ms: 1500,
  features: 'test features',
});

const result: BenchResult = {
  train_file: 'train.jsonl',
  test_file: 'test.jsonl',
  n_train: 40,
  n_test: 10,
  tiers: ['weak', 'strong'],
  weak_tier: 'weak',
  strong_tier: 'strong',
  dropped: { train: { missing_activations: 2 }, test: {} },
  router_prices: { weak: 0.001, strong: 0.01 },
  ladder: null,
  comparisons: {},
  latency_samples: 10,
  methods: { probes: method(0.75, 120), 'tfidf-lr': method(0.7, 0.1) },
  curves: {
    deferral: {
      probes: [
        { x: 0, y: 0.6 },
        { x: 0.5, y: 0.8 },
        { x: 1, y: 0.7 },
      ],
    },
    calibration: {
      probes: [
        { lower: 0, upper: 0.5, count: 0, meanProb: Number.NaN, accuracy: Number.NaN },
        { lower: 0.5, upper: 1, count: 4, meanProb: 0.7, accuracy: 0.75 },
      ],
    },
    q_weak: 0.6,
    q_strong: 0.7,
    q_oracle: 0.85,
  },
  models: {},
};

describe('bench report', () => {
  test('deferral plot: every method plus random and oracle lines from the test split’s rates', () => {
    const series = deferralSeries(result);
    assert.deepEqual(
      series.map((s) => s.name),
      ['probes', 'random', 'oracle'],
    );
    assert.deepEqual(series[1]!.points, [
      { x: 0, y: 0.6 },
      { x: 1, y: 0.7 },
    ]);
    // Oracle: the strong tier only where it alone is right (25 % of items), weak wherever weak is right.
    const oracle = series[2]!.points;
    assert.equal(oracle.length, 4);
    assert.ok(Math.abs(oracle[1]!.x - 0.25) < 1e-12 && oracle[1]!.y === 0.85);
    assert.ok(Math.abs(oracle[2]!.x - 0.85) < 1e-12 && oracle[3]!.y === 0.7);
  });

  test('calibration plot skips empty bins; table and Markdown have every method', () => {
    assert.deepEqual(calibrationSeries(result)[0]!.points, [{ x: 0.7, y: 0.75 }]);
    const table = benchTable(result);
    assert.match(table, /\| probes +\| 0\.750 /);
    assert.match(table, /\| tfidf-lr +\| 0\.700 .*\| 0\.1 +\| 0\.2 +\| 1\.5 +\|/);
    const md = renderBenchMarkdown(result, 'T');
    assert.match(md, /^# T/);
    assert.match(md, /dropped: 2 missing activations/);
    assert.match(md, /`probes`: test features/);
  });
});
