import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderChartSvg } from '../../../src/charts/render-svg.js';
import { multiTierMetrics } from '../../../src/metrics/multi-tier.js';
import {
  type BenchCharts,
  benchCharts,
  comparisonTable,
  ladderText,
  multiTable,
  qualityCostInput,
} from '../../../training/bench-report.js';
import type { BenchResult, MethodResult } from '../../../training/bench-routing.js';
import { qualityCostChartSpec } from '../../../training/quality-cost-chart.js';
import { layerTradeOff } from '../../../training/render-report.js';

const TIERS = ['cheap', 'mid', 'dear'];
const correct = [
  [true, false, false, true],
  [true, true, false, false],
  [true, true, true, false],
];
const cost = [1, 2, 10].map((c) => [c, c, c, c].map((v) => v / 1000));
const multi = (p: number[][]) => multiTierMetrics({ tiers: TIERS, p, correct, cost }, [0.001, 0.002, 0.01]);

function method(p: number[][]): MethodResult {
  return {
    n: 4,
    auroc: { cheap: 0.7, mid: 0.6, dear: 0.5 },
    brier: {},
    ece: {},
    accuracy: {},
    apgr: null,
    cpt50: null,
    cpt80: null,
    oracle_gap_closed: null,
    cost_saving: null,
    cost_per_correct: null,
    tiers: {},
    routing: null,
    multi: multi(p),
    latency_ms_p50: 5,
    latency_ms_p95: 9,
    train_ms: 10,
    features: 'f',
  };
}

const knowing = correct.map((t) => t.map((ok) => (ok ? 0.9 : 0.1)));
const blind = [0.5, 0.6, 0.7].map((v) => [v, v, v, v]);
const result: BenchResult = {
  train_file: 'a',
  test_file: 'b',
  n_train: 8,
  n_test: 4,
  tiers: TIERS,
  weak_tier: 'cheap',
  strong_tier: 'dear',
  router_prices: { cheap: 0.001, mid: 0.002, dear: 0.01 },
  ladder: {
    tiers: TIERS,
    singles: [
      { tier: 'cheap', quality: 0.5, cost: 0.001 },
      { tier: 'mid', quality: 0.5, cost: 0.002 },
      { tier: 'dear', quality: 0.75, cost: 0.01 },
    ],
    oracle: { quality: 1, cost: 0.0035 },
  },
  dropped: { train: {}, test: {} },
  latency_samples: 4,
  methods: { probes: method(knowing), 'tfidf-lr': method(blind) },
  comparisons: {
    probes: [
      {
        metric: 'cost_saving_at_parity',
        baseline: 'tfidf-lr',
        a: 0.875,
        b: 0,
        difference: 0.875,
        low: 0.5,
        high: 0.9,
        resamples: 100,
      },
    ],
  },
  curves: { deferral: {}, calibration: {}, q_weak: 0.5, q_strong: 0.75, q_oracle: 1 },
  models: {},
};

describe('ladder report', () => {
  test('tables: the ladder, the multi fields per method, the comparisons with their intervals', () => {
    assert.match(ladderText(result), /Oracle .*100\.0 % at \$3\.50e-3; best single tier: dear, 75\.0 %/);
    assert.match(
      multiTable(result),
      /\| probes +\| 87\.5 % +\| 87\.9 % +\| 100\.0 % +\| 0\.958 +\| 0\.625 +\|/,
    );
    assert.match(multiTable(result), /\| tfidf-lr +\| 0\.0 % +\|/);
    assert.match(
      comparisonTable(result),
      /\| probes .*cost_saving_at_parity .*tfidf-lr .*\+87\.5 pt .*\[\+50\.0 pt, \+90\.0 pt\]/,
    );
  });

  test('quality-vs-cost chart: log cost axis, every tier labelled, both hulls and the oracle in the legend', async () => {
    const spec = qualityCostChartSpec(benchCharts(result, 'Test').quality_cost!);
    const svg = await renderChartSvg(spec);
    assert.match(svg, /^<svg/);
    for (const text of [
      'cheap',
      'mid',
      'dear',
      'probes',
      'tfidf-lr',
      'oracle (cheapest right tier)',
      "single tiers' hull",
    ])
      assert.ok(svg.includes(text.replace("'", '&#39;')) || svg.includes(text), text);
    assert.match(JSON.stringify(spec), /"type":"log"/);
  });

  test('quality-vs-cost chart: past a dozen tiers only the Pareto-efficient ones are named, the dearest on its left', () => {
    // 14 tiers: cost k+1, quality rising on the even ones only, so the odd ones are dominated.
    const singles = Array.from({ length: 14 }, (_, k) => ({
      tier: `t${k}`,
      cost: (k + 1) / 1000,
      quality: 0.5 + 0.03 * Math.floor(k / 2) - (k % 2 === 1 ? 0.02 : 0),
    }));
    const spec = qualityCostChartSpec({
      title: 'T',
      methods: {},
      singles,
      oracle: { quality: 1, cost: 0.001 },
    });
    const text = (
      spec as { layer: { mark: { type?: string; align?: string }; data: { values: { tier: string }[] } }[] }
    ).layer.filter((l) => l.mark.type === 'text');
    const named = text.flatMap((l) => l.data.values.map((v) => v.tier)).sort();
    assert.deepEqual(named, ['t0', 't10', 't12', 't2', 't4', 't6', 't8']);
    const leftAligned = text.find((l) => l.mark.align === 'right')!.data.values.map((v) => v.tier);
    assert.ok(leftAligned.includes('t12'), 'the dearest named tier is labelled on its left');
    assert.ok(!leftAligned.includes('t10'), 'its neighbour on the other side');
  });

  test("charts.json carries the quality-vs-cost chart's input, so `npm run charts` can redraw it", () => {
    const charts = JSON.parse(JSON.stringify(benchCharts(result, 'Test'))) as BenchCharts;
    assert.ok(charts.quality_cost, 'quality_cost in charts.json');
    assert.deepEqual(
      qualityCostChartSpec(charts.quality_cost),
      qualityCostChartSpec(qualityCostInput(result, 'Test')),
    );
    const noLadder = benchCharts({ ...result, ladder: null });
    assert.equal(noLadder.quality_cost, undefined);
  });

  test('layer trade-off names the chosen layer, the best one and the fastest near it', () => {
    const row = (layer: number, auroc: number, ms: number) => ({
      layer,
      pooling: 'last' as const,
      dim: 8,
      fisher_j: null,
      participation_ratio: null,
      cv_auroc: auroc,
      cv_auroc_std: 0.01,
      lambda: 1,
      latency_ms_p50: ms,
      latency_ms_p95: ms,
    });
    const text = layerTradeOff({
      layer_table: [row(12, 0.7, 30), row(4, 0.695, 10), row(2, 0.6, 5)],
      chosen: { layers: [12], pooling: 'last' } as never,
    });
    assert.match(
      text,
      /chosen 12 \(last\), prefill to layer 12: 30\.0 ms p50; best layer 12 .*; fastest within one fold std of it layer 4 \(last\): CV AUROC 0\.695, 10\.0 ms/,
    );
  });
});
