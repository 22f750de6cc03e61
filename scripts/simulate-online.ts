import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { renderChartSvg } from '../src/charts/render-svg.js';
import { mechrouteHome } from '../src/paths.js';
import { SHARED_DATA } from '../test/support/mmlu-slice.js';
import { onlineAurocChartSpec, onlineSavingChartSpec } from '../training/online-chart.js';
import { simulateOnline } from '../training/online-simulation.js';

/**
 * `node dist/scripts/simulate-online.js [--out docs/online] [--seeds 5] [--tiers a,b] [--new-head logistic]
 * [--routed-lambda 100 [--explore-share 0.1]] [--own-head-only]`:
 * issue 13's online simulation on RouterBench (training/online-simulation.ts); the new tier's head is fitted
 * as `tiers add` fits it, or as a plain logistic head with `--new-head logistic`; writes online-chart.json (the
 * report, which `npm run charts` redraws from), online-auroc.svg and online-saving.svg into --out,
 * and prints the report's tables.
 */
const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'docs/online' },
    traces: { type: 'string', default: join(SHARED_DATA, 'routerbench-traces.jsonl') },
    store: { type: 'string', default: join(mechrouteHome(), 'activations-tail128') },
    seeds: { type: 'string', default: '5' },
    anchors: { type: 'string', default: '50' },
    layer: { type: 'string', default: '10' },
    tiers: { type: 'string' },
    'new-head': { type: 'string', default: 'tiers-add' },
    'routed-lambda': { type: 'string' },
    'explore-share': { type: 'string', default: '0' },
    'learning-rate': { type: 'string', default: '0.01' },
    l2: { type: 'string', default: '0.001' },
    'max-step': { type: 'string', default: '0.1' },
    'own-head-only': { type: 'boolean', default: false },
  },
});

const report = await simulateOnline({
  tracesFile: values.traces!,
  storeDir: values.store!,
  trainIds: 'docs/ladder/splits/rb-random-train.ids',
  testIds: 'docs/ladder/splits/rb-random-test.ids',
  layer: Number(values.layer),
  pooling: 'mean',
  anchors: Number(values.anchors),
  checkpoints: [0, 50, 100, 200, 400, Number.POSITIVE_INFINITY],
  seeds: Number(values.seeds),
  settings: {
    learning_rate: Number(values['learning-rate']),
    l2: Number(values.l2),
    max_step: Number(values['max-step']),
  },
  ...(values.tiers ? { tiers: values.tiers.split(',') } : {}),
  newHead: values['new-head'] === 'logistic' ? 'logistic' : 'tiers-add',
  correctionInputs: values['own-head-only'] ? 'own-head' : 'all-heads',
  ...(values['routed-lambda'] === undefined
    ? {}
    : { routedLambda: Number(values['routed-lambda']), exploreShare: Number(values['explore-share']) }),
  progress: (m) => console.error(`${new Date().toISOString()} ${m}`),
});
await mkdir(values.out!, { recursive: true });
await writeFile(join(values.out!, 'online-chart.json'), `${JSON.stringify(report, null, 2)}\n`);
await writeFile(join(values.out!, 'online-auroc.svg'), await renderChartSvg(onlineAurocChartSpec(report)));
await writeFile(join(values.out!, 'online-saving.svg'), await renderChartSvg(onlineSavingChartSpec(report)));
const f = (v: { mean: number; sd: number }) => `${v.mean.toFixed(3)} ± ${v.sd.toFixed(3)}`;
const routed = report.feedback.kind === 'routed';
console.log(
  `| streamed prompts |${routed ? ' outcomes the tier got |' : ''} AUROC (re-added tier) | pool cost_saving_at_parity |\n|---:|${routed ? '---:|' : ''}---:|---:|`,
);
for (const c of report.mean) {
  const got = routed ? ` ${c.feedback_events!.toFixed(1)} |` : '';
  console.log(`| ${c.events} |${got} ${f(c.auroc)} | ${f(c.cost_saving_at_parity)} |`);
}
console.log(`\nfull pool cost_saving_at_parity: ${report.full_pool_cost_saving_at_parity.toFixed(3)}`);
if (report.methods_picked)
  console.log(`methods picked on the anchors: ${JSON.stringify(report.methods_picked)}`);
console.log(`prequential log loss on the stream: ${report.prequential_log_loss.toFixed(4)}`);
const g = (v: { mean: number; ci95: [number, number] }) =>
  `${v.mean >= 0 ? '+' : ''}${v.mean.toFixed(3)} [${v.ci95[0].toFixed(3)}, ${v.ci95[1].toFixed(3)}]`;
console.log(
  `\n| events | ΔAUROC vs 0 events (95 % CI) | Δcost_saving_at_parity (95 % CI) |\n|---:|---:|---:|`,
);
for (const c of report.gains) console.log(`| ${c.events} | ${g(c.auroc)} | ${g(c.cost_saving_at_parity)} |`);
console.log(`| tier | full head | ${report.mean.map((c) => c.events).join(' | ')} |`);
for (const t of report.tiers) {
  console.log(
    `| ${t.tier} | ${t.full_head_auroc.toFixed(3)} | ${t.checkpoints.map((c) => c.auroc.mean.toFixed(3)).join(' | ')} |`,
  );
}
