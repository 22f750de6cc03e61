import { join } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { benchTable, writeBenchReport } from '../../../training/bench-report.js';
import { BENCH_METHODS, benchRouting, checkMethods } from '../../../training/bench-routing.js';
import { costOptionsFromFlags } from '../../../training/tier-costs.js';
import { saveBaselineModel } from '../../baselines/baseline-model.js';
import { parseFlags } from '../cli-flags.js';
import { createCountProgress } from '../count-progress.js';
import { extractFirst } from '../extract-first.js';
import { jsonNumbers } from './train.js';

const BenchFlagsSchema = z.object({
  train: z.string().min(1),
  test: z.string().min(1),
  model: z.string().min(1).optional(),
  store: z.string().min(1).optional(),
  methods: z.string().optional(),
  latencySamples: z.coerce.number().int().positive().default(50),
  seed: z.coerce.number().int().default(1),
  groupBy: z.string().min(1).optional(),
  layers: z
    .string()
    .regex(/^\d+(,\d+)*$/, 'comma-separated layer indices')
    .optional(),
  pooling: z.enum(['last', 'mean']).default('last'),
  k: z.coerce.number().int().positive().default(25),
  resamples: z.coerce.number().int().positive().max(100_000).default(1000),
  prices: z.string().optional(),
  outputTokens: z.string().optional(),
  json: z.boolean().default(false),
  out: z.string().min(1).optional(),
  title: z.string().optional(),
  saveModels: z.string().min(1).optional(),
  extract: z.boolean().default(false),
});

/** `mechroute bench routing`: probes vs text-classifier routers on the same train/test files. */
export function registerBenchCommand(program: Command): void {
  const bench = program.command('bench').description('benchmarks');
  bench
    .command('routing')
    .description(
      'train every router signal (probes, multi-layer and shared-trunk probes, the hybrid, TF-IDF, sentence ' +
        'embeddings, a task prior) on --train, score them on --test with the metrics of `mechroute eval` ' +
        '(multi-tier fields included), compare each with the best text method (paired bootstrap), and time ' +
        'one decision of each',
    )
    .requiredOption(
      '--train <file>',
      'training traces (JSONL); activations must be in the store (or --extract)',
    )
    .requiredOption('--test <file>', 'test traces (JSONL); activations must be in the store (or --extract)')
    .option('--model <name>', 'encoder model (default: the default encoder)')
    .option('--store <dir>', 'activation store directory (default: <mechroute home>/activations/<sha256>/)')
    .option(
      '--extract',
      'run `mechroute extract` on --train and --test first (only uncached prompts are encoded)',
    )
    .option('--methods <list>', `comma-separated subset of ${BENCH_METHODS.join(', ')}`)
    .option('--latency-samples <n>', 'test prompts timed per method', '50')
    .option('--seed <n>', 'seed of every fit', '1')
    .option(
      '--group-by <field>',
      'hold out whole groups of this trace field in the inner splits (e.g. subject)',
    )
    .option('--layers <list>', 'fixed probe layers (skips layer selection)')
    .option('--pooling <p>', 'pooling of --layers: last or mean', 'last')
    .option('--k <n>', 'neighbours of the kNN router', '25')
    .option(
      '--resamples <n>',
      'paired bootstrap resamples of the comparisons with the best text method',
      '1000',
    )
    .option('--prices <spec>', 'tier=in/out,… USD per Mtok')
    .option('--output-tokens <spec>', 'output tokens assumed where a trace has none: N or tier=N,…')
    .option(
      '--json',
      'print {methods: {NAME: {…mechroute eval fields (multi included)…, latency_ms_p50, latency_ms_p95, train_ms}}, ' +
        'ladder, comparisons}',
    )
    .option(
      '--out <dir>',
      'write report.md, deferral.svg, calibration.svg and (3+ tiers) quality-cost.svg there',
    )
    .option('--title <text>', 'title of the Markdown report')
    .option(
      '--save-models <dir>',
      'save each trained text-classifier router as <dir>/<method>.json (for policy.signal: text-embedding)',
    )
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseFlags(BenchFlagsSchema, raw, 'bench routing');
      if (flags.extract) await extractFirst('bench routing', [flags.train, flags.test], flags);
      const methods = flags.methods ? checkMethods(flags.methods.split(',').map((m) => m.trim())) : undefined;
      let bar: ReturnType<typeof createCountProgress> | undefined;
      let stage = '';
      let started = performance.now();
      const result = await benchRouting({
        trainFile: flags.train,
        testFile: flags.test,
        ...(flags.model ? { model: flags.model } : {}),
        ...(flags.store ? { storeDir: flags.store } : {}),
        ...(methods ? { methods } : {}),
        latencySamples: flags.latencySamples,
        seed: flags.seed,
        ...(flags.groupBy ? { groupBy: flags.groupBy } : {}),
        ...(flags.layers
          ? { probeLayers: flags.layers.split(',').map(Number), probePooling: flags.pooling }
          : {}),
        knnK: flags.k,
        resamples: flags.resamples,
        costs: costOptionsFromFlags(flags),
        onProgress(name, done, total) {
          // Embedding is one bar; the methods share another (training then timing each).
          const kind = name === 'sentence embeddings' ? name : 'methods';
          if (kind !== stage) {
            bar?.stop();
            bar = createCountProgress(
              kind === 'methods' ? 'bench' : 'embedding',
              kind === 'methods' ? 'methods' : 'prompts',
            );
            stage = kind;
            started = performance.now();
          }
          bar!.update(done, total, performance.now() - started, kind === 'methods' ? name : '');
        },
      });
      bar?.stop();
      if (flags.out) {
        const files = await writeBenchReport(result, flags.out, flags.title);
        process.stderr.write(`wrote ${files.join(', ')}\n`);
      }
      if (flags.saveModels) {
        for (const [name, model] of Object.entries(result.models)) {
          await saveBaselineModel(join(flags.saveModels, `${name}.json`), model);
        }
      }
      if (flags.json) {
        const { curves: _curves, models: _models, ...rest } = result;
        process.stdout.write(`${JSON.stringify(rest, jsonNumbers, 2)}\n`);
      } else {
        process.stdout.write(`${benchTable(result)}\n`);
      }
    });
}
