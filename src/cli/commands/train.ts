import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { DEFAULT_STEP_DEEPEST_LAYER, defaultStepStore } from '../../../training/extract-step-activations.js';
import { renderTrainReport } from '../../../training/render-report.js';
import { costOptionsFromFlags, parsePrices } from '../../../training/tier-costs.js';
import { trainProbes } from '../../../training/train-probes.js';
import { DEFAULT_ENCODER_MODEL } from '../../models/manifest.js';
import { resolveCachedModel } from '../../models/manifest-registry.js';
import { parseFlags } from '../cli-flags.js';
import { extractFirst } from '../extract-first.js';
import { readEveryTrace } from '../trace-input.js';
import { runTrainSteps } from './train-steps.js';

const list = (what: string) =>
  z
    .string()
    .transform((s) => s.split(',').map((p) => p.trim()))
    .pipe(z.array(z.string().min(1, `${what}: empty entry`)));
const positive = z.coerce.number().int().min(1);

const TrainFlagsSchema = z.object({
  traces: z.string().min(1),
  model: z.string().min(1).optional(),
  out: z.string().min(1).optional(),
  tiers: list('--tiers').optional(),
  referenceTier: z.string().min(1).optional(),
  groupBy: z.string().min(1).default('auto'),
  layers: z
    .string()
    .regex(/^(auto|\d+(,\d+)*)$/, 'is "auto" or layer indices like 6,9')
    .default('auto'),
  pooling: z.enum(['auto', 'last', 'mean']).default('auto'),
  seed: z.coerce.number().int().min(0).max(0xffffffff).default(1),
  json: z.boolean().default(false),
  steps: z.boolean().default(false),
  prices: z.string().optional(),
  outputTokens: z.string().optional(),
  store: z.string().min(1).optional(),
  extract: z.boolean().default(false),
  folds: positive.min(2).default(5),
  lambdas: z
    .string()
    .transform((s) => s.split(',').map(Number))
    .pipe(z.array(z.number().positive('--lambdas: each λ is a positive number')))
    .optional(),
  calibration: z.enum(['platt', 'isotonic']).default('platt'),
  mlp: z.boolean().default(true),
  cv: z.boolean().default(true),
  hybrid: z.boolean().default(false),
  layerLatency: z.coerce.number().int().min(0).default(0),
  layerRows: positive.min(50).default(1000),
  layerRule: z.enum(['best', 'shallowest']).default('best'),
  cvLayerStride: positive.default(1),
  maxK: z.coerce.number().int().min(0).optional(),
  deepestLayer: z.coerce.number().int().min(0).default(DEFAULT_STEP_DEEPEST_LAYER),
  testShare: z.coerce.number().gt(0).lt(0.8).default(0.2),
  cvFolds: z.coerce.number().int().min(0).default(0),
  sample: z.coerce.number().int().min(1).optional(),
  cvScores: z.string().min(1).optional(),
});

/** `mechroute train`: traces + cached activations → a probe bundle with cross-validated metrics. */
export function registerTrainCommand(program: Command): void {
  program
    .command('train')
    .description(
      'fit per-tier probes (and a shared-trunk MLP) on a trace file’s cached activations, choose the layer(s) ' +
        'by inner cross-validation, report 5-fold CV metrics on random and whole-subject folds with baselines, ' +
        'and write a probe bundle',
    )
    .requiredOption('--traces <file>', 'trace file (JSONL); its prompts need activations (mechroute extract)')
    .option('--model <name>', 'encoder model (a manifest in models/); default: the default encoder')
    .option('--out <file>', 'bundle to write (default: probes/<traces name>.json)')
    .option('--tiers <ids>', 'only these tiers, comma-separated (default: every tier with outcomes)')
    .option(
      '--reference-tier <id>',
      'tier for layer selection, fold stratification, difficulty and the routing metrics’ weak side ' +
        '(default: the cheapest tier with outcomes on every trace, else the one with the most)',
    )
    .option(
      '--group-by <field>',
      'trace field whole groups are held out by: auto (subject, else dataset), a field, or none',
      'auto',
    )
    .option('--layers <spec>', 'auto, or fixed layer indices such as 6,9', 'auto')
    .option('--pooling <kind>', 'auto, last or mean', 'auto')
    .option('--seed <n>', 'seed of every split, subsample and initialisation', '1')
    .option(
      '--prices <spec>',
      'tier=in/out,… in USD per million tokens (defaults: the shared data’s list prices; unknown tiers 0/0)',
    )
    .option(
      '--output-tokens <spec>',
      'output tokens assumed where a trace has none: N or tier=N,… (default 1: multiple choice)',
    )
    .option(
      '--store <dir>',
      'activation store directory (default: <mechroute home>/activations/<encoder sha256>/)',
    )
    .option('--extract', 'run `mechroute extract` on the traces first (only uncached prompts are encoded)')
    .option('--folds <n>', 'outer cross-validation folds', '5')
    .option('--lambdas <list>', 'λ grid of the per-tier probes (default 10,1,0.1)')
    .option('--calibration <kind>', 'platt or isotonic', 'platt')
    .option('--no-mlp', 'skip the shared-trunk MLP')
    .option('--no-cv', 'skip cross-validation (the bundle then carries no CV metrics)')
    .option(
      '--layer-latency <n>',
      'time the encoder prefill per layer (early exit there) on n training prompts, beside the layer table',
      '0',
    )
    .option(
      '--hybrid',
      'also fit the hybrid head (the probes and a TF-IDF router stacked; policy.signal: hybrid)',
    )
    .option('--layer-rows <n>', 'rows subsampled for layer scoring', '1000')
    .option(
      '--layer-rule <rule>',
      'best: the layer with the highest inner-CV AUROC; shallowest: the shallowest within one standard error ' +
        'of it (the encoder pass of a decision stops there, so it is cheaper for about the same AUROC)',
      'best',
    )
    .option('--cv-layer-stride <n>', 'in the outer CV folds, score only every n-th layer (for speed)', '1')
    .option(
      '--steps',
      'per-reasoning-step probes: every prefix (prompt + first k steps) of each tier’s response in the traces ' +
        'is a row labelled with that response’s outcome; split by problem; needs a step store (--store, --extract)',
    )
    .option('--max-k <n>', 'with --steps: prefixes of at most n steps (default: every step)')
    .option(
      '--sample <n>',
      'with --steps: a seeded sample of n problems (by --seed) for extraction and training',
    )
    .option(
      '--deepest-layer <n>',
      'with --steps --extract: layers 0..n are stored (the encoder stops after n)',
      String(DEFAULT_STEP_DEEPEST_LAYER),
    )
    .option('--test-share <x>', 'with --steps: share of the problems held out for testing', '0.2')
    .option(
      '--cv-folds <n>',
      'with --steps: also score every problem out of fold (n-fold over problems; 0 = off)',
      '0',
    )
    .option('--cv-scores <file>', 'with --steps --cv-folds: write the out-of-fold scores here (JSONL)')
    .option('--json', 'print the report as one JSON object')
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseFlags(TrainFlagsSchema, raw, 'train');
      await readEveryTrace(
        flags.traces,
        'a bundle names its whole trace file by sha256, so it is not trained on part of one',
      );
      if (flags.steps) {
        const { manifest } = resolveCachedModel(flags.model ?? DEFAULT_ENCODER_MODEL);
        await runTrainSteps(
          {
            traces: flags.traces,
            out: flags.out ?? join('probes', `${basename(flags.traces, extname(flags.traces))}-steps.json`),
            seed: flags.seed,
            folds: flags.folds,
            extract: flags.extract,
            deepestLayer: flags.deepestLayer,
            testShare: flags.testShare,
            cvFolds: flags.cvFolds,
            json: flags.json,
            ...(flags.cvScores ? { cvScores: flags.cvScores } : {}),
            ...(flags.model ? { model: flags.model } : {}),
            ...(flags.tiers ? { tiers: flags.tiers } : {}),
            ...(flags.lambdas ? { lambdas: flags.lambdas } : {}),
            ...(flags.layers === 'auto' ? {} : { layers: flags.layers.split(',').map(Number) }),
            ...(flags.pooling === 'auto' ? {} : { pooling: flags.pooling }),
            ...(flags.maxK === undefined ? {} : { maxK: flags.maxK }),
            ...(flags.sample === undefined ? {} : { sample: flags.sample }),
            ...(flags.prices ? { prices: parsePrices(flags.prices) } : {}),
          },
          flags.store ?? defaultStepStore(manifest.sha256, flags.deepestLayer),
        );
        return;
      }
      const out = flags.out ?? join('probes', `${basename(flags.traces, extname(flags.traces))}.json`);
      const say = (line: string) => process.stderr.write(`train: ${line}\n`);
      if (flags.extract) await extractFirst('train', [flags.traces], flags);
      const { report } = await trainProbes({
        tracesFile: flags.traces,
        out,
        seed: flags.seed,
        groupBy: flags.groupBy,
        folds: flags.folds,
        cvLayerStride: flags.cvLayerStride,
        skipCv: !flags.cv,
        hybrid: flags.hybrid,
        layerLatency: flags.layerLatency,
        command: `mechroute ${process.argv.slice(2).join(' ')}`,
        costs: costOptionsFromFlags(flags),
        fit: {
          calibration: flags.calibration,
          layerRows: flags.layerRows,
          layerRule: flags.layerRule,
          ...(flags.lambdas ? { lambdas: flags.lambdas } : {}),
          ...(flags.mlp ? {} : { mlp: false as const }),
        },
        ...(flags.model ? { model: flags.model } : {}),
        ...(flags.store ? { storeDir: flags.store } : {}),
        ...(flags.tiers ? { tiers: flags.tiers } : {}),
        ...(flags.referenceTier ? { referenceTier: flags.referenceTier } : {}),
        ...(flags.layers === 'auto' ? {} : { layers: flags.layers.split(',').map(Number) }),
        ...(flags.pooling === 'auto' ? {} : { pooling: flags.pooling }),
        onProgress: say,
      });
      process.stdout.write(
        flags.json ? `${JSON.stringify(report, jsonNumbers, 2)}\n` : renderTrainReport(report),
      );
    });
}

/** NaN and ±Infinity are not JSON: null says "undefined for this split". */
export function jsonNumbers(_key: string, value: unknown): unknown {
  if (value instanceof Float64Array || value instanceof Float32Array) return Array.from(value);
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}
