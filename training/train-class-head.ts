import { TrainingDataError } from '../src/errors.js';
import { type ClassHeadModel, fitClassHead, topClass } from '../src/probes/class-head.js';
import { createMatrix } from '../src/probes/matrix.js';
import { type ClassHead, loadProbeBundle, saveProbeBundle } from '../src/probes/probe-bundle.js';
import { applyStandardizer } from '../src/probes/standardizer.js';
import { createRng } from '../src/seeded-rng.js';
import { readTraces } from '../src/traces/jsonl-reader.js';
import { type TaskClassSource, taskClassOf } from '../src/traces/task-class.js';
import { promptText } from '../src/traces/trace-schema.js';
import { featuresOf, tryOpenStore } from './evaluate-bundle.js';
import { encoderIdentity } from './training-data.js';

/**
 * `mechroute train-classes`: adds a task-class head to an existing probe bundle, trained on the
 * bundle's own features (same layers, pooling and standardizer) of a trace file whose traces carry a
 * class (see src/traces/task-class.ts). λ is picked on a seeded 20 % held-out split, whose accuracy
 * (and the majority-class baseline) is stored with the head; the head is then refitted on every row.
 */
export interface TrainClassHeadOptions {
  probes: string;
  tracesFile: string;
  out: string;
  source: TaskClassSource;
  model?: string;
  storeDir?: string;
  seed?: number;
  lambdas?: readonly number[];
}

export interface TrainClassHeadResult {
  classes: Record<string, number>;
  lambda: number;
  heldOut: { n: number; accuracy: number; majority: number; byLambda: Record<string, number> };
  withoutClass: number;
}

export async function trainClassHead(options: TrainClassHeadOptions): Promise<TrainClassHeadResult> {
  const identity = encoderIdentity(options.model);
  const bundle = await loadProbeBundle(options.probes, identity);
  const { traces: all } = await readTraces(options.tracesFile);
  const labelled = all.flatMap((t) => {
    const c = taskClassOf(t, options.source);
    return c === undefined ? [] : [{ trace: t, label: c }];
  });
  if (labelled.length === 0) {
    throw new TrainingDataError(`no trace of ${options.tracesFile} has a class (source: ${options.source})`);
  }
  const store = await tryOpenStore(bundle, options.storeDir, options.tracesFile);
  let features: Awaited<ReturnType<typeof featuresOf>>;
  try {
    features = await featuresOf(
      bundle,
      labelled.map((l) => promptText(l.trace)),
      store,
      {
        probes: options.probes,
        tracesFile: options.tracesFile,
        ...(options.model ? { model: options.model } : {}),
      },
    );
  } finally {
    await store?.close();
  }
  const dim = bundle.features.layers.length * bundle.encoder.embedding_width;
  const z = applyStandardizer(bundle.standardizer, createMatrix(features.data, labelled.length, dim));
  const labels = labelled.map((l) => l.label);
  const order = createRng(options.seed ?? 7).shuffle(labels.map((_, i) => i));
  const cut = Math.floor(order.length * 0.2);
  const test = order.slice(0, cut);
  const train = order.slice(cut);
  const accuracy = (head: ClassHeadModel) =>
    test.filter((i) => topClass(head, z.data, i * dim).name === labels[i]).length / Math.max(1, test.length);
  const byLambda: Record<string, number> = {};
  let best = { lambda: Number.NaN, accuracy: -1 };
  for (const lambda of options.lambdas ?? [1e-4, 1e-3, 1e-2, 1e-1]) {
    const acc = accuracy(fitClassHead(z, labels, { lambda, rows: train }));
    byLambda[String(lambda)] = acc;
    if (acc > best.accuracy) best = { lambda, accuracy: acc };
  }
  const counts: Record<string, number> = {};
  for (const l of labels) counts[l] = (counts[l] ?? 0) + 1;
  const trainCounts: Record<string, number> = {};
  for (const i of train) trainCounts[labels[i]!] = (trainCounts[labels[i]!] ?? 0) + 1;
  const majorityClass = Object.entries(trainCounts).sort((a, b) => b[1] - a[1])[0]![0];
  const majority = test.filter((i) => labels[i] === majorityClass).length / Math.max(1, test.length);
  const final = fitClassHead(z, labels, { lambda: best.lambda });
  const head: ClassHead = {
    source: options.source,
    names: final.names,
    heads: final.heads,
    lambda: final.lambda,
    metrics: {
      n: labels.length,
      held_out_n: test.length,
      held_out_accuracy: best.accuracy,
      majority_accuracy: majority,
    },
  };
  await saveProbeBundle(options.out, { ...bundle, classes: head });
  return {
    classes: counts,
    lambda: best.lambda,
    heldOut: { n: test.length, accuracy: best.accuracy, majority, byLambda },
    withoutClass: all.length - labelled.length,
  };
}
