import type { Command } from 'commander';
import { z } from 'zod';
import { trainClassHead } from '../../../training/train-class-head.js';
import { TASK_CLASS_SOURCES } from '../../traces/task-class.js';
import { parseFlags } from '../cli-flags.js';

const Flags = z.object({
  probes: z.string().min(1),
  traces: z.string().min(1),
  out: z.string().min(1),
  source: z.enum(TASK_CLASS_SOURCES),
  model: z.string().min(1).optional(),
  store: z.string().min(1).optional(),
  seed: z.coerce.number().int(),
  json: z.boolean().default(false),
});

/** `mechroute train-classes`: add a task-class head to a probe bundle. */
export function registerTrainClassesCommand(program: Command): void {
  program
    .command('train-classes')
    .description(
      'add a task-class head (one-vs-rest logistic over the bundle’s features) to a probe bundle, for /v1/route ' +
        'and per-class calibration',
    )
    .requiredOption('--probes <file>', 'probe bundle to extend')
    .requiredOption('--traces <file>', 'traces with a class: a `class` field, a dataset, or MMLU subjects')
    .requiredOption('--out <file>', 'the bundle with its class head')
    .option('--source <s>', `where classes come from: ${TASK_CLASS_SOURCES.join(', ')}`, 'auto')
    .option('--model <name>', 'encoder model (must be the bundle’s)')
    .option('--store <dir>', 'activation store directory')
    .option('--seed <n>', 'seed of the held-out split', '7')
    .option('--json', 'print the result as JSON')
    .action(async (raw: Record<string, unknown>) => {
      const f = parseFlags(Flags, raw, 'train-classes');
      const result = await trainClassHead({
        probes: f.probes,
        tracesFile: f.traces,
        out: f.out,
        source: f.source,
        seed: f.seed,
        ...(f.model ? { model: f.model } : {}),
        ...(f.store ? { storeDir: f.store } : {}),
      });
      if (f.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        process.stdout.write(
          `classes (${f.source}): ${Object.entries(result.classes)
            .map(([k, n]) => `${k} ${n}`)
            .join(
              ', ',
            )}${result.withoutClass > 0 ? `; ${result.withoutClass} traces without a class skipped` : ''}\n` +
            `held-out accuracy ${(result.heldOut.accuracy * 100).toFixed(1)}% on ${result.heldOut.n} traces ` +
            `(majority class ${(result.heldOut.majority * 100).toFixed(1)}%), λ = ${result.lambda}\n` +
            `wrote ${f.out}\n`,
        );
      }
    });
}
