import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { PolicyMeta } from '../src/calibration/calibrated-policy.js';
import type { DriftRow } from '../src/calibration/drift.js';
import type { EncoderHost } from '../src/encoder/encoder-host.js';
import { TrainingDataError } from '../src/errors.js';
import type { LabelledRows } from '../src/metrics/operating-points.js';
import type { RouteTier } from '../src/policy/policy-schema.js';
import type { ProbeBundle } from '../src/probes/probe-bundle.js';
import type { ProbePrediction } from '../src/probes/probe-predict.js';
import { successOf, type Trace } from '../src/traces/trace-schema.js';
import { scoreBundleOnTraces } from './evaluate-bundle.js';
import { type CostOptions, type CostTable, costTable, orderByCost } from './tier-costs.js';

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
  /** Which of the bundle's heads gives P(success | tier) (default the probes). */
  signal?: 'probes' | 'hybrid';
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

function tokenizerText(bundle: ProbeBundle, costs: CostTable): string {
  const fromTraces = Object.values(costs.sources).some((s) => s.trace_tokens > 0 || s.trace_cost > 0);
  return (
    `${bundle.encoder.name}'s own tokenizer (prompt tokens; output tokens assumed where a trace gives none)` +
    (fromTraces ? "; the traces' own token counts or costs where they give them" : '')
  );
}

function bundlePrices(bundle: ProbeBundle, options: CalibrationDataOptions) {
  const prices = Object.fromEntries(bundle.tiers.flatMap((t) => (t.price ? [[t.id, t.price]] : [])));
  return { ...options.costs, prices: { ...prices, ...options.costs?.prices } };
}

export async function loadCalibrationData(options: CalibrationDataOptions): Promise<CalibrationData> {
  const scored = await scoreBundleOnTraces(options);
  const { bundle, traces, predictions } = scored;
  const bundleTiers = bundle.tiers.map((t) => t.id);
  // A tier counts when every scored trace has its outcome; a tier labelled on a few traces only (e.g. a
  // local tier labelled on one dataset) would otherwise drop most rows.
  const tiers = bundleTiers.filter((id) => traces.every((t) => t.outcomes[id] !== undefined));
  if (tiers.length === 0) {
    throw new TrainingDataError(
      `no tier of the bundle (${bundleTiers.join(', ')}) has an outcome on every trace of ${options.tracesFile}`,
    );
  }
  const costs = costTable(traces, scored.tokens, tiers, bundlePrices(bundle, options));
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
    excludedTiers: bundleTiers.filter((id) => !tiers.includes(id)),
    costs,
    tokenizer: tokenizerText(bundle, costs),
    lines: scored.lines,
    badLines: scored.badLines,
    skipped: scored.skipped,
  };
}

/**
 * What a calibrated policy records about the data it was calibrated on (traces, probes, bootstrap,
 * cost basis), in the policy file's price names.
 */
export function policyMetaOf(
  data: CalibrationData,
  files: { traces: string; probes: string },
  bootstrap: PolicyMeta['bootstrap'],
): PolicyMeta {
  return {
    date: new Date(),
    traces: { file: files.traces, sha256: data.tracesSha256, n: data.traces.length },
    probes: { file: files.probes, sha256: data.probesSha256 },
    bootstrap,
    costs: {
      tokenizer: data.tokenizer,
      output_tokens: data.costs.assumedOutputTokens,
      prices: Object.fromEntries(
        Object.entries(data.costs.prices).map(([id, p]) => [
          id,
          { input_per_mtok: p.input_usd_per_mtok, output_per_mtok: p.output_usd_per_mtok },
        ]),
      ),
    },
  };
}

export interface DriftData {
  rows: DriftRow[];
  /** Every tier of the bundle, priced as the costs were. */
  tiers: RouteTier[];
  tokenizer: string;
  lines: number;
  badLines: number;
  skipped: number;
}

/**
 * Recent traces for `drift`: predictions, the outcomes they have (any subset of tiers) and every tier's
 * cost, priced with `options.costs` (pass the calibration's prices and output tokens so that realized
 * and promised costs are counted alike).
 */
export async function loadDriftData(options: CalibrationDataOptions): Promise<DriftData> {
  const scored = await scoreBundleOnTraces(options);
  const { bundle, traces, predictions } = scored;
  const tiers = bundle.tiers.map((t) => t.id);
  const costs = costTable(traces, scored.tokens, tiers, bundlePrices(bundle, options));
  return {
    rows: traces.map((trace, i) => ({
      prediction: predictions[i]!,
      outcomes: Object.fromEntries(
        tiers.flatMap((id) =>
          trace.outcomes[id] === undefined ? [] : [[id, successOf(trace.outcomes[id]!)]],
        ),
      ),
      costs: Object.fromEntries(tiers.map((id) => [id, costs.costs[id]![i]!])),
    })),
    tiers: tiers.map((id) => ({
      id,
      price: {
        input_per_mtok: costs.prices[id]!.input_usd_per_mtok,
        output_per_mtok: costs.prices[id]!.output_usd_per_mtok,
      },
      available: true,
    })),
    tokenizer: tokenizerText(bundle, costs),
    lines: scored.lines,
    badLines: scored.badLines,
    skipped: scored.skipped,
  };
}
