import type { Command } from 'commander';
import { z } from 'zod';
import { DEFAULT_ENCODER_MODEL } from '../../models/manifest.js';
import { resolveCachedModel } from '../../models/manifest-registry.js';
import { parseFlags } from '../cli-flags.js';
import { createCountProgress } from '../count-progress.js';

const LabelFlagsSchema = z.object({
  traces: z.string().min(1),
  out: z.string().min(1),
  tier: z.string().min(1),
  model: z.string().min(1),
  maxTokens: z.coerce.number().int().min(1).max(4096),
  limit: z.coerce.number().int().min(1).optional(),
  concurrency: z.coerce.number().int().min(1).max(16),
  json: z.boolean().default(false),
});

/** `mechroute label`: run a local tier on traces with reference answers and record how it did. */
export function registerLabelCommand(program: Command): void {
  program
    .command('label')
    .description(
      'run a local tier (node-llama-cpp) on traces that carry a reference_answer, grade its answers ' +
        '(numeric final answer or option letter) and write the traces with its outcome, tokens and ' +
        'latency added; resumable: traces already labelled in --out are skipped',
    )
    .requiredOption('--traces <file>', 'input trace file (JSONL)')
    .requiredOption('--out <file>', 'output trace file (appended to; created if missing)')
    .option('--tier <id>', 'tier id to record the outcomes under', 'gemma-3-270m')
    .option('--model <name>', 'GGUF model to run (a manifest in models/)', DEFAULT_ENCODER_MODEL)
    .option('--max-tokens <n>', 'longest answer', '256')
    .option('--limit <n>', 'only the first N traces')
    .option('--concurrency <n>', 'requests in flight at once', '2')
    .option('--json', 'print the summary as one JSON object')
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseFlags(LabelFlagsSchema, raw, 'label');
      const { labelTraces } = await import('../../../training/label-traces.js');
      const { createLocalLlamaModel } = await import(
        '../../tiers/providers/local-llama/local-llama-model.js'
      );
      const model = await createLocalLlamaModel({
        modelPath: resolveCachedModel(flags.model).path,
        tier: flags.tier,
        sequences: flags.concurrency,
        contextSize: 2048,
      });
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
          model,
          maxTokens: flags.maxTokens,
          concurrency: flags.concurrency,
          ...(flags.limit === undefined ? {} : { limit: flags.limit }),
          signal: controller.signal,
          onProgress: (p) => progress.update(p.done, p.total, p.elapsedMs, `${p.correct} correct`),
        });
        progress.stop();
        if (flags.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        else {
          const rate = summary.labelled > 0 ? ((100 * summary.correct) / summary.labelled).toFixed(1) : '-';
          process.stdout.write(
            `${summary.tier}: ${summary.labelled} labelled, ${summary.correct} correct (${rate} %), ` +
              `${summary.skipped_done} already labelled, ${summary.without_reference} without a reference, ` +
              `${summary.bad_lines} bad lines; ${summary.tokens.output} output tokens in ${summary.seconds.toFixed(1)} s\n`,
          );
          if (summary.interrupted)
            process.stdout.write('interrupted: run the same command again to resume\n');
        }
        if (summary.bad_lines > 0) process.exitCode = 1;
      } finally {
        progress.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await model.dispose();
      }
    });
}
