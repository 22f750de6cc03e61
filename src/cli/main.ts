import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { packageRoot } from '../paths.js';
import { describeFailure } from './cli-failure.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerCalibrateCommand } from './commands/calibrate.js';
import { registerConfigCommand } from './commands/config.js';
import { registerDriftCommand } from './commands/drift.js';
import { registerEncodeCommand } from './commands/encode.js';
import { registerEvalCommand } from './commands/eval.js';
import { registerEvalStepsCommand } from './commands/eval-steps.js';
import { registerExtractCommand } from './commands/extract.js';
import { registerLabelCommand } from './commands/label.js';
import { registerModelsCommand } from './commands/models.js';
import { registerPolicyCommand } from './commands/policy.js';
import { registerServeCommand } from './commands/serve.js';
import { registerStatsCommand } from './commands/stats.js';
import { registerTracesCommand } from './commands/traces.js';
import { registerTrainCommand } from './commands/train.js';
import { registerTrainClassesCommand } from './commands/train-classes.js';

/** The entry file only wires the command modules; each command lives in ./commands/<name>.ts. */
const program = new Command()
  .name('mechroute')
  .description('Mechanistic LLM router: routes each request by reading a small local model’s activations')
  .version(
    (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version,
    '-V, --version',
  )
  .showHelpAfterError();

registerModelsCommand(program);
registerEncodeCommand(program);
registerTracesCommand(program);
registerLabelCommand(program);
registerExtractCommand(program);
registerTrainCommand(program);
registerTrainClassesCommand(program);
registerEvalCommand(program);
registerBenchCommand(program);
registerCalibrateCommand(program);
registerDriftCommand(program);
registerEvalStepsCommand(program);
registerConfigCommand(program);
registerServeCommand(program);
registerStatsCommand(program);
registerPolicyCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(describeFailure(error, process.env.MECHROUTE_DEBUG === '1'));
  process.exitCode = 1;
}
