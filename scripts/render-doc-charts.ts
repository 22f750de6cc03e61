/**
 * `npm run charts`: draws every chart under docs/ again from the data committed beside it (see
 * training/doc-charts.ts), after a change to how charts look.
 */
import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { renderChartSvg } from '../src/charts/render-svg.js';
import { packageRoot } from '../src/paths.js';
import { docCharts, orphanSvgs } from '../training/doc-charts.js';

const docs = join(packageRoot, 'docs');
const charts = await docCharts(docs);
for (const chart of charts) {
  await writeFile(chart.svg, await renderChartSvg(chart.spec));
  process.stdout.write(`${relative(packageRoot, chart.svg)} ← ${relative(packageRoot, chart.data)}\n`);
}
for (const orphan of await orphanSvgs(docs, charts)) {
  process.stderr.write(`${relative(packageRoot, orphan)}: no data file draws it; left as it is\n`);
}
