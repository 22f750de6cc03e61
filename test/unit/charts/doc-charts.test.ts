import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { docCharts, orphanSvgs } from '../../../scripts/doc-charts.js';
import { renderChartSvg } from '../../../src/charts/render-svg.js';
import { packageRoot } from '../../../src/paths.js';

const docs = join(packageRoot, 'docs');

describe('the charts committed under docs/', () => {
  test('each is drawn from committed data by its chart spec, as committed (run `npm run charts` after a change)', async () => {
    const charts = await docCharts(docs);
    assert.ok(charts.length >= 9, `${charts.length} charts`);
    assert.deepEqual(await orphanSvgs(docs, charts), [], 'an SVG with no data to draw it from');
    for (const chart of charts) {
      const drawn = await renderChartSvg(chart.spec);
      const committed = await readFile(chart.svg, 'utf8');
      assert.ok(drawn === committed, `${relative(packageRoot, chart.svg)} differs from what its spec draws`);
      // Readable at a glance: no legend label cut short.
      assert.doesNotMatch(drawn, /…/, relative(packageRoot, chart.svg));
    }
  });
});
