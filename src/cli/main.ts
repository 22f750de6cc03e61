import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { packageRoot } from '../paths.js';
import { describeFailure } from './cli-failure.js';

type Register = (program: Command) => void;

/**
 * Every top-level command and the module that registers it (./commands/<name>.ts), in help order.
 * Modules load on demand: a command pulls in only its own dependencies (the encoder, vega, onnxruntime…),
 * so `mechroute stats` or `policy show` start in a fraction of the time it takes to load them all.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  models: async () => (await import('./commands/models.js')).registerModelsCommand,
  encode: async () => (await import('./commands/encode.js')).registerEncodeCommand,
  traces: async () => (await import('./commands/traces.js')).registerTracesCommand,
  label: async () => (await import('./commands/label.js')).registerLabelCommand,
  extract: async () => (await import('./commands/extract.js')).registerExtractCommand,
  train: async () => (await import('./commands/train.js')).registerTrainCommand,
  'train-classes': async () => (await import('./commands/train-classes.js')).registerTrainClassesCommand,
  eval: async () => (await import('./commands/eval.js')).registerEvalCommand,
  tiers: async () => (await import('./commands/tiers.js')).registerTiersCommand,
  bench: async () => (await import('./commands/bench.js')).registerBenchCommand,
  calibrate: async () => (await import('./commands/calibrate.js')).registerCalibrateCommand,
  drift: async () => (await import('./commands/drift.js')).registerDriftCommand,
  'eval-steps': async () => (await import('./commands/eval-steps.js')).registerEvalStepsCommand,
  config: async () => (await import('./commands/config.js')).registerConfigCommand,
  serve: async () => (await import('./commands/serve.js')).registerServeCommand,
  stats: async () => (await import('./commands/stats.js')).registerStatsCommand,
  policy: async () => (await import('./commands/policy.js')).registerPolicyCommand,
};

const program = new Command()
  .name('mechroute')
  .description('Mechanistic LLM router: routes each request by reading a small local model’s activations')
  .version(
    (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version,
    '-V, --version',
  )
  // Program options only before the command: `calibrate --version cal-1` names a policy version.
  .enablePositionalOptions()
  .showHelpAfterError();

try {
  // The command named on the command line; none for --version; else every command (for --help, or to
  // suggest the command a typo meant).
  const args = process.argv.slice(2);
  const named = args.find((arg) => !arg.startsWith('-'));
  const wanted =
    named !== undefined && named in COMMANDS
      ? [named]
      : named === undefined && (args.includes('-V') || args.includes('--version'))
        ? []
        : Object.keys(COMMANDS);
  for (const register of await Promise.all(wanted.map((name) => COMMANDS[name]!()))) register(program);
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(describeFailure(error, process.env.MECHROUTE_DEBUG === '1'));
  process.exitCode = 1;
}
