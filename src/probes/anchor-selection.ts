import { InvalidProbeInputError } from '../errors.js';
import { squaredDistances } from './kmeans.js';
import type { FeatureMatrix } from './matrix.js';

/**
 * Which prompts of a pool to label for a new tier (`mechroute tiers anchors`): every cluster of the
 * bundle gets labels, in proportion to its share of the pool (at least one each while n allows), so the
 * per-cluster rates of a cluster head — and any head fitted on the anchors — see every region of the
 * feature space rather than the dense ones only. Within a cluster the first pick is the row nearest its
 * centroid (the most typical prompt), each next the row farthest from those already picked in it
 * (farthest-point sampling, Gonzalez 1985), which spreads the labels over the cluster instead of
 * piling them at its centre. No draw at all: the same pool and bundle give the same anchors.
 */
export interface AnchorSelection {
  /** Pool row indices, in the order picked (cluster by cluster, largest quota first). */
  rows: number[];
  /** Per row of `rows`, its cluster. */
  clusters: number[];
  /** Rows picked per cluster. */
  quotas: number[];
  /** Pool rows per cluster (nearest centroid). */
  poolSizes: number[];
}

/** Largest-remainder apportionment of n over sizes, with at least one per non-empty cluster if n allows. */
export function clusterQuotas(sizes: readonly number[], n: number): number[] {
  const total = sizes.reduce((s, v) => s + v, 0);
  const take = Math.min(n, total);
  const nonEmpty = sizes.filter((s) => s > 0).length;
  const quotas = sizes.map((s): number => (s > 0 && take >= nonEmpty ? 1 : 0));
  let left = take - quotas.reduce((s, v) => s + v, 0);
  // Shares of what is left, over the rows not yet taken; largest remainders get the rounding.
  const room = sizes.map((s, k) => s - quotas[k]!);
  const roomTotal = room.reduce((s, v) => s + v, 0);
  if (left > 0 && roomTotal > 0) {
    const exact = room.map((r) => (r * left) / roomTotal);
    const floors = exact.map((e, k) => Math.min(Math.floor(e), room[k]!));
    for (const [k, f] of floors.entries()) quotas[k]! += f;
    left -= floors.reduce((s, v) => s + v, 0);
    const order = exact
      .map((e, k) => ({ k, remainder: e - Math.floor(e) }))
      .sort((a, b) => b.remainder - a.remainder || a.k - b.k);
    while (left > 0) {
      let placed = false;
      for (const { k } of order) {
        if (left === 0) break;
        if (quotas[k]! < sizes[k]!) {
          quotas[k]! += 1;
          left -= 1;
          placed = true;
        }
      }
      if (!placed) break;
    }
  }
  return quotas;
}

/** `z`: the pool's standardised features; `centroids`: the bundle's clusters. */
export function selectAnchors(
  z: FeatureMatrix,
  centroids: readonly Float64Array[],
  n: number,
): AnchorSelection {
  if (!(Number.isInteger(n) && n >= 1)) throw new InvalidProbeInputError(`anchors: n must be ≥ 1, got ${n}`);
  const { rows, cols, data } = z;
  const k = centroids.length;
  const members: number[][] = Array.from({ length: k }, () => []);
  const toCentre = new Float64Array(rows);
  const distances = new Float64Array(k);
  for (let i = 0; i < rows; i += 1) {
    squaredDistances(centroids, data, i * cols, distances);
    let c = 0;
    for (let j = 1; j < k; j += 1) if (distances[j]! < distances[c]!) c = j;
    members[c]!.push(i);
    toCentre[i] = distances[c]!;
  }
  const poolSizes = members.map((m) => m.length);
  const quotas = clusterQuotas(poolSizes, n);
  const picked: number[] = [];
  const pickedClusters: number[] = [];
  const order = quotas.map((q, c) => ({ q, c })).sort((a, b) => b.q - a.q || a.c - b.c);
  for (const { q, c } of order) {
    const inCluster = members[c]!;
    if (q === 0) continue;
    // Distance of each member to the nearest row picked so far in this cluster.
    const gap = new Float64Array(inCluster.length).fill(Number.POSITIVE_INFINITY);
    let next = 0;
    for (let j = 1; j < inCluster.length; j += 1)
      if (toCentre[inCluster[j]!]! < toCentre[inCluster[next]!]!) next = j;
    for (let taken = 0; taken < q; taken += 1) {
      const row = inCluster[next]!;
      picked.push(row);
      pickedClusters.push(c);
      gap[next] = -1;
      let far = -1;
      for (let j = 0; j < inCluster.length; j += 1) {
        if (gap[j]! < 0) continue;
        const other = inCluster[j]!;
        let d = 0;
        for (let t = 0; t < cols; t += 1) {
          const diff = data[other * cols + t]! - data[row * cols + t]!;
          d += diff * diff;
        }
        gap[j] = Math.min(gap[j]!, d);
        if (far < 0 || gap[j]! > gap[far]!) far = j;
      }
      if (far < 0) break;
      next = far;
    }
  }
  return { rows: picked, clusters: pickedClusters, quotas, poolSizes };
}
