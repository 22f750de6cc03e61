import type { Command } from 'commander';
import { z } from 'zod';
import { splitTraces } from '../../../training/split-traces.js';
import { encoderIdentity, openStoreReadOnly } from '../../../training/training-data.js';
import { promptHash } from '../../activations/activation-store.js';
import { type JsonlLineError, readTraces, writeTraces } from '../../traces/jsonl-reader.js';
import { promptText } from '../../traces/trace-schema.js';
import { type RateCount, summarizeTraces, type TraceGroupSummary } from '../../traces/trace-stats.js';
import { parseFlags } from '../cli-flags.js';
import { readEveryTrace } from '../trace-input.js';

/** `mechroute traces …`: inspect trace files (the JSONL format of src/traces/trace-schema.ts). */
export function registerTracesCommand(program: Command): void {
  const traces = program.command('traces').description('inspect and validate trace files (JSONL)');

  traces
    .command('validate')
    .description('check every line of a trace file; print counts, base rates and every bad line')
    .argument('<file>', 'trace file, one JSON object per line')
    .option('--json', 'print one JSON object instead of text')
    .action(async (file: string, options: { json?: boolean }, command: Command) => {
      // Commander's output hook (stdout by default) lets tests capture the report without patching stdout.
      const write = (text: string) =>
        (command.configureOutput().writeOut ?? process.stdout.write.bind(process.stdout))(text);
      const { traces: records, errors, lines } = await readTraces(file);
      const summary = summarizeTraces(records);
      if (options.json) {
        write(`${JSON.stringify({ file, lines, ...summary, bad: errors.length, errors }, jsonNumbers, 2)}\n`);
      } else {
        write(renderText(file, lines, summary, errors));
      }
      // exitCode, not exit(): a large report must finish flushing to a pipe first.
      if (errors.length > 0) process.exitCode = 1;
    });

  traces
    .command('split')
    .description(
      'split a trace file into a train and a test file, by whole groups (e.g. MMLU subjects) or at random; ' +
        'seeded, so the same flags give the same files (for `mechroute bench routing`)',
    )
    .argument('<file>', 'trace file, one JSON object per line')
    .requiredOption('--train <file>', 'where to write the training traces')
    .requiredOption('--test <file>', 'where to write the test traces')
    .option(
      '--by <field>',
      '`random`, or a trace field whose values are held out whole (e.g. subject)',
      'random',
    )
    .option('--seed <n>', 'seed', '1')
    .option('--test-share <x>', 'share of the traces (or of the groups) in the test file', '0.2')
    .option(
      '--sample <n>',
      'first keep a sample of n traces stratified by dataset and subject (the one `extract --sample n` takes)',
    )
    .option('--sample-seed <s>', 'seed of --sample (as extract --seed)', '0')
    .option(
      '--cached-in <store>',
      'first keep only the traces whose prompts have activations in this store (the default encoder’s)',
    )
    .action(async (file: string, raw: Record<string, unknown>, command: Command) => {
      const flags = parseFlags(SplitFlagsSchema, raw, 'traces split');
      const records = await readEveryTrace(file, 'a split never drops lines silently');
      let usable = records;
      if (flags.cachedIn) {
        const store = await openStoreReadOnly(encoderIdentity(undefined), flags.cachedIn, file);
        try {
          usable = records.filter((t) => store.has(promptHash(promptText(t))));
        } finally {
          await store.close();
        }
        process.stderr.write(
          `${usable.length} of ${records.length} traces have activations in ${flags.cachedIn}; the rest are left out\n`,
        );
      }
      const split = splitTraces(usable, {
        by: flags.by,
        seed: flags.seed,
        testShare: flags.testShare,
        ...(flags.sample === undefined ? {} : { sample: flags.sample, sampleSeed: flags.sampleSeed }),
      });
      await writeTraces(flags.train, split.train);
      await writeTraces(flags.test, split.test);
      const write = (text: string) =>
        (command.configureOutput().writeOut ?? process.stdout.write.bind(process.stdout))(text);
      const groups = split.groups
        ? ` (${split.groups.train.length} / ${split.groups.test.length} ${flags.by} groups)`
        : '';
      write(
        `${flags.train}: ${split.train.length} traces; ${flags.test}: ${split.test.length} traces${groups}\n`,
      );
    });
}

const SplitFlagsSchema = z.object({
  train: z.string().min(1),
  test: z.string().min(1),
  by: z.string().min(1),
  seed: z.coerce.number().int(),
  testShare: z.coerce.number().gt(0).lt(1),
  sample: z.coerce.number().int().positive().optional(),
  sampleSeed: z.coerce.number().int().min(0).default(0),
  cachedIn: z.string().min(1).optional(),
});

/** NaN (a rate over zero records) is not JSON; null says "no value" without breaking parsers. */
function jsonNumbers(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}

const percent = (r: RateCount): string =>
  Number.isNaN(r.rate) ? '   n/a' : `${(r.rate * 100).toFixed(1).padStart(5)} %`;

function rateLines(group: TraceGroupSummary, indent: string): string[] {
  const names = Object.keys(group.tiers);
  const width = Math.max('oracle (any tier)'.length, ...names.map((n) => n.length));
  const row = (name: string, r: RateCount) =>
    `${indent}${name.padEnd(width)}  ${percent(r)}  (${r.successes}/${r.n})`;
  return [...names.map((name) => row(name, group.tiers[name]!)), row('oracle (any tier)', group.oracle)];
}

function renderText(
  file: string,
  lines: number,
  summary: ReturnType<typeof summarizeTraces>,
  errors: readonly JsonlLineError[],
): string {
  const out = [
    `file: ${file}`,
    `records: ${summary.records} valid, ${errors.length} bad (${lines} lines)`,
    'tiers (base success rate):',
    ...rateLines(summary, '  '),
    'datasets:',
  ];
  for (const [name, group] of Object.entries(summary.datasets)) {
    out.push(`  ${name}: ${group.records} records`, ...rateLines(group, '    '));
  }
  if (errors.length > 0) {
    out.push(`bad lines (${errors.length}):`);
    for (const e of errors)
      out.push(`  line ${e.line}${e.id === undefined ? '' : ` (id ${e.id})`}: ${e.reason}`);
  } else {
    out.push('bad lines: none');
  }
  return `${out.join('\n')}\n`;
}
