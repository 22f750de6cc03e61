/**
 * The running totals behind `/v1/stats`: a pure reducer. Each answered request and each outcome
 * reported for one becomes a list of counter deltas; totals are the sum of every delta ever applied.
 * The state store adds the same deltas to its rows in the transaction that records the request or the
 * outcome, so totals survive restarts and stay cumulative when old requests are pruned.
 */

/** One group's counters. Every field is a plain sum, so deltas add in any order. */
export interface Counters {
  /** Answered requests. */
  requests: number;
  /** Their cost. */
  cost_usd: number;
  /** Requests with at least one escalation. */
  escalated: number;
  /** Escalations (a request may escalate more than once). */
  escalations: number;
  /** Requests served by another tier than the one decided. */
  fallbacks: number;
  latency_ms_sum: number;
  /** Requests rated through `/v1/feedback`. */
  feedback: number;
  successes: number;
  /** Cost of the rated requests, so cost per success is over the same requests. */
  feedback_cost_usd: number;
}

export const COUNTER_FIELDS = [
  'requests',
  'cost_usd',
  'escalated',
  'escalations',
  'fallbacks',
  'latency_ms_sum',
  'feedback',
  'successes',
  'feedback_cost_usd',
] as const satisfies readonly (keyof Counters)[];

/**
 * What a group is keyed by: the tier that answered, the policy version that decided, the task class —
 * and, for `decision`, how a routing decision ended (`routed`, or the code it was refused with), with
 * the count in `requests`.
 */
export type CounterScope = 'tier' | 'policy' | 'class' | 'decision';
export const COUNTER_SCOPES = [
  'tier',
  'policy',
  'class',
  'decision',
] as const satisfies readonly CounterScope[];

export interface CounterDelta {
  scope: CounterScope;
  key: string;
  add: Partial<Counters>;
}

export type StatsTotals = Readonly<Record<CounterScope, Readonly<Record<string, Counters>>>>;

/** An answered request as the stats (and `/v1/feedback`) know it. */
export interface AnsweredRequest {
  request_id: string;
  /** The tier that answered. */
  tier: string;
  cost_usd: number;
  latency_ms: number;
  escalations: number;
  fallback: boolean;
  /** The policy version that decided, so outcomes can be held against that version's calibration. */
  policy_version?: string;
  /** The request's predicted task class, when the probes have a class head. */
  task_class?: string;
  /** Epoch ms. */
  answered_at: number;
}

export const emptyCounters = (): Counters => ({
  requests: 0,
  cost_usd: 0,
  escalated: 0,
  escalations: 0,
  fallbacks: 0,
  latency_ms_sum: 0,
  feedback: 0,
  successes: 0,
  feedback_cost_usd: 0,
});

export const emptyTotals = (): StatsTotals => ({ tier: {}, policy: {}, class: {}, decision: {} });

/** A routing decision and how it ended: `routed`, or the code of the error it was refused with. */
export function decisionDeltas(outcome: string): CounterDelta[] {
  return [{ scope: 'decision', key: outcome, add: { requests: 1 } }];
}

export function completionDeltas(request: AnsweredRequest): CounterDelta[] {
  return [
    {
      scope: 'tier',
      key: request.tier,
      add: {
        requests: 1,
        cost_usd: request.cost_usd,
        escalated: request.escalations > 0 ? 1 : 0,
        escalations: request.escalations,
        fallbacks: request.fallback ? 1 : 0,
        latency_ms_sum: request.latency_ms,
      },
    },
  ];
}

/** An outcome counts for the tier that answered, the policy version that decided and the task class. */
export function feedbackDeltas(request: AnsweredRequest, success: boolean): CounterDelta[] {
  const add = { feedback: 1, successes: success ? 1 : 0, feedback_cost_usd: request.cost_usd };
  return [
    { scope: 'tier', key: request.tier, add },
    ...(request.policy_version === undefined
      ? []
      : [{ scope: 'policy' as const, key: request.policy_version, add }]),
    ...(request.task_class === undefined ? [] : [{ scope: 'class' as const, key: request.task_class, add }]),
  ];
}

const plus = (a: Counters, b: Partial<Counters>): Counters => {
  const sum = { ...a };
  for (const field of COUNTER_FIELDS) sum[field] += b[field] ?? 0;
  return sum;
};

export function applyDeltas(totals: StatsTotals, deltas: readonly CounterDelta[]): StatsTotals {
  const next = {
    tier: { ...totals.tier },
    policy: { ...totals.policy },
    class: { ...totals.class },
    decision: { ...totals.decision },
  };
  for (const { scope, key, add } of deltas) next[scope][key] = plus(next[scope][key] ?? emptyCounters(), add);
  return next;
}

/** Outcomes reported back for one policy version or one task class. */
export interface OutcomeGroup {
  feedback: number;
  successes: number;
  /** Cost of the rated requests. */
  cost_usd: number;
  /** cost_usd / successes: the headline figure `mechroute calibrate` promises and `drift` checks. */
  cost_per_correct_usd: number | null;
  success_rate: number | null;
}

/** A tier's counters (what `/v1/stats` has always shown: no `escalated`) and the figures made of them. */
export interface TierStats extends Omit<Counters, 'escalated'> {
  cost_per_success_usd: number | null;
  success_rate: number | null;
  mean_latency_ms: number | null;
}

export interface StatsSnapshot {
  requests: number;
  escalation_rate: number;
  fallback_rate: number;
  tiers: Record<string, TierStats>;
  overall: { cost_usd: number; feedback: number; successes: number; cost_per_success_usd: number | null };
  /** Rated requests by the policy version that decided them. */
  policies: Record<string, OutcomeGroup>;
  /** Rated requests by predicted task class (only requests that had one). */
  task_classes: Record<string, OutcomeGroup>;
  /** Routing decisions by how they ended: `routed`, or the code a refused one got. */
  decisions: Record<string, number>;
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

/** Cost per success of a group: over the rated requests only, so unrated cost does not inflate it. */
export const costPerSuccess = (c: Pick<Counters, 'feedback_cost_usd' | 'successes'>): number | null =>
  ratio(c.feedback_cost_usd, c.successes);

const outcomeGroup = (c: Counters): OutcomeGroup => ({
  feedback: c.feedback,
  successes: c.successes,
  cost_usd: c.feedback_cost_usd,
  cost_per_correct_usd: costPerSuccess(c),
  success_rate: ratio(c.successes, c.feedback),
});

/** The sum of a scope's groups (every request has exactly one tier, so the tiers sum to the whole). */
export function sumCounters(groups: Readonly<Record<string, Counters>>): Counters {
  return Object.values(groups).reduce(plus, emptyCounters());
}

export function statsSnapshot(totals: StatsTotals): StatsSnapshot {
  const all = sumCounters(totals.tier);
  const tiers = Object.fromEntries(
    Object.entries(totals.tier).map(([tier, { escalated: _, ...c }]): [string, TierStats] => [
      tier,
      {
        ...c,
        cost_per_success_usd: costPerSuccess(c),
        success_rate: ratio(c.successes, c.feedback),
        mean_latency_ms: ratio(c.latency_ms_sum, c.requests),
      },
    ]),
  );
  const groups = (scope: CounterScope) =>
    Object.fromEntries(Object.entries(totals[scope]).map(([k, c]) => [k, outcomeGroup(c)]));
  return {
    requests: all.requests,
    escalation_rate: ratio(all.escalated, all.requests) ?? 0,
    fallback_rate: ratio(all.fallbacks, all.requests) ?? 0,
    tiers,
    overall: {
      cost_usd: all.cost_usd,
      feedback: all.feedback,
      successes: all.successes,
      cost_per_success_usd: costPerSuccess(all),
    },
    policies: groups('policy'),
    task_classes: groups('class'),
    decisions: Object.fromEntries(Object.entries(totals.decision).map(([k, c]) => [k, c.requests])),
  };
}
