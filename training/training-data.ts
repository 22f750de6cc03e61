import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ActivationStore, activationStoreDir, promptHash } from '../src/activations/activation-store.js';
import { TrainingDataError } from '../src/errors.js';
import { DEFAULT_ENCODER_MODEL } from '../src/models/manifest.js';
import { createManifestRegistry } from '../src/models/manifest-registry.js';
import type { Pooling } from '../src/probes/layer-selection.js';
import { concatColumns, createMatrix, type FeatureMatrix } from '../src/probes/matrix.js';
import { type JsonlLineError, readTraces } from '../src/traces/jsonl-reader.js';
import { promptText, successOf, type Trace } from '../src/traces/trace-schema.js';
import { type CostOptions, type CostTable, costTable, orderByCost } from './tier-costs.js';

/**
 * The rows probe training sees: the traces whose prompts have activations in the store, their labels
 * per tier (cheapest tier first), their costs, their groups, and a cache of their feature matrices.
 * Nothing is dropped unreported: bad lines, traces without activations and traces without any of the
 * tiers' outcomes are all listed.
 */
export interface TrainingDataOptions {
  tracesFile: string;
  /** Encoder model name (its manifest gives the sha256 the store is keyed by); default the default encoder. */
  model?: string;
  /** Default `<mechroute home>/activations/<encoder sha256>/`. */
  storeDir?: string;
  /** Only these tiers (default every tier with an outcome). */
  tiers?: readonly string[];
  /** Trace field whole groups are held out by: `auto` (subject, else dataset), a field name, or `none`. */
  groupBy?: string;
  costs?: CostOptions;
  /**
   * The reference tier (default: the cheapest tier with an outcome on every row; else the tier with the
   * most outcomes, the cheaper on ties).
   */
  referenceTier?: string;
}

export interface FeatureSource {
  /** Layers with last-token vectors (blocks + final norm) and with mean-pooled ones. */
  readonly lastLayers: number;
  readonly meanLayers: number;
  readonly width: number;
  /** One layer's pooled vectors for every row (cached). */
  layer(layer: number, pooling: Pooling): FeatureMatrix;
  /** Several layers side by side, in the order given. */
  layers(layers: readonly number[], pooling: Pooling): FeatureMatrix;
}

export interface TrainingData {
  tracesFile: string;
  tracesSha256: string;
  encoder: { name: string; sha256: string; layers: number; embedding_width: number };
  /** The prompt tokens the store's encoder read at most (its truncation window). */
  maxPromptTokens: number;
  store: string;
  traces: Trace[];
  hashes: string[];
  /** Encoder tokens of each row's prompt (from the store). */
  promptTokens: number[];
  /** Cheapest first. */
  tiers: string[];
  /**
   * Index into `tiers` of the reference tier: the one layer selection, fold stratification, the difficulty
   * head (P(reference fails)) and the weak side of the routing metrics use. See `referenceTierIndex`.
   */
  reference: number;
  /** Per tier (in `tiers` order), per row: the outcome, or null where the trace has none for that tier. */
  labels: (boolean | null)[][];
  /** Per tier, per row, USD. */
  costs: number[][];
  costTable: CostTable;
  groupBy?: string;
  groups?: string[];
  lines: number;
  badLines: JsonlLineError[];
  /** Traces whose prompt has no activations in the store (not trained on). */
  missingActivations: { id: string }[];
  /** Traces with none of the tiers' outcomes (nothing to learn from). */
  withoutOutcomes: { id: string }[];
  features: FeatureSource;
  close(): Promise<void>;
}

/**
 * The default reference tier, given labels per tier cheapest first: the cheapest tier with an outcome on
 * every row, else the tier with the most outcomes (the cheaper on ties).
 */
export function referenceTierIndex(labels: readonly (readonly (boolean | null)[])[]): number {
  const counts = labels.map((l) => l.filter((v) => v !== null && v !== undefined).length);
  const full = labels.findIndex((l, t) => counts[t] === l.length);
  if (full >= 0) return full;
  let best = 0;
  for (let t = 1; t < counts.length; t += 1) if (counts[t]! > counts[best]!) best = t;
  return best;
}

/** Resolves `auto` to the field the traces carry; undefined when there is nothing to group by. */
function groupField(traces: readonly Trace[], groupBy: string | undefined): string | undefined {
  if (groupBy === 'none') return undefined;
  if (groupBy && groupBy !== 'auto') return groupBy;
  if (traces.some((t) => typeof t.subject === 'string')) return 'subject';
  if (traces.some((t) => typeof t.dataset === 'string')) return 'dataset';
  return undefined;
}

function groupOf(trace: Trace, field: string): string {
  const value = (trace as Record<string, unknown>)[field];
  return value === undefined || value === null ? '(none)' : String(value);
}

/** The encoder's identity from its manifest; the weights are not needed to read the store. */
export function encoderIdentity(model: string | undefined) {
  const manifest = createManifestRegistry().get(model ?? DEFAULT_ENCODER_MODEL);
  return {
    name: manifest.name,
    sha256: manifest.sha256,
    layers: manifest.layers,
    embedding_width: manifest.embedding_width,
  };
}

/** How to fill the store a command read: the same store, named when it is not the default. */
function extractHint(tracesFile: string, storeDir: string | undefined): string {
  return (
    `run \`mechroute extract --traces ${tracesFile}${storeDir === undefined ? '' : ` --store ${storeDir}`}\` ` +
    'first (train and bench routing do it for you with --extract)'
  );
}

export async function openStoreReadOnly(
  encoder: { name: string; sha256: string },
  storeDir: string | undefined,
  tracesFile: string,
): Promise<ActivationStore> {
  const dir = storeDir ?? activationStoreDir(encoder.sha256);
  try {
    return await ActivationStore.open({ encoder, dir, readOnly: true });
  } catch (error) {
    if ((error as { code?: string }).code === 'MR_ERR_FILE_UNREADABLE') {
      throw new TrainingDataError(
        `no activation store for encoder ${encoder.name} at ${dir}; ${extractHint(tracesFile, storeDir)}`,
      );
    }
    throw error;
  }
}

export function createFeatureSource(store: ActivationStore, hashes: readonly string[]): FeatureSource {
  const cache = new Map<string, FeatureMatrix>();
  const { width } = store.meta;
  const source: FeatureSource = {
    lastLayers: store.meta.layers,
    meanLayers: store.meta.mean_layers,
    width,
    layer(layer, pooling) {
      const key = `${pooling}:${layer}`;
      let matrix = cache.get(key);
      if (!matrix) {
        matrix = createMatrix(store.matrix(hashes, layer, pooling), hashes.length, width);
        cache.set(key, matrix);
      }
      return matrix;
    },
    layers(layers, pooling) {
      const parts = layers.map((l) => source.layer(l, pooling));
      return parts.length === 1 ? parts[0]! : concatColumns(parts);
    },
  };
  return source;
}

export async function loadTrainingData(options: TrainingDataOptions): Promise<TrainingData> {
  const bytes = await readFile(options.tracesFile).catch(() => undefined);
  const { traces: all, errors, lines } = await readTraces(options.tracesFile);
  const tracesSha256 = createHash('sha256')
    .update(bytes ?? '')
    .digest('hex');
  const encoder = encoderIdentity(options.model);
  const store = await openStoreReadOnly(encoder, options.storeDir, options.tracesFile);
  try {
    const seen = new Set<string>();
    for (const t of all) for (const tier of Object.keys(t.outcomes)) seen.add(tier);
    const wanted = options.tiers ? [...options.tiers] : [...seen];
    const unknown = wanted.filter((t) => !seen.has(t));
    if (unknown.length > 0) {
      throw new TrainingDataError(
        `no outcomes for tier ${unknown.join(', ')} in ${options.tracesFile} (it has ${[...seen].join(', ') || 'none'})`,
      );
    }
    if (wanted.length === 0) throw new TrainingDataError(`${options.tracesFile} has no tier outcomes`);

    const missingActivations: { id: string }[] = [];
    const withoutOutcomes: { id: string }[] = [];
    const traces: Trace[] = [];
    const hashes: string[] = [];
    for (const trace of all) {
      if (!wanted.some((tier) => trace.outcomes[tier] !== undefined)) {
        withoutOutcomes.push({ id: trace.id });
        continue;
      }
      const hash = promptHash(promptText(trace));
      if (!store.has(hash)) {
        missingActivations.push({ id: trace.id });
        continue;
      }
      traces.push(trace);
      hashes.push(hash);
    }
    if (traces.length === 0) {
      throw new TrainingDataError(
        `none of the ${all.length} traces in ${options.tracesFile} has activations in ${store.dir}; ` +
          extractHint(options.tracesFile, options.storeDir),
      );
    }
    const promptTokens = hashes.map((h) => store.get(h)!.tokens);
    const table = costTable(traces, promptTokens, wanted, options.costs);
    const tiers = orderByCost(wanted, table);
    const field = groupField(traces, options.groupBy);
    const labels = tiers.map((tier) =>
      traces.map((t) => (t.outcomes[tier] === undefined ? null : successOf(t.outcomes[tier]!))),
    );
    let reference: number;
    if (options.referenceTier !== undefined) {
      reference = tiers.indexOf(options.referenceTier);
      if (reference < 0) {
        throw new TrainingDataError(
          `--reference-tier ${options.referenceTier}: not one of the trained tiers (${tiers.join(', ')})`,
        );
      }
    } else reference = referenceTierIndex(labels);
    return {
      tracesFile: options.tracesFile,
      tracesSha256,
      // The store's shape, not the manifest's, is what the features were computed with.
      encoder: { ...encoder, layers: store.meta.layers - 1, embedding_width: store.meta.width },
      maxPromptTokens: store.meta.max_prompt_tokens,
      store: store.dir,
      traces,
      hashes,
      promptTokens,
      tiers,
      reference,
      labels,
      costs: tiers.map((tier) => table.costs[tier]!),
      costTable: table,
      ...(field ? { groupBy: field, groups: traces.map((t) => groupOf(t, field)) } : {}),
      lines,
      badLines: errors,
      missingActivations,
      withoutOutcomes,
      features: createFeatureSource(store, hashes),
      close: () => store.close(),
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}
