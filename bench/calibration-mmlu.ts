import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ActivationStore, promptHash } from '../src/activations/activation-store.js';
import { stratifiedSample } from '../src/activations/sampling.js';
import { calibrate } from '../src/calibration/calibrate.js';
import { buildCalibratedPolicy } from '../src/calibration/calibrated-policy.js';
import { checkDrift, type DriftReport } from '../src/calibration/drift.js';
import { paretoChart, paretoChartSpec } from '../src/calibration/render-calibration.js';
import { renderChartSvg } from '../src/charts/render-svg.js';
import { packageRoot } from '../src/paths.js';
import type { Policy } from '../src/policy/policy-schema.js';
import { readTraces } from '../src/traces/jsonl-reader.js';
import { promptText, type Trace } from '../src/traces/trace-schema.js';
import { SHARED_MMLU } from '../test/support/mmlu-slice.js';
import { loadCalibrationData, loadDriftData, policyMetaOf } from '../training/calibration-data.js';
import { trainClassHead } from '../training/train-class-head.js';
import { trainProbes } from '../training/train-probes.js';

/**
 * The calibration goal of issue 7 on the shared MMLU traces: 3,000 questions (a stratified sample,
 * seed 7) are set aside to train the probes and the class head; the other 7,475 are split in two halves
 * stratified by subject (seed 11). Calibrate at target 0.95 of GPT-4's quality on one half (pooled and
 * per MMLU subject group), route the other half with the written policy, and
 * compare realized quality and cost per correct outcome with the promise and with GPT-4 alone.
 *
 *   node dist/bench/calibration-mmlu.js --store /tmp/mr-store-3000 [--target 0.95]
 */
const { values } = parseArgs({
  options: {
    store: { type: 'string' },
    mmlu: { type: 'string', default: SHARED_MMLU },
    target: { type: 'string', default: '0.95' },
    resamples: { type: 'string', default: '1000' },
    /** Keep only questions whose activations the store already has (when the encoder is too slow here). */
    'cached-only': { type: 'boolean', default: false },
  },
});
const log = (line: string) => process.stderr.write(`${line}\n`);
const key = (t: Trace) => `${t.dataset ?? ''}\u0000${t.subject ?? ''}`;
const jsonl = (rows: readonly Trace[]) => rows.map((t) => `${JSON.stringify(t)}\n`).join('');

const dir = await mkdtemp(join(tmpdir(), 'mechroute-calibration-bench-'));
try {
  const { traces: every } = await readTraces(values.mmlu!);
  let traces = every;
  if (values['cached-only']) {
    const meta = JSON.parse(readFileSync(join(values.store!, 'meta.json'), 'utf8')) as {
      encoder: { name: string; sha256: string };
    };
    const cache = await ActivationStore.open({ encoder: meta.encoder, dir: values.store!, readOnly: true });
    try {
      traces = every.filter((t) => cache.has(promptHash(promptText(t))));
    } finally {
      await cache.close();
    }
    log(`--cached-only: ${traces.length} of ${every.length} questions have cached activations`);
  }
  const trainedOn = stratifiedSample(every, 3000, 7, key);
  const trained = new Set(trainedOn.map((t) => t.id));
  const rest = traces.filter((t) => !trained.has(t.id));
  const half = new Set(stratifiedSample(rest, Math.floor(rest.length / 2), 11, key).map((t) => t.id));
  const files = {
    train: join(dir, 'mmlu-probe-train.jsonl'),
    calibrate: join(dir, 'mmlu-calibrate.jsonl'),
    check: join(dir, 'mmlu-check.jsonl'),
  };
  writeFileSync(files.train, jsonl(trainedOn));
  writeFileSync(files.calibrate, jsonl(rest.filter((t) => half.has(t.id))));
  writeFileSync(files.check, jsonl(rest.filter((t) => !half.has(t.id))));
  const store = values.store ? { storeDir: values.store } : {};

  // The probes are trained here, on the 3,000 set-aside questions only, rather than read from
  // probes/default.json: the shipped bundle is trained on every MMLU question, so both halves below
  // would be its training data.
  log('training probes and the class head (MMLU subject groups) on the 3,000 set-aside questions …');
  const baseProbes = join(dir, 'probes.json');
  await trainProbes({ tracesFile: files.train, out: baseProbes, skipCv: true, seed: 1, ...store });
  const probes = join(dir, 'probes-with-classes.json');
  const classes = await trainClassHead({
    probes: baseProbes,
    tracesFile: files.train,
    out: probes,
    source: 'mmlu-group',
    ...store,
  });
  log('scoring the calibration half …');
  const golden = await loadCalibrationData({ probes, tracesFile: files.calibrate, ...store });
  log('scoring the check half …');
  const recent = await loadDriftData({ probes, tracesFile: files.check, ...store });

  const target = Number(values.target);
  const bootstrap = { resamples: Number(values.resamples), seed: 1, confidence: 0.95 };
  const pooled = calibrate(golden.rows, { target, bootstrap });
  const perClass = calibrate(golden.rows, {
    target,
    bootstrap,
    perClass: true,
    classes: golden.predictions.map((p) => p.task_class!.name),
  });
  const meta = (version: string) => ({
    ...policyMetaOf(
      golden,
      { traces: 'mmlu-calibrate.jsonl', probes: 'probes-with-classes.json' },
      bootstrap,
    ),
    version,
  });
  const policies: Record<string, Policy> = {
    pooled: buildCalibratedPolicy(pooled, undefined, meta('bench-pooled')),
    per_class: buildCalibratedPolicy(pooled, perClass, meta('bench-per-class')),
  };
  const frontier = pooled.frontierTier;
  // GPT-4 alone on the check half: its quality and cost per correct answer.
  let gptCorrect = 0;
  let gptCost = 0;
  for (const row of recent.rows) {
    gptCorrect += row.outcomes[frontier] ? 1 : 0;
    gptCost += row.costs[frontier]!;
  }
  const options = { qualityTolerance: 0.03, costTolerance: 0.25, minRows: 30 };
  const checks: Record<string, DriftReport> = Object.fromEntries(
    Object.entries(policies).map(([name, policy]) => [
      name,
      checkDrift(policy, recent.tiers, recent.rows, options),
    ]),
  );
  // Pooled figures of the per-class policy on the check half: sum over its classes.
  const pooledOf = (report: DriftReport) => {
    let n = 0;
    let correct = 0;
    let cost = 0;
    for (const c of report.classes) {
      n += c.n;
      correct += (c.quality ?? 0) * c.n;
      cost += (c.cost_per_correct ?? 0) * (c.quality ?? 0) * c.n;
    }
    return { n, quality: correct / n, cost_per_correct: cost / correct };
  };
  const gpt = { quality: gptCorrect / recent.rows.length, cost_per_correct: gptCost / gptCorrect };
  const result = {
    target,
    split: {
      questions: traces.length,
      cached_only: values['cached-only'],
      probe_training_questions_excluded: trainedOn.length,
      calibrate: golden.traces.length,
      check: recent.rows.length,
    },
    class_head: classes,
    tokenizer: golden.tokenizer,
    gpt4_only_check: gpt,
    promised: Object.fromEntries(Object.entries(policies).map(([k, p]) => [k, p.calibration!.classes])),
    realized: Object.fromEntries(
      Object.entries(checks).map(([k, r]) => {
        const all = pooledOf(r);
        return [
          k,
          { ...all, reduction_vs_gpt4: 1 - all.cost_per_correct / gpt.cost_per_correct, classes: r.classes },
        ];
      }),
    ),
  };
  const outDir = join(packageRoot, 'bench-results');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'calibration-mmlu.json'), `${JSON.stringify(result, null, 2)}\n`);
  // The plot's data beside it (docs/calibration-mmlu/pareto-chart.json), so `npm run charts` can redraw it.
  const chart = paretoChart(
    { ...pooled, classes: [...pooled.classes, ...perClass.classes] },
    `MMLU calibration half: quality vs USD per correct (target ${target} × GPT-4)`,
  );
  writeFileSync(join(outDir, 'calibration-mmlu-pareto.svg'), await renderChartSvg(paretoChartSpec(chart)));
  writeFileSync(join(outDir, 'calibration-mmlu-pareto-chart.json'), `${JSON.stringify(chart)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
