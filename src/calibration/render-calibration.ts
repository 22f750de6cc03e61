import { type ChartSpec, type LineSeries, lineChartSpec } from '../charts/render-svg.js';
import type { CalibrationResult, ClassCalibration, ScoredPoint } from './calibrate.js';

/** Text and chart views of a calibration: the Pareto curve per class with intervals, the chosen point marked. */

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
const usd = (v: number) => (Number.isFinite(v) ? `$${v.toExponential(3)}` : '$∞');
const interval = (ci: [number, number] | null, f: (v: number) => string) =>
  ci ? `[${f(ci[0])}, ${f(ci[1])}]` : '[n/a]';

function thresholdsText(p: ScoredPoint): string {
  return Object.entries(p.thresholds)
    .map(([tier, t]) => `${tier} ≥ ${Number.isFinite(t) ? t.toFixed(4) : 'never'}`)
    .join(', ');
}

function sharesText(p: ScoredPoint): string {
  return Object.entries(p.shares)
    .map(([tier, s]) => `${tier} ${pct(s)}`)
    .join(', ');
}

/** At most `max` points, evenly spaced along the front, always keeping both ends and the chosen one. */
function thin(front: readonly ScoredPoint[], chosen: ScoredPoint, max: number): ScoredPoint[] {
  if (front.length <= max) return [...front];
  const keep = new Set<number>();
  for (let j = 0; j < max - 1; j += 1) keep.add(Math.round((j * (front.length - 1)) / (max - 2)));
  const at = front.findIndex((p) => samePoint(p, chosen));
  if (at >= 0) keep.add(at);
  return [...keep].sort((a, b) => a - b).map((j) => front[j]!);
}

function classText(c: ClassCalibration, confidence: number, maxRows: number): string {
  const level = `${Math.round(confidence * 100)}%`;
  const lines = [
    `class ${c.name}: n = ${c.n}, ${c.swept} operating points swept, ${c.pareto.length} on the Pareto front`,
    `  frontier only: quality ${pct(c.frontier.quality)} ${interval(c.frontier.ci.quality, pct)}, ` +
      `cost per correct ${usd(c.frontier.costPerCorrect)}`,
    `  target quality ${pct(c.targetQuality)}`,
    `  ${'quality'.padEnd(8)} ${`${level} CI`.padEnd(16)} ${'cost/correct'.padEnd(11)} ${`${level} CI`.padEnd(25)} thresholds`,
  ];
  const shown = thin(c.pareto, c.chosen, maxRows);
  for (const p of shown) {
    const mark = samePoint(p, c.chosen) ? ' ← chosen' : '';
    lines.push(
      `  ${pct(p.quality).padEnd(8)} ${interval(p.ci.quality, pct).padEnd(16)} ${usd(p.costPerCorrect).padEnd(11)} ` +
        `${interval(p.ci.costPerCorrect, usd).padEnd(25)} ${thresholdsText(p)}${mark}`,
    );
  }
  if (shown.length < c.pareto.length)
    lines.push(`  (${shown.length} of ${c.pareto.length} Pareto points shown; --json lists all)`);
  const saving = 1 - c.chosen.costPerCorrect / c.frontier.costPerCorrect;
  lines.push(
    c.reached
      ? `  chosen: quality ${pct(c.chosen.quality)} ${interval(c.chosen.ci.quality, pct)} ≥ target; cost per correct ` +
          `${usd(c.chosen.costPerCorrect)} ${interval(c.chosen.ci.costPerCorrect, usd)}, ${pct(saving)} below frontier only; ` +
          `routes ${sharesText(c.chosen)}`
      : `  TARGET UNREACHABLE: no operating point reaches ${pct(c.targetQuality)}; closest: quality ` +
          `${pct(c.chosen.quality)} ${interval(c.chosen.ci.quality, pct)} (${(c.chosen.quality / c.frontier.quality).toFixed(3)} × frontier) ` +
          `at ${usd(c.chosen.costPerCorrect)} per correct, thresholds ${thresholdsText(c.chosen)}`,
  );
  return lines.join('\n');
}

function samePoint(a: ScoredPoint, b: ScoredPoint): boolean {
  return a.correct === b.correct && a.cost === b.cost && a.n === b.n;
}

export function renderCalibration(result: CalibrationResult, confidence: number, maxRows = 24): string {
  return `${result.classes.map((c) => classText(c, confidence, maxRows)).join('\n\n')}\n`;
}

/** What the Pareto plot draws, per class: the front, the chosen point and the target quality. */
export interface ParetoChart {
  title: string;
  classes: {
    name: string;
    front: { x: number; y: number }[];
    chosen: { x: number; y: number };
    /** The target quality, drawn from the cheapest front point to the frontier tier's cost per correct. */
    target: { y: number; from: number; to: number };
  }[];
}

export function paretoChart(result: CalibrationResult, title: string): ParetoChart {
  return {
    title,
    classes: result.classes.map((c) => ({
      name: c.name,
      front: c.pareto
        .filter((p) => Number.isFinite(p.costPerCorrect))
        .map((p) => ({ x: p.costPerCorrect, y: p.quality })),
      chosen: { x: c.chosen.costPerCorrect, y: c.chosen.quality },
      target: { y: c.targetQuality, from: c.pareto[0]?.costPerCorrect ?? 0, to: c.frontier.costPerCorrect },
    })),
  };
}

/**
 * Quality against cost per correct outcome: one colour per class (its front solid, its target dashed),
 * the chosen operating points as large diamonds, so the legend has one entry per class.
 */
export function paretoChartSpec(chart: ParetoChart): ChartSpec {
  const series: LineSeries[] = chart.classes.flatMap((c) => [
    { name: `${c.name}: front`, group: c.name, points: c.front },
    {
      name: `${c.name}: target`,
      group: c.name,
      dashed: true,
      points: [
        { x: c.target.from, y: c.target.y },
        { x: c.target.to, y: c.target.y },
      ],
    },
  ]);
  return lineChartSpec({
    title: chart.title,
    subtitle: 'solid: Pareto front; dashed: target quality; ◆: the chosen operating point',
    xTitle: 'USD per correct outcome',
    yTitle: 'quality (share correct)',
    series,
    markers: chart.classes.map((c) => ({ group: c.name, ...c.chosen })),
  });
}

/** The Pareto plot of a calibration (`calibrate --chart`). */
export function calibrationChartSpec(result: CalibrationResult, title: string): ChartSpec {
  return paretoChartSpec(paretoChart(result, title));
}
