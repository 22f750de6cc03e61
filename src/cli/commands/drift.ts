import type { Command } from 'commander';
import { z } from 'zod';
import { loadDriftData, sha256File } from '../../../training/calibration-data.js';
import { checkDrift, type DriftReport } from '../../calibration/drift.js';
import { loadPolicyFile } from '../../config/policy-file.js';
import { TrainingDataError } from '../../errors.js';
import { parseFlags } from '../cli-flags.js';

const DriftFlagsSchema = z.object({
  policy: z.string().min(1),
  traces: z.string().min(1),
  probes: z.string().min(1).optional(),
  tolerance: z.coerce.number().min(0).max(1),
  costTolerance: z.coerce.number().min(0),
  minRows: z.coerce.number().int().min(1),
  model: z.string().min(1).optional(),
  store: z.string().min(1).optional(),
  json: z.boolean().default(false),
});

/** Exit status when some class drifted beyond the tolerance (errors exit 1). */
export const EXIT_DRIFT = 3;

const pct = (v: number | null) => (v === null ? 'n/a' : `${(v * 100).toFixed(1)}%`);
const usd = (v: number | null) => (v === null ? 'n/a' : `$${v.toExponential(3)}`);

function render(report: DriftReport, tokenizer: string): string {
  const lines = [
    `policy ${report.policy_version}: realized vs promised per class (costs: token counts × the calibration's prices; tokens by ${tokenizer})`,
    `  ${'class'.padEnd(18)} ${'n'.padStart(6)} ${'quality'.padStart(8)} ${'promised'.padStart(8)} ${'promised CI'.padEnd(16)} ` +
      `${'cost/correct'.padStart(12)} ${'promised'.padStart(12)}  status`,
  ];
  for (const c of report.classes) {
    lines.push(
      `  ${c.name.padEnd(18)} ${String(c.n).padStart(6)} ${pct(c.quality).padStart(8)} ${pct(c.expected_quality).padStart(8)} ` +
        `${`[${pct(c.expected_quality_ci[0])}, ${pct(c.expected_quality_ci[1])}]`.padEnd(16)} ${usd(c.cost_per_correct).padStart(12)} ` +
        `${usd(c.expected_cost_per_correct).padStart(12)}  ${c.status.toUpperCase()}`,
    );
    for (const reason of c.reasons) lines.push(`      ${reason}`);
    if (c.unscored > 0) lines.push(`      ${c.unscored} rows without the chosen tier's outcome, not scored`);
  }
  lines.push(report.drifted ? 'DRIFT beyond tolerance' : 'within tolerance');
  return `${lines.join('\n')}\n`;
}

/** `mechroute drift`: does a calibrated policy still keep its promises on recent labelled traces? */
export function registerDriftCommand(program: Command): void {
  program
    .command('drift')
    .description(
      'route recent labelled traces with a calibrated policy and compare realized quality and cost per correct ' +
        `outcome with what calibration promised, per class; exits ${EXIT_DRIFT} beyond the tolerance (for cron)`,
    )
    .requiredOption('--policy <file>', 'policy file written by mechroute calibrate')
    .requiredOption('--traces <file>', 'recent labelled traces (JSONL), e.g. exported from feedback')
    .option('--probes <file>', 'probe bundle (default: the one named in the calibration record)')
    .option('--tolerance <q>', 'flag quality more than this below the promise (absolute)', '0.03')
    .option(
      '--cost-tolerance <share>',
      'flag cost per correct more than this share above the promise',
      '0.25',
    )
    .option('--min-rows <n>', 'classes with fewer scored rows are not judged', '30')
    .option('--model <name>', 'encoder model (must be the bundle’s)')
    .option('--store <dir>', 'activation store directory')
    .option('--json', 'print the report as JSON')
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseFlags(DriftFlagsSchema, raw, 'drift');
      const policy = await loadPolicyFile(flags.policy);
      const record = policy.calibration;
      if (!record) {
        throw new TrainingDataError(
          `${flags.policy} has no calibration record: drift compares against what \`mechroute calibrate\` promised`,
        );
      }
      const probes = flags.probes ?? record.probes.file;
      const sha = await sha256File(probes).catch(() => {
        throw new TrainingDataError(`probe bundle ${probes} is not readable; pass --probes`);
      });
      if (sha !== record.probes.sha256) {
        process.stderr.write(
          `mechroute: warning: ${probes} is not the bundle the policy was calibrated with (sha256 differs)\n`,
        );
      }
      const data = await loadDriftData({
        probes,
        tracesFile: flags.traces,
        ...(flags.model ? { model: flags.model } : {}),
        ...(flags.store ? { storeDir: flags.store } : {}),
        costs: {
          prices: Object.fromEntries(
            Object.entries(record.costs.prices).map(([id, p]) => [
              id,
              { input_usd_per_mtok: p.input_per_mtok, output_usd_per_mtok: p.output_per_mtok },
            ]),
          ),
          outputTokens: { byTier: record.costs.output_tokens },
        },
      });
      const report = checkDrift(policy, data.tiers, data.rows, {
        qualityTolerance: flags.tolerance,
        costTolerance: flags.costTolerance,
        minRows: flags.minRows,
      });
      process.stdout.write(
        flags.json ? `${JSON.stringify(report, null, 2)}\n` : render(report, data.tokenizer),
      );
      if (report.drifted) process.exitCode = EXIT_DRIFT;
    });
}
