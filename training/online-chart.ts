import { type ChartSpec, type LineSeries, lineChartSpec } from '../src/charts/render-svg.js';
import type { OnlineSimulationReport } from './online-simulation.js';

/**
 * The online simulation's charts, against the number of feedback events: the re-added tier's held-out
 * AUROC, and the pool's cost_saving_at_parity with it (means over tiers, each a mean over seeds), each
 * with the every-tier-fully-trained value as a dashed reference. Two charts, as the two scales differ.
 */
function chart(
  report: OnlineSimulationReport,
  what: string,
  line: LineSeries,
  full: { name: string; value: number },
): ChartSpec {
  const xs = line.points.map((p) => p.x);
  return lineChartSpec({
    title: `Online learning: ${what} of a tier re-added from ${report.anchors} anchors`,
    subtitle: `RouterBench, ${report.rows.eval} held-out prompts; mean over ${report.tiers.length} tiers × ${report.seeds} seeds`,
    xTitle:
      report.feedback.kind === 'routed'
        ? `prompts streamed (outcomes reported only where utility λ = ${report.feedback.lambda} routed to the tier)`
        : 'feedback events for the re-added tier',
    yTitle: what,
    series: [
      line,
      {
        name: full.name,
        dashed: true,
        points: [
          { x: Math.min(...xs), y: full.value },
          { x: Math.max(...xs), y: full.value },
        ],
      },
    ],
  });
}

export function onlineAurocChartSpec(report: OnlineSimulationReport): ChartSpec {
  const full = report.tiers.reduce((s, t) => s + t.full_head_auroc, 0) / report.tiers.length;
  return chart(
    report,
    'AUROC',
    { name: 'the re-added tier', points: report.mean.map((c) => ({ x: c.events, y: c.auroc.mean })) },
    { name: 'full heads (every tier on 890 prompts)', value: full },
  );
}

export function onlineSavingChartSpec(report: OnlineSimulationReport): ChartSpec {
  return chart(
    report,
    'pool cost_saving_at_parity',
    {
      name: 'pool with the re-added tier',
      points: report.mean.map((c) => ({ x: c.events, y: c.cost_saving_at_parity.mean })),
    },
    { name: 'pool of full heads', value: report.full_pool_cost_saving_at_parity },
  );
}
