import { Command } from 'commander';
import { MechrouteError } from '../errors.js';
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
import { registerTracesCommand } from './commands/traces.js';
import { registerTrainCommand } from './commands/train.js';
import { registerTrainClassesCommand } from './commands/train-classes.js';

/** The entry file only wires the command modules; each command lives in ./commands/<name>.ts. */
const program = new Command()
  .name('mechroute')
  .description('Mechanistic LLM router: routes each request by reading a small local model’s activations')
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
registerPolicyCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Known failures print one clear line (plus their code); anything else is a bug and keeps its stack.
  if (error instanceof MechrouteError) {
    process.stderr.write(`mechroute: ${error.message} [${error.code}]\n`);
  } else {
    process.stderr.write(
      `mechroute: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
  }
  process.exitCode = 1;
}
