import type { PairedDifference } from '../src/metrics/paired-bootstrap.js';
import type { ReaddRow, TiersBenchResult } from '../training/bench-tiers.js';

/**
 * The markdown of `npm run bench -- tiers` (leave-one-tier-out, training/bench-tiers.ts): a summary per
 * anchor count and selection, the per-tier table at 200 anchors, and the issue's two goals judged.
 */
const defined = (v: number | null | undefined): v is number =>
  v !== null && v !== undefined && Number.isFinite(v);
const f3 = (v: number | null | undefined) => (defined(v) ? v.toFixed(3) : '–');
const pct = (v: number | null | undefined) => (defined(v) ? `${(100 * v).toFixed(1)} %` : '–');
const mean = (v: readonly number[]) =>
  v.length === 0 ? Number.NaN : v.reduce((s, x) => s + x, 0) / v.length;
const numbers = (v: readonly (number | null)[]) =>
  v.filter((x): x is number => x !== null && Number.isFinite(x));
const orNull = (v: number) => (Number.isFinite(v) ? v : null);
/** "k/n", or – when nothing is defined. */
const share = (k: number, n: number) => (n === 0 ? '–' : `${k}/${n}`);

/** Share of the full pool's cost saving (at parity, or at 95 % of the best single's quality) a row keeps. */
function kept(r: TiersBenchResult, row: ReaddRow, at: 'parity' | '95' = 'parity'): number | null {
  const full = at === 'parity' ? r.full.cost_saving_at_parity : r.full.cost_saving_at_95;
  const mine = at === 'parity' ? row.cost_saving_at_parity : row.cost_saving_at_95;
  // Undefined when the full pool saves nothing: no share of nothing to keep.
  if (full === null || mine === null || full <= 0) return null;
  return mine / full;
}

function gap(r: TiersBenchResult, row: ReaddRow): number | null {
  const full = r.full.auroc[row.tier];
  return full === null || full === undefined || row.auroc === null ? null : full - row.auroc;
}

function methodCounts(rows: readonly ReaddRow[]): string {
  const counts = new Map<string, number>();
  for (const m of rows.flatMap((row) => row.methods)) counts.set(m, (counts.get(m) ?? 0) + 1);
  return [...counts.entries()].map(([m, c]) => `${m} ${c}`).join(', ');
}

export interface TiersGoals {
  aurocWithin: number;
  aurocTiers: number;
  keptAtLeast90: number;
  keptTiers: number;
  meanGap: number;
  meanKept: number;
}

export function tiersGoals(r: TiersBenchResult, n = 200): TiersGoals {
  const rows = r.rows.filter((row) => row.selection === 'anchors' && row.n === n);
  const gaps = numbers(rows.map((row) => gap(r, row)));
  const keeps = numbers(rows.map((row) => kept(r, row)));
  return {
    aurocWithin: gaps.filter((g) => g <= 0.03).length,
    aurocTiers: gaps.length,
    keptAtLeast90: keeps.filter((k) => k >= 0.9).length,
    keptTiers: keeps.length,
    meanGap: mean(gaps),
    meanKept: mean(keeps),
  };
}

export function tiersMarkdown(r: TiersBenchResult, title: string): string {
  const sizes = [...new Set(r.rows.map((row) => row.n))].sort((a, b) => a - b);
  const lines = [
    `### ${title}`,
    '',
    `${r.n_train} training / ${r.n_test} held-out prompts, ${r.tiers.length} tiers; features: layers ${r.features.layers.join('+')}, ` +
      `${r.features.pooling} pooling; ${r.clusters.k} k-means clusters of the training pool (sizes ${r.clusters.sizes.join(', ')}). ` +
      `Fully trained bundle on the held-out prompts: mean AUROC ${f3(mean(numbers(Object.values(r.full.auroc))))}, ` +
      `cost_saving_at_parity ${pct(r.full.cost_saving_at_parity)}, cost_saving_at_95 ${pct(r.full.cost_saving_at_95)}.`,
    '',
    'Per anchor count, over the tiers left out in turn (random: mean of the draws per tier). AUROC gap = the fully trained ' +
      'head’s held-out AUROC − the re-added head’s; kept = the pool’s cost_saving_at_parity with the re-added tier ÷ the fully trained bundle’s.',
    '',
    '| anchors | chosen by | mean AUROC | mean gap | max gap | gap ≤ 0.03 | mean kept | min kept | kept ≥ 90 % | mean kept at 95 % | methods picked |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const n of sizes) {
    for (const selection of ['anchors', 'random'] as const) {
      const rows = r.rows.filter((row) => row.n === n && row.selection === selection);
      if (rows.length === 0) continue;
      const gaps = numbers(rows.map((row) => gap(r, row)));
      const keeps = numbers(rows.map((row) => kept(r, row)));
      const keeps95 = numbers(rows.map((row) => kept(r, row, '95')));
      lines.push(
        `| ${n} | ${selection === 'anchors' ? '`tiers anchors`' : 'random'} | ${f3(mean(numbers(rows.map((x) => x.auroc))))} | ` +
          `${f3(mean(gaps))} | ${f3(orNull(Math.max(...gaps)))} | ${share(gaps.filter((g) => g <= 0.03).length, gaps.length)} | ` +
          `${pct(mean(keeps))} | ${pct(orNull(Math.min(...keeps)))} | ${share(keeps.filter((k) => k >= 0.9).length, keeps.length)} | ` +
          `${pct(mean(keeps95))} | ${methodCounts(rows)} |`,
      );
    }
  }
  const at = sizes.includes(200) ? 200 : sizes.at(-1)!;
  const intervals = r.goal_intervals?.anchors === at ? r.goal_intervals : undefined;
  const ci = (d: PairedDifference | undefined, f: (v: number) => string) =>
    d ? `${f(d.difference)} [${f(d.low)}, ${f(d.high)}]` : '–';
  const points = (v: number) => `${(100 * v).toFixed(1)}`;
  lines.push(
    '',
    `Per tier at ${at} anchors (\`tiers anchors\`; random: mean of the draws)` +
      (intervals
        ? `; the intervals are paired bootstrap 95 % intervals over the held-out prompts (${intervals.resamples} resamples), ` +
          'of the AUROC gap and of the pool’s saving at parity with the re-added tier minus the fully trained pool’s, in points:'
        : ':'),
    '',
    `| tier | full AUROC | re-added AUROC | random AUROC | method |${intervals ? ' AUROC gap [95 % CI] |' : ''} saving at parity, re-added |${intervals ? ' Δ saving [95 % CI] |' : ''} random | without the tier |`,
    `|---|---|---|---|---|${intervals ? '---|' : ''}---|${intervals ? '---|' : ''}---|---|`,
  );
  for (const id of r.tiers) {
    const a = r.rows.find((row) => row.tier === id && row.n === at && row.selection === 'anchors');
    const b = r.rows.find((row) => row.tier === id && row.n === at && row.selection === 'random');
    const gapCi = intervals ? ` ${ci(intervals.tiers[id]?.auroc_gap, (v) => v.toFixed(3))} |` : '';
    const savingCi = intervals ? ` ${ci(intervals.tiers[id]?.saving_difference, points)} |` : '';
    lines.push(
      `| ${id} | ${f3(r.full.auroc[id])} | ${f3(a?.auroc)} | ${f3(b?.auroc)} | ${a?.methods.join(', ') ?? '–'} |${gapCi} ` +
        `${pct(a?.cost_saving_at_parity)} |${savingCi} ${pct(b?.cost_saving_at_parity)} | ${pct(r.without[id]?.cost_saving_at_parity)} |`,
    );
  }
  const g = tiersGoals(r, at);
  const keptGoal =
    g.keptTiers === 0
      ? `**undefined here**: the fully trained bundle itself saves ${pct(r.full.cost_saving_at_parity)} at parity`
      : `**${g.keptAtLeast90 === g.keptTiers ? 'met' : 'not met'}** (${g.keptAtLeast90} of ${g.keptTiers} tiers; mean ${pct(g.meanKept)})`;
  lines.push(
    '',
    `Goals at ${at} anchors chosen by \`tiers anchors\`: AUROC within 0.03 of the fully trained head — ` +
      `**${g.aurocWithin === g.aurocTiers ? 'met' : 'not met'}** (${g.aurocWithin} of ${g.aurocTiers} tiers; mean gap ${f3(g.meanGap)}); ` +
      `the pool keeps ≥ 90 % of cost_saving_at_parity — ${keptGoal}. Run time ${r.seconds} s.`,
  );
  return lines.join('\n');
}
