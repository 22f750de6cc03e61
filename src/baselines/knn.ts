/**
 * k-nearest-neighbours over unit-length embeddings: the usual "semantic router". P(tier succeeds) is the
 * share of successes among the k most cosine-similar training prompts that have that tier's outcome,
 * smoothed towards the tier's training success rate by `prior` pseudo-neighbours (so a query whose
 * neighbours all failed still gets a probability above 0, as an honest Brier score needs).
 */
export interface KnnIndex {
  /** Row-major, `dim` floats per training prompt, each row unit length. */
  vectors: Float32Array;
  dim: number;
  /** Per tier, per training row: the outcome, or null. */
  labels: readonly (readonly (boolean | null)[])[];
  k: number;
  /** Pseudo-neighbours at the base rate (default 1). */
  prior?: number;
}

function baseRate(labels: readonly (boolean | null)[]): number {
  let known = 0;
  let good = 0;
  for (const l of labels) {
    if (l === null || l === undefined) continue;
    known += 1;
    if (l) good += 1;
  }
  return (good + 0.5) / (known + 1);
}

const rateCache = new WeakMap<KnnIndex, number[]>();

/** P(success) per tier (in `labels` order) for one unit-length query. */
export function knnProbabilities(index: KnnIndex, query: ArrayLike<number>): number[] {
  const { vectors, dim, k } = index;
  const rows = vectors.length / dim;
  const sims = new Float64Array(rows);
  for (let r = 0; r < rows; r += 1) {
    let dot = 0;
    const base = r * dim;
    for (let d = 0; d < dim; d += 1) dot += vectors[base + d]! * query[d]!;
    sims[r] = dot;
  }
  // Indices by similarity, most similar first; ties by row for determinism.
  const order = Array.from({ length: rows }, (_, r) => r).sort((a, b) => sims[b]! - sims[a]! || a - b);
  let rates = rateCache.get(index);
  if (!rates) {
    rates = index.labels.map(baseRate);
    rateCache.set(index, rates);
  }
  const prior = index.prior ?? 1;
  return index.labels.map((labels, t) => {
    let seen = 0;
    let good = 0;
    for (const r of order) {
      const label = labels[r];
      if (label === null || label === undefined) continue;
      seen += 1;
      if (label) good += 1;
      if (seen === k) break;
    }
    return (good + prior * rates[t]!) / (seen + prior);
  });
}
