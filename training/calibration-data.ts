import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { LabelledRows } from '../src/calibration/operating-points.js';
import type { EncoderHost } from '../src/encoder/encoder-host.js';
import { TrainingDataError } from '../src/errors.js';
import { createMatrix } from '../src/probes/matrix.js';
import { loadProbeBundle, type ProbeBundle } from '../src/probes/probe-bundle.js';
import { type ProbePrediction, predictProbesBatch } from '../src/probes/probe-predict.js';
import { readTraces } from '../src/traces/jsonl-reader.js';
import { promptText, successOf, type Trace } from '../src/traces/trace-schema.js';
import { featuresOf, tryOpenStore } from './evaluate-bundle.js';
import { type CostOptions, type CostTable, costTable, orderByCost } from './tier-costs.js';
import { encoderIdentity } from './training-data.js';

/**
 * The I/O half of `calibrate` and `drift`: a probe bundle's predictions on a labelled trace file, with
 * each row's outcome and cost under every tier that the file has outcomes for. Features come from the
 * activation store where cached and from the encoder otherwise (as `mechroute eval` does).
 */
export interface CalibrationDataOptions {
  probes: string;
  tracesFile: string;
  model?: string;
  storeDir?: string;
  encoder?: EncoderHost;
  costs?: CostOptions;
}

export interface CalibrationData {
  bundle: ProbeBundle;
  probesSha256: string;
  tracesSha256: string;
  traces: Trace[];
  predictions: ProbePrediction[];
  /** Cheapest first; the tiers of the bundle with an outcome on every scored trace. */
  rows: LabelledRows;
  /** Bundle tiers left out because some traces have no outcome for them. */
  excludedTiers: string[];
  costs: CostTable;
  /** Which tokenizer counted the tokens behind the costs. */
  tokenizer: string;
  lines: number;
  badLines: number;
  /** Traces without an outcome for some calibrated tier (not scored). */
  skipped: number;
}

export async function sha256File(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

export async function loadCalibrationData(options: CalibrationDataOptions): Promise<CalibrationData> {
  const identity = encoderIdentity(options.model);
  const bundle = await loadProbeBundle(options.probes, {
    encoderSha256: identity.sha256,
    encoderName: identity.name,
  });
  const { traces: all, errors, lines } = await readTraces(options.tracesFile);
  const bundleTiers = bundle.tiers.map((t) => t.id);
  const withAny = all.filter((t) => bundleTiers.some((id) => t.outcomes[id] !== undefined));
  // A tier counts when every trace that has any of the bundle's outcomes has its outcome too; a tier
  // labelled on a few traces only (e.g. a local tier labelled on one dataset) would otherwise drop rows.
  const tiers = bundleTiers.filter(
    (id) => withAny.length > 0 && withAny.every((t) => t.outcomes[id] !== undefined),
  );
  if (tiers.length === 0) {
    throw new TrainingDataError(
      `no tier of the bundle (${bundleTiers.join(', ')}) has an outcome on every trace of ${options.tracesFile}`,
    );
  }
  const excludedTiers = bundleTiers.filter((id) => !tiers.includes(id));
  const traces = withAny;
  const texts = traces.map((t) => promptText(t));
  const store = await tryOpenStore(bundle, options.storeDir, options.tracesFile);
  let features: Awaited<ReturnType<typeof featuresOf>>;
  try {
    features = await featuresOf(bundle, texts, store, {
      probes: options.probes,
      tracesFile: options.tracesFile,
      ...(options.model ? { model: options.model } : {}),
      ...(options.encoder ? { encoder: options.encoder } : {}),
    });
  } finally {
    await store?.close();
  }
  const dim = bundle.features.layers.length * bundle.encoder.embedding_width;
  const predictions = predictProbesBatch(bundle, createMatrix(features.data, traces.length, dim));
  const prices = Object.fromEntries(bundle.tiers.flatMap((t) => (t.price ? [[t.id, t.price]] : [])));
  const costs = costTable(traces, features.tokens, tiers, {
    ...options.costs,
    prices: { ...prices, ...options.costs?.prices },
  });
  const ordered = orderByCost(tiers, costs);
  const rows: LabelledRows = {
    tiers: ordered,
    p: ordered.map((id) => Float64Array.from(predictions, (p) => p.tiers[id]!)),
    correct: ordered.map((id) => traces.map((t) => successOf(t.outcomes[id]!))),
    cost: ordered.map((id) => costs.costs[id]!),
  };
  return {
    bundle,
    probesSha256: await sha256File(options.probes),
    tracesSha256: await sha256File(options.tracesFile),
    traces,
    predictions,
    rows,
    excludedTiers,
    costs,
    tokenizer: `${bundle.encoder.name} (the encoder's own tokenizer; prompt tokens only, output tokens assumed where traces give none)`,
    lines,
    badLines: errors.length,
    skipped: all.length - traces.length,
  };
}
