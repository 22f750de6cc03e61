import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StateConfig } from '../config/config-schema.js';
import {
  type AnsweredRequest,
  applyDeltas,
  completionDeltas,
  costPerSuccess,
  decisionDeltas,
  emptyTotals,
  feedbackDeltas,
  type StatsSnapshot,
  type StatsTotals,
  statsSnapshot,
  sumCounters,
} from '../state/outcome-stats.js';
import type { StateStore } from '../state/state-store.js';
import type { OnlineLearner } from './online-learner.js';

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
  /** The routing decision's uncorrected P per tier, kept for online learning's update. */
  decidedP?: Record<string, number>;
}

export type { OutcomeGroup, StatsSnapshot } from '../state/outcome-stats.js';

export interface TelemetryOptions {
  /** Where answered requests and the counters are kept (they survive restarts). */
  store: StateStore;
  retention: StateConfig['retention'];
  logger?: { error(obj: object, msg?: string): void };
  /** Epoch ms (default Date.now); tests move it to check the feedback window. */
  now?: () => number;
  /** Online learning (`learning.online`): decisions kept with their request, updates with their outcome. */
  learner?: OnlineLearner;
}

/** Answered requests between two prunes of the ones past retention. */
const PRUNE_EVERY = 1024;
const DAY_MS = 86_400_000;

/**
 * Prometheus metrics plus the running totals behind `/v1/stats` and cost per successful outcome, which
 * needs outcomes reported back through `/v1/feedback` and so each answered request kept for a while.
 * Requests and totals live in the state store (committed before the call returns); the totals are also
 * held here, summed by the pure reducer of `outcome-stats.ts`, so a stats read touches no disk.
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
    help: 'Routing decisions by chosen tier, policy version and outcome (routed, or the refusal code)',
    labelNames: ['tier', 'policy_version', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly tokens = new Counter({
    name: 'mechroute_tokens_total',
    help: 'Tokens of tier calls by tier and kind (input, output, cached input)',
    labelNames: ['tier', 'kind'] as const,
    registers: [this.registry],
  });
  readonly timeToFirstToken = new Histogram({
    name: 'mechroute_time_to_first_token_seconds',
    help: 'Streamed answers: time from the request to its first content byte, by the tier that answered',
    labelNames: ['tier'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32],
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

  readonly costPerCorrect = new Gauge({
    name: 'mechroute_cost_per_correct_usd',
    help: 'Cost per correct outcome over rated requests, by the policy version that decided them',
    labelNames: ['policy_version'] as const,
    registers: [this.registry],
  });
  readonly learningEvents = new Counter({
    name: 'mechroute_learning_events_total',
    help: 'Feedback events applied by online learning, by the tier they updated',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });
  readonly correctionNorm = new Gauge({
    name: 'mechroute_learning_correction_norm',
    help: "Online learning: the L2 norm of a tier's correction (w, b) of its probe logit",
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });
  readonly stateErrors = new Counter({
    name: 'mechroute_state_errors_total',
    help: 'Answered requests that could not be written to the state file (their feedback and stats are lost)',
    registers: [this.registry],
  });

  private readonly store: StateStore;
  private readonly options: TelemetryOptions;
  private readonly now: () => number;
  private totals: StatsTotals;
  private sincePrune = 0;

  constructor(options: TelemetryOptions) {
    this.options = options;
    this.store = options.store;
    this.now = options.now ?? Date.now;
    this.totals = applyDeltas(emptyTotals(), this.store.loadCounters());
    this.prune();
    this.updateOutcomeGauges();
    this.updateLearningGauges();
  }

  /**
   * Records an answered request. A write that fails is logged and counted, not thrown: the answer is
   * already paid for and goes to the client; only its feedback and stats are lost.
   */
  recordCompletion(done: CompletedRequest): void {
    this.cost.inc({ tier: done.tier }, done.costUsd);
    this.requestLatency.observe({ tier: done.tier }, done.latencyMs / 1000);
    const request: AnsweredRequest = {
      request_id: done.requestId,
      tier: done.tier,
      cost_usd: done.costUsd,
      latency_ms: done.latencyMs,
      escalations: done.escalations,
      fallback: done.fallback,
      ...(done.policyVersion === undefined ? {} : { policy_version: done.policyVersion }),
      ...(done.taskClass === undefined ? {} : { task_class: done.taskClass }),
      answered_at: this.now(),
    };
    const deltas = completionDeltas(request);
    const { learner } = this.options;
    try {
      this.store.transaction(() => {
        this.store.addAnswered(request);
        this.store.addCounters(deltas);
        if (learner && done.decidedP) learner.remember(done.requestId, done.decidedP, request.answered_at);
      });
    } catch (error) {
      this.stateErrors.inc();
      this.options.logger?.error(
        { err: error, request_id: done.requestId, state_file: this.store.path },
        'answered request not recorded in the state file',
      );
      return;
    }
    this.totals = applyDeltas(this.totals, deltas);
    if (++this.sincePrune >= PRUNE_EVERY) this.prune();
  }

  /**
   * Counts a routing decision by how it ended, in the metric and in the stats; a refused one counts
   * with its code, so failed decisions are visible beside the answered requests.
   */
  recordDecision(outcome: { tier: string; policyVersion: string; outcome: string }): void {
    this.decisions.inc({
      tier: outcome.tier || 'none',
      policy_version: outcome.policyVersion,
      outcome: outcome.outcome,
    });
    const deltas = decisionDeltas(outcome.outcome);
    try {
      this.store.addCounters(deltas);
    } catch (error) {
      this.stateErrors.inc();
      this.options.logger?.error(
        { err: error, state_file: this.store.path },
        'decision not counted in the state file',
      );
      return;
    }
    this.totals = applyDeltas(this.totals, deltas);
  }

  /** 'unknown': never answered, or past the feedback window; 'duplicate': already rated. */
  recordFeedback(requestId: string, success: boolean): 'recorded' | 'unknown' | 'duplicate' {
    const now = this.now();
    const oldest = now - this.options.retention.feedback_days * DAY_MS;
    const outcome = this.store.transaction(() => {
      const request = this.store.findAnswered(requestId);
      if (!request || request.answered_at < oldest) return 'unknown' as const;
      if (request.success !== undefined) return 'duplicate' as const;
      const deltas = feedbackDeltas(request, success);
      this.store.rateAnswered(requestId, success, now);
      this.store.addCounters(deltas);
      // The update is written with the outcome that taught it: both commit, or neither.
      const learned = this.options.learner?.learn(requestId, request.tier, success, now);
      return { request, deltas, learned };
    });
    if (typeof outcome === 'string') return outcome;
    this.totals = applyDeltas(this.totals, outcome.deltas);
    this.feedback.inc({ tier: outcome.request.tier, success: String(success) });
    if (outcome.learned) {
      outcome.learned();
      this.learningEvents.inc({ tier: outcome.request.tier });
      this.updateLearningGauges();
    }
    this.updateOutcomeGauges();
    return 'recorded';
  }

  /** Sets the correction gauges from the learner (after an update, a rollback or a reset). */
  updateLearningGauges(): void {
    const { learner } = this.options;
    if (!learner) return;
    this.correctionNorm.reset();
    for (const [tier, c] of Object.entries(learner.status().tiers)) this.correctionNorm.set({ tier }, c.norm);
  }

  snapshot(): StatsSnapshot {
    return statsSnapshot(this.totals);
  }

  private prune(): void {
    this.sincePrune = 0;
    const { feedback_days, max_requests } = this.options.retention;
    try {
      this.store.pruneAnswered(this.now() - feedback_days * DAY_MS, max_requests);
      this.options.learner?.prune(this.now());
    } catch (error) {
      this.options.logger?.error({ err: error, state_file: this.store.path }, 'pruning old requests failed');
    }
  }

  private updateOutcomeGauges(): void {
    for (const [tier, c] of Object.entries(this.totals.tier)) {
      const value = costPerSuccess(c);
      if (value !== null) this.costPerSuccess.set({ tier }, value);
    }
    const all = costPerSuccess(sumCounters(this.totals.tier));
    if (all !== null) this.costPerSuccess.set({ tier: 'all' }, all);
    for (const [version, c] of Object.entries(this.totals.policy)) {
      const value = costPerSuccess(c);
      if (value !== null) this.costPerCorrect.set({ policy_version: version }, value);
    }
  }
}
