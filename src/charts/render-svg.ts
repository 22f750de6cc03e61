import * as vega from 'vega';
import * as vegaLite from 'vega-lite';

/** A Vega-Lite specification (the charting grammar every mechroute plot is written in). */
export type ChartSpec = vegaLite.TopLevelSpec;

/**
 * Render a Vega-Lite chart to a standalone SVG string, headless: no browser, no canvas.
 * Every report plot (deferral curves, calibration curves, step-routing sweeps, Pareto curves)
 * goes through here so they share one look and one dependency.
 */
export async function renderChartSvg(spec: ChartSpec): Promise<string> {
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** One line series of a line chart: a name for the legend and its points. */
export interface LineSeries {
  name: string;
  points: ReadonlyArray<{ x: number; y: number }>;
  /** Draw dashed (reference lines such as random or oracle). */
  dashed?: boolean;
}

/** Several named series on one x/y plot, with a legend: the shape of every curve plot we draw. */
export function lineChartSpec(options: {
  title: string;
  xTitle: string;
  yTitle: string;
  series: readonly LineSeries[];
  xDomain?: [number, number];
  yDomain?: [number, number];
  width?: number;
  height?: number;
  /** Pixels a legend label may take before it is cut with an ellipsis (Vega-Lite's default 160; 0: never). */
  legendLabelLimit?: number;
}): ChartSpec {
  const values = options.series.flatMap((s) =>
    s.points.map((p, order) => ({ series: s.name, x: p.x, y: p.y, order, dashed: s.dashed === true })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title,
    width: options.width ?? 480,
    height: options.height ?? 320,
    data: { values },
    mark: { type: 'line', point: { size: 12 } },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: options.xTitle,
        ...(options.xDomain ? { scale: { domain: options.xDomain } } : {}),
      },
      y: {
        field: 'y',
        type: 'quantitative',
        title: options.yTitle,
        ...(options.yDomain ? { scale: { domain: options.yDomain } } : {}),
      },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        ...(options.legendLabelLimit === undefined
          ? {}
          : { legend: { labelLimit: options.legendLabelLimit } }),
      },
      strokeDash: {
        field: 'dashed',
        type: 'nominal',
        legend: null,
        scale: {
          domain: [false, true],
          range: [
            [1, 0],
            [5, 4],
          ],
        },
      },
      order: { field: 'order', type: 'quantitative' },
    },
  };
}
