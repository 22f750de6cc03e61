import { InvalidProbeInputError } from '../errors.js';
import type { Rng } from '../seeded-rng.js';
import type { FeatureMatrix, FloatArray } from './matrix.js';

/**
 * k-means over feature rows, the cluster representation of UniRoute (Jitkrittum et al., 2025): a prompt
 * is described by how close it is to each cluster, and a tier by its success rate per cluster.
 *
 * Seeding is k-means++ (Arthur & Vassilvitskii, 2007: each next centre drawn with probability ∝ D², the
 * squared distance to the nearest centre so far), then Lloyd iterations until no row changes cluster.
 * Every draw comes from the seeded `Rng`, so the same rows and seed give the same clusters. Our own
 * rather than a package: ml-kmeans draws from Math.random unless given a seed of its own, copies the
 * matrix into arrays of arrays (a 2,000 × 1,280 float32 matrix becomes 2.5 M boxed numbers), and has no
 * soft assignment, which is most of what is needed here; Lloyd is twenty lines.
 */
export interface KMeansResult {
  /** One per cluster, each `cols` long. */
  centroids: Float64Array[];
  /** Per row of the input (or of `rows`), its nearest centroid. */
  assignment: Int32Array;
  sizes: number[];
  iterations: number;
}

export interface KMeansOptions {
  /** Default 100. */
  maxIterations?: number;
}

function squaredDistance(data: FloatArray, offset: number, centroid: Float64Array): number {
  let sum = 0;
  for (let j = 0; j < centroid.length; j += 1) {
    const d = data[offset + j]! - centroid[j]!;
    sum += d * d;
  }
  return sum;
}

/** Squared distance of row `offset` of `data` to every centroid. */
export function squaredDistances(
  centroids: readonly Float64Array[],
  data: FloatArray,
  offset = 0,
  out = new Float64Array(centroids.length),
): Float64Array {
  for (const [k, c] of centroids.entries()) out[k] = squaredDistance(data, offset, c);
  return out;
}

function nearest(distances: Float64Array): number {
  let best = 0;
  for (let k = 1; k < distances.length; k += 1) if (distances[k]! < distances[best]!) best = k;
  return best;
}

export function kMeans(x: FeatureMatrix, k: number, rng: Rng, options: KMeansOptions = {}): KMeansResult {
  const { rows: n, cols: d, data } = x;
  if (!Number.isInteger(k) || k < 2) throw new InvalidProbeInputError(`k-means needs k ≥ 2, got ${k}`);
  if (n < k) throw new InvalidProbeInputError(`k-means: ${n} rows are too few for ${k} clusters`);
  const row = (i: number) => Float64Array.from(data.subarray(i * d, (i + 1) * d));
  const centroids: Float64Array[] = [row(rng.int(n))];
  const closest = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
  while (centroids.length < k) {
    const last = centroids[centroids.length - 1]!;
    let total = 0;
    for (let i = 0; i < n; i += 1) {
      closest[i] = Math.min(closest[i]!, squaredDistance(data, i * d, last));
      total += closest[i]!;
    }
    // All remaining rows coincide with a centre: any row will do (duplicates make empty clusters below).
    let pick = rng.int(n);
    if (total > 0) {
      let target = rng.next() * total;
      for (let i = 0; i < n; i += 1) {
        target -= closest[i]!;
        if (target < 0) {
          pick = i;
          break;
        }
      }
    }
    centroids.push(row(pick));
  }
  const assignment = new Int32Array(n).fill(-1);
  const distances = new Float64Array(k);
  const maxIterations = options.maxIterations ?? 100;
  let iterations = 0;
  for (; iterations < maxIterations; iterations += 1) {
    let changed = 0;
    for (let i = 0; i < n; i += 1) {
      const c = nearest(squaredDistances(centroids, data, i * d, distances));
      if (c !== assignment[i]) changed += 1;
      assignment[i] = c;
    }
    if (changed === 0) break;
    for (const c of centroids) c.fill(0);
    const counts = new Array<number>(k).fill(0);
    for (let i = 0; i < n; i += 1) {
      const c = centroids[assignment[i]!]!;
      counts[assignment[i]!]! += 1;
      for (let j = 0; j < d; j += 1) c[j]! += data[i * d + j]!;
    }
    for (const [c, centroid] of centroids.entries()) {
      if (counts[c]! > 0) for (let j = 0; j < d; j += 1) centroid[j]! /= counts[c]!;
      // An empty cluster restarts at the row farthest from its own centre (deterministic, no draw).
      else centroid.set(row(farthestRow(x, centroids, assignment)));
    }
  }
  const sizes = new Array<number>(k).fill(0);
  for (const c of assignment) sizes[c]! += 1;
  return { centroids, assignment, sizes, iterations };
}

function farthestRow(x: FeatureMatrix, centroids: readonly Float64Array[], assignment: Int32Array): number {
  let best = 0;
  let bestDistance = -1;
  for (let i = 0; i < x.rows; i += 1) {
    const dist = squaredDistance(x.data, i * x.cols, centroids[assignment[i]!]!);
    if (dist > bestDistance) [best, bestDistance] = [i, dist];
  }
  return best;
}

/**
 * The temperature of the soft assignment: a quarter of the median over rows of the gap between the
 * squared distances to the second-nearest and the nearest centroid. A typical row then gives its second
 * cluster e⁻⁴ ≈ 2 % of the weight of its first — rows near a boundary share their weight, the rest
 * belong to one cluster. (In 1,000+ dimensions raw squared distances differ by a few per cent, so a
 * temperature on their own scale would make every assignment near uniform; at the median gap itself,
 * e⁻¹, a row of K well-separated clusters would still give most of its weight to the others.)
 */
export function clusterTemperature(x: FeatureMatrix, centroids: readonly Float64Array[]): number {
  const gaps: number[] = [];
  let meanNearest = 0;
  const distances = new Float64Array(centroids.length);
  for (let i = 0; i < x.rows; i += 1) {
    const sorted = [...squaredDistances(centroids, x.data, i * x.cols, distances)].sort((a, b) => a - b);
    gaps.push(sorted[1]! - sorted[0]!);
    meanNearest += sorted[0]! / x.rows;
  }
  gaps.sort((a, b) => a - b);
  const median = gaps[Math.floor(gaps.length / 2)]!;
  return Math.max(median / 4, 1e-6 * meanNearest, 1e-12);
}

/** Soft assignment of one row (its squared distances to the centroids) at a temperature; sums to 1. */
export function softAssignmentOf(distances: ArrayLike<number>, temperature: number): Float64Array {
  let min = Number.POSITIVE_INFINITY;
  for (let k = 0; k < distances.length; k += 1) min = Math.min(min, distances[k]!);
  const out = new Float64Array(distances.length);
  let total = 0;
  for (let k = 0; k < distances.length; k += 1) {
    out[k] = Math.exp(-(distances[k]! - min) / temperature);
    total += out[k]!;
  }
  for (let k = 0; k < out.length; k += 1) out[k]! /= total;
  return out;
}

/** Soft assignments of every row (rows × k, row-major). */
export function softAssignments(
  x: FeatureMatrix,
  centroids: readonly Float64Array[],
  temperature: number,
): Float64Array[] {
  const distances = new Float64Array(centroids.length);
  return Array.from({ length: x.rows }, (_, i) =>
    softAssignmentOf(squaredDistances(centroids, x.data, i * x.cols, distances), temperature),
  );
}
