import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { paretoChartSpec } from '../src/calibration/render-calibration.js';
import type { ChartSpec } from '../src/charts/render-svg.js';
import { type BenchCharts, deferralChartSpec, reliabilityChartSpec } from './bench-report.js';
import { type EvalStepsReport, stepRoutingChartSpec } from './eval-steps.js';
import { qualityCostChartSpec } from './quality-cost-chart.js';

/**
 * Every chart committed under docs/, with the data it is drawn from: `bench routing --out` writes
 * charts.json, the calibration benchmark pareto-chart.json, `eval-steps --out` report.json. So a change to
 * a chart's look is applied to every committed plot by drawing it again (`npm run charts`), not by
 * rerunning the benchmarks, and a test checks that the committed SVGs are what the specs draw.
 */
export interface DocChart {
  /** The SVG file, and the data file it is drawn from. */
  svg: string;
  data: string;
  spec: ChartSpec;
}

async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? files(join(dir, e.name)) : Promise.resolve([join(dir, e.name)]))),
  );
  return nested.flat().sort();
}

const readJson = async (file: string) => JSON.parse(await readFile(file, 'utf8')) as unknown;

export async function docCharts(docsDir: string): Promise<DocChart[]> {
  const charts: DocChart[] = [];
  for (const file of await files(docsDir)) {
    const dir = join(file, '..');
    if (file.endsWith('/charts.json')) {
      const data = (await readJson(file)) as BenchCharts;
      charts.push({ svg: join(dir, 'deferral.svg'), data: file, spec: deferralChartSpec(data) });
      charts.push({ svg: join(dir, 'calibration.svg'), data: file, spec: reliabilityChartSpec(data) });
      if (data.quality_cost) {
        charts.push({
          svg: join(dir, 'quality-cost.svg'),
          data: file,
          spec: qualityCostChartSpec(data.quality_cost),
        });
      }
    } else if (file.endsWith('/pareto-chart.json')) {
      const data = (await readJson(file)) as Parameters<typeof paretoChartSpec>[0];
      charts.push({ svg: join(dir, 'pareto.svg'), data: file, spec: paretoChartSpec(data) });
    } else if (file.endsWith('/report.json')) {
      const data = (await readJson(file)) as Partial<EvalStepsReport>;
      if (data.per_step && data.request_level) {
        charts.push({
          svg: join(dir, 'accuracy-vs-cost.svg'),
          data: file,
          spec: stepRoutingChartSpec(data as EvalStepsReport),
        });
      }
    }
  }
  return charts;
}

/** SVG files under docs/ that no data file draws (a plot that cannot be redrawn). */
export async function orphanSvgs(docsDir: string, charts: readonly DocChart[]): Promise<string[]> {
  const drawn = new Set(charts.map((c) => c.svg));
  return (await files(docsDir)).filter((f) => f.endsWith('.svg') && !drawn.has(f));
}
