import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { type SimulationTrace, SimulationTraceSchema } from '../../../src/steps/step-simulation.js';
import { readJsonl } from '../../../src/traces/jsonl-reader.js';

/**
 * The five hand-made simulation traces (five-traces.jsonl) the step and cascade simulation tests share,
 * with prices chosen so a cost in USD equals a weighted token count: cheap 1 per input and 2 per output
 * token, strong 10 and 30. Hand-computed:
 *   strong alone: A 100·10+50·30 = 2500, B 1700, C 4000, D 2600, E 1100 → 11,900
 *   cheap alone (prompt + whole answer): A 100+2·20 = 140, B 80, C 180, D 160, E 80 → 640
 */
export const PRICES = {
  cheap: { input_usd_per_mtok: 1e6, output_usd_per_mtok: 2e6 },
  strong: { input_usd_per_mtok: 10e6, output_usd_per_mtok: 30e6 },
};

// Compiled to dist/test/unit/steps/; the hand-made file stays in the source tree.
const FILE = fileURLToPath(new URL('../../../../test/unit/steps/five-traces.jsonl', import.meta.url));

export async function fiveTraces(): Promise<SimulationTrace[]> {
  const { records, errors } = await readJsonl(FILE, SimulationTraceSchema);
  assert.deepEqual(errors, []);
  assert.equal(records.length, 5);
  return records;
}
