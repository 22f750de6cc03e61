import type { Command } from 'commander';
import { z } from 'zod';
import { evalSteps, renderEvalSteps } from '../../../training/eval-steps.js';
import { parsePrices } from '../../../training/tier-costs.js';
import { parseFlags } from '../cli-flags.js';
import { createCountProgress } from '../count-progress.js';
import { jsonNumbers } from './train.js';

const EvalStepsFlagsSchema = z.object({
  probes: z.string().min(1),
  traces: z.string().min(1),
  store: z.string().min(1).optional(),
  model: z.string().min(1).optional(),
  cheapTier: z.string().min(1).optional(),
  strongTier: z.string().min(1).optional(),
  all: z.boolean().default(false),
  scores: z.string().min(1).optional(),
  taus: z
    .string()
    .transform((s) => s.split(',').map(Number))
    .pipe(z.array(z.number().min(0).max(1, '--taus: each τ is in [0, 1]')).min(1))
    .optional(),
  prices: z.string().optional(),
  out: z.string().min(1).optional(),
  json: z.boolean().default(false),
});

/** `mechroute eval-steps`: step-prefix AUROC by step and the offline per-step routing simulation. */
export function registerEvalStepsCommand(program: Command): void {
  program
    .command('eval-steps')
    .description(
      'score a step-probe bundle (mechroute train --steps) on reasoning traces: step-prefix AUROC by step index, ' +
        'and the offline simulation — the cheap tier’s steps are kept while P(success) ≥ τ, at the first step ' +
        'below τ the strong tier answers from scratch — swept over τ against request-level routing and the two ' +
        'single tiers (accuracy, cost share, escalation rate, mean escalation step)',
    )
    .requiredOption('--probes <file>', 'step-probe bundle (JSON)')
    .requiredOption('--traces <file>', 'trace file (JSONL) with responses and outcomes')
    .option(
      '--store <dir>',
      'step activation store; prefixes of the scored problems it lacks are encoded into it first ' +
        '(default: train --steps’s default store, <mechroute home>/step-activations/<encoder sha256>-L9, ' +
        'or -L<n> for a bundle that reads a layer n > 9)',
    )
    .option('--model <name>', 'encoder model (must be the bundle’s); default: the default encoder')
    .option('--cheap-tier <id>', 'the worker tier (default: the bundle’s reference tier)')
    .option('--strong-tier <id>', 'the escalation tier (default: the dearest tier with outcomes)')
    .option('--all', 'score every problem of the file, not only the bundle’s held-out problems')
    .option(
      '--scores <file>',
      'out-of-fold scores from train --steps --cv-scores instead of the bundle’s predictions (every problem in it)',
    )
    .option('--taus <list>', 'τ values to sweep (default 0, 0.02, …, 1)')
    .option(
      '--prices <spec>',
      'tier=in/out,… USD per Mtok (default: the bundle’s, else the data’s list prices)',
    )
    .option('--out <dir>', 'write report.json, accuracy-vs-cost.svg and simulation-traces.jsonl here')
    .option(
      '--json',
      'print one JSON object: step_auroc, per_step / request_level (one point per τ), cheap_only, strong_only ' +
        '(accuracy, cost_share, escalation_rate, mean_escalation_step), …',
    )
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseFlags(EvalStepsFlagsSchema, raw, 'eval-steps');
      const progress = createCountProgress('eval-steps: encoding missing step prefixes', 'texts');
      const report = await evalSteps({
        probes: flags.probes,
        tracesFile: flags.traces,
        all: flags.all,
        onProgress: (done, total, ms) => progress.update(done, total, ms),
        ...(flags.store ? { storeDir: flags.store } : {}),
        ...(flags.model ? { model: flags.model } : {}),
        ...(flags.cheapTier ? { cheapTier: flags.cheapTier } : {}),
        ...(flags.strongTier ? { strongTier: flags.strongTier } : {}),
        ...(flags.taus ? { taus: flags.taus } : {}),
        ...(flags.prices ? { prices: parsePrices(flags.prices) } : {}),
        ...(flags.out ? { outDir: flags.out } : {}),
        ...(flags.scores ? { scoresFile: flags.scores } : {}),
      });
      progress.stop();
      process.stdout.write(
        flags.json ? `${JSON.stringify(report, jsonNumbers, 2)}\n` : renderEvalSteps(report),
      );
    });
}
