import type { Command } from 'commander';
import { z } from 'zod';
import { evaluateBundle } from '../../../training/evaluate-bundle.js';
import { renderEvalResult } from '../../../training/render-report.js';
import { costOptionsFromFlags } from '../../../training/tier-costs.js';
import { parseFlags } from '../cli-flags.js';
import { createCountProgress } from '../count-progress.js';
import { jsonNumbers } from './train.js';

const EvalFlagsSchema = z.object({
  probes: z.string().min(1),
  traces: z.string().min(1),
  model: z.string().min(1).optional(),
  store: z.string().min(1).optional(),
  prices: z.string().optional(),
  outputTokens: z.string().optional(),
  signal: z.enum(['probes', 'hybrid']).default('probes'),
  json: z.boolean().default(false),
});

/** `mechroute eval`: a probe bundle's classification and routing metrics on any trace file. */
export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description(
      'score a probe bundle on a trace file: per tier AUROC, Brier, ECE and accuracy; routing between the ' +
        'cheapest and the dearest tier (APGR, CPT(50%), CPT(80%), oracle gap closed, cost saving, cost per correct). ' +
        'Features come from the activation store, or from the encoder for prompts not cached',
    )
    .requiredOption('--probes <file>', 'probe bundle (JSON) written by mechroute train')
    .requiredOption('--traces <file>', 'trace file (JSONL) with outcomes')
    .option('--model <name>', 'encoder model (must be the bundle’s); default: the default encoder')
    .option(
      '--store <dir>',
      'activation store directory (default: <mechroute home>/activations/<encoder sha256>/)',
    )
    .option('--prices <spec>', 'tier=in/out,… USD per Mtok (default: the prices stored in the bundle)')
    .option(
      '--output-tokens <spec>',
      'output tokens assumed where a trace has none: N or tier=N,… (default 1)',
    )
    .option('--signal <s>', "probes, or the bundle's hybrid head (hybrid)", 'probes')
    .option(
      '--json',
      'print one JSON object: auroc, brier, ece (per tier), apgr, cpt50, cpt80, oracle_gap_closed, cost_saving, n, …',
    )
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseFlags(EvalFlagsSchema, raw, 'eval');
      const progress = createCountProgress('eval: encoding prompts not in the store', 'prompts');
      const result = await evaluateBundle({
        probes: flags.probes,
        tracesFile: flags.traces,
        ...(flags.model ? { model: flags.model } : {}),
        ...(flags.store ? { storeDir: flags.store } : {}),
        costs: costOptionsFromFlags(flags),
        onProgress: (done, total, ms) => progress.update(done, total, ms),
        signal: flags.signal,
      });
      progress.stop();
      process.stdout.write(
        flags.json ? `${JSON.stringify(result, jsonNumbers, 2)}\n` : renderEvalResult(result),
      );
    });
}
