import { extractStepActivations } from '../../../training/extract-step-activations.js';
import type { TierPrice } from '../../../training/tier-costs.js';
import { trainStepProbes } from '../../../training/train-step-probes.js';
import type { Pooling } from '../../probes/layer-selection.js';
import { createRng } from '../../seeded-rng.js';
import { examplesByTrajectory, stepExamples } from '../../steps/step-examples.js';
import { readTraces } from '../../traces/jsonl-reader.js';
import { createCountProgress } from '../count-progress.js';

/** What `mechroute train --steps` takes (parsed by train.ts's flag schema). */
export interface TrainStepsFlags {
  traces: string;
  out: string;
  store?: string;
  model?: string;
  tiers?: string[];
  seed: number;
  folds: number;
  lambdas?: number[];
  layers?: number[];
  pooling?: Pooling;
  extract: boolean;
  maxK?: number;
  /** A seeded sample of this many problems (by --seed), for extraction and training alike. */
  sample?: number;
  deepestLayer: number;
  testShare: number;
  cvFolds: number;
  cvScores?: string;
  prices?: Record<string, TierPrice>;
  json: boolean;
}

export async function runTrainSteps(flags: TrainStepsFlags, storeDir: string): Promise<void> {
  const say = (line: string) => process.stderr.write(`train --steps: ${line}\n`);
  const { traces } = await readTraces(flags.traces);
  // Problems in a seeded order: a sample is its head, and an extraction stopped early has encoded one.
  const order = createRng(flags.seed)
    .shuffle([...traces])
    .slice(0, flags.sample ?? traces.length);
  const problems = flags.sample === undefined ? undefined : new Set(order.map((t) => t.id));
  if (flags.extract) {
    const examples = stepExamples(order, {
      ...(flags.tiers ? { tiers: flags.tiers } : {}),
      ...(flags.maxK === undefined ? {} : { maxK: flags.maxK }),
    });
    const progress = createCountProgress('extract step prefixes', 'texts');
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    try {
      const summary = await extractStepActivations({
        chains: [...examplesByTrajectory(examples).values()],
        storeDir,
        deepestLayer: flags.deepestLayer,
        signal: controller.signal,
        ...(flags.model ? { model: flags.model } : {}),
        onProgress: (done, total, ms) => progress.update(done, total, ms),
      });
      progress.stop();
      say(
        `extract: ${summary.encoded} encoded, ${summary.cached} cached, ${summary.failed.length} failed, ` +
          `${summary.tokens_per_second.toFixed(0)} tokens/s${summary.interrupted ? ' (interrupted)' : ''}`,
      );
    } finally {
      process.off('SIGINT', stop);
    }
  }
  const report = await trainStepProbes({
    tracesFile: flags.traces,
    storeDir,
    out: flags.out,
    seed: flags.seed,
    folds: flags.folds,
    testShare: flags.testShare,
    cvFolds: flags.cvFolds,
    ...(flags.cvScores ? { cvScoresFile: flags.cvScores } : {}),
    command: `mechroute ${process.argv.slice(2).join(' ')}`,
    onProgress: say,
    ...(flags.model ? { model: flags.model } : {}),
    ...(flags.tiers ? { tiers: flags.tiers } : {}),
    ...(flags.lambdas ? { lambdas: flags.lambdas } : {}),
    ...(flags.layers ? { layers: flags.layers } : {}),
    ...(flags.pooling ? { pooling: flags.pooling } : {}),
    ...(flags.maxK === undefined ? {} : { maxK: flags.maxK }),
    ...(problems ? { problems } : {}),
    ...(flags.prices ? { prices: flags.prices } : {}),
  });
  if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const lines = [
      `wrote ${report.out}: layers ${report.features.layers.join(',')} (${report.features.pooling}), problems ` +
        `${report.problems.train} train / ${report.problems.calibration} calibration / ${report.problems.test} test`,
    ];
    for (const [tier, t] of Object.entries(report.tiers)) {
      lines.push(
        `${tier}: λ ${t.lambda}, held-out AUROC ${t.test.auroc?.toFixed(3) ?? '–'} (${t.test.n} prefixes); by step ` +
          t.step_auroc.map((r) => `k=${r.k} ${r.auroc?.toFixed(3) ?? '–'}`).join(', '),
      );
    }
    if (report.cv) {
      for (const [tier, rows] of Object.entries(report.cv.step_auroc)) {
        lines.push(
          `${tier} out of fold (${report.cv.problems} problems, ${report.cv.folds} folds): AUROC ` +
            `${report.cv.auroc[tier]?.toFixed(3) ?? '–'}; by step ` +
            rows.map((r) => `k=${r.k} ${r.auroc?.toFixed(3) ?? '–'}`).join(', '),
        );
      }
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
