import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ChartSpec, type LineSeries, lineChartSpec, renderChartSvg } from '../src/charts/render-svg.js';
import type { BenchResult } from './bench-routing.js';
import { type QualityCostChartInput, qualityCostChartSpec } from './quality-cost-chart.js';
import { table } from './render-report.js';

/** `mechroute bench routing --out DIR`: report.md, deferral.svg, calibration.svg and their data, charts.json. */

const fmt = (v: number | null | undefined, digits = 3): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
const pct = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(1)} %`;

/** One row per method: the weak tier's classification metrics, routing, latency, training time. */
export function benchTable(result: BenchResult): string {
  const weak = result.weak_tier;
  const strong = result.strong_tier;
  const rows = Object.entries(result.methods).map(([name, m]) => [
    name,
    fmt(m.auroc[weak]),
    fmt(m.auroc[strong]),
    fmt(m.brier[weak]),
    fmt(m.ece[weak]),
    fmt(m.apgr),
    pct(m.cpt50),
    pct(m.cpt80),
    pct(m.oracle_gap_closed),
    pct(m.cost_saving),
    fmt(m.latency_ms_p50, 1),
    fmt(m.latency_ms_p95, 1),
    fmt(m.train_ms / 1000, 1),
  ]);
  return table(
    [
      'method',
      `AUROC ${weak}`,
      `AUROC ${strong}`,
      `Brier ${weak}`,
      `ECE ${weak}`,
      'APGR',
      'CPT(50%)',
      'CPT(80%)',
      'gap closed',
      'cost saving',
      'p50 ms',
      'p95 ms',
      'train s',
    ],
    rows,
  );
}

/** P(success) AUROC of every tier, per method (the ladder's view; `benchTable` shows the weak/strong pair). */
export function aurocTable(result: BenchResult): string {
  return table(
    ['method', ...result.tiers],
    Object.entries(result.methods).map(([name, m]) => [name, ...result.tiers.map((t) => fmt(m.auroc[t]))]),
  );
}

const usdText = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : `$${v.toExponential(2)}`;

/** The `multi` fields per method, with the ladder's single tiers and oracle above them. */
export function multiTable(result: BenchResult): string {
  const rows = Object.entries(result.methods).flatMap(([name, m]) => {
    const x = m.multi;
    if (!x) return [];
    return [
      [
        name,
        pct(x.cost_saving_at_parity),
        pct(x.cost_saving_at_95),
        pct(x.gap_closed_at_best_cost),
        fmt(x.hull_auc.router),
        fmt(x.hull_auc.single_tiers),
        fmt(m.latency_ms_p50, 1),
      ],
    ];
  });
  return table(
    [
      'method',
      'cost saving at parity',
      'cost saving at 95 %',
      'gap closed at best cost',
      'hull AUC',
      "single tiers' hull AUC",
      'p50 ms',
    ],
    rows,
  );
}

export function ladderText(result: BenchResult): string {
  const ladder = result.ladder;
  if (!ladder) return '';
  const best = Object.values(result.methods).find((m) => m.multi)?.multi?.best_single;
  return [
    table(
      ['tier', 'quality', 'mean cost', 'price the router knows (train mean)'],
      [...ladder.singles]
        .sort((a, b) => a.cost - b.cost)
        .map((s) => [s.tier, pct(s.quality), usdText(s.cost), usdText(result.router_prices[s.tier])]),
    ),
    '',
    `Oracle (per prompt the cheapest tier that is right): ${pct(ladder.oracle.quality)} at ${usdText(ladder.oracle.cost)}` +
      (best ? `; best single tier: ${best.tier}, ${pct(best.quality)} at ${usdText(best.cost)}.` : '.'),
  ].join('\n');
}

/** Each method against the best text method per metric: paired bootstrap 95 % intervals of the difference. */
export function comparisonTable(result: BenchResult): string {
  const value = (metric: string, v: number) =>
    metric.startsWith('auroc') || metric === 'hull_auc' ? fmt(v) : pct(v);
  const diff = (metric: string, v: number) =>
    metric.startsWith('auroc') || metric === 'hull_auc'
      ? `${v >= 0 ? '+' : ''}${fmt(v)}`
      : Number.isFinite(v)
        ? `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)} pt`
        : '–';
  const rows = Object.entries(result.comparisons).flatMap(([method, list]) =>
    list.map((c) => [
      method,
      c.metric.replace('auroc:', 'AUROC '),
      c.baseline,
      value(c.metric, c.a),
      value(c.metric, c.b),
      diff(c.metric, c.difference),
      `[${diff(c.metric, c.low)}, ${diff(c.metric, c.high)}]`,
    ]),
  );
  return table(['method', 'metric', 'best text method', 'method', 'text', 'difference', '95 % CI'], rows);
}

/** At most `max` points, evenly spaced along the curve, ends kept. */
function thin<T>(points: readonly T[], max = 150): T[] {
  if (points.length <= max) return [...points];
  const step = (points.length - 1) / (max - 1);
  return Array.from({ length: max }, (_, i) => points[Math.round(i * step)]!);
}

export function deferralSeries(result: BenchResult): LineSeries[] {
  const { q_weak: qW, q_strong: qS, q_oracle: qO } = result.curves;
  return [
    ...Object.entries(result.curves.deferral).map(([name, points]) => ({ name, points: thin(points) })),
    {
      name: 'random',
      points: [
        { x: 0, y: qW },
        { x: 1, y: qS },
      ],
      dashed: true,
    },
    {
      // Strong only where it alone is right; weak wherever weak is right.
      name: 'oracle',
      points: [
        { x: 0, y: qW },
        { x: qO - qW, y: qO },
        { x: 1 - (qO - qS), y: qO },
        { x: 1, y: qS },
      ],
      dashed: true,
    },
  ];
}

export function calibrationSeries(result: BenchResult): LineSeries[] {
  return [
    ...Object.entries(result.curves.calibration).map(([name, bins]) => ({
      name,
      points: bins.filter((b) => b.count > 0).map((b) => ({ x: b.meanProb, y: b.accuracy })),
    })),
    {
      name: 'perfect',
      points: [
        { x: 0, y: 0 },
        { x: 1, y: 1 },
      ],
      dashed: true,
    },
  ];
}

export function renderBenchMarkdown(result: BenchResult, title = 'Routing benchmark'): string {
  const dropped = (d: Record<string, number>) =>
    Object.entries(d)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${v} ${k.replaceAll('_', ' ')}`)
      .join(', ') || 'none';
  return [
    `# ${title}`,
    '',
    `Train: \`${result.train_file}\` (${result.n_train} traces; dropped: ${dropped(result.dropped.train)}). ` +
      `Test: \`${result.test_file}\` (${result.n_test} traces; dropped: ${dropped(result.dropped.test)}).`,
    `Routing between \`${result.weak_tier}\` (weak) and \`${result.strong_tier}\` (strong); metrics as in ` +
      '`mechroute eval`. Latency: one decision (text → P(success | tier)), sequential, median and 95th ' +
      `percentile over ${result.latency_samples} test prompts, same process and machine. Training time: fitting only ` +
      '(activations from the store, sentence embeddings computed beforehand).',
    '',
    benchTable(result),
    '',
    'Features:',
    '',
    ...Object.entries(result.methods).map(([name, m]) => `- \`${name}\`: ${m.features}`),
    '',
    ...(result.ladder
      ? [
          `## The ladder: ${result.ladder.tiers.length} tiers`,
          '',
          ladderText(result),
          '',
          'AUROC of P(success) per tier:',
          '',
          aurocTable(result),
          '',
          "Routing over every tier (`multi`, read off the upper convex hull of each method's utility-λ and " +
            "threshold sweeps together with the single tiers; hull AUC = mean quality over the single tiers' cost range):",
          '',
          multiTable(result),
          '',
          '![quality vs cost](quality-cost.svg)',
          '',
        ]
      : []),
    ...(Object.keys(result.comparisons).length > 0
      ? [
          'Against the best text method per metric (paired bootstrap over the test prompts, 95 % intervals):',
          '',
          comparisonTable(result),
          '',
        ]
      : []),
    '![deferral curve](deferral.svg)',
    '',
    '![calibration](calibration.svg)',
    '',
  ].join('\n');
}

/**
 * The data behind the plots of `bench routing --out`, written beside them as charts.json so the plots can
 * be drawn again (`npm run charts`) without rerunning the benchmark.
 */
export interface BenchCharts {
  weak_tier: string;
  strong_tier: string;
  deferral: LineSeries[];
  calibration: LineSeries[];
  /** The quality-vs-cost chart's input, where the test file has a ladder. */
  quality_cost?: QualityCostChartInput;
}

export function benchCharts(result: BenchResult, title?: string): BenchCharts {
  return {
    weak_tier: result.weak_tier,
    strong_tier: result.strong_tier,
    deferral: deferralSeries(result),
    calibration: calibrationSeries(result),
    ...(result.ladder ? { quality_cost: qualityCostInput(result, title) } : {}),
  };
}

/** Quality against the share of strong-tier calls; the y axis spans the data (the methods differ by little). */
export function deferralChartSpec(charts: BenchCharts): ChartSpec {
  return lineChartSpec({
    title: `Deferral curve: quality vs share of ${charts.strong_tier} calls`,
    subtitle: 'dashed grey: random deferral and the oracle',
    xTitle: `share of calls to ${charts.strong_tier}`,
    yTitle: 'quality (share correct)',
    series: charts.deferral,
    xDomain: [0, 1],
  });
}

export function reliabilityChartSpec(charts: BenchCharts): ChartSpec {
  return lineChartSpec({
    title: `Calibration of P(${charts.weak_tier} succeeds)`,
    subtitle: 'dashed grey: perfect calibration',
    xTitle: 'mean predicted probability (10 equal-width bins)',
    yTitle: 'observed success rate',
    series: charts.calibration,
    xDomain: [0, 1],
    yDomain: [0, 1],
  });
}

export function qualityCostInput(result: BenchResult, title?: string): QualityCostChartInput {
  const ladder = result.ladder!;
  return {
    title: `${title ?? 'Quality vs cost'}: ${ladder.tiers.length} tiers, ${result.n_test} test prompts`,
    methods: Object.fromEntries(
      Object.entries(result.methods).flatMap(([name, m]) => (m.multi ? [[name, m.multi.frontier]] : [])),
    ),
    singles: ladder.singles,
    oracle: ladder.oracle,
  };
}

export async function writeBenchReport(result: BenchResult, dir: string, title?: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const charts = benchCharts(result, title);
  const files = [
    join(dir, 'report.md'),
    join(dir, 'deferral.svg'),
    join(dir, 'calibration.svg'),
    join(dir, 'charts.json'),
  ];
  await writeFile(files[0]!, renderBenchMarkdown(result, title));
  await writeFile(files[1]!, await renderChartSvg(deferralChartSpec(charts)));
  await writeFile(files[2]!, await renderChartSvg(reliabilityChartSpec(charts)));
  await writeFile(files[3]!, `${JSON.stringify(charts)}\n`);
  if (charts.quality_cost) {
    const file = join(dir, 'quality-cost.svg');
    await writeFile(file, await renderChartSvg(qualityCostChartSpec(charts.quality_cost)));
    files.push(file);
  }
  return files;
}
