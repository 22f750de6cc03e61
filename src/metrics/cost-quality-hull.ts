/**
 * The quality–cost frontier of a set of operating points, read the way RouterBench (Hu et al. 2024,
 * arXiv:2403.12031, its AIQ metric) and RouteLLM's CPT read theirs: any two operating points can be mixed
 * at random (send a share of the requests by one, the rest by the other), so everything on the straight
 * line between two points is reachable too; the frontier is therefore the upper convex hull of the points,
 * and quality at a given spend is read off it by linear interpolation. A figure read off the hull does not
 * jump when one prompt changes, which one read off the raw points would.
 *
 * Only the rising part is kept, cheapest vertex first: past the most accurate point, spending more never
 * has to buy less quality. Pure; no I/O.
 */
export interface CostQuality {
  /** Mean cost per request (USD). */
  cost: number;
  /** Share answered correctly. */
  quality: number;
}

/** Vertices of the rising part of the upper convex hull, cheapest first. Empty in, empty out. */
export function upperHull(points: readonly CostQuality[]): CostQuality[] {
  const sorted = points
    .filter((p) => Number.isFinite(p.cost) && Number.isFinite(p.quality))
    .sort((a, b) => a.cost - b.cost || b.quality - a.quality);
  const hull: CostQuality[] = [];
  for (const p of sorted) {
    if (hull.length > 0 && hull.at(-1)!.cost === p.cost) continue; // a better point at this cost is in
    // Pop while the last vertex lies on or below the chord from the one before it to p.
    while (hull.length >= 2) {
      const a = hull[hull.length - 2]!;
      const b = hull[hull.length - 1]!;
      const cross = (b.cost - a.cost) * (p.quality - a.quality) - (b.quality - a.quality) * (p.cost - a.cost);
      if (cross >= 0) hull.pop();
      else break;
    }
    hull.push({ cost: p.cost, quality: p.quality });
  }
  let top = 0;
  for (let k = 1; k < hull.length; k += 1) if (hull[k]!.quality > hull[top]!.quality) top = k;
  return hull.slice(0, top + 1);
}

/**
 * The best quality reachable at a mean cost of at most `cost`: interpolated between hull vertices, the
 * top quality past the last one, NaN below the cheapest (nothing spends that little).
 */
export function qualityAtCost(hull: readonly CostQuality[], cost: number): number {
  if (hull.length === 0 || cost < hull[0]!.cost) return Number.NaN;
  for (let k = 1; k < hull.length; k += 1) {
    const b = hull[k]!;
    if (cost === b.cost) return b.quality;
    if (cost < b.cost) {
      const a = hull[k - 1]!;
      return a.quality + ((cost - a.cost) / (b.cost - a.cost)) * (b.quality - a.quality);
    }
  }
  return hull.at(-1)!.quality;
}

/**
 * The least mean cost at which the hull reaches `quality`: the cheapest vertex's cost when it already
 * does, interpolated inside the first segment that crosses it, NaN when no point reaches it.
 */
export function costAtQuality(hull: readonly CostQuality[], quality: number): number {
  if (hull.length === 0 || quality > hull.at(-1)!.quality) return Number.NaN;
  if (quality <= hull[0]!.quality) return hull[0]!.cost;
  for (let k = 1; k < hull.length; k += 1) {
    const b = hull[k]!;
    if (b.quality === quality) return b.cost; // a vertex: exact, no rounding in the interpolation
    if (b.quality > quality) {
      const a = hull[k - 1]!;
      return a.cost + ((quality - a.quality) / (b.quality - a.quality)) * (b.cost - a.cost);
    }
  }
  return Number.NaN;
}

/**
 * Mean quality of the hull over the cost range [lo, hi] (the area under it divided by hi − lo; RouterBench's
 * AIQ normalisation): the hull is flat at its top quality past its last vertex and counts as 0 below its
 * first (nothing is reachable there). NaN when the range is empty.
 */
export function hullArea(hull: readonly CostQuality[], lo: number, hi: number): number {
  if (!(hi > lo) || hull.length === 0) return Number.NaN;
  // Vertices inside the range, its ends and the hull's start, then the trapezoid rule (exact: the hull is
  // piecewise linear between them); a segment left of the start counts 0.
  const start = hull[0]!.cost;
  const xs = [lo, ...hull.map((v) => v.cost).filter((c) => c > lo && c < hi), hi].sort((a, b) => a - b);
  let area = 0;
  for (let k = 1; k < xs.length; k += 1) {
    const [a, b] = [xs[k - 1]!, xs[k]!];
    if (b <= start) continue;
    area += ((qualityAtCost(hull, a) + qualityAtCost(hull, b)) / 2) * (b - a);
  }
  return area / (hi - lo);
}
