/**
 * `npm run charts`: draws every chart under docs/ again from the data committed beside it (see
 * scripts/doc-charts.ts), after a change to how charts look. `-- --png DIR` also writes each as a PNG
 * into DIR, to look at them with an image viewer (@resvg/resvg-js, a dev dependency).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { renderChartSvg } from '../src/charts/render-svg.js';
import { packageRoot } from '../src/paths.js';
import { docCharts, orphanSvgs } from './doc-charts.js';

const { values } = parseArgs({ options: { png: { type: 'string' } } });
const docs = join(packageRoot, 'docs');
const charts = await docCharts(docs);
if (values.png) await mkdir(values.png, { recursive: true });
for (const chart of charts) {
  const svg = await renderChartSvg(chart.spec);
  await writeFile(chart.svg, svg);
  process.stdout.write(`${relative(packageRoot, chart.svg)} ← ${relative(packageRoot, chart.data)}\n`);
  if (values.png) {
    const { Resvg } = await import('@resvg/resvg-js');
    const png = new Resvg(svg, { background: 'white', fitTo: { mode: 'zoom', value: 1.5 } }).render().asPng();
    const name = relative(docs, chart.svg)
      .replaceAll('/', '--')
      .replace(/\.svg$/, '.png');
    await writeFile(join(values.png, name), png);
  }
}
for (const orphan of await orphanSvgs(docs, charts)) {
  process.stderr.write(`${relative(packageRoot, orphan)}: no data file draws it; left as it is\n`);
}
