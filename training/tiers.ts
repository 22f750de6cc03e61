import { TrainingDataError } from '../src/errors.js';
import { selectAnchors } from '../src/probes/anchor-selection.js';
import { clusterTemperature, kMeans } from '../src/probes/kmeans.js';
import { type FeatureMatrix, selectRows } from '../src/probes/matrix.js';
import { saveProbeBundle, type TierHead } from '../src/probes/probe-bundle.js';
import { addTierHead, withClusters } from '../src/probes/tier-edit.js';
import { clustersOf, fitTierHead, linearHeadsOf, type TierFitMethod } from '../src/probes/tier-fit.js';
import type { BundlePrice, Clusters } from '../src/probes/tier-head-schema.js';
import { createRng } from '../src/seeded-rng.js';
import { writeTraces } from '../src/traces/jsonl-reader.js';
import { successOf } from '../src/traces/trace-schema.js';
import { type BundleFeatureOptions, bundleFeatures, loadBundleFor } from './bundle-features.js';
import { costTable } from './tier-costs.js';

/**
 * The I/O of `mechroute tiers clusters|anchors|add` (pure parts in src/probes/): read the bundle and a
 * trace file, turn the prompts into the bundle's standardised features, run the pure step, write.
 */
export const MIN_ANCHORS = 25;

interface Common extends BundleFeatureOptions {
  bundle: string;
}

/** k-means of the pool's standardised features, as the bundle stores them (deterministic in `seed`). */
export function clustersFromPool(
  z: FeatureMatrix,
  k: number,
  seed: number,
  pool: { sha256: string },
): Clusters {
  const { centroids, sizes } = kMeans(z, k, createRng(seed));
  return {
    centroids: centroids.map((c) => Array.from(c)),
    temperature: clusterTemperature(z, centroids),
    sizes,
    seed,
    pool_sha256: pool.sha256,
    pool_rows: z.rows,
  };
}

export interface ClustersOptions extends Common {
  pool: string;
  k: number;
  seed?: number;
  out: string;
}

export interface ClustersReport {
  out: string;
  pool: string;
  rows: number;
  k: number;
  sizes: number[];
  temperature: number;
  seed: number;
  from_store: number;
  encoded: number;
}

/** `tiers clusters`: k-means of the bundle's features over a pool (its training traces), stored in it. */
export async function fitBundleClusters(options: ClustersOptions): Promise<ClustersReport> {
  const bundle = await loadBundleFor(options.bundle, options.model);
  const pool = await bundleFeatures(bundle, options.pool, 'every pool prompt is clustered', options);
  if (pool.z.rows < options.k) {
    throw new TrainingDataError(
      `${options.pool} has ${pool.z.rows} prompts, too few for ${options.k} clusters`,
    );
  }
  const seed = options.seed ?? 1;
  const clusters = clustersFromPool(pool.z, options.k, seed, pool);
  await saveProbeBundle(options.out, withClusters(bundle, clusters));
  return {
    out: options.out,
    pool: options.pool,
    rows: pool.z.rows,
    k: options.k,
    sizes: clusters.sizes,
    temperature: clusters.temperature,
    seed,
    from_store: pool.fromStore,
    encoded: pool.encoded,
  };
}

export interface AnchorsOptions extends Common {
  pool: string;
  n: number;
  out: string;
}

export interface AnchorsReport {
  out: string;
  pool: string;
  pool_rows: number;
  chosen: number;
  /** Anchors per cluster, and the pool's rows per cluster. */
  per_cluster: { cluster: number; anchors: number; pool: number }[];
  from_store: number;
  encoded: number;
}

/** `tiers anchors`: which prompts of a pool to label for a new tier (anchor-selection.ts), as traces. */
export async function chooseAnchors(options: AnchorsOptions): Promise<AnchorsReport> {
  const bundle = await loadBundleFor(options.bundle, options.model);
  const clusters = clustersOf(bundle);
  if (!clusters) {
    throw new TrainingDataError(
      `${options.bundle} has no clusters; run \`mechroute tiers clusters --bundle ${options.bundle} --pool <its training traces> --out …\` first`,
    );
  }
  const pool = await bundleFeatures(
    bundle,
    options.pool,
    'anchors are chosen among every pool prompt',
    options,
  );
  const picked = selectAnchors(pool.z, clusters.centroids, options.n);
  await writeTraces(
    options.out,
    picked.rows.map((i) => pool.traces[i]!),
  );
  return {
    out: options.out,
    pool: options.pool,
    pool_rows: pool.z.rows,
    chosen: picked.rows.length,
    per_cluster: picked.poolSizes.map((size, c) => ({ cluster: c, anchors: picked.quotas[c]!, pool: size })),
    from_store: pool.fromStore,
    encoded: pool.encoded,
  };
}

export interface AddOptions extends Common {
  tier: string;
  anchors: string;
  out: string;
  price?: BundlePrice;
  costFromTraces?: boolean;
  seed?: number;
}

export interface AddReport {
  out: string;
  tier: string;
  anchors: number;
  /** Anchor traces without an outcome for the tier (not used). */
  without_outcome: number;
  success_rate: number;
  method: TierFitMethod;
  setting: number | null;
  reason: string;
  cv: Record<string, { log_loss: number; auroc: number | null }>;
  price: BundlePrice | null;
  mean_cost_usd: number | null;
  notices: string[];
  from_store: number;
  encoded: number;
}

/** `tiers add`: a new tier's head fitted on its anchors, the rest of the bundle untouched. */
export async function addTier(options: AddOptions): Promise<AddReport> {
  const bundle = await loadBundleFor(options.bundle, options.model);
  const data = await bundleFeatures(bundle, options.anchors, 'a tier is fitted on all its anchors', options);
  const rows = data.traces.flatMap((t, i) => (t.outcomes[options.tier] === undefined ? [] : [i]));
  if (rows.length < MIN_ANCHORS) {
    throw new TrainingDataError(
      `${options.anchors} has ${rows.length} traces with an outcome for tier "${options.tier}"; at least ${MIN_ANCHORS} are needed`,
    );
  }
  const traces = rows.map((i) => data.traces[i]!);
  const labels = traces.map((t) => successOf(t.outcomes[options.tier]!));
  const fit = fitTierHead(
    {
      z: selectRows(data.z, rows),
      labels,
      heads: linearHeadsOf(bundle),
      ...(bundle.clusters ? { clusters: clustersOf(bundle) } : {}),
    },
    { rng: createRng(options.seed ?? 1) },
  );
  const cost = tierCost(
    options,
    traces,
    rows.map((i) => data.tokens[i]!),
  );
  const head: TierHead = {
    id: options.tier,
    ...fit.head,
    ...(options.price ? { price: options.price } : {}),
    ...(cost === undefined ? {} : { mean_cost_usd: cost }),
    fit: {
      method: fit.method,
      ...(fit.setting === undefined ? {} : { setting: fit.setting }),
      anchors: rows.length,
      anchor_success_rate: fit.anchorSuccessRate,
      criterion: 'log-loss',
      cv: fit.cv,
      reason: fit.reason,
      anchors_sha256: data.sha256,
      fitted_at: new Date().toISOString(),
    },
  };
  const edit = addTierHead(bundle, head);
  const notices = [...edit.notices];
  if (cost === undefined)
    notices.push(
      `no price for "${options.tier}": pass --price in/out or --cost-from-traces so policies can rank it`,
    );
  await saveProbeBundle(options.out, edit.bundle);
  return {
    out: options.out,
    tier: options.tier,
    anchors: rows.length,
    without_outcome: data.traces.length - rows.length,
    success_rate: fit.anchorSuccessRate,
    method: fit.method,
    setting: fit.setting ?? null,
    reason: fit.reason,
    cv: fit.cv,
    price: options.price ?? null,
    mean_cost_usd: cost ?? null,
    notices,
    from_store: data.fromStore,
    encoded: data.encoded,
  };
}

/** Mean USD per call over the anchors: their own `cost`, or the price × tokens (as `train` counts it). */
function tierCost(
  options: Pick<AddOptions, 'tier' | 'price' | 'costFromTraces' | 'anchors'>,
  traces: Parameters<typeof costTable>[0],
  tokens: readonly number[],
): number | undefined {
  const { tier } = options;
  if (options.costFromTraces) {
    const costs = traces.flatMap((t) => (t.cost?.[tier] === undefined ? [] : [t.cost[tier]!]));
    if (costs.length === 0)
      throw new TrainingDataError(
        `--cost-from-traces: no anchor in ${options.anchors} has a cost for "${tier}"`,
      );
    return costs.reduce((s, v) => s + v, 0) / costs.length;
  }
  if (!options.price) return undefined;
  const table = costTable(traces, tokens, [tier], { prices: { [tier]: options.price } });
  const costs = table.costs[tier]!;
  return costs.reduce((s, v) => s + v, 0) / costs.length;
}
