import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lineChartSpec, renderChartSvg } from '../../../src/charts/render-svg.js';

test('renderChartSvg draws every series of a line chart into one standalone SVG with a legend', async () => {
  const svg = await renderChartSvg(
    lineChartSpec({
      title: 'deferral curve',
      xTitle: 'share of strong-tier calls',
      yTitle: 'accuracy',
      series: [
        {
          name: 'probe',
          points: [
            { x: 0, y: 0.6 },
            { x: 0.5, y: 0.8 },
            { x: 1, y: 0.85 },
          ],
        },
        {
          name: 'random',
          dashed: true,
          points: [
            { x: 0, y: 0.6 },
            { x: 1, y: 0.85 },
          ],
        },
      ],
      xDomain: [0, 1],
    }),
  );
  assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /deferral curve/);
  assert.match(svg, /share of strong-tier calls/);
  // Legend entries name both series; the dashed reference line carries a dash array.
  assert.match(svg, />probe</);
  assert.match(svg, />random</);
  assert.match(svg, /stroke-dasharray="5,4"/);
});

test('renderChartSvg rejects a malformed spec with an error instead of an empty picture', async () => {
  await assert.rejects(
    // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid spec
    renderChartSvg({ mark: 'no-such-mark', data: { values: [] } } as any),
  );
});

test('a long series name is cut in the legend by default and kept whole with legendLabelLimit 0', async () => {
  const name = 'request-level routing by the prompt-only probe (out of fold)';
  const chart = (legendLabelLimit?: number) =>
    renderChartSvg(
      lineChartSpec({
        title: 't',
        xTitle: 'x',
        yTitle: 'y',
        series: [
          {
            name,
            points: [
              { x: 0, y: 0 },
              { x: 1, y: 1 },
            ],
          },
        ],
        ...(legendLabelLimit === undefined ? {} : { legendLabelLimit }),
      }),
    );
  assert.doesNotMatch(await chart(), new RegExp(`>${name}<`));
  assert.match(await chart(0), new RegExp(`>${name.replace(/[()]/g, '\\$&')}<`));
});
