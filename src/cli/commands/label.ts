import { access, constants } from 'node:fs/promises';
import type { Command } from 'commander';
import { z } from 'zod';
import type { LabelSummary } from '../../../training/label-traces.js';
import { FileUnreadableError } from '../../errors.js';
import { DEFAULT_ENCODER_MODEL } from '../../models/manifest.js';
import { parseFlags } from '../cli-flags.js';
import { createCountProgress } from '../count-progress.js';

const LabelFlagsSchema = z
  .object({
    traces: z.string().min(1),
    out: z.string().min(1),
    tier: z.string().min(1),
    config: z.string().min(1).optional(),
    model: z.string().min(1).optional(),
    maxTokens: z.coerce.number().int().min(1).max(32_768),
    limit: z.coerce.number().int().min(1).optional(),
    concurrency: z.coerce.number().int().min(1).max(64),
    grade: z.enum(['auto', 'command']),
    gradeCommand: z.string().min(1).optional(),
    gradeTimeout: z.coerce.number().positive().max(3600),
    cutOff: z.enum(['ungradable', 'fail']),
    json: z.boolean().default(false),
  })
  .superRefine((flags, ctx) => {
    if (flags.config !== undefined && flags.model !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: '--model runs a local GGUF without a config; with --config the tier says what runs',
      });
    }
    if (flags.grade === 'command' && flags.gradeCommand === undefined) {
      ctx.addIssue({ code: 'custom', message: '--grade command needs --grade-command' });
    }
  });
type LabelFlags = z.infer<typeof LabelFlagsSchema>;

/** `mechroute label`: run a tier on traces with reference answers and record how it did. */
export function registerLabelCommand(program: Command): void {
  program
    .command('label')
    .description(
      "run a tier — a config's tier (an OpenAI-compatible deployment or a local model), or a local GGUF " +
        'given by --model — on traces, grade its answers (final number, option letter, or your grading ' +
        'command) and write the traces with its outcome, tokens, cost, latency and how each was graded ' +
        'added; resumable: traces already in --out are skipped',
    )
    .requiredOption('--traces <file>', 'input trace file (JSONL)')
    .requiredOption('--out <file>', 'output trace file (appended to; created if missing)')
    .option('--tier <id>', 'the tier to run (with --config) and to record the outcomes under', 'gemma-3-270m')
    .option('--config <file>', "run the config's tier --tier (credentials from the variables it names)")
    .option('--model <name>', `without --config: the GGUF to run locally (default ${DEFAULT_ENCODER_MODEL})`)
    .option('--max-tokens <n>', 'longest answer', '256')
    .option('--limit <n>', 'only the first N traces')
    .option('--concurrency <n>', 'traces in flight at once', '2')
    .option(
      '--grade <mode>',
      'auto: numbers and option letters built in, the rest by --grade-command; command: all by it',
      'auto',
    )
    .option('--grade-command <cmd>', 'grades an answer: JSON on stdin, exit 0 pass, 1 fail, 2 cannot grade')
    .option('--grade-timeout <seconds>', 'the grading command is killed after this long', '60')
    .option(
      '--cut-off <verdict>',
      'a number or letter answer cut off at --max-tokens before its final line: ungradable, or fail',
      'ungradable',
    )
    .option('--json', 'print the summary as one JSON object')
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseFlags(LabelFlagsSchema, raw, 'label');
      // Before a local model spends seconds loading: a mistyped --traces fails at once.
      await access(flags.traces, constants.R_OK).catch((error: unknown) => {
        throw new FileUnreadableError(flags.traces, error);
      });
      const [{ labelTraces }, { configuredTier, localLabelTier, openLabelTier }] = await Promise.all([
        import('../../../training/label-traces.js'),
        import('../../../training/label-tier.js'),
      ]);
      const tierConfig =
        flags.config === undefined
          ? localLabelTier(flags.tier, flags.model ?? DEFAULT_ENCODER_MODEL)
          : await configuredTier(flags.config, flags.tier);
      const tier = await openLabelTier(tierConfig, { concurrency: flags.concurrency });
      const controller = new AbortController();
      const onSignal = () => {
        process.stderr.write('\nmechroute label: stopping; what is graded so far is kept\n');
        controller.abort();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const progress = createCountProgress('label', 'traces');
      try {
        const summary = await labelTraces({
          tracesFile: flags.traces,
          outFile: flags.out,
          tier: flags.tier,
          model: tier.model,
          price: tier.price,
          maxTokens: flags.maxTokens,
          concurrency: flags.concurrency,
          mode: flags.grade,
          cutOff: flags.cutOff,
          ...(flags.gradeCommand === undefined
            ? {}
            : { command: { command: flags.gradeCommand, timeoutMs: flags.gradeTimeout * 1000 } }),
          ...(flags.limit === undefined ? {} : { limit: flags.limit }),
          signal: controller.signal,
          onProgress: (p) => progress.update(p.done, p.total, p.elapsedMs, `${p.pass} pass`),
        });
        progress.stop();
        const report = { ...summary, provider: tierConfig.provider, ...describeSource(flags) };
        process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : summaryText(summary));
        if (summary.bad_lines > 0 || summary.errors > 0) process.exitCode = 1;
      } finally {
        progress.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await tier.close();
      }
    });
}

const describeSource = (flags: LabelFlags) =>
  flags.config === undefined ? { model: flags.model ?? DEFAULT_ENCODER_MODEL } : { config: flags.config };

function summaryText(s: LabelSummary): string {
  const graded = s.pass + s.fail;
  // Of the answers graded pass or fail: an unreadable answer is neither.
  const rate = graded > 0 ? ` (${((100 * s.pass) / graded).toFixed(1)} % of those graded)` : '';
  const reasons = Object.entries(s.ungradable_reasons)
    .map(([why, n]) => `${why}: ${n}`)
    .join('; ');
  const methods = Object.entries(s.by_method)
    .map(([m, c]) => `${m} ${c.pass}/${c.fail}/${c.ungradable}`)
    .join(', ');
  const lines = [
    `${s.tier}: ${s.labelled} labelled — ${s.pass} pass${rate}, ${s.fail} fail, ` +
      `${s.ungradable} ungradable${reasons ? ` (${reasons})` : ''}`,
    ...(methods ? [`graded by (pass/fail/ungradable): ${methods}`] : []),
    `tokens ${s.tokens.input} in / ${s.tokens.output} out, $${s.cost_usd.toFixed(6)} at ` +
      `$${s.price.input_per_mtok}/$${s.price.output_per_mtok} per Mtok` +
      (s.latency_ms ? `; latency p50 ${s.latency_ms.p50} ms, p95 ${s.latency_ms.p95} ms` : '') +
      `; ${s.seconds.toFixed(1)} s`,
    `not run: ${s.skipped_done} already in --out, ${s.without_reference} without a reference, ` +
      `${s.without_grader} without a grader; ${s.bad_lines} bad lines`,
    ...(s.failed_attempts + s.waits > 0
      ? [`${s.failed_attempts} failed attempts retried or failed over, ${s.waits} waits for the tier`]
      : []),
    ...(s.errors > 0
      ? [`${s.errors} traces failed (run again to retry them): ${s.error_samples.join(' | ')}`]
      : []),
    ...(s.stopped ? [`stopped: ${s.stopped}`] : []),
    ...(s.interrupted ? ['interrupted: run the same command again to resume'] : []),
    ...(s.stopped && !s.interrupted ? ['run the same command again to resume'] : []),
  ];
  return `${lines.join('\n')}\n`;
}
