import { type ChartSpec, PALETTE } from '../src/charts/render-svg.js';
import { type CostQuality, upperHull } from '../src/metrics/cost-quality-hull.js';
import { paretoPoints } from '../src/metrics/multi-tier.js';

/**
 * The quality-vs-cost chart of a price ladder: every method's frontier (the upper convex hull of its
 * utility and threshold sweeps together with the single tiers, the curve its `multi` fields are read
 * off), every single tier as a point (named; past a dozen tiers only the Pareto-efficient ones), the
 * single tiers' own hull (mixing them at random), and the oracle — on a log cost axis, since prices on a
 * ladder differ by orders of magnitude.
 */
export interface QualityCostChartInput {
  title: string;
  /** Per method, its operating points (the `multi.frontier`). */
  methods: Readonly<Record<string, readonly CostQuality[]>>;
  singles: readonly (CostQuality & { tier: string })[];
  oracle: CostQuality;
}

const SINGLE_HULL = "single tiers' hull (random mix)";

/** Past this many tiers names overprint: only the Pareto-efficient tiers are named, the rest are points. */
export const MAX_NAMED_TIERS = 12;

function labelledTiers(singles: readonly (CostQuality & { tier: string })[]): Set<string> {
  const named = singles.length > MAX_NAMED_TIERS ? paretoPoints(singles) : singles;
  return new Set(named.map((s) => s.tier));
}
const ORACLE = 'oracle (cheapest right tier)';

export function qualityCostChartSpec(input: QualityCostChartInput): ChartSpec {
  const names = Object.keys(input.methods);
  const lines = [
    ...names.flatMap((name) =>
      upperHull([...input.methods[name]!, ...input.singles]).map((p, order) => ({
        series: name,
        order,
        ...p,
      })),
    ),
    ...upperHull(input.singles).map((p, order) => ({ series: SINGLE_HULL, order, ...p })),
  ];
  const costs = [...input.singles.map((s) => s.cost), input.oracle.cost].filter((c) => c > 0);
  const qualities = [...input.singles.map((s) => s.quality), input.oracle.quality];
  const domainX: [number, number] = [Math.min(...costs) / 1.5, Math.max(...costs) * 1.5];
  const domainY: [number, number] = [
    Math.max(0, Math.floor(20 * Math.min(...qualities)) / 20 - 0.05),
    Math.min(1, Math.ceil(20 * Math.max(...qualities)) / 20 + 0.02),
  ];
  // Copies: the renderer tags the data objects it draws, and the input is the caller's.
  const singles = input.singles
    .filter((s) => s.cost > 0)
    .map((s) => ({ ...s }))
    .sort((a, b) => a.cost - b.cost);
  // Labels alternate left and right of their points, counted from the dearest (named on its left, so the
  // name stays inside the plot), so neighbours do not overprint.
  const named = labelledTiers(singles);
  const labels = singles
    .filter((s) => named.has(s.tier))
    .map((s, k, all) => ({ ...s, side: (all.length - 1 - k) % 2 === 0 ? 'left' : 'right' }));
  const domain = [...names, SINGLE_HULL, ORACLE];
  const range = [...names.map((_, k) => PALETTE[k % PALETTE.length]!), '#777777', '#C00000'];
  const x = {
    field: 'cost',
    type: 'quantitative' as const,
    title: 'mean cost per request (USD, log scale)',
    scale: { type: 'log' as const, domain: domainX },
    axis: { format: '.0e', grid: true },
  };
  const y = {
    field: 'quality',
    type: 'quantitative' as const,
    title: 'quality (share answered correctly)',
    scale: { domain: domainY },
  };
  const color = {
    field: 'series',
    type: 'nominal' as const,
    title: null,
    scale: { domain, range },
    legend: { labelLimit: 400, symbolStrokeWidth: 3, orient: 'right' as const },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: input.title,
    width: 640,
    height: 420,
    layer: [
      {
        data: { values: lines },
        mark: { type: 'line', point: { size: 20 }, strokeWidth: 2 },
        encoding: {
          x,
          y,
          color,
          strokeDash: {
            condition: { test: `datum.series === "${SINGLE_HULL}"`, value: [5, 4] },
            value: [1, 0],
          },
          order: { field: 'order', type: 'quantitative' },
        },
      },
      {
        data: { values: singles },
        mark: { type: 'point', filled: true, size: 70, color: '#222222', shape: 'square' },
        encoding: { x, y },
      },
      ...(['right', 'left'] as const).map((side) => ({
        data: { values: labels.filter((s) => s.side === side) },
        mark: {
          type: 'text' as const,
          align: side === 'right' ? ('left' as const) : ('right' as const),
          dx: side === 'right' ? 7 : -7,
          dy: -6,
          fontSize: 10,
          color: '#222222',
        },
        encoding: { x, y, text: { field: 'tier', type: 'nominal' as const } },
      })),
      {
        data: { values: [{ series: ORACLE, ...input.oracle }] },
        mark: { type: 'point', shape: 'diamond', filled: true, size: 160 },
        encoding: { x, y, color },
      },
    ],
  } as ChartSpec;
}
