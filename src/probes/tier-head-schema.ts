import { z } from 'zod';
import { Sha256HexSchema } from '../hashes.js';

/**
 * The parts of a probe bundle that `mechroute tiers add` writes: the clusters of the bundle's features
 * (UniRoute's representation of a prompt) and the two tier heads that are not a linear probe — a
 * per-cluster success rate and a constant. Kept apart from probe-bundle.ts so that file stays about the
 * bundle as a whole; it re-exports them.
 */
/** A tier's price as a bundle records it (the file format's own field names). */
export const BundlePriceSchema = z.object({
  input_usd_per_mtok: z.number().nonnegative(),
  output_usd_per_mtok: z.number().nonnegative(),
});

const probability = z.number().min(0).max(1);

/**
 * k-means clusters of the bundle's standardised feature vectors over a pool of prompts (its training
 * pool). A prompt's soft assignment is softmax(−(‖z − cₖ‖² − minⱼ ‖z − cⱼ‖²) / temperature) over the
 * clusters k, z the standardised feature vector (src/probes/kmeans.ts).
 */
export const ClustersSchema = z.object({
  /** One per cluster, each as long as the feature vector, in standardised units. */
  centroids: z.array(z.array(z.number())).min(2),
  temperature: z.number().positive(),
  /** Pool rows per cluster (hard assignment), in centroid order. */
  sizes: z.array(z.number().int().nonnegative()),
  seed: z.number().int(),
  /** sha256 of the trace file the clusters were fitted on, and its rows with activations. */
  pool_sha256: Sha256HexSchema,
  pool_rows: z.number().int().positive(),
});

/** How an added tier's head was chosen: the method, its setting and the anchors' CV figures per candidate. */
export const TierFitSchema = z.object({
  method: z.enum(['constant', 'consensus', 'cluster', 'low-rank', 'logistic']),
  /** The candidate's setting: shrinkage strength (cluster) or λ (consensus, low-rank, logistic); absent for constant. */
  setting: z.number().nonnegative().optional(),
  anchors: z.number().int().positive(),
  anchor_success_rate: probability,
  criterion: z.literal('log-loss'),
  /** Out-of-fold mean log loss (and AUROC, null when undefined) of every candidate, by its name. */
  cv: z.record(z.string(), z.object({ log_loss: z.number(), auroc: z.number().nullable() })),
  reason: z.string(),
  /** Anchors' trace file (sha256) and when the head was fitted. */
  anchors_sha256: Sha256HexSchema,
  fitted_at: z.iso.datetime({ offset: true }),
});

/** Fields every tier head has besides its probe: id-independent pricing and, for added tiers, the fit. */
export const TierHeadExtras = {
  price: BundlePriceSchema.optional(),
  /**
   * Mean cost of one call of this tier over the training traces (USD): the price a router knows before
   * calling when calls cost what the traces say (their `cost`, else prices × tokens).
   */
  mean_cost_usd: z.number().nonnegative().optional(),
  fit: TierFitSchema.optional(),
};

/**
 * P(success | x) = Σₖ aₖ(x)·rates[k], aₖ(x) the soft assignment to the bundle's `clusters`. Each rate is
 * the tier's soft-counted success rate on the anchors of cluster k shrunk toward its overall rate:
 * (Sₖ + m·p̄) / (Nₖ + m), m = `prior_strength`.
 */
export const ClusterTierFields = {
  kind: z.literal('cluster'),
  rates: z.array(probability).min(2),
  base_rate: probability,
  prior_strength: z.number().nonnegative(),
};

/** The same P(success) for every prompt: the floor of an added tier, when its features carry no signal. */
export const ConstantTierFields = {
  kind: z.literal('constant'),
  p: probability,
};

export type Clusters = z.infer<typeof ClustersSchema>;
export type TierFit = z.infer<typeof TierFitSchema>;
export type BundlePrice = z.infer<typeof BundlePriceSchema>;
