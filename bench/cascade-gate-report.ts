import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ChartSpec, lineChartSpec, renderChartSvg } from '../src/charts/render-svg.js';
import type { PolicyPoint } from '../src/steps/step-simulation.js';
import type { CascadeGateResult } from './cascade-gate-bench.js';

/** What `npm run bench -- cascade-gate` leaves behind: docs/cascade-gate/ and its BENCHMARKS.md section. */

/** report.json and one quality-vs-cost plot per evaluation set. */
type GateSet = CascadeGateResult['sets'][number];

/** One evaluation set's quality-vs-cost plot: every gate, per-step routing and the single tiers. */
export function cascadeGateChartSpec(set: GateSet): ChartSpec {
  const curve = (points: readonly PolicyPoint[]) =>
    [...points].sort((a, b) => a.cost_share - b.cost_share).map((p) => ({ x: p.cost_share, y: p.accuracy }));
  const c = set.comparison;
  return lineChartSpec({
    title: `Mixtral → GPT-4 on GSM8K: quality vs cost (${set.name}, ${c.n} problems)`,
    xTitle: 'cost share of GPT-4 alone',
    yTitle: 'accuracy',
    xDomain: [0, 1.1],
    yDomain: [Math.floor(20 * c.cheap_only.accuracy) / 20 - 0.05, Math.ceil(20 * set.oracle_accuracy) / 20],
    width: 560,
    height: 360,
    series: [
      ...c.gates.map((g) => ({ name: g.name, points: curve(g.sweep) })),
      { name: 'per-step routing (issue 6)', points: curve(set.per_step.sweep) },
      {
        name: 'Mixtral alone, GPT-4 alone',
        dashed: true,
        points: [
          { x: c.cheap_only.cost_share, y: c.cheap_only.accuracy },
          { x: c.strong_only.cost_share, y: c.strong_only.accuracy },
        ],
      },
    ],
  });
}

/** The plot file of one evaluation set, beside report.json (scripts/doc-charts.ts draws it again). */
export const cascadeGateChartFile = (dir: string, set: Pick<GateSet, 'name'>): string =>
  join(dir, `quality-vs-cost-${set.name}.svg`);

/** report.json and one quality-vs-cost plot per evaluation set. */
export async function writeCascadeGateOutputs(result: CascadeGateResult, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'report.json'), `${JSON.stringify(result, null, 2)}\n`);
  for (const set of result.sets) {
    await writeFile(cascadeGateChartFile(dir, set), await renderChartSvg(cascadeGateChartSpec(set)));
  }
}

const pct = (v: number) => (100 * v).toFixed(1);
const tauText = (tau: number | null) => (tau === null || !Number.isFinite(tau) ? 'all' : tau.toFixed(3));
const signed = (v: number) => `${v >= 0 ? '+' : '−'}${pct(Math.abs(v))}`;

export function cascadeGateMarkdown(result: CascadeGateResult, resamples: number): string {
  const price = (tier: string) =>
    `$${result.prices[tier]!.input_usd_per_mtok} / $${result.prices[tier]!.output_usd_per_mtok}`;
  const d = result.live_vs_offline;
  const lines: string[] = [
    'Mixtral answers a GSM8K problem; a gate judges it and, below τ, GPT-4 answers from scratch (the cascade pays',
    'both answers). Request-level routing instead reads the prompt alone and sends the problem to one tier. Costs: list',
    `prices per Mtok (in / out) Mixtral ${price('mixtral-8x7b-instruct')}, GPT-4 ${price('gpt-4-1106-preview')}, tokens counted with ${result.tokenizer}.`,
    '',
    "- **probe gate**: the step probe (`probes/default-steps.json`'s Mixtral probe) on prompt + Mixtral's whole answer —",
    '  the text the live gate reads (`stepProbeText`), P(the chain ends right);',
    '- **prompt probe**: the same bundle on the prompt alone (its k = 0 reading);',
    `- **logprob gate (proxy)**: ${result.logprob_proxy};`,
    "- **TF-IDF**: word 1–2-gram + char 3–5-gram TF-IDF with logistic regression (the probes' fitting procedure),",
    '  on prompt + answer (a text gate) or the prompt (a text router), 5 folds by problem;',
    '- **random**: a seeded uniform reading (request-level).',
    '',
    `No problem is read by a probe fitted on it: **out-of-fold** readings come from \`train --steps --cv-scores\` (5 folds by`,
    'problem; its layer was chosen once on 634 training problems, a small selection leak); **held-out** readings are the',
    "shipped bundle's on the 195 problems it never saw, computed live through the encoder as the server does (live vs",
    `the step store's offline readings of the same texts: mean |Δ| ${d.answer.mean_abs.toFixed(4)}, max ${d.answer.max_abs.toFixed(4)} for prompt + answer;`,
    `${d.prompt.mean_abs.toFixed(4)} / ${d.prompt.max_abs.toFixed(4)} for the prompt — float16 activations in the store).`,
    '',
  ];
  for (const set of result.sets) {
    const c = set.comparison;
    const head = `| gate | reads | AUROC (Mixtral right) | ${result.budgets.map((b) => `≤ ${pct(b)} %`).join(' | ')} |`;
    lines.push(
      `**${set.name}** — ${set.what}. Accuracy (%) with its 95 % bootstrap interval at each budget (cost share of GPT-4 alone); τ picked per budget without labels (the most spending within it); ${resamples} resamples of problems, τ picked again on each.`,
      '',
      head,
      `|---|---|---|${result.budgets.map(() => '---').join('|')}|`,
      ...c.gates.map((g) => {
        const cells = g.at_budget.map((a) =>
          a.point && a.accuracy_ci
            ? `${pct(a.point.accuracy)} [${pct(a.accuracy_ci[0])}, ${pct(a.accuracy_ci[1])}]`
            : '–',
        );
        return `| ${g.name} | ${g.stage} | ${g.auroc.toFixed(3)} [${g.auroc_ci[0].toFixed(3)}, ${g.auroc_ci[1].toFixed(3)}] | ${cells.join(' | ')} |`;
      }),
      `| per-step routing (issue 6, reference) | every step | – | ${set.per_step.at_budget.map((a) => (a.point ? pct(a.point.accuracy) : '–')).join(' | ')} |`,
      '',
      `Difference from the probe gate at the same budget (accuracy points, paired 95 % interval):`,
      '',
      `| gate | ${result.budgets.map((b) => `≤ ${pct(b)} %`).join(' | ')} |`,
      `|---|${result.budgets.map(() => '---').join('|')}|`,
      ...c.gates
        .filter((g) => g.name !== c.reference)
        .map(
          (g) =>
            `| ${g.name} | ${g.at_budget
              .map((a) =>
                a.vs_reference
                  ? `${signed(a.vs_reference.diff)} [${signed(a.vs_reference.ci[0])}, ${signed(a.vs_reference.ci[1])}]`
                  : '–',
              )
              .join(' | ')} |`,
        ),
      '',
      "The operating point each budget bought: τ (the gate's reading below which it escalates: P for probes and TF-IDF, mean ln P per token for the logprob gate) and the cost share spent:",
      '',
      `| gate | ${result.budgets.map((b) => `≤ ${pct(b)} %`).join(' | ')} |`,
      `|---|${result.budgets.map(() => '---').join('|')}|`,
      ...c.gates.map(
        (g) =>
          `| ${g.name} | ${g.at_budget
            .map((a) => (a.point ? `${tauText(a.point.tau)} (${pct(a.point.cost_share)} %)` : '–'))
            .join(' | ')} |`,
      ),
      '',
      `Mixtral alone ${pct(c.cheap_only.accuracy)} % at cost share ${pct(c.cheap_only.cost_share)} %; GPT-4 alone ${pct(c.strong_only.accuracy)} %; oracle (either right) ${pct(set.oracle_accuracy)} %. Plot: \`docs/cascade-gate/quality-vs-cost-${set.name}.svg\`.`,
      '',
    );
  }
  return lines.join('\n');
}
