import type { CvResult } from './cross-validate.js';
import type { EvalResult } from './evaluate-bundle.js';
import type { HeadMetrics } from './split-metrics.js';
import type { TrainReport } from './train-probes.js';

/** Plain-text tables for `train` and `eval` (Markdown-compatible, so they paste into READMEs). */

const fmt = (v: number | null | undefined, digits = 3): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
const pct = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(1)} %`;

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** One row per head (probe kind or baseline): per tier AUROC/Brier/ECE, then the routing metrics. */
export function headsTable(tiers: readonly string[], heads: Record<string, HeadMetrics | undefined>): string {
  const headers = [
    'head',
    ...tiers.flatMap((t) => [`AUROC ${t}`, `Brier ${t}`, `ECE ${t}`]),
    'APGR',
    'CPT(50%)',
    'CPT(80%)',
    'gap closed',
    'cost saving',
    '$/correct',
  ];
  const rows = Object.entries(heads).flatMap(([name, head]) => {
    if (!head) return [];
    const r = head.routing;
    return [
      [
        name,
        ...tiers.flatMap((t) => [
          fmt(head.tiers[t]?.auroc),
          fmt(head.tiers[t]?.brier),
          fmt(head.tiers[t]?.ece),
        ]),
        fmt(r?.apgr),
        pct(r?.cpt50),
        pct(r?.cpt80),
        pct(r?.oracle_gap_closed),
        pct(r?.cost_saving),
        r ? `$${r.cost_per_correct.toExponential(2)}` : '–',
      ],
    ];
  });
  return table(headers, rows);
}

function splitSection(cv: CvResult, tiers: readonly string[], reference: string): string {
  const heads: Record<string, HeadMetrics | undefined> = { linear: cv.linear, mlp: cv.mlp, ...cv.baselines };
  const r = cv.linear.routing;
  const choices = cv.choices
    .map((c, f) => `fold ${f + 1}: ${c.pooling} ${c.layers.join('+')} (λ ${c.lambdas.join('/')})`)
    .join('; ');
  return [
    `${cv.kind === 'random' ? 'Random' : 'Whole-group'} split — ${cv.description}, n = ${cv.n}, ${cv.seconds.toFixed(0)} s`,
    '',
    headsTable(tiers, heads),
    '',
    r
      ? `linear routing: q_weak ${pct(r.q_weak)}, q_strong ${pct(r.q_strong)}, oracle ${pct(r.q_oracle)}; best point: ` +
        `quality ${pct(r.quality)} with ${pct(r.strong_share)} strong calls; at P(weak) < 0.5: quality ` +
        `${pct(r.quality_at_p50)}, ${pct(r.strong_share_at_p50)} strong, gap closed ${pct(r.oracle_gap_closed_at_p50)}, ` +
        `cost saving ${pct(r.cost_saving_at_p50)}`
      : '',
    `difficulty (P(${reference} fails)): AUROC ${fmt(cv.difficulty.auroc)}`,
    `per-fold choices: ${choices}`,
  ].join('\n');
}

export function renderTrainReport(report: TrainReport): string {
  const tiers = report.tiers.map((t) => t.id);
  const out: string[] = [
    `traces: ${report.traces_file} (${report.lines} lines, ${report.bad_lines} bad)`,
    `rows with activations: ${report.rows}; without activations (not used): ${report.missing_activations}` +
      (report.missing_activations > 0
        ? ` — e.g. ${report.missing_activation_ids.slice(0, 5).join(', ')}; run \`mechroute extract\` to add them`
        : ''),
    report.without_outcomes > 0 ? `traces without outcomes for these tiers: ${report.without_outcomes}` : '',
    `store: ${report.store}`,
    `encoder: ${report.encoder.name} (${report.encoder.layers} blocks × ${report.encoder.embedding_width})`,
    '',
    `reference tier (layer selection, fold stratification, difficulty, routing weak side): ${report.reference_tier}` +
      (report.reference_reason ? ` (${report.reference_reason})` : ''),
    'Tiers (cheapest first):',
    table(
      ['tier', 'n', 'success', 'USD/Mtok in/out', 'output tokens assumed', 'mean cost/trace'],
      report.tiers.map((t) => [
        t.id,
        String(t.n),
        pct(t.base_rate),
        `${t.price.input_usd_per_mtok}/${t.price.output_usd_per_mtok}${t.price_assumed_local ? ' (local)' : ''}`,
        String(t.assumed_output_tokens),
        `$${t.mean_cost_usd.toExponential(2)}`,
      ]),
    ),
    '',
  ];
  if (report.layer_table.length > 0) {
    out.push(
      `Layer table (label: ${report.layer_selection_tier} succeeds; inner CV on the training rows), best first:`,
      table(
        ['layer', 'pooling', 'CV AUROC', '± std', 'Fisher J', 'PR', 'λ', 'p50 ms', 'p95 ms'],
        report.layer_table.map((s) => [
          String(s.layer),
          s.pooling,
          fmt(s.cv_auroc),
          fmt(s.cv_auroc_std),
          fmt(s.fisher_j),
          fmt(s.participation_ratio, 1),
          String(s.lambda),
          fmt(s.latency_ms_p50, 1),
          fmt(s.latency_ms_p95, 1),
        ]),
      ),
      layerTradeOff(report),
      '',
    );
  }
  for (const kind of ['random', 'group'] as const) {
    const cv = report.splits[kind];
    if (cv) out.push(splitSection(cv, tiers, report.reference_tier), '');
  }
  for (const [name, why] of Object.entries(report.skipped_splits)) out.push(`skipped ${name} split: ${why}`);
  const c = report.chosen;
  out.push(
    `chosen: ${c.pooling} pooling, layer(s) ${c.layers.join('+')} (${c.mode}; single ${fmt(c.single_cv_auroc)}` +
      (c.concat_layers ? `, concat ${c.concat_layers.join('+')} ${fmt(c.concat_cv_auroc)}` : '') +
      `); λ ${Object.entries(c.lambdas)
        .map(([t, l]) => `${t} ${l}`)
        .join(', ')}; predicting head: ${c.prefer} (${c.prefer_reason})`,
    `bundle written: ${report.out} (${report.seconds.toFixed(0)} s)`,
  );
  return `${out.filter((l, i, a) => l !== '' || a[i - 1] !== '').join('\n')}\n`;
}

export function renderEvalResult(result: EvalResult): string {
  const tiers = Object.keys(result.tiers);
  const r = result.routing;
  const lines = [
    `probes: ${result.probes} (head: ${result.head}; ${result.features.pooling} pooling of layer(s) ${result.features.layers.join('+')})`,
    `traces: ${result.traces_file}: ${result.n} scored (${result.bad_lines} bad lines, ${result.without_outcomes} without outcomes); ` +
      `features from the store: ${result.features.from_store}, encoded now: ${result.features.encoded}`,
    '',
    table(
      ['tier', 'n', 'success', 'AUROC', 'Brier', 'ECE', 'accuracy @0.5'],
      tiers.map((t) => {
        const m = result.tiers[t]!;
        return [t, String(m.n), pct(m.base_rate), fmt(m.auroc), fmt(m.brier), fmt(m.ece), pct(m.accuracy)];
      }),
    ),
    '',
  ];
  if (r) {
    lines.push(
      `routing ${r.weak_tier} → ${r.strong_tier} (n = ${r.n}; quality weak ${pct(r.q_weak)}, strong ${pct(r.q_strong)}, oracle ${pct(r.q_oracle)}):`,
      `  APGR ${fmt(r.apgr)}, CPT(50%) ${pct(r.cpt50)}, CPT(80%) ${pct(r.cpt80)}`,
      `  best point: quality ${pct(r.quality)}, ${pct(r.strong_share)} strong calls (strong when P(weak) < ${fmt(r.p_weak_threshold)}), ` +
        `oracle gap closed ${pct(r.oracle_gap_closed)}, cost saving ${pct(r.cost_saving)}, ` +
        `$${r.cost_per_correct.toExponential(2)} per correct (strong only: $${r.cost_per_correct_strong_only.toExponential(2)})`,
      `  at P(weak) < 0.5: quality ${pct(r.quality_at_p50)}, ${pct(r.strong_share_at_p50)} strong, gap closed ` +
        `${pct(r.oracle_gap_closed_at_p50)}, cost saving ${pct(r.cost_saving_at_p50)}`,
    );
  } else lines.push('routing: needs outcomes of two tiers on the same traces');
  return `${lines.join('\n')}\n`;
}

/**
 * What the chosen layer costs and buys against the best-scoring row and the fastest row within one fold
 * standard deviation of it (when the layers were timed).
 */
export function layerTradeOff(report: Pick<TrainReport, 'layer_table' | 'chosen'>): string {
  const rows = report.layer_table.filter((s) => s.cv_auroc !== null && s.latency_ms_p50 !== undefined);
  if (rows.length === 0) return '';
  const best = rows.reduce((a, b) => (b.cv_auroc! > a.cv_auroc! ? b : a));
  const near = rows.filter((s) => s.cv_auroc! >= best.cv_auroc! - (best.cv_auroc_std ?? 0));
  const fastest = near.reduce((a, b) => (b.latency_ms_p50! < a.latency_ms_p50! ? b : a));
  const deepest = Math.max(...report.chosen.layers);
  const chosen = rows.find((s) => s.layer === deepest && s.pooling === report.chosen.pooling);
  const text = (s: (typeof rows)[number]) =>
    `layer ${s.layer} (${s.pooling}): CV AUROC ${fmt(s.cv_auroc)}, ${fmt(s.latency_ms_p50!, 1)} ms`;
  return (
    `Trade-off: chosen ${report.chosen.layers.join('+')} (${report.chosen.pooling})` +
    (chosen ? `, prefill to layer ${deepest}: ${fmt(chosen.latency_ms_p50!, 1)} ms p50` : '') +
    `; best ${text(best)}; fastest within one fold std of it ${text(fastest)}.`
  );
}
