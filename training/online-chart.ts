import { type ChartSpec, lineChartSpec } from '../src/charts/render-svg.js';
import type { OnlineSimulationReport } from './online-simulation.js';

/**
 * The online simulation's chart: the re-added tier's held-out AUROC (mean over tiers, each a mean over
 * seeds) against the number of feedback events, with the full heads' mean AUROC as a dashed reference;
 * and the pool's cost_saving_at_parity beside it. Both on one axis of [0, 1] numbers.
 */
export function onlineChartSpec(report: OnlineSimulationReport): ChartSpec {
  const fullAuroc = report.tiers.reduce((s, t) => s + t.full_head_auroc, 0) / report.tiers.length;
  const xs = report.mean.map((c) => c.events);
  const flat = (name: string, y: number) => ({
    name,
    dashed: true,
    points: [
      { x: Math.min(...xs), y },
      { x: Math.max(...xs), y },
    ],
  });
  return lineChartSpec({
    title: `Online learning from feedback: a tier re-added from ${report.anchors} anchors`,
    subtitle:
      `RouterBench, ${report.rows.eval} held-out prompts; mean over ${report.tiers.length} tiers × ${report.seeds} seeds; ` +
      'dashed: every tier with its full head',
    xTitle: 'feedback events for the re-added tier',
    yTitle: 'AUROC / cost saving at parity',
    series: [
      {
        name: 'AUROC of the re-added tier',
        points: report.mean.map((c) => ({ x: c.events, y: c.auroc.mean })),
      },
      flat('AUROC, full head', fullAuroc),
      {
        name: 'pool cost_saving_at_parity',
        points: report.mean.map((c) => ({ x: c.events, y: c.cost_saving_at_parity.mean })),
      },
      flat('cost_saving_at_parity, full pool', report.full_pool_cost_saving_at_parity),
    ],
  });
}
