import { stratifiedSample } from '../src/activations/sampling.js';
import { TrainingDataError } from '../src/errors.js';
import { createRng } from '../src/seeded-rng.js';
import type { Trace } from '../src/traces/trace-schema.js';
import { holdOut } from './fit-probes.js';

/**
 * A train/test split of a trace file, for comparing routers on identical data: `random` holds out single
 * traces, `subject` (or any other trace field) holds out whole groups — on MMLU the subject alone predicts
 * success, so only held-out subjects show whether a router reads difficulty rather than topic. The split
 * is the trainer's own held-out logic (fit-probes.ts `holdOut`), seeded, so the same flags always give the
 * same files. An optional stratified sample (by the same field, else by subject/dataset) comes first.
 */
export interface SplitTracesOptions {
  by: string;
  seed: number;
  testShare: number;
  /**
   * Keep only this many traces first, stratified by dataset and subject with `sampleSeed` (default 0):
   * the very subset `mechroute extract --sample N --seed S` extracts (src/activations/sampling.ts).
   */
  sample?: number;
  sampleSeed?: number;
}

export interface TraceSplit {
  train: Trace[];
  test: Trace[];
  /** Groups on each side (by-field splits only). */
  groups?: { train: string[]; test: string[] };
}

const fieldOf = (trace: Trace, field: string): string => {
  const value = (trace as Record<string, unknown>)[field];
  return value === undefined || value === null ? '(none)' : String(value);
};

/** extract-activations.ts' stratum, so that the same N and seed pick the same traces. */
const stratumOf = (trace: Trace): string => `${trace.dataset ?? ''}\u0000${trace.subject ?? ''}`;

export function splitTraces(traces: readonly Trace[], options: SplitTracesOptions): TraceSplit {
  if (!(options.testShare > 0 && options.testShare < 1)) {
    throw new TrainingDataError(`--test-share must be in (0, 1), got ${options.testShare}`);
  }
  const kept =
    options.sample === undefined
      ? [...traces]
      : stratifiedSample(traces, options.sample, options.sampleSeed ?? 0, stratumOf);
  const groups = options.by === 'random' ? undefined : kept.map((t) => fieldOf(t, options.by));
  if (groups && new Set(groups).size < 2) {
    throw new TrainingDataError(`--by ${options.by}: the traces have fewer than two values of that field`);
  }
  const rows = kept.map((_, i) => i);
  const { kept: trainRows, held: testRows } = holdOut(
    rows,
    options.testShare,
    createRng(options.seed),
    groups,
  );
  const pick = (list: number[]) => list.map((i) => kept[i]!);
  return {
    train: pick(trainRows),
    test: pick(testRows),
    ...(groups
      ? {
          groups: {
            train: [...new Set(trainRows.map((i) => groups[i]!))].sort(),
            test: [...new Set(testRows.map((i) => groups[i]!))].sort(),
          },
        }
      : {}),
  };
}
