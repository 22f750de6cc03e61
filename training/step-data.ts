import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ActivationStore } from '../src/activations/activation-store.js';
import { TrainingDataError } from '../src/errors.js';
import { DEFAULT_ENCODER_MODEL } from '../src/models/manifest.js';
import { resolveCachedModel } from '../src/models/manifest-registry.js';
import type { Pooling } from '../src/probes/layer-selection.js';
import { concatColumns, createMatrix, type FeatureMatrix } from '../src/probes/matrix.js';
import type { StepSegmentationInput } from '../src/probes/step-probe-info.js';
import {
  examplesByTrajectory,
  type StepExample,
  type StepTrajectory,
  stepExamples,
  stepTrajectories,
  trajectoryKey,
} from '../src/steps/step-examples.js';
import { readTraces } from '../src/traces/jsonl-reader.js';
import type { Trace } from '../src/traces/trace-schema.js';

/**
 * The step-prefix rows training and evaluation read: every prefix of every trajectory whose prefixes
 * (k = 0 … min(K, maxK)) all have activations in the step store. A trajectory with any prefix missing is
 * left out whole and counted, so a partly extracted store gives a clean subset of problems, not
 * trajectories with holes.
 */
export interface StepDataOptions {
  tracesFile: string;
  storeDir: string;
  model?: string;
  tiers?: readonly string[];
  maxK?: number;
  segmentation?: StepSegmentationInput;
  /** Only these problems (trace ids); default every trace. */
  problems?: ReadonlySet<string>;
}

export interface StepData {
  traces: Trace[];
  tracesSha256: string;
  badLines: number;
  encoder: { name: string; sha256: string; layers: number; embedding_width: number };
  store: ActivationStore;
  /** Complete trajectories, in file order. */
  trajectories: StepTrajectory[];
  rows: StepExample[];
  /** Trajectories with at least one prefix missing from the store, by tier. */
  incomplete: Record<string, number>;
}

export async function loadStepData(options: StepDataOptions): Promise<StepData> {
  const bytes = await readFile(options.tracesFile);
  const read = await readTraces(options.tracesFile);
  const { errors } = read;
  const traces = options.problems ? read.traces.filter((t) => options.problems!.has(t.id)) : read.traces;
  const { manifest } = resolveCachedModel(options.model ?? DEFAULT_ENCODER_MODEL);
  const store = await ActivationStore.open({
    encoder: { name: manifest.name, sha256: manifest.sha256 },
    dir: options.storeDir,
    readOnly: true,
  });
  const select = {
    ...(options.tiers ? { tiers: options.tiers } : {}),
    ...(options.segmentation ? { segmentation: options.segmentation } : {}),
  };
  const all = stepTrajectories(traces, select);
  const examples = stepExamples(traces, {
    ...select,
    ...(options.maxK === undefined ? {} : { maxK: options.maxK }),
  });
  const byTrajectory = examplesByTrajectory(examples);
  const trajectories: StepTrajectory[] = [];
  const rows: StepExample[] = [];
  const incomplete: Record<string, number> = {};
  for (const t of all) {
    const prefixes = byTrajectory.get(trajectoryKey(t)) ?? [];
    if (prefixes.length > 0 && prefixes.every((e) => store.has(e.hash))) {
      trajectories.push(t);
      rows.push(...prefixes);
    } else incomplete[t.tier] = (incomplete[t.tier] ?? 0) + 1;
  }
  if (rows.length === 0) {
    await store.close();
    throw new TrainingDataError(
      `no trajectory of ${options.tracesFile} has all its step prefixes in the store ${options.storeDir}` +
        ' (extract them first: mechroute train --steps --extract)',
    );
  }
  return {
    traces,
    tracesSha256: createHash('sha256').update(bytes).digest('hex'),
    badLines: errors.length,
    encoder: {
      name: manifest.name,
      sha256: manifest.sha256,
      layers: manifest.layers,
      embedding_width: manifest.embedding_width,
    },
    store,
    trajectories,
    rows,
    incomplete,
  };
}

/** The rows' features: the pooled vectors of `layers`, side by side in that order. */
export function stepFeatures(
  store: ActivationStore,
  hashes: readonly string[],
  layers: readonly number[],
  pooling: Pooling,
): FeatureMatrix {
  const width = store.meta.width;
  return concatColumns(
    layers.map((layer) => createMatrix(store.matrix(hashes, layer, pooling), hashes.length, width)),
  );
}
