import { InvalidMetricInputError } from '../errors.js';
import { checkRows, type LabelledRows } from './operating-points.js';

/**
 * Every operating point of a routing policy over its one dial, on labelled rows with any number of tiers:
 *
 * - `utility` (src/policy/utility.ts): each row goes to argmaxₜ pₜ − λ·priceₜ, ties to the cheaper tier;
 *   λ swept from ∞ (every row on the cheapest tier) down to 0 (every row on its most probable tier);
 * - `threshold` (src/policy/threshold.ts, one τ for every tier): each row goes to the cheapest tier with
 *   pₜ ≥ τ, else to the frontier (the dearest); τ swept from above every P (all frontier) down to 0.
 *
 * `price` is what the router knows before it calls (per tier, USD: the mean cost of a call); the cost a
 * point is charged is each row's own realised cost under the tier it went to. Both sweeps are exact: a
 * row's choice only changes at the λ (or τ) where two of its tiers swap places, so the sweep walks those
 * events in order instead of sampling a grid, and every distinct operating point appears once.
 * Pure; no I/O.
 */
export type SweptPolicy = 'utility' | 'threshold';

export interface SweepPoint {
  policy: SweptPolicy;
  /**
   * A value of the dial that gives exactly this point: a λ strictly inside the interval the point holds
   * on (utility), or the largest τ that gives it (threshold).
   */
  dial: number;
  /** Share of rows answered correctly by the tier they went to. */
  quality: number;
  /** Mean realised cost per row (USD). */
  cost: number;
}

interface SwitchEvent {
  /** λ (utility) or τ (threshold) at which the row switches. */
  at: number;
  row: number;
  to: number;
}

/** Tier → price checks, shared by both sweeps. */
function checkPrices(rows: LabelledRows, price: readonly number[]): void {
  if (price.length !== rows.tiers.length) {
    throw new InvalidMetricInputError(
      'policy sweep',
      `${price.length} prices for ${rows.tiers.length} tiers`,
    );
  }
  for (const [t, c] of price.entries()) {
    if (!(Number.isFinite(c) && c >= 0))
      throw new InvalidMetricInputError('policy sweep', `price of ${rows.tiers[t]} is ${c}`);
  }
}

/**
 * One row's utility choices as λ falls: the upper envelope of the lines pₜ − λ·priceₜ, walked from the
 * cheapest tier (best p among equally cheap ones) towards dearer ones. From tier a the next is the dearer
 * b whose line overtakes a's first, at λ = (p_b − p_a)/(price_b − price_a); on a tie the dearest of them,
 * whose line rises fastest below that λ. At the λ itself the cheaper tier still wins (the policy's tie rule).
 */
function utilityEvents(
  p: readonly number[],
  price: readonly number[],
): { start: number; events: Omit<SwitchEvent, 'row'>[] } {
  let current = 0;
  for (let t = 1; t < p.length; t += 1) {
    if (price[t]! < price[current]! || (price[t] === price[current] && p[t]! > p[current]!)) current = t;
  }
  const start = current;
  const events: Omit<SwitchEvent, 'row'>[] = [];
  for (;;) {
    let next = -1;
    let at = 0;
    for (let b = 0; b < p.length; b += 1) {
      if (!(price[b]! > price[current]! && p[b]! > p[current]!)) continue;
      const lambda = (p[b]! - p[current]!) / (price[b]! - price[current]!);
      if (lambda > at || (lambda === at && next >= 0 && price[b]! > price[next]!)) {
        next = b;
        at = lambda;
      }
    }
    if (next < 0) return { start, events };
    events.push({ at, to: next });
    current = next;
  }
}

/**
 * One row's threshold choices as τ falls: the frontier (last tier) while τ is above every cheaper tier's
 * P; then the first tier reaching the highest of those P's; then the first cheaper tier reaching the
 * highest P below it, and so on down to the cheapest.
 */
function thresholdEvents(p: readonly number[]): { start: number; events: Omit<SwitchEvent, 'row'>[] } {
  const start = p.length - 1;
  const events: Omit<SwitchEvent, 'row'>[] = [];
  let bound = start;
  while (bound > 0) {
    let best = 0;
    for (let t = 1; t < bound; t += 1) if (p[t]! > p[best]!) best = t;
    events.push({ at: p[best]!, to: best });
    bound = best;
  }
  return { start, events };
}

/**
 * Walks the events from the highest dial value down, one point per distinct value (rows that switch at the
 * same value move together, as a policy cannot split them).
 */
function walk(
  rows: LabelledRows,
  subset: readonly number[],
  policy: SweptPolicy,
  perRow: (p: number[]) => { start: number; events: Omit<SwitchEvent, 'row'>[] },
): SweepPoint[] {
  const k = rows.tiers.length;
  const n = subset.length;
  if (n === 0) throw new InvalidMetricInputError('policy sweep', 'no rows');
  const choice = new Int32Array(n);
  const events: SwitchEvent[] = [];
  let correct = 0;
  let cost = 0;
  const p = new Array<number>(k);
  for (const [r, i] of subset.entries()) {
    for (let t = 0; t < k; t += 1) {
      const value = rows.p[t]![i]!;
      if (!Number.isFinite(value)) throw new InvalidMetricInputError('policy sweep', `row ${i}: P ${value}`);
      p[t] = value;
    }
    const { start, events: own } = perRow(p);
    choice[r] = start;
    if (rows.correct[start]![i]) correct += 1;
    cost += rows.cost[start]![i]!;
    for (const e of own) events.push({ ...e, row: r });
  }
  // Descending dial; a row's own events are already descending, and the stable sort keeps their order.
  events.sort((a, b) => b.at - a.at);
  const point = (dial: number): SweepPoint => ({ policy, dial, quality: correct / n, cost: cost / n });
  const values: number[] = [];
  const points: SweepPoint[] = [point(Number.NaN)];
  for (let e = 0; e < events.length; ) {
    const at = events[e]!.at;
    // Equal up to rounding (two pairs of tiers can swap at the same λ computed two ways): one point, so
    // that the dial values between points stay clear of every tie.
    for (; e < events.length && at - events[e]!.at <= 1e-9 * at; e += 1) {
      const { row, to } = events[e]!;
      const i = subset[row]!;
      const from = choice[row]!;
      correct += (rows.correct[to]![i] ? 1 : 0) - (rows.correct[from]![i] ? 1 : 0);
      cost += rows.cost[to]![i]! - rows.cost[from]![i]!;
      choice[row] = to;
    }
    values.push(at);
    points.push(point(Number.NaN));
  }
  // Dial values that reproduce each point (see SweepPoint.dial): point j holds between values[j] and
  // values[j − 1].
  for (const [j, pt] of points.entries()) {
    const above = values[j - 1];
    const below = values[j];
    if (policy === 'threshold') pt.dial = above ?? (below === undefined || below < 1 ? 1 : below + 1e-9);
    else if (above === undefined) pt.dial = below === undefined ? 0 : 2 * below;
    else pt.dial = below === undefined ? above / 2 : Math.sqrt(above * below);
  }
  return points;
}

/** The utility policy's operating points, λ from high (cheap) to low (dear). `subset` may repeat rows. */
export function sweepUtility(
  rows: LabelledRows,
  price: readonly number[],
  subset: readonly number[] = allRows(rows),
): SweepPoint[] {
  checkRows(rows);
  checkPrices(rows, price);
  return walk(rows, subset, 'utility', (p) => utilityEvents(p, price));
}

/** The one-threshold policy's operating points, τ from high (all frontier) to low (cheapest passing). */
export function sweepThreshold(rows: LabelledRows, subset: readonly number[] = allRows(rows)): SweepPoint[] {
  checkRows(rows);
  return walk(rows, subset, 'threshold', thresholdEvents);
}

export function allRows(rows: Pick<LabelledRows, 'correct'>): number[] {
  return Array.from({ length: rows.correct[0]?.length ?? 0 }, (_, i) => i);
}
