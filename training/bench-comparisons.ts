import { auroc } from '../src/metrics/classification.js';
import { multiTierFigures } from '../src/metrics/multi-tier.js';
import type { LabelledRows } from '../src/metrics/operating-points.js';
import {
  type BootstrapSettings,
  type PairedDifference,
  pairedBootstrap,
} from '../src/metrics/paired-bootstrap.js';

/**
 * Every method against the best text method, per metric, with paired bootstrap intervals of the
 * difference (src/metrics/paired-bootstrap.ts): AUROC per tier and the multi-tier fields. "Best" is the
 * text method with the highest value of that metric on these test rows — the strongest yardstick the
 * split allows, so a method that clears it clears every text method.
 */
export const COMPARED_FIELDS = [
  'cost_saving_at_parity',
  'cost_saving_at_95',
  'gap_closed_at_best_cost',
  'hull_auc',
] as const;

export interface Comparison extends PairedDifference {
  /** `auroc:<tier>` or a multi field. */
  metric: string;
  baseline: string;
}

export interface ComparisonInput {
  tiers: readonly string[];
  /** Per method, per tier, per test row: P(success). */
  probs: Readonly<Record<string, readonly ArrayLike<number>[]>>;
  /** Per tier, per test row. */
  labels: readonly (readonly (boolean | null)[])[];
  /** The ladder the multi fields route over (tiers with an outcome on every test row), if any. */
  ladder?: { tiers: number[]; correct: boolean[][]; cost: number[][]; price: number[] };
  textMethods: readonly string[];
}

function statistics(input: ComparisonInput, method: string, subset: readonly number[]): number[] {
  const probs = input.probs[method]!;
  const values = input.tiers.map((_, t) => {
    const rows = subset.filter((i) => input.labels[t]![i] !== null && input.labels[t]![i] !== undefined);
    return auroc(
      rows.map((i) => probs[t]![i]!),
      rows.map((i) => input.labels[t]![i] === true),
    );
  });
  if (!input.ladder) return values;
  const { ladder } = input;
  const rows: LabelledRows = {
    tiers: ladder.tiers.map((t) => input.tiers[t]!),
    p: ladder.tiers.map((t) => probs[t]!),
    correct: ladder.correct,
    cost: ladder.cost,
  };
  const f = multiTierFigures(rows, ladder.price, subset);
  return [...values, f.costSavingAtParity, f.costSavingAt95, f.gapClosedAtBestCost, f.hullAuc];
}

export function metricNames(input: Pick<ComparisonInput, 'tiers' | 'ladder'>): string[] {
  return [...input.tiers.map((t) => `auroc:${t}`), ...(input.ladder ? COMPARED_FIELDS : [])];
}

export function compareToBestText(
  input: ComparisonInput,
  settings: BootstrapSettings,
): Record<string, Comparison[]> {
  const texts = input.textMethods.filter((m) => input.probs[m]);
  const others = Object.keys(input.probs).filter((m) => !texts.includes(m));
  if (texts.length === 0 || others.length === 0) return {};
  const n = input.labels[0]!.length;
  const all = Array.from({ length: n }, (_, i) => i);
  const names = metricNames(input);
  const point = Object.fromEntries(texts.map((m) => [m, statistics(input, m, all)]));
  // Per metric, the text method with the highest value (NaN never wins).
  const best = names.map((_, s) =>
    texts.reduce((a, b) => (!(point[a]![s]! >= point[b]![s]!) && Number.isFinite(point[b]![s]!) ? b : a)),
  );
  const out: Record<string, Comparison[]> = {};
  for (const method of others) {
    const rows: Comparison[] = [];
    for (const baseline of new Set(best)) {
      const diffs = pairedBootstrap(
        n,
        (subset) => ({ a: statistics(input, method, subset), b: statistics(input, baseline, subset) }),
        settings,
      );
      for (const [s, d] of diffs.entries())
        if (best[s] === baseline) rows.push({ metric: names[s]!, baseline, ...d });
    }
    out[method] = rows.sort((x, y) => names.indexOf(x.metric) - names.indexOf(y.metric));
  }
  return out;
}
