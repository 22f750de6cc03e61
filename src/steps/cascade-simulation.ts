import { percentileInterval } from '../calibration/bootstrap.js';
import { auroc } from '../metrics/classification.js';
import { createRng } from '../seeded-rng.js';
import {
  answerSteps,
  cheapAnswered,
  escalatedAfter,
  type PolicyPoint,
  type SimulationPrices,
  type SimulationTrace,
  strongCost,
  type TraceOutcome,
} from './step-simulation.js';

/**
 * The quality gate of issue 15, offline, on recorded traces, beside the routing it competes with. A
 * *gate* is one reading per request and one dial τ: the request escalates to the strong tier when the
 * reading is below τ — or is not a number, as the live gate does (src/policy/cascade.ts). Where it reads:
 * - `answer` (a cascade): the cheap tier answers in full, the gate reads the answer, and a failed answer
 *   is thrown away: the strong tier answers from scratch, so an escalation costs both answers;
 * - `prompt` (request-level routing): the gate reads the prompt alone, before the cheap tier writes, so
 *   an escalation costs the strong tier only.
 * Outcomes and costs are those of src/steps/step-simulation.ts (same traces, prices and helpers).
 *
 * Gates are compared at a *budget* (a cost share of the strong tier answering everything): each gate's
 * τ there is picked without looking at outcomes — the one that spends most within the budget — so the
 * accuracy compared is not tuned to the labels. Bootstrap resamples of the requests give intervals for
 * every figure, τ picked again on each resample. Pure: numbers in, numbers out.
 */
export type GateStage = 'prompt' | 'answer';

export interface Gate {
  name: string;
  stage: GateStage;
  /** One reading per trace, in the traces' order; a higher reading trusts the cheap tier more. */
  readings: readonly number[];
}

/** The step k at which a gate escalates: before the cheap tier writes, or after its whole answer. */
export function escalationStep(trace: SimulationTrace, stage: GateStage): number {
  return stage === 'prompt' ? 0 : answerSteps(trace);
}

/** A gate's outcome on one request at threshold τ. */
export function gateOutcome(
  trace: SimulationTrace,
  stage: GateStage,
  reading: number,
  tau: number,
  prices: SimulationPrices,
): TraceOutcome {
  return reading >= tau
    ? cheapAnswered(trace, prices)
    : escalatedAfter(trace, escalationStep(trace, stage), prices);
}

/**
 * Thresholds that sweep a gate from escalating nothing readable to escalating everything: the readings'
 * quantiles at 0, 1/(count−1), …, 1 (each escalates the readings below it), then +∞.
 */
export function gateDials(readings: readonly number[], count = 101): number[] {
  const sorted = readings.filter(Number.isFinite).sort((a, b) => a - b);
  const dials = new Set<number>();
  if (sorted.length > 0) {
    for (let j = 0; j < count; j += 1) {
      dials.add(sorted[Math.min(sorted.length - 1, Math.ceil((j / (count - 1)) * sorted.length))]!);
    }
  }
  dials.add(Number.POSITIVE_INFINITY);
  return [...dials].sort((a, b) => a - b);
}

/**
 * A gate's per-request outcomes laid out for fast sweeps: requests ordered by reading (unreadable
 * first), so the requests escalated at any τ are a prefix and a sweep is a prefix sum.
 */
interface GateTable {
  order: Int32Array;
  sortedReadings: Float64Array;
  keepCost: Float64Array;
  keepCorrect: Uint8Array;
  escalateCost: Float64Array;
  escalateCorrect: Uint8Array;
  escalateStep: Int32Array;
  strongCost: Float64Array;
}

function gateTable(traces: readonly SimulationTrace[], gate: Gate, prices: SimulationPrices): GateTable {
  if (gate.readings.length !== traces.length) {
    throw new RangeError(`gate "${gate.name}": ${gate.readings.length} readings for ${traces.length} traces`);
  }
  const n = traces.length;
  const key = (i: number) => orderable(gate.readings[i]!);
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => key(a) - key(b) || a - b);
  const table: GateTable = {
    order,
    sortedReadings: Float64Array.from(order, (i) => key(i)),
    keepCost: new Float64Array(n),
    keepCorrect: new Uint8Array(n),
    escalateCost: new Float64Array(n),
    escalateCorrect: new Uint8Array(n),
    escalateStep: new Int32Array(n),
    strongCost: new Float64Array(n),
  };
  traces.forEach((trace, i) => {
    const keep = cheapAnswered(trace, prices);
    const escalate = escalatedAfter(trace, escalationStep(trace, gate.stage), prices);
    table.keepCost[i] = keep.cost;
    table.keepCorrect[i] = keep.correct ? 1 : 0;
    table.escalateCost[i] = escalate.cost;
    table.escalateCorrect[i] = escalate.correct ? 1 : 0;
    table.escalateStep[i] = escalate.escalatedAt!;
    table.strongCost[i] = strongCost(trace, prices);
  });
  return table;
}

/** A reading as it orders requests: one that is not a number sits below every τ (it always escalates). */
function orderable(reading: number): number {
  return Number.isNaN(reading) ? Number.NEGATIVE_INFINITY : reading;
}

/** How many sorted readings are below τ (the escalated prefix). */
function escalatedCount(sorted: Float64Array, tau: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < tau) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The gate's policy point at every dial, each request counted `weights[i]` times (default once). */
function sweepTable(table: GateTable, dials: readonly number[], weights?: ArrayLike<number>): PolicyPoint[] {
  const n = table.order.length;
  const w = (i: number) => (weights ? weights[i]! : 1);
  let requests = 0;
  let keepCost = 0;
  let keepCorrect = 0;
  let strongTotal = 0;
  for (let i = 0; i < n; i += 1) {
    requests += w(i);
    keepCost += w(i) * table.keepCost[i]!;
    keepCorrect += w(i) * table.keepCorrect[i]!;
    strongTotal += w(i) * table.strongCost[i]!;
  }
  // Prefix sums over requests by reading: what escalating the first m changes.
  const cost = new Float64Array(n + 1);
  const correct = new Float64Array(n + 1);
  const escalated = new Float64Array(n + 1);
  const steps = new Float64Array(n + 1);
  for (let m = 0; m < n; m += 1) {
    const i = table.order[m]!;
    cost[m + 1] = cost[m]! + w(i) * (table.escalateCost[i]! - table.keepCost[i]!);
    correct[m + 1] = correct[m]! + w(i) * (table.escalateCorrect[i]! - table.keepCorrect[i]!);
    escalated[m + 1] = escalated[m]! + w(i);
    steps[m + 1] = steps[m]! + w(i) * table.escalateStep[i]!;
  }
  return dials.map((tau) => {
    const m = escalatedCount(table.sortedReadings, tau);
    const total = keepCost + cost[m]!;
    return {
      tau,
      accuracy: (keepCorrect + correct[m]!) / requests,
      cost_usd: total / requests,
      cost_share: strongTotal > 0 ? total / strongTotal : Number.NaN,
      escalation_rate: escalated[m]! / requests,
      mean_escalation_step: escalated[m]! > 0 ? steps[m]! / escalated[m]! : null,
    };
  });
}

/** A gate swept over its dials, each trace counted `weights[i]` times (default once: every trace). */
export function sweepGate(
  traces: readonly SimulationTrace[],
  gate: Gate,
  prices: SimulationPrices,
  dials: readonly number[] = gateDials(gate.readings),
  weights?: ArrayLike<number>,
): PolicyPoint[] {
  return sweepTable(gateTable(traces, gate, prices), dials, weights);
}

/**
 * The operating point a budget buys, chosen without outcomes: the highest cost share not above `share`
 * (the earliest such point on a tie). Null when every point costs more.
 */
export function pointWithin(points: readonly PolicyPoint[], share: number): PolicyPoint | null {
  let best: PolicyPoint | null = null;
  for (const p of points) {
    if (p.cost_share <= share + 1e-12 && (best === null || p.cost_share > best.cost_share)) best = p;
  }
  return best;
}

export interface CompareGatesOptions {
  /** Cost shares of the strong tier alone to compare at. */
  budgets: readonly number[];
  /** The gate every other is compared with, resample by resample (paired differences). */
  reference: string;
  resamples: number;
  seed: number;
  /** e.g. 0.95. */
  confidence: number;
  dialCount?: number;
}

export interface BudgetPoint {
  budget: number;
  /** The point picked on all traces; null when this gate cannot be run this cheaply. */
  point: PolicyPoint | null;
  /** Bootstrap interval of its accuracy (τ picked again on each resample). */
  accuracy_ci: [number, number] | null;
  /** Accuracy minus the reference gate's at the same budget, and its paired bootstrap interval. */
  vs_reference: { diff: number; ci: [number, number] } | null;
}

export interface GateReport {
  name: string;
  stage: GateStage;
  /** How well the reading ranks "the cheap tier's answer is right", with its bootstrap interval. */
  auroc: number;
  auroc_ci: [number, number];
  sweep: PolicyPoint[];
  at_budget: BudgetPoint[];
}

export interface GateComparison {
  n: number;
  reference: string;
  resamples: number;
  confidence: number;
  cheap_only: PolicyPoint;
  strong_only: PolicyPoint;
  gates: GateReport[];
}

/** Every gate swept, its AUROC, and its accuracy at each budget with bootstrap intervals. */
export function compareGates(
  traces: readonly SimulationTrace[],
  gates: readonly Gate[],
  prices: SimulationPrices,
  options: CompareGatesOptions,
): GateComparison {
  const reference = gates.findIndex((g) => g.name === options.reference);
  if (reference < 0) throw new RangeError(`no gate named "${options.reference}"`);
  const n = traces.length;
  const tables = gates.map((g) => gateTable(traces, g, prices));
  const dials = gates.map((g) => gateDials(g.readings, options.dialCount));
  const labels = traces.map((t) => t.cheap_correct);

  const accuracyAt = (points: PolicyPoint[]) =>
    options.budgets.map((b) => pointWithin(points, b)?.accuracy ?? null);
  const resampledAccuracy = gates.map(() => options.budgets.map(() => [] as number[]));
  const resampledDiff = gates.map(() => options.budgets.map(() => [] as number[]));
  const resampledAuroc = gates.map(() => [] as number[]);
  const rng = createRng(options.seed);
  const weights = new Float64Array(n);
  const drawn = new Int32Array(n);
  for (let b = 0; b < options.resamples; b += 1) {
    weights.fill(0);
    for (let d = 0; d < n; d += 1) {
      drawn[d] = rng.int(n);
      weights[drawn[d]!]! += 1;
    }
    const drawnLabels = Array.from(drawn, (i) => labels[i]!);
    const accuracy = tables.map((table, g) => accuracyAt(sweepTable(table, dials[g]!, weights)));
    gates.forEach((gate, g) => {
      const value = auroc(
        Array.from(drawn, (i) => orderable(gate.readings[i]!)),
        drawnLabels,
      );
      if (Number.isFinite(value)) resampledAuroc[g]!.push(value);
      options.budgets.forEach((_, k) => {
        const mine = accuracy[g]![k];
        const theirs = accuracy[reference]![k];
        if (mine === null || mine === undefined) return;
        resampledAccuracy[g]![k]!.push(mine);
        if (theirs !== null && theirs !== undefined) resampledDiff[g]![k]!.push(mine - theirs);
      });
    });
  }

  const interval = (values: number[]) =>
    values.length === 0 ? null : percentileInterval(Float64Array.from(values), options.confidence);
  const sweeps = tables.map((table, g) => sweepTable(table, dials[g]!));
  const referenceAt = accuracyAt(sweeps[reference]!);
  // A prompt-stage gate that escalates nothing is the cheap tier alone; one that escalates all, the strong.
  const single = gateTable(
    traces,
    { name: 'single tier', stage: 'prompt', readings: labels.map(() => 0) },
    prices,
  );
  const [cheapOnly, strongOnly] = sweepTable(single, [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY]);
  return {
    n,
    reference: options.reference,
    resamples: options.resamples,
    confidence: options.confidence,
    cheap_only: { ...cheapOnly!, tau: null },
    strong_only: { ...strongOnly!, tau: null },
    gates: gates.map((gate, g) => {
      const sweep = sweeps[g]!;
      return {
        name: gate.name,
        stage: gate.stage,
        auroc: auroc(gate.readings.map(orderable), labels),
        auroc_ci: interval(resampledAuroc[g]!) ?? [Number.NaN, Number.NaN],
        sweep,
        at_budget: options.budgets.map((budget, k) => {
          const point = pointWithin(sweep, budget);
          const theirs = referenceAt[k];
          return {
            budget,
            point,
            accuracy_ci: point ? interval(resampledAccuracy[g]![k]!) : null,
            vs_reference:
              point && theirs !== null && theirs !== undefined
                ? { diff: point.accuracy - theirs, ci: interval(resampledDiff[g]![k]!)! }
                : null,
          };
        }),
      };
    }),
  };
}
