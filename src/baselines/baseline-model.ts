import { z } from 'zod';
import { InvalidFileError } from '../errors.js';
import { Sha256HexSchema as sha256Hex } from '../hashes.js';
import { readJsonFile, writeFileAtomic } from '../json-file.js';
import { applyCalibration } from '../probes/calibration.js';
import { LinearTierSchema } from '../probes/probe-bundle.js';
import { standardizeVector } from '../probes/standardizer.js';
import { TfidfModelSchema } from '../text/tfidf.js';
import { TierIdSchema } from '../traces/trace-schema.js';
import { formatIssues } from '../zod-issues.js';
import { type KnnIndex, knnProbabilities } from './knn.js';

/**
 * A trained text-classifier router, saved like a probe bundle: what turns a prompt into features (TF-IDF,
 * a sentence embedding, or the encoder's own final-norm last-token vector) and the head that turns
 * features into P(success | tier) (per-tier calibrated logistic regression, or kNN).
 */
export const BASELINE_FORMAT = 'mechroute-baseline';
export const BASELINE_METHODS = ['tfidf-lr', 'sentence-lr', 'sentence-knn', 'encoder-last-lr'] as const;
export const BaselineMethodSchema = z.enum(BASELINE_METHODS);
export type BaselineMethod = z.infer<typeof BaselineMethodSchema>;

export const FeaturizerSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('tfidf'), tfidf: TfidfModelSchema }),
  z.object({
    kind: z.literal('sentence'),
    model: z.string().min(1),
    sha256: sha256Hex,
    dim: z.number().int(),
    /** Which end of a text longer than the model's context it reads (default `head`). */
    keep: z.enum(['head', 'tail']).optional(),
  }),
  z.object({
    kind: z.literal('encoder'),
    model: z.string().min(1),
    sha256: sha256Hex,
    /** Index into the store's last-token layers (the block count is the final norm's). */
    layer: z.number().int().nonnegative(),
    pooling: z.literal('last'),
    dim: z.number().int(),
  }),
]);
export type Featurizer = z.infer<typeof FeaturizerSchema>;

export const LinearHeadSchema = z.object({
  kind: z.literal('linear'),
  standardizer: z.object({ mean: z.array(z.number()), std: z.array(z.number().positive()) }),
  tiers: z.array(LinearTierSchema).min(1),
});
export type LinearHead = z.infer<typeof LinearHeadSchema>;

const HeadSchema = z.discriminatedUnion('kind', [
  LinearHeadSchema,
  z.object({
    kind: z.literal('knn'),
    k: z.number().int().positive(),
    prior: z.number().nonnegative(),
    /** Little-endian float32 rows, base64 (a JSON number per float would be 3× larger). */
    vectors: z.string(),
    /** Per tier (in `tiers` order), per training row. */
    labels: z.array(z.array(z.boolean().nullable())),
  }),
]);

export const BaselineModelSchema = z
  .object({
    format: z.literal(BASELINE_FORMAT),
    version: z.literal(1),
    method: BaselineMethodSchema,
    /** Cheapest first. */
    tiers: z.array(TierIdSchema).min(1),
    featurizer: FeaturizerSchema,
    head: HeadSchema,
    trained_on: z.object({ traces: z.string(), rows: z.number().int().nonnegative() }).optional(),
  })
  .superRefine((m, ctx) => {
    const dim = m.featurizer.kind === 'tfidf' ? m.featurizer.tfidf.terms.length : m.featurizer.dim;
    if (m.head.kind === 'linear') {
      const { mean, std } = m.head.standardizer;
      if (mean.length !== dim || std.length !== dim) {
        ctx.addIssue({ code: 'custom', path: ['head', 'standardizer'], message: `expected ${dim} features` });
      }
      m.head.tiers.forEach((t, i) => {
        if (t.id !== m.tiers[i]) {
          ctx.addIssue({
            code: 'custom',
            path: ['head', 'tiers', i, 'id'],
            message: `expected ${m.tiers[i]}`,
          });
        }
        if (t.weights.length !== dim) {
          ctx.addIssue({ code: 'custom', path: ['head', 'tiers', i, 'weights'], message: `expected ${dim}` });
        }
      });
    } else {
      if (m.head.labels.length !== m.tiers.length) {
        ctx.addIssue({
          code: 'custom',
          path: ['head', 'labels'],
          message: `expected ${m.tiers.length} tiers`,
        });
      }
      const bytes = Buffer.from(m.head.vectors, 'base64').byteLength;
      const rows = m.head.labels[0]?.length ?? 0;
      if (bytes !== rows * dim * 4) {
        ctx.addIssue({
          code: 'custom',
          path: ['head', 'vectors'],
          message: `${bytes} bytes for ${rows} rows of ${dim} floats`,
        });
      }
    }
  });
export type BaselineModel = z.infer<typeof BaselineModelSchema>;

export function featureDim(featurizer: Featurizer): number {
  return featurizer.kind === 'tfidf' ? featurizer.tfidf.terms.length : featurizer.dim;
}

export function encodeVectors(vectors: Float32Array): string {
  return Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength).toString('base64');
}

function decodeVectors(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  const out = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i += 1) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

/** Standardise, one logistic probe per tier, calibrate: the probes' linear head on any features. */
export function predictLinearHead(head: LinearHead, features: ArrayLike<number>): Record<string, number> {
  const x = standardizeVector(head.standardizer, features);
  return Object.fromEntries(
    head.tiers.map((t) => {
      let z = t.bias;
      for (let j = 0; j < x.length; j += 1) z += t.weights[j]! * x[j]!;
      return [t.id, applyCalibration(t.calibration, z)];
    }),
  );
}

const knnCache = new WeakMap<BaselineModel, KnnIndex>();

/** P(success) per tier id from one feature vector: a pure function of the model. */
export function predictBaseline(model: BaselineModel, features: ArrayLike<number>): Record<string, number> {
  const { head } = model;
  if (head.kind === 'linear') return predictLinearHead(head, features);
  let index = knnCache.get(model);
  if (!index) {
    index = {
      vectors: decodeVectors(head.vectors),
      dim: featureDim(model.featurizer),
      labels: head.labels,
      k: head.k,
      prior: head.prior,
    };
    knnCache.set(model, index);
  }
  const probs = knnProbabilities(index, features);
  return Object.fromEntries(model.tiers.map((id, t) => [id, probs[t]!]));
}

export function parseBaselineModel(value: unknown, file: string): BaselineModel {
  const parsed = BaselineModelSchema.safeParse(value);
  if (!parsed.success) throw new InvalidFileError('baseline model', file, formatIssues(parsed.error.issues));
  return parsed.data;
}

export async function loadBaselineModel(file: string): Promise<BaselineModel> {
  const value = await readJsonFile(file, 'baseline model');
  return parseBaselineModel(value, file);
}

/** Validated, then written atomically (temporary file, flush, rename), like a probe bundle. */
export async function saveBaselineModel(file: string, model: BaselineModel): Promise<void> {
  const checked = parseBaselineModel(model, `${file} (not written)`);
  await writeFileAtomic(file, `${JSON.stringify(checked)}\n`);
}
