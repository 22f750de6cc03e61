import { BudgetExceededError, type MechrouteError, NoTiersError, TierUnavailableError } from '../errors.js';
import { budgetRule } from './budget.js';
import { escalationPath } from './cascade.js';
import { applyOverrides } from './overrides.js';
import type {
  AnswerGate,
  Policy,
  PolicyKind,
  RouteDecision,
  RouteErrorCode,
  RouteInput,
} from './policy-schema.js';
import { buildView, type Candidate, type Rule, unavailableText, usd } from './route-view.js';
import { thresholdRule } from './threshold.js';
import { utilityRule } from './utility.js';

const RULES: Record<Exclude<PolicyKind, 'cascade'>, Rule> = {
  threshold: thresholdRule,
  utility: utilityRule,
  budget: budgetRule,
};

/**
 * The routing decision for one request: a pure function of the probes' predictions, the tiers, the
 * token counts, the request's overrides and the policy. No I/O and no clock: `now` (epoch ms) is part
 * of the signature so that time-dependent rules can be added without changing every caller; the budget
 * ledger, which does depend on time, is read by the caller into `input.budget`.
 *
 * Steps: apply the overrides; price every tier; drop the tiers above the cost ceiling; let the kind's
 * rule pick; if that tier is unavailable, either fail (`on_unavailable: error`) or run the same rule
 * over the available tiers only (`best_available`); for `cascade`, add the escalation path.
 */
export function route(input: RouteInput, configured: Policy, _now: number): RouteDecision {
  const { policy, reasons } = applyOverrides(configured, input.overrides);
  const built = buildView(input, policy);
  const { view } = built;
  reasons.push(...built.reasons);
  const kind = policy.kind;
  const rule = RULES[kind === 'cascade' ? policy.cascade.start : kind];
  if (kind === 'cascade') reasons.push(`cascade: starting tier chosen by ${policy.cascade.start}`);

  const base = {
    policy_version: policy.version,
    policy_kind: kind,
    p_success: { ...input.prediction.tiers },
    difficulty: input.prediction.difficulty,
    ...(input.prediction.task_class ? { task_class: { ...input.prediction.task_class } } : {}),
    reasons,
  };
  const fail = (
    tier: Candidate | undefined,
    code: RouteErrorCode,
    message: string,
    retryAfterMs?: number,
  ): RouteDecision => {
    reasons.push(message);
    return {
      tier: tier?.id ?? '',
      ...base,
      expected_cost_usd: tier?.cost_usd ?? 0,
      error: { code, message, ...(retryAfterMs === undefined ? {} : { retry_after_ms: retryAfterMs }) },
    };
  };

  const eligible = view.candidates.filter((c) => c.eligible);
  if (view.candidates.length === 0) return fail(undefined, 'MR_ERR_NO_TIERS', 'no tiers are configured');
  if (eligible.length === 0) {
    const cheapest = [...view.candidates].sort((a, b) => a.cost_usd - b.cost_usd)[0]!;
    return fail(
      cheapest,
      'MR_ERR_BUDGET_EXCEEDED',
      `every tier's expected cost exceeds ${usd(view.ceiling_usd)} (cheapest: ${cheapest.id} at ${usd(cheapest.cost_usd)})`,
    );
  }

  const choice = rule(eligible, view);
  reasons.push(...choice.reasons);
  let tier = choice.tier;
  let fallback = choice.fallback === true;
  if (!tier) {
    const cheapest = eligible[0]!;
    return fail(cheapest, 'MR_ERR_BUDGET_EXCEEDED', `no tier fits the budget ${usd(view.ceiling_usd)}`);
  }

  if (!tier.available) {
    if (policy.on_unavailable === 'error') {
      return fail(
        tier,
        'MR_ERR_TIER_UNAVAILABLE',
        `the policy chose ${unavailableText(tier)}; set policy.on_unavailable: best_available to use the best available tier instead`,
        tier.retry_after_ms,
      );
    }
    const available = eligible.filter((c) => c.available);
    if (available.length === 0) {
      return fail(
        tier,
        'MR_ERR_TIER_UNAVAILABLE',
        `the policy chose ${unavailableText(tier)}, and no tier is available`,
        soonestBack(eligible),
      );
    }
    const wanted = tier;
    const alternative = rule(available, view);
    reasons.push(...alternative.reasons.map((r) => `among available tiers: ${r}`));
    tier = alternative.tier ?? available.at(-1)!;
    fallback = true;
    reasons.push(`${unavailableText(wanted)}; best available tier: ${tier.id}`);
  }

  const decision: RouteDecision = { tier: tier.id, ...base, expected_cost_usd: tier.cost_usd };
  if (fallback) decision.fallback = true;
  // Failover and escalation stay under the cost ceiling too: a tier the request may not afford is no
  // step up. The list is fixed here, with this policy, for the whole request.
  const affordable = input.tiers.filter((t) => eligible.some((c) => c.id === t.id));
  const above = escalationPath(tier.id, affordable, affordable.length);
  const cascade = kind === 'cascade';
  decision.plan = {
    policy_version: policy.version,
    tiers: [tier.id, ...above],
    failover: true,
    max_escalations: cascade ? Math.min(policy.cascade.max_depth, above.length) : 0,
    ...(cascade ? { gate: answerGate(policy) } : {}),
  };
  if (cascade) {
    decision.escalation_path = above.slice(0, policy.cascade.max_depth);
    reasons.push(
      decision.escalation_path.length > 0
        ? `escalation path: ${decision.escalation_path.join(' → ')}`
        : 'no tier above to escalate to',
    );
  }
  return decision;
}

/** The cascade's gate, as the executor applies it. */
export function answerGate(policy: Policy): AnswerGate {
  const { gate } = policy.cascade;
  return gate.kind === 'probe'
    ? { kind: 'probe', min_p_success: gate.min_p_success }
    : { kind: 'logprob', min_mean_logprob: gate.min_mean_logprob };
}

/** The soonest known return of any of `tiers`; undefined when one of them has no known return. */
function soonestBack(tiers: readonly Candidate[]): number | undefined {
  const waits = tiers.map((t) => t.retry_after_ms);
  return waits.every((w) => w !== undefined) ? Math.min(...(waits as number[])) : undefined;
}

/** The error a server should answer with for a decision that carries one. */
export function decisionError(decision: RouteDecision): MechrouteError | undefined {
  const { error } = decision;
  if (!error) return undefined;
  if (error.code === 'MR_ERR_TIER_UNAVAILABLE')
    return new TierUnavailableError(error.message, error.retry_after_ms);
  if (error.code === 'MR_ERR_BUDGET_EXCEEDED') return new BudgetExceededError(error.message);
  return new NoTiersError(error.message);
}
