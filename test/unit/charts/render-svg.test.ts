import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  groupColours,
  type LineSeries,
  lineChartSpec,
  renderChartSvg,
} from '../../../src/charts/render-svg.js';

/** Fill colours of the legend's symbols, in legend order, and its labels. */
function legend(svg: string): { labels: string[]; colours: string[] } {
  const part = svg.slice(svg.indexOf('role-legend'), svg.indexOf('role-title'));
  const labels = [...part.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
  const colours = [...part.matchAll(/role-legend-symbol[\s\S]*?<\/g>/g)].flatMap((m) =>
    [...m[0].matchAll(/stroke="(#[0-9a-f]{6})"/g)].map((c) => c[1]!),
  );
  return { labels, colours };
}

/** The y axis' tick labels, bottom to top. */
const yTicks = (svg: string): number[] => {
  const axis = svg.slice(svg.indexOf('Y-axis titled'));
  const labels = axis.slice(0, axis.indexOf('role-axis-title'));
  return [...labels.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => Number(m[1]));
};

describe('line charts', () => {
  test('draws every series with a legend; dashed reference lines carry a dash array', async () => {
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
    assert.deepEqual(legend(svg).labels, ['probe', 'random']);
    assert.match(svg, /stroke-dasharray="5,4"/);
  });

  test('the y axis spans the data, not zero to the data (curves 0.1 apart stay apart)', async () => {
    const near = (name: string, base: number): LineSeries => ({
      name,
      points: Array.from({ length: 50 }, (_, i) => ({ x: i / 49, y: base + 0.1 * (i / 49) })),
    });
    const svg = await renderChartSvg(
      lineChartSpec({ title: 't', xTitle: 'x', yTitle: 'y', series: [near('a', 0.66), near('b', 0.68)] }),
    );
    const ticks = yTicks(svg);
    assert.ok(ticks[0]! >= 0.6, `lowest y tick ${ticks[0]}`);
    assert.ok(ticks.at(-1)! <= 0.8, `highest y tick ${ticks.at(-1)}`);
  });

  test('every legend entry has its own colour and its whole label; references are grey', async () => {
    // Five classes with a long name, each a front and a dashed target sharing the class colour, a chosen
    // marker each, and two references: 7 legend entries, not 17.
    const classes = ['all', 'STEM', 'humanities', 'other', 'social sciences and a long tail of words'];
    const series: LineSeries[] = classes.flatMap((c, i) => [
      { name: `${c}: front`, group: c, points: [0, 1, 2].map((k) => ({ x: k, y: 0.5 + i / 20 + k / 50 })) },
      {
        name: `${c}: target`,
        group: c,
        dashed: true,
        points: [
          { x: 0, y: 0.55 + i / 20 },
          { x: 2, y: 0.55 + i / 20 },
        ],
      },
    ]);
    series.push(
      {
        name: 'random',
        dashed: true,
        points: [
          { x: 0, y: 0.5 },
          { x: 2, y: 0.7 },
        ],
      },
      {
        name: 'oracle',
        dashed: true,
        points: [
          { x: 0, y: 0.5 },
          { x: 2, y: 0.9 },
        ],
      },
    );
    const markers = classes.map((c, i) => ({ group: c, x: 1, y: 0.52 + i / 20 }));
    const svg = await renderChartSvg(
      lineChartSpec({ title: 't', xTitle: 'x', yTitle: 'y', series, markers }),
    );
    const { labels, colours } = legend(svg);
    assert.deepEqual(labels, [...classes, 'random', 'oracle']);
    assert.equal(new Set(colours).size, labels.length, `colours ${colours}`);
    assert.deepEqual(colours.slice(-2), ['#555555', '#999999']);
    // The chosen points: one large outlined diamond per class.
    assert.equal((svg.match(/stroke="black"/g) ?? []).length, classes.length);
    assert.doesNotMatch(svg, /…/);
  });

  test('more coloured groups than distinguishable colours is refused, not drawn with repeats', () => {
    const series = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ name: `m${i}`, points: [{ x: 0, y: 0 }] }));
    // Every method of `bench routing` (11) and its two references fit, each with its own colour.
    const eleven = [
      ...series(11),
      ...['random', 'oracle'].map((name) => ({ name, dashed: true, points: [] })),
    ];
    const { range } = groupColours(eleven);
    assert.equal(new Set(range).size, 13);
    assert.throws(() => groupColours(series(13)), /13 coloured and 0 reference groups/);
  });

  test('renderChartSvg rejects a malformed spec with an error instead of an empty picture', async () => {
    await assert.rejects(
      // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid spec
      renderChartSvg({ mark: 'no-such-mark', data: { values: [] } } as any),
    );
  });
});
