import type { Command } from 'commander';
import { z } from 'zod';
import { type ExtractSummary, extractActivations } from '../../activations/extract-activations.js';
import { parseFlags } from '../cli-flags.js';
import { createCountProgress } from '../count-progress.js';

const count = z.coerce.number().int().min(1);
const ExtractFlagsSchema = z.object({
  traces: z.string().min(1),
  model: z.string().min(1).optional(),
  limit: count.optional(),
  sample: count.optional(),
  seed: z.coerce.number().int().min(0).max(0xffffffff).default(0),
  batch: count.max(128).default(8),
  batchTokens: count.default(512),
  flushEvery: count.default(32),
  store: z.string().min(1).optional(),
  maxPromptTokens: count.min(2).optional(),
  json: z.boolean().default(false),
});

/** `mechroute extract`: encode a trace file's prompts into the activation store (resumable). */
export function registerExtractCommand(program: Command): void {
  program
    .command('extract')
    .description(
      'run the encoder over the prompts of a trace file and cache every layer’s activations (last-token and ' +
        'mean pooling, float16) in the activation store; prompts already cached are skipped, so a killed run ' +
        'resumes where it stopped',
    )
    .requiredOption('--traces <file>', 'trace file (JSONL)')
    .option('--model <name>', 'encoder model (a manifest in models/); default: the default encoder')
    .option('--limit <n>', 'only the first N traces (after --sample)')
    .option('--sample <n>', 'a seeded random subset of N traces, stratified by dataset and subject')
    .option('--seed <s>', 'seed of --sample (an integer)', '0')
    .option(
      '--batch <n>',
      'prompts per batched decode (1: each prompt decoded alone, as a lone request is)',
      '8',
    )
    .option('--batch-tokens <n>', 'tokens per batched decode at most (a longer prompt goes alone)', '512')
    .option('--flush-every <n>', 'records written and fsync’ed together; a kill loses at most these', '32')
    .option('--store <dir>', 'store directory (default: <mechroute home>/activations/<encoder sha256>/)')
    .option(
      '--max-prompt-tokens <n>',
      'read at most n tokens of a prompt (its BOS and its last n − 1); default: the encoder context',
    )
    .option('--json', 'print the summary as one JSON object')
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseFlags(ExtractFlagsSchema, raw, 'extract');

      const controller = new AbortController();
      let signalled: NodeJS.Signals | undefined;
      const onSignal = (signal: NodeJS.Signals) => {
        // A second signal means "now": the store keeps everything up to its last flush either way.
        if (signalled) process.exit(signal === 'SIGINT' ? 130 : 143);
        signalled = signal;
        process.stderr.write(`\nmechroute extract: ${signal}, finishing the batch in flight and flushing…\n`);
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const progress = createCountProgress('extract', 'prompts');
      try {
        const summary = await extractActivations({
          tracesFile: flags.traces,
          ...(flags.model === undefined ? {} : { model: flags.model }),
          ...(flags.limit === undefined ? {} : { limit: flags.limit }),
          ...(flags.sample === undefined ? {} : { sample: flags.sample, seed: flags.seed }),
          batch: flags.batch,
          batchTokens: flags.batchTokens,
          flushEvery: flags.flushEvery,
          ...(flags.store === undefined ? {} : { storeDir: flags.store }),
          ...(flags.maxPromptTokens === undefined ? {} : { maxPromptTokens: flags.maxPromptTokens }),
          signal: controller.signal,
          onProgress: (p) => progress.update(p.done, p.total, p.elapsedMs, `${p.tokens} tokens`),
        });
        progress.stop();
        process.stdout.write(flags.json ? `${JSON.stringify(summary, null, 2)}\n` : renderSummary(summary));
        if (signalled) process.exitCode = signalled === 'SIGINT' ? 130 : 143;
        else if (summary.bad_lines > 0 || summary.failed.length > 0) process.exitCode = 1;
      } finally {
        progress.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

function renderSummary(s: ExtractSummary): string {
  const out = [
    `traces: ${s.traces_file} (${s.lines} lines, ${s.bad_lines} bad)`,
    `store: ${s.store} (encoder ${s.encoder.name}, sha256 ${s.encoder.sha256.slice(0, 12)}…)`,
    `selected: ${s.selected} traces, ${s.unique_prompts} distinct prompts`,
    `encoded: ${s.encoded}, skipped as cached: ${s.skipped_cached}, failed: ${s.failed.length}`,
    `tokens: ${s.tokens} (${s.truncated} prompts truncated, ${s.batched} decoded in batches)`,
    `time: ${s.seconds.toFixed(1)} s, ${s.prompts_per_second.toFixed(2)} prompts/s`,
    `store now: ${s.store_records} prompts, ${(s.store_bytes_per_record / 1024).toFixed(1)} KiB each`,
  ];
  if (s.interrupted) out.push('interrupted: run the same command again to resume');
  for (const [title, rows] of [
    [
      'bad lines (not extracted)',
      s.errors.map((e) => `line ${e.line}${e.id ? ` (id ${e.id})` : ''}: ${e.reason}`),
    ],
    ['failed prompts (not stored)', s.failed.map((f) => `${f.id}: ${f.reason}`)],
  ] as const) {
    if (rows.length > 0) out.push(`${title} (${rows.length}):`, ...rows.map((r) => `  ${r}`));
  }
  return `${out.join('\n')}\n`;
}
