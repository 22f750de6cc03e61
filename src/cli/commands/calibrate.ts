import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { z } from 'zod';
import { loadCalibrationData, policyMetaOf } from '../../../training/calibration-data.js';
import { costOptionsFromFlags } from '../../../training/tier-costs.js';
import { type CalibrationResult, calibrate } from '../../calibration/calibrate.js';
import { buildCalibratedPolicy, policyYaml } from '../../calibration/calibrated-policy.js';
import { calibrationChartSpec, renderCalibration } from '../../calibration/render-calibration.js';
import { renderChartSvg } from '../../charts/render-svg.js';
import { loadPolicyFile } from '../../config/policy-file.js';
import { TrainingDataError } from '../../errors.js';
import { writeFileAtomic } from '../../json-file.js';
import { parseFlags } from '../cli-flags.js';

const CalibrateFlagsSchema = z.object({
  probes: z.string().min(1),
  traces: z.string().min(1),
  target: z.coerce.number().positive().max(2),
  perClass: z.boolean().default(false),
  out: z.string().min(1).optional(),
  base: z.string().min(1).optional(),
  version: z.string().min(1).max(128).optional(),
  chart: z.string().min(1).optional(),
  resamples: z.coerce.number().int().positive().max(100_000),
  seed: z.coerce.number().int(),
  confidence: z.coerce.number().gt(0).lt(1),
  model: z.string().min(1).optional(),
  store: z.string().min(1).optional(),
  prices: z.string().optional(),
  outputTokens: z.string().optional(),
  signal: z.enum(['probes', 'hybrid']).default('probes'),
  allowUnreachable: z.boolean().default(false),
  json: z.boolean().default(false),
});

/** Exit status when a class cannot reach the target (and --allow-unreachable is not given). */
export const EXIT_UNREACHABLE = 2;

const summary = (r: CalibrationResult) =>
  r.classes.map((c) => ({
    class: c.name,
    n: c.n,
    reached: c.reached,
    target_quality: c.targetQuality,
    frontier: { quality: c.frontier.quality, cost_per_correct: c.frontier.costPerCorrect, ci: c.frontier.ci },
    chosen: {
      thresholds: c.chosen.thresholds,
      quality: c.chosen.quality,
      cost_per_correct: c.chosen.costPerCorrect,
      ci: c.chosen.ci,
      shares: c.chosen.shares,
    },
    pareto: c.pareto.map((p) => ({
      thresholds: p.thresholds,
      quality: p.quality,
      cost_per_correct: p.costPerCorrect,
      ci: p.ci,
    })),
  }));

/** `mechroute calibrate`: the cheapest operating point per task class that holds a share of the frontier's quality. */
export function registerCalibrateCommand(program: Command): void {
  program
    .command('calibrate')
    .description(
      'sweep the threshold policy on golden traces and write the cheapest operating point (per correct outcome) ' +
        "whose quality is ≥ target × the frontier tier's quality, per task class, as a versioned policy file",
    )
    .requiredOption('--probes <file>', 'probe bundle (JSON)')
    .requiredOption('--traces <file>', 'golden trace file (JSONL) with outcomes for the tiers')
    .option('--target <share>', "share of the frontier tier's quality to hold", '0.95')
    .option('--per-class', "one operating point per task class (needs the bundle's class head)")
    .option('--out <file>', 'write the calibrated policy here (YAML)')
    .option('--base <file>', 'policy file to start from (its other settings are kept)')
    .option('--version <v>', 'version of the new policy (default cal-<UTC time>-<traces sha256 prefix>)')
    .option('--chart <file.svg>', 'plot the Pareto curves (quality vs cost per correct)')
    .option('--resamples <n>', 'bootstrap resamples', '1000')
    .option('--seed <n>', 'bootstrap seed', '1')
    .option('--confidence <c>', 'bootstrap interval level', '0.95')
    .option('--model <name>', 'encoder model (must be the bundle’s); default: the default encoder')
    .option('--store <dir>', 'activation store directory')
    .option('--prices <spec>', 'tier=in/out,… USD per Mtok (default: the bundle’s prices)')
    .option(
      '--output-tokens <spec>',
      'output tokens assumed where a trace has none: N or tier=N,… (default 1)',
    )
    .option(
      '--allow-unreachable',
      'write the closest point when a class cannot reach the target (else exit 2)',
    )
    .option('--signal <s>', "probes, or the bundle's hybrid head (hybrid)", 'probes')
    .option('--json', 'print the curves and the chosen points as JSON')
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseFlags(CalibrateFlagsSchema, raw, 'calibrate');
      const data = await loadCalibrationData({
        probes: flags.probes,
        tracesFile: flags.traces,
        ...(flags.model ? { model: flags.model } : {}),
        ...(flags.store ? { storeDir: flags.store } : {}),
        costs: costOptionsFromFlags(flags),
        signal: flags.signal,
      });
      const bootstrap = { resamples: flags.resamples, seed: flags.seed, confidence: flags.confidence };
      const pooled = calibrate(data.rows, { target: flags.target, bootstrap });
      let perClass: CalibrationResult | undefined;
      if (flags.perClass) {
        const classes = data.predictions.map((p) => p.task_class?.name);
        if (classes.some((c) => c === undefined)) {
          throw new TrainingDataError(
            `--per-class: the probe bundle ${flags.probes} has no class head (add one with \`mechroute train-classes\`)`,
          );
        }
        perClass = calibrate(data.rows, {
          target: flags.target,
          bootstrap,
          perClass: true,
          classes: classes as string[],
        });
      }
      const shown: CalibrationResult = {
        ...pooled,
        classes: [...pooled.classes, ...(perClass?.classes ?? [])],
      };
      const unreachable = shown.classes.filter((c) => !c.reached);
      const write = (s: string) => process.stdout.write(s);
      if (flags.json)
        write(`${JSON.stringify({ target: flags.target, classes: summary(shown) }, null, 2)}\n`);
      else {
        write(
          `calibrating ${data.rows.tiers.join(' < ')} on ${data.traces.length} traces of ${flags.traces} ` +
            `(${data.badLines} bad lines, ${data.skipped} without outcomes` +
            `${data.excludedTiers.length > 0 ? `; not calibrated, no outcomes on every trace: ${data.excludedTiers.join(', ')}` : ''})\n` +
            `costs: token counts × list prices; tokens counted by ${data.tokenizer}\n\n`,
        );
        write(renderCalibration(shown, flags.confidence));
      }
      if (flags.chart) {
        const svg = await renderChartSvg(
          calibrationChartSpec(
            shown,
            `Pareto curves at target ${flags.target} (${data.traces.length} traces)`,
          ),
        );
        await writeFile(flags.chart, svg, 'utf8');
      }
      if (unreachable.length > 0 && !flags.allowUnreachable) {
        process.stderr.write(
          `mechroute: target ${flags.target} unreachable for class${unreachable.length > 1 ? 'es' : ''} ` +
            `${unreachable.map((c) => c.name).join(', ')} (closest points above); no policy written ` +
            '(--allow-unreachable writes the closest point)\n',
        );
        process.exitCode = EXIT_UNREACHABLE;
        return;
      }
      if (flags.out) {
        const policy = buildCalibratedPolicy(pooled, perClass, {
          ...policyMetaOf(data, { traces: flags.traces, probes: flags.probes }, bootstrap),
          ...(flags.base ? { base: await loadPolicyFile(flags.base) } : {}),
          ...(flags.version ? { version: flags.version } : {}),
          signal: flags.signal,
        });
        // Atomically: a server watching this file must never load half of it.
        await writeFileAtomic(flags.out, policyYaml(policy));
        if (!flags.json) write(`\nwrote policy version ${policy.version} to ${flags.out}\n`);
      }
    });
}
