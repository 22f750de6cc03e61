import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ChartSpec, type LineSeries, lineChartSpec, renderChartSvg } from '../src/charts/render-svg.js';
import type { BenchResult } from './bench-routing.js';
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
    '![deferral curve](deferral.svg)',
    '',
    '![calibration](calibration.svg)',
    '',
  ].join('\n');
}

/**
 * The data behind the two plots of `bench routing --out`, written beside them as charts.json so the
 * plots can be drawn again (`npm run charts`) without rerunning the benchmark.
 */
export interface BenchCharts {
  weak_tier: string;
  strong_tier: string;
  deferral: LineSeries[];
  calibration: LineSeries[];
}

export function benchCharts(result: BenchResult): BenchCharts {
  return {
    weak_tier: result.weak_tier,
    strong_tier: result.strong_tier,
    deferral: deferralSeries(result),
    calibration: calibrationSeries(result),
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

export async function writeBenchReport(result: BenchResult, dir: string, title?: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const charts = benchCharts(result);
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
  return files;
}
