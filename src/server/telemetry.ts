import { Counter, Gauge, Histogram, Registry } from 'prom-client';

interface TierStats {
  requests: number;
  cost_usd: number;
  escalations: number;
  fallbacks: number;
  latency_ms_sum: number;
  feedback: number;
  successes: number;
  /** Cost of the requests that got feedback, so cost per success is over the same requests. */
  feedback_cost_usd: number;
}

export interface CompletedRequest {
  requestId: string;
  tier: string;
  costUsd: number;
  latencyMs: number;
  escalations: number;
  fallback: boolean;
  /** The policy version that decided, so feedback can be held against that version's calibration. */
  policyVersion?: string;
  /** The request's predicted task class, when the probes have a class head. */
  taskClass?: string;
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

export interface StatsSnapshot {
  requests: number;
  escalation_rate: number;
  fallback_rate: number;
  tiers: Record<
    string,
    TierStats & {
      cost_per_success_usd: number | null;
      success_rate: number | null;
      mean_latency_ms: number | null;
    }
  >;
  overall: { cost_usd: number; feedback: number; successes: number; cost_per_success_usd: number | null };
  /** Rated requests by the policy version that decided them. */
  policies: Record<string, OutcomeGroup>;
  /** Rated requests by predicted task class (only requests that had one). */
  task_classes: Record<string, OutcomeGroup>;
}

type GroupTotals = Omit<OutcomeGroup, 'cost_per_correct_usd' | 'success_rate'>;

const groupOut = (g: GroupTotals): OutcomeGroup => ({
  ...g,
  cost_per_correct_usd: g.successes > 0 ? g.cost_usd / g.successes : null,
  success_rate: g.feedback > 0 ? g.successes / g.feedback : null,
});

const emptyStats = (): TierStats => ({
  requests: 0,
  cost_usd: 0,
  escalations: 0,
  fallbacks: 0,
  latency_ms_sum: 0,
  feedback: 0,
  successes: 0,
  feedback_cost_usd: 0,
});

/**
 * Prometheus metrics plus the running per-tier totals behind `/v1/stats` and cost per successful
 * outcome, which needs outcomes reported back through `/v1/feedback` and so the request's tier and
 * cost kept for a while (a bounded, oldest-first map).
 */
export class Telemetry {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'mechroute_requests_total',
    help: 'HTTP requests by route and status code',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly decisions = new Counter({
    name: 'mechroute_decisions_total',
    help: 'Routing decisions by chosen tier and policy version',
    labelNames: ['tier', 'policy_version'] as const,
    registers: [this.registry],
  });
  readonly escalations = new Counter({
    name: 'mechroute_escalations_total',
    help: 'Escalations to a higher tier (cascade quality gate or per-step routing)',
    labelNames: ['from', 'to'] as const,
    registers: [this.registry],
  });
  readonly fallbacks = new Counter({
    name: 'mechroute_fallbacks_total',
    help: 'Requests served by another tier than the one decided (failover or best available)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly cost = new Counter({
    name: 'mechroute_cost_usd_total',
    help: 'Cost of answered requests in USD, from token counts and the tier price',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });
  readonly encoderLatency = new Histogram({
    name: 'mechroute_encoder_latency_seconds',
    help: 'Encoder prefill + probe time per routing decision',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly requestLatency = new Histogram({
    name: 'mechroute_request_latency_seconds',
    help: 'End-to-end latency of answered chat completions by tier',
    labelNames: ['tier'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly feedback = new Counter({
    name: 'mechroute_feedback_total',
    help: 'Outcomes reported through /v1/feedback by tier and success',
    labelNames: ['tier', 'success'] as const,
    registers: [this.registry],
  });
  readonly costPerSuccess = new Gauge({
    name: 'mechroute_cost_per_success_usd',
    help: 'Cost per successful outcome over requests with feedback, by tier ("all" for overall)',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });
  readonly stepsWritten = new Counter({
    name: 'mechroute_steps_total',
    help: 'Steps written in live per-step mode, by the tier that wrote them',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });
  readonly stepSwitches = new Counter({
    name: 'mechroute_step_switches_total',
    help: 'Changes of writer in live per-step mode (probe below/above τ, or a failing tier)',
    labelNames: ['from', 'to', 'reason'] as const,
    registers: [this.registry],
  });
  readonly advisorCalls = new Counter({
    name: 'mechroute_advisor_calls_total',
    help: 'ask_advisor calls by outcome: answered, refused (budget spent), failed, invalid',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly advisorCost = new Counter({
    name: 'mechroute_advisor_cost_usd_total',
    help: 'Cost of answered ask_advisor calls in USD, by advisor tier',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });

  private readonly byTier = new Map<string, TierStats>();
  readonly costPerCorrect = new Gauge({
    name: 'mechroute_cost_per_correct_usd',
    help: 'Cost per correct outcome over rated requests, by the policy version that decided them',
    labelNames: ['policy_version'] as const,
    registers: [this.registry],
  });

  private readonly recent = new Map<
    string,
    { tier: string; costUsd: number; rated: boolean; policyVersion?: string; taskClass?: string }
  >();
  private readonly byPolicy = new Map<string, GroupTotals>();
  private readonly byClass = new Map<string, GroupTotals>();
  private total = 0;
  private totalEscalated = 0;
  private totalFallbacks = 0;

  constructor(private readonly recentLimit = 100_000) {}

  private stats(tier: string): TierStats {
    let s = this.byTier.get(tier);
    if (!s) {
      s = emptyStats();
      this.byTier.set(tier, s);
    }
    return s;
  }

  recordCompletion(done: CompletedRequest): void {
    const s = this.stats(done.tier);
    s.requests += 1;
    s.cost_usd += done.costUsd;
    s.escalations += done.escalations;
    s.fallbacks += done.fallback ? 1 : 0;
    s.latency_ms_sum += done.latencyMs;
    this.total += 1;
    this.totalEscalated += done.escalations > 0 ? 1 : 0;
    this.totalFallbacks += done.fallback ? 1 : 0;
    this.cost.inc({ tier: done.tier }, done.costUsd);
    this.requestLatency.observe({ tier: done.tier }, done.latencyMs / 1000);
    this.recent.set(done.requestId, {
      tier: done.tier,
      costUsd: done.costUsd,
      rated: false,
      ...(done.policyVersion === undefined ? {} : { policyVersion: done.policyVersion }),
      ...(done.taskClass === undefined ? {} : { taskClass: done.taskClass }),
    });
    if (this.recent.size > this.recentLimit) this.recent.delete(this.recent.keys().next().value!);
  }

  /** @returns false when the request is unknown (too old, or never answered) or already rated. */
  recordFeedback(requestId: string, success: boolean): 'recorded' | 'unknown' | 'duplicate' {
    const entry = this.recent.get(requestId);
    if (!entry) return 'unknown';
    if (entry.rated) return 'duplicate';
    entry.rated = true;
    const s = this.stats(entry.tier);
    s.feedback += 1;
    s.successes += success ? 1 : 0;
    s.feedback_cost_usd += entry.costUsd;
    this.feedback.inc({ tier: entry.tier, success: String(success) });
    const add = (groups: Map<string, GroupTotals>, key: string | undefined) => {
      if (key === undefined) return undefined;
      const g = groups.get(key) ?? { feedback: 0, successes: 0, cost_usd: 0 };
      g.feedback += 1;
      g.successes += success ? 1 : 0;
      g.cost_usd += entry.costUsd;
      groups.set(key, g);
      return g;
    };
    const policy = add(this.byPolicy, entry.policyVersion);
    if (policy && policy.successes > 0)
      this.costPerCorrect.set({ policy_version: entry.policyVersion! }, policy.cost_usd / policy.successes);
    add(this.byClass, entry.taskClass);
    this.updateCostPerSuccess();
    return 'recorded';
  }

  private updateCostPerSuccess(): void {
    let cost = 0;
    let successes = 0;
    for (const [tier, s] of this.byTier) {
      if (s.successes > 0) this.costPerSuccess.set({ tier }, s.feedback_cost_usd / s.successes);
      cost += s.feedback_cost_usd;
      successes += s.successes;
    }
    if (successes > 0) this.costPerSuccess.set({ tier: 'all' }, cost / successes);
  }

  snapshot(): StatsSnapshot {
    const tiers: StatsSnapshot['tiers'] = {};
    let cost = 0;
    let feedback = 0;
    let successes = 0;
    let feedbackCost = 0;
    for (const [tier, s] of this.byTier) {
      tiers[tier] = {
        ...s,
        cost_per_success_usd: s.successes > 0 ? s.feedback_cost_usd / s.successes : null,
        success_rate: s.feedback > 0 ? s.successes / s.feedback : null,
        mean_latency_ms: s.requests > 0 ? s.latency_ms_sum / s.requests : null,
      };
      cost += s.cost_usd;
      feedback += s.feedback;
      successes += s.successes;
      feedbackCost += s.feedback_cost_usd;
    }
    return {
      requests: this.total,
      escalation_rate: this.total > 0 ? this.totalEscalated / this.total : 0,
      fallback_rate: this.total > 0 ? this.totalFallbacks / this.total : 0,
      tiers,
      overall: {
        cost_usd: cost,
        feedback,
        successes,
        cost_per_success_usd: successes > 0 ? feedbackCost / successes : null,
      },
      policies: Object.fromEntries([...this.byPolicy].map(([k, g]) => [k, groupOut(g)])),
      task_classes: Object.fromEntries([...this.byClass].map(([k, g]) => [k, groupOut(g)])),
    };
  }
}
