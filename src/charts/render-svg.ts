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
  /** Draw dashed (reference lines such as random or oracle, or a target). */
  dashed?: boolean;
  /**
   * The legend entry and colour this series shares with others (a class's Pareto front and its target
   * line); default its own name.
   */
  group?: string;
}

/** A point to stand out (a chosen operating point): a large outlined diamond in its group's colour. */
export interface ChartMarker {
  group: string;
  x: number;
  y: number;
}

/**
 * Tableau 10, the Vega default, then two dark hues unlike any of it (`bench routing` draws 11 methods),
 * for groups drawn solid; greys for reference lines only drawn dashed.
 */
const PALETTE = [
  '#4c78a8',
  '#f58518',
  '#e45756',
  '#72b7b2',
  '#54a24b',
  '#eeca3b',
  '#b279a2',
  '#ff9da6',
  '#9d755d',
  '#bab0ac',
  '#332288',
  '#882255',
];
const GREYS = ['#555555', '#999999', '#bbbbbb', '#333333'];
/** Series with at most this many points show them; denser curves are plain lines (dots would hide them). */
const MAX_DOTTED_POINTS = 40;

/**
 * One colour per legend entry, none repeated: solid groups take the palette in order, reference groups
 * (every series dashed) take greys, so a reference line never borrows a method's colour.
 * @throws when there are more solid groups than distinguishable colours (split the chart instead).
 */
export function groupColours(series: readonly LineSeries[], markers: readonly ChartMarker[] = []) {
  const groups: string[] = [];
  const solid = new Set<string>();
  for (const s of series) {
    const group = s.group ?? s.name;
    if (!groups.includes(group)) groups.push(group);
    if (!s.dashed) solid.add(group);
  }
  for (const m of markers) {
    if (!groups.includes(m.group)) groups.push(m.group);
    solid.add(m.group);
  }
  const coloured = groups.filter((g) => solid.has(g));
  const reference = groups.filter((g) => !solid.has(g));
  if (coloured.length > PALETTE.length || reference.length > GREYS.length) {
    throw new RangeError(
      `a chart with ${coloured.length} coloured and ${reference.length} reference groups cannot give each its own colour`,
    );
  }
  const domain = [...coloured, ...reference];
  const range = [...PALETTE.slice(0, coloured.length), ...GREYS.slice(0, reference.length)];
  return { domain, range };
}

/**
 * Several named series on one x/y plot, with a legend: the shape of every curve plot we draw. Axes
 * scale to the data (not to zero) unless a domain is given; every legend entry has its own colour and its
 * full label; markers sit on top.
 */
export function lineChartSpec(options: {
  title: string;
  /** A second title line, e.g. what dashed lines and markers mean. */
  subtitle?: string;
  xTitle: string;
  yTitle: string;
  series: readonly LineSeries[];
  markers?: readonly ChartMarker[];
  xDomain?: [number, number];
  yDomain?: [number, number];
  width?: number;
  height?: number;
}): ChartSpec {
  const markers = options.markers ?? [];
  const values = [
    ...options.series.flatMap((s) =>
      s.points.map((p, order) => ({
        kind: 'line',
        series: s.name,
        group: s.group ?? s.name,
        x: p.x,
        y: p.y,
        order,
        dashed: s.dashed === true,
        dotted: s.points.length <= MAX_DOTTED_POINTS,
      })),
    ),
    ...markers.map((m) => ({ kind: 'marker', series: `${m.group} marker`, group: m.group, x: m.x, y: m.y })),
  ];
  const scale = (domain?: [number, number]) => (domain ? { domain } : { zero: false });
  const colour = groupColours(options.series, markers);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.subtitle ? { text: options.title, subtitle: options.subtitle } : options.title,
    width: options.width ?? 480,
    height: options.height ?? 320,
    data: { values },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: options.xTitle, scale: scale(options.xDomain) },
      y: { field: 'y', type: 'quantitative', title: options.yTitle, scale: scale(options.yDomain) },
      color: {
        field: 'group',
        type: 'nominal',
        title: null,
        scale: colour,
        legend: { labelLimit: 1000, symbolType: 'stroke', symbolStrokeWidth: 3 },
      },
    },
    layer: [
      {
        transform: [{ filter: "datum.kind === 'line'" }],
        mark: { type: 'line', strokeWidth: 2 },
        encoding: {
          detail: { field: 'series', type: 'nominal' },
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
      },
      {
        transform: [{ filter: "datum.kind === 'line' && datum.dotted" }],
        mark: { type: 'point', filled: true, size: 20 },
      },
      {
        transform: [{ filter: "datum.kind === 'marker'" }],
        mark: { type: 'point', shape: 'diamond', filled: true, size: 220, stroke: 'black', strokeWidth: 1.5 },
      },
    ],
  };
}
