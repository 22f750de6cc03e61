import { z } from 'zod';
import { InvalidFileError, InvalidProbeInputError, ProbeEncoderMismatchError } from '../errors.js';
import { Sha256HexSchema as sha256Hex } from '../hashes.js';
import { readJsonFile, writeFileAtomic } from '../json-file.js';
import { TfidfModelSchema } from '../text/tfidf.js';
import { TierIdSchema } from '../traces/trace-schema.js';
import { formatIssues } from '../zod-issues.js';
import type { Calibration } from './calibration.js';
import type { LayerScore } from './layer-selection.js';
import type { LogisticModel } from './logistic-regression.js';
import type { MlpModel } from './mlp.js';
import { StepProbeInfoSchema } from './step-probe-info.js';
import {
  type BundlePrice,
  ClustersSchema,
  ClusterTierFields,
  ConstantTierFields,
  TierHeadExtras,
} from './tier-head-schema.js';

/**
 * The probe bundle: everything the router needs to turn an encoder's activations into P(success | tier)
 * and a difficulty score, in one JSON file, plus the metrics it was trained with. Keys are snake_case
 * like the rest of mechroute's files. Format version 1.
 *
 * Feature vector: for each layer in `features.layers`, in that order, the `features.pooling` of that
 * layer's residual stream (embedding_width values), concatenated. Layers count as the encoder host
 * does: 0 … encoder.layers − 1 are blocks, encoder.layers is the final norm. Every probe reads the
 * standardised vector z = (x − standardizer.mean) / standardizer.std, and every raw score is a logit
 * turned into a probability by its `calibration`.
 *
 * `difficulty` is always a number in [0, 1], higher = harder; `kind` says which:
 * - `tier-failure` (the trainer's default, with the cheapest tier): 1 − P(that tier succeeds),
 *   i.e. P(cheapest tier fails);
 * - `expected-failures`: the expected share of the bundle's tiers that fail, mean over tiers of 1 − pₜ
 *   (the expected number of failing tiers divided by the number of tiers);
 * - `linear`: a probe of its own for the event named in `target` (e.g. `all-tiers-fail`).
 */
export const PROBE_BUNDLE_FORMAT = 'mechroute-probes';
export const PROBE_BUNDLE_VERSION = 1;

/** A metric that may be undefined for a split (e.g. AUROC with one class): null, never NaN. */
const MetricValueSchema = z.number().nullable();

export const CalibrationSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }),
  z.object({ kind: z.literal('platt'), a: z.number(), b: z.number() }),
  z
    .object({
      kind: z.literal('isotonic'),
      x: z.array(z.number()).min(1),
      y: z.array(z.number().min(0).max(1)).min(1),
    })
    .superRefine((c, ctx) => {
      if (c.x.length !== c.y.length) {
        ctx.addIssue({
          code: 'custom',
          path: ['y'],
          message: `${c.y.length} values for ${c.x.length} knots`,
        });
      }
      for (let i = 1; i < c.x.length; i += 1) {
        if (!(c.x[i]! >= c.x[i - 1]!) || !(c.y[i]! >= c.y[i - 1]!)) {
          ctx.addIssue({
            code: 'custom',
            path: ['x', i],
            message: 'isotonic knots must be non-decreasing in x and y',
          });
          break;
        }
      }
    }),
]) satisfies z.ZodType<Calibration>;

const LinearProbeFields = {
  weights: z.array(z.number()),
  bias: z.number(),
  lambda: z.number().nonnegative(),
  calibration: CalibrationSchema,
};

export const LinearTierSchema = z.object({
  id: TierIdSchema,
  kind: z.literal('linear'),
  ...LinearProbeFields,
  ...TierHeadExtras,
});

/** A tier added from anchors by its success rate per cluster (tier-head-schema.ts). */
export const ClusterTierSchema = z.object({ id: TierIdSchema, ...ClusterTierFields, ...TierHeadExtras });
/** A tier whose P(success) is one number (tier-head-schema.ts). */
export const ConstantTierSchema = z.object({ id: TierIdSchema, ...ConstantTierFields, ...TierHeadExtras });

/**
 * A tier's head: a linear probe (what `train` fits; also `tiers add`'s low-rank and logistic heads), a
 * per-cluster rate or a constant (only `tiers add` writes those). Bundles older than the last two
 * hold linear heads only and still load.
 */
export const TierHeadSchema = z.discriminatedUnion('kind', [
  LinearTierSchema,
  ClusterTierSchema,
  ConstantTierSchema,
]);

export const MlpHeadSchema = z.object({
  /** Output order: the k-th logit is tiers[k]'s. */
  tiers: z.array(TierIdSchema).min(1),
  activation: z.enum(['relu', 'gelu']),
  hidden: z.number().int().positive(),
  w1: z.array(z.number()),
  b1: z.array(z.number()),
  w2: z.array(z.number()),
  b2: z.array(z.number()),
  /** One per output, in `tiers` order. */
  calibration: z.array(CalibrationSchema),
});

export const DifficultySchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('tier-failure'), tier: TierIdSchema }),
  z.object({ kind: z.literal('expected-failures') }),
  z.object({ kind: z.literal('linear'), target: z.string().min(1), ...LinearProbeFields }),
]);

/**
 * Optional task-class head (src/probes/class-head.ts): one-vs-rest logistic heads over the standardised
 * features, one per class in `names` order. `source` says where the training labels came from (a
 * trace's `class` field, its `dataset`, or the MMLU subject groups).
 */
export const ClassHeadSchema = z.object({
  source: z.string().min(1),
  names: z.array(z.string().min(1)).min(2),
  heads: z.array(z.object({ weights: z.array(z.number()), bias: z.number() })),
  lambda: z.number().nonnegative(),
  /** Held-out figures, e.g. accuracy and the majority-class baseline. */
  metrics: z.record(z.string(), z.number().nullable()).optional(),
});

/** Standardise, then a calibrated logistic probe per tier (the linear head of every stage below). */
export const LinearStageSchema = z.object({
  kind: z.literal('linear'),
  standardizer: z.object({ mean: z.array(z.number()), std: z.array(z.number().positive()) }),
  tiers: z.array(LinearTierSchema).min(1),
});

/**
 * Optional hybrid head (`policy.signal: hybrid`), a stack over two signals: `probes`, a linear stage over
 * the bundle's own feature vector, and `text`, a linear stage over the prompt's TF-IDF vector (`tfidf`);
 * `stacker` then reads the log-odds of both, [probes' P for every tier…, text's P for every tier…], and
 * gives the calibrated P(success) per tier. It reads the prompt's words, so it is named a hybrid.
 */
export const HybridHeadSchema = z.object({
  probes: LinearStageSchema,
  tfidf: TfidfModelSchema,
  text: LinearStageSchema,
  stacker: LinearStageSchema,
});

/** Per-tier classification metrics; further metrics may be added under any name. */
export const TierMetricsSchema = z
  .object({
    n: z.number().int().nonnegative().optional(),
    auroc: MetricValueSchema,
    brier: MetricValueSchema,
    ece: MetricValueSchema,
    accuracy: MetricValueSchema.optional(),
    log_loss: MetricValueSchema.optional(),
  })
  .catchall(MetricValueSchema);

/** RouteLLM-style routing metrics between the cheapest (weak) and dearest (strong) tier. */
export const RoutingMetricsSchema = z
  .object({
    weak_tier: TierIdSchema,
    strong_tier: TierIdSchema,
    apgr: MetricValueSchema,
    cpt50: MetricValueSchema,
    cpt80: MetricValueSchema,
    oracle_gap_closed: MetricValueSchema.optional(),
    cost_saving: MetricValueSchema.optional(),
  })
  .catchall(z.union([MetricValueSchema, z.string()]));

export const SplitMetricsSchema = z.object({
  /** How the split was made, e.g. "5-fold over whole subjects" or "held-out test, random". */
  description: z.string().optional(),
  n: z.number().int().nonnegative(),
  linear: z.record(TierIdSchema, TierMetricsSchema),
  mlp: z.record(TierIdSchema, TierMetricsSchema).optional(),
  /** Baselines scored on the same split (e.g. `subject-prior`, `tfidf`), per tier. */
  baselines: z.record(z.string(), z.record(TierIdSchema, TierMetricsSchema)).optional(),
  routing: RoutingMetricsSchema.optional(),
  difficulty: TierMetricsSchema.optional(),
});

export const LayerScoreJsonSchema = z.object({
  layer: z.number().int().nonnegative(),
  pooling: z.enum(['last', 'mean']),
  dim: z.number().int().positive(),
  fisher_j: MetricValueSchema,
  participation_ratio: MetricValueSchema,
  cv_auroc: MetricValueSchema,
  cv_auroc_std: MetricValueSchema,
  lambda: z.number().nonnegative(),
  /** One decision's encoder prefill with early exit after this layer (ms, median / 95th percentile). */
  latency_ms_p50: z.number().nonnegative().optional(),
  latency_ms_p95: z.number().nonnegative().optional(),
});

export const BundleMetricsSchema = z.object({
  /** By split name, e.g. `random-test`, `subject-test`, `random-cv`, `subject-cv`. */
  splits: z.record(z.string(), SplitMetricsSchema),
  /** The layer-selection table, best first, for the tier the layers were chosen on. */
  layers: z.array(LayerScoreJsonSchema).optional(),
  layer_selection_tier: TierIdSchema.optional(),
});

const ProbeBundleObjectSchema = z.object({
  format: z.literal(PROBE_BUNDLE_FORMAT),
  version: z.literal(PROBE_BUNDLE_VERSION),
  encoder: z.object({
    name: z.string().min(1),
    sha256: sha256Hex,
    /** Transformer blocks of the encoder (the manifest's `layers`). */
    layers: z.number().int().positive(),
    embedding_width: z.number().int().positive(),
  }),
  features: z.object({
    layers: z.array(z.number().int().nonnegative()).min(1),
    pooling: z.enum(['last', 'mean']),
    /**
     * The prompt tokens the encoder read when the probes were trained (a longer prompt keeps its BOS and
     * its last tokens); the encoder that serves them must read the same window. Absent in older bundles.
     */
    max_prompt_tokens: z.number().int().min(2).optional(),
  }),
  standardizer: z.object({ mean: z.array(z.number()), std: z.array(z.number().positive()) }),
  tiers: z.array(TierHeadSchema).min(1),
  /** k-means clusters of the standardised features (`mechroute tiers clusters`); cluster heads read them. */
  clusters: ClustersSchema.optional(),
  mlp: MlpHeadSchema.optional(),
  /** Which head answers for the tiers the MLP covers (default `linear`). */
  prefer: z.enum(['linear', 'mlp']).optional(),
  difficulty: DifficultySchema,
  classes: ClassHeadSchema.optional(),
  hybrid: HybridHeadSchema.optional(),
  metrics: BundleMetricsSchema,
  trained_at: z.iso.datetime({ offset: true }),
  traces_sha256: sha256Hex,
  notes: z.string().optional(),
  /** Only on a step-probe bundle: how steps are cut and joined to the prompt (see src/steps/). */
  steps: StepProbeInfoSchema.optional(),
});

type BundleShape = z.infer<typeof ProbeBundleObjectSchema>;

/**
 * Refuses an encoder that reads another window of the prompt than the bundle's probes were trained on
 * (their features would describe other text).
 */
export function checkPromptWindow(
  bundle: Pick<BundleShape, 'features'>,
  encoderMaxPromptTokens: number,
  file?: string,
): void {
  const trained = bundle.features.max_prompt_tokens;
  if (trained !== undefined && trained !== encoderMaxPromptTokens) {
    throw new InvalidProbeInputError(
      `the probe bundle${file ? ` ${file}` : ''} was trained on the last ${trained} tokens of each prompt, but ` +
        `the encoder reads up to ${encoderMaxPromptTokens}: set encoder.max_prompt_tokens to ${trained}`,
    );
  }
}

/** Feature dimension the bundle's probes expect: layers × embedding width. */
export function bundleFeatureDim(bundle: Pick<BundleShape, 'encoder' | 'features'>): number {
  return bundle.features.layers.length * bundle.encoder.embedding_width;
}

/** Tier ids the bundle predicts P(success) for: its tier heads and its MLP's outputs. */
export function probedTiers(bundle: Pick<BundleShape, 'tiers' | 'mlp'>): Set<string> {
  return new Set([...bundle.tiers.map((t) => t.id), ...(bundle.mlp?.tiers ?? [])]);
}

/** The checks that need several fields at once; each issue carries the path of the offending field. */
function checkConsistency(b: BundleShape, ctx: z.RefinementCtx): void {
  const dim = bundleFeatureDim(b);
  const dimText = `${dim} dimensions (${b.features.layers.length} layers × ${b.encoder.embedding_width})`;
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: 'custom', path, message });
  for (const [k, layer] of b.features.layers.entries()) {
    if (layer > b.encoder.layers) {
      issue(
        ['features', 'layers', k],
        `layer ${layer} does not exist: the encoder has layers 0..${b.encoder.layers} (the last is its final norm)`,
      );
    }
  }
  if (new Set(b.features.layers).size !== b.features.layers.length)
    issue(['features', 'layers'], 'layers repeat');
  for (const key of ['mean', 'std'] as const) {
    if (b.standardizer[key].length !== dim) {
      issue(
        ['standardizer', key],
        `has ${b.standardizer[key].length} values but the features have ${dimText}`,
      );
    }
  }
  const ids = new Set<string>();
  for (const [k, tier] of b.tiers.entries()) {
    if (ids.has(tier.id)) issue(['tiers', k, 'id'], `tier "${tier.id}" appears twice`);
    ids.add(tier.id);
    if (tier.kind === 'cluster') {
      const clusters = b.clusters?.centroids.length;
      if (clusters === undefined)
        issue(['tiers', k, 'kind'], `tier "${tier.id}" is a cluster head but the bundle has no clusters`);
      else if (tier.rates.length !== clusters)
        issue(
          ['tiers', k, 'rates'],
          `tier "${tier.id}" has ${tier.rates.length} rates for ${clusters} clusters`,
        );
    }
    if (tier.kind === 'linear' && tier.weights.length !== dim) {
      issue(
        ['tiers', k, 'weights'],
        `tier "${tier.id}" has ${tier.weights.length} weights but the features have ${dimText}`,
      );
    }
  }
  if (b.clusters) {
    const { centroids, sizes } = b.clusters;
    for (const [k, c] of centroids.entries()) {
      if (c.length !== dim)
        issue(['clusters', 'centroids', k], `has ${c.length} values but the features have ${dimText}`);
    }
    if (sizes.length !== centroids.length)
      issue(['clusters', 'sizes'], `${sizes.length} sizes for ${centroids.length} clusters`);
  }
  const { mlp } = b;
  if (mlp) {
    const t = mlp.tiers.length;
    const expected = { w1: mlp.hidden * dim, b1: mlp.hidden, w2: t * mlp.hidden, b2: t, calibration: t };
    for (const [key, size] of Object.entries(expected) as [keyof typeof expected, number][]) {
      if (mlp[key].length !== size) issue(['mlp', key], `has ${mlp[key].length} values, expected ${size}`);
    }
    if (new Set(mlp.tiers).size !== t) issue(['mlp', 'tiers'], 'tier ids repeat');
  } else if (b.prefer === 'mlp') {
    issue(['prefer'], 'is "mlp" but the bundle has no MLP head');
  }
  const { difficulty } = b;
  if (
    difficulty.kind === 'tier-failure' &&
    !ids.has(difficulty.tier) &&
    !mlp?.tiers.includes(difficulty.tier)
  ) {
    issue(['difficulty', 'tier'], `no probe for tier "${difficulty.tier}"`);
  }
  if (b.classes) {
    const { names, heads } = b.classes;
    if (new Set(names).size !== names.length) issue(['classes', 'names'], 'class names repeat');
    if (heads.length !== names.length)
      issue(['classes', 'heads'], `${heads.length} heads for ${names.length} classes`);
    for (const [k, head] of heads.entries()) {
      if (head.weights.length !== dim)
        issue(
          ['classes', 'heads', k, 'weights'],
          `has ${head.weights.length} weights but the features have ${dimText}`,
        );
    }
  }
  if (b.hybrid)
    checkHybrid(
      b.hybrid,
      b.tiers.map((t) => t.id),
      dim,
      issue,
    );
  if (difficulty.kind === 'linear' && difficulty.weights.length !== dim) {
    issue(
      ['difficulty', 'weights'],
      `has ${difficulty.weights.length} weights but the features have ${dimText}`,
    );
  }
}

/** Every stage covers the bundle's tiers in its order, with as many weights as its input has values. */
function checkHybrid(
  hybrid: z.infer<typeof HybridHeadSchema>,
  tierIds: readonly string[],
  dim: number,
  issue: (path: (string | number)[], message: string) => void,
): void {
  const inputs = { probes: dim, text: hybrid.tfidf.terms.length, stacker: 2 * tierIds.length } as const;
  for (const [name, width] of Object.entries(inputs) as [keyof typeof inputs, number][]) {
    const stage = hybrid[name];
    const ids = stage.tiers.map((t) => t.id);
    if (ids.join('\n') !== tierIds.join('\n'))
      issue(
        ['hybrid', name, 'tiers'],
        `tiers ${ids.join(', ')} are not the bundle's (${tierIds.join(', ')})`,
      );
    if (stage.standardizer.mean.length !== width || stage.standardizer.std.length !== width)
      issue(['hybrid', name, 'standardizer'], `expected ${width} values`);
    for (const [k, t] of stage.tiers.entries()) {
      if (t.weights.length !== width)
        issue(['hybrid', name, 'tiers', k, 'weights'], `has ${t.weights.length} weights, expected ${width}`);
    }
  }
}

export const ProbeBundleSchema = ProbeBundleObjectSchema.superRefine(checkConsistency);
export type ProbeBundle = z.infer<typeof ProbeBundleSchema>;
export type LinearTier = z.infer<typeof LinearTierSchema>;
export type TierHead = z.infer<typeof TierHeadSchema>;
export type ClusterTier = z.infer<typeof ClusterTierSchema>;
export type ConstantTier = z.infer<typeof ConstantTierSchema>;
export type MlpHead = z.infer<typeof MlpHeadSchema>;
export type Difficulty = z.infer<typeof DifficultySchema>;
export type ClassHead = z.infer<typeof ClassHeadSchema>;
export type HybridHead = z.infer<typeof HybridHeadSchema>;
export type TierMetrics = z.infer<typeof TierMetricsSchema>;
export type SplitMetrics = z.infer<typeof SplitMetricsSchema>;
export type BundleMetrics = z.infer<typeof BundleMetricsSchema>;

/** Validates an already-parsed JSON value; `file` names it in the error. No encoder check. */
export function parseProbeBundle(value: unknown, file: string): ProbeBundle {
  const parsed = ProbeBundleSchema.safeParse(value);
  if (!parsed.success) throw new InvalidFileError('probe bundle', file, formatIssues(parsed.error.issues));
  return parsed.data;
}

/**
 * The encoder that will produce the activations (a model manifest or an encoder's identity): a bundle
 * trained for another model (by sha256) is refused; the name is for the error message. With
 * `maxPromptTokens` (the window the encoder will read), a bundle trained on another window is refused too.
 */
export interface BundleEncoder {
  sha256: string;
  name?: string;
  maxPromptTokens?: number;
}

export async function loadProbeBundle(file: string, encoder: BundleEncoder): Promise<ProbeBundle> {
  const value = await readJsonFile(file, 'probe bundle');
  const bundle = parseProbeBundle(value, file);
  if (bundle.encoder.sha256 !== encoder.sha256.toLowerCase()) {
    throw new ProbeEncoderMismatchError(file, bundle.encoder, { name: encoder.name, sha256: encoder.sha256 });
  }
  if (encoder.maxPromptTokens !== undefined) checkPromptWindow(bundle, encoder.maxPromptTokens, file);
  return bundle;
}

/** NaN and ±Infinity become null (JSON has neither); only used on `metrics`, where null means "undefined". */
function nonFiniteToNull(value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (Array.isArray(value)) return value.map(nonFiniteToNull);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, nonFiniteToNull(v)]));
  }
  return value;
}

/** JSON.stringify with 2-space indentation, except that arrays of numbers stay on one line. */
function toJsonText(value: unknown, indent: string): string {
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'number')) return JSON.stringify(value);
    if (value.length === 0) return '[]';
    const inner = `${indent}  `;
    return `[\n${value.map((v) => inner + toJsonText(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const inner = `${indent}  `;
    const body = entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${toJsonText(v, inner)}`).join(',\n');
    return `{\n${body}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/**
 * Validates and writes a bundle atomically: to a temporary file beside it, flushed, then renamed over
 * the target, so a router reloading the file sees the old bundle or the new one, never half of one.
 * Number arrays are written one per line (weights would otherwise take a line per number).
 */
export async function saveProbeBundle(file: string, bundle: ProbeBundle): Promise<void> {
  const checked = parseProbeBundle(
    { ...bundle, metrics: nonFiniteToNull(bundle.metrics) },
    `${file} (not written)`,
  );
  const text = `${toJsonText(checked, '')}\n`;
  await writeFileAtomic(file, text);
}

/** A fitted logistic model and its calibration as a bundle tier. */
export function linearTier(
  id: string,
  model: LogisticModel,
  calibration: Calibration,
  price?: BundlePrice,
  meanCostUsd?: number,
): LinearTier {
  return {
    id,
    kind: 'linear',
    weights: Array.from(model.weights),
    bias: model.bias,
    lambda: model.lambda,
    calibration,
    ...(price ? { price } : {}),
    ...(meanCostUsd === undefined ? {} : { mean_cost_usd: meanCostUsd }),
  };
}

/** A trained MLP as the bundle's head; `tiers` in the model's output order. */
export function mlpHead(
  model: MlpModel,
  tiers: readonly string[],
  calibration: readonly Calibration[],
): MlpHead {
  const { activation, hidden, w1, b1, w2, b2 } = model;
  return { tiers: [...tiers], activation, hidden, w1, b1, w2, b2, calibration: [...calibration] };
}

/** The bundle's MLP head as a model `mlpLogits` can run. */
export function mlpModelOf(head: MlpHead, inputDim: number): MlpModel {
  const { activation, hidden, w1, b1, w2, b2 } = head;
  return { inputDim, hidden, outputs: head.tiers.length, activation, w1, b1, w2, b2 };
}

/** The layer-selection table in the bundle's snake_case (NaN → null), with each layer's latency if timed. */
export function layerTableJson(
  table: readonly LayerScore[],
  latency?: ReadonlyMap<number, { p50: number; p95: number }>,
): z.infer<typeof LayerScoreJsonSchema>[] {
  const metric = (v: number) => (Number.isFinite(v) ? v : null);
  return table.map((s) => ({
    ...(latency?.has(s.layer)
      ? { latency_ms_p50: latency.get(s.layer)!.p50, latency_ms_p95: latency.get(s.layer)!.p95 }
      : {}),
    layer: s.layer,
    pooling: s.pooling,
    dim: s.dim,
    fisher_j: metric(s.fisherJ),
    participation_ratio: metric(s.participationRatio),
    cv_auroc: metric(s.cvAuroc),
    cv_auroc_std: metric(s.cvAurocStd),
    lambda: s.lambda,
  }));
}
