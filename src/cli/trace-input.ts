import { InvalidFileError } from '../errors.js';
import { describeLineErrors, readTraces } from '../traces/jsonl-reader.js';
import type { Trace } from '../traces/trace-schema.js';

/**
 * A trace file for a command that must not drop lines silently: every bad line is listed (with its
 * number and reason) and the command stops before any work, exit code 1. `why` says why it cannot go on.
 */
export async function readEveryTrace(file: string, why: string): Promise<Trace[]> {
  const { traces, errors } = await readTraces(file);
  if (errors.length > 0) {
    throw new InvalidFileError(
      'trace file',
      file,
      `${describeLineErrors(errors)}\n(${why}; fix or remove ${errors.length === 1 ? 'it' : 'them'}, ` +
        `\`mechroute traces validate ${file}\` lists every one)`,
    );
  }
  return traces;
}
