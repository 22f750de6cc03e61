import type { AdvisorConfig, StepModeConfig } from '../config/modes-schema.js';
import { ApiError, BudgetExceededError } from '../errors.js';
import type { RouteDecision, RouteTier, TierPlan } from '../policy/policy-schema.js';
import { orderTiers } from '../policy/route-view.js';
import type { ExecutionPlan } from './execution.js';

/**
 * The plans of the answer modes that do not ask the probes which tier answers: a request that names
 * a tier (routing bypassed), live per-step routing and the worker–advisor pattern. Pure functions of
 * the config's tiers as the policy sees them now (credentials, breakers) and the request.
 */

export const MODEL_ROUTER = 'mechroute';

/** The cheapest configured tier (price order, config order on ties): the default worker of both modes. */
export function cheapestTier(tiers: readonly Pick<RouteTier, 'id' | 'price'>[]): string {
  return orderTiers(tiers)[0]!.id;
}

/** The dearest configured tier: the default advisor. */
export function dearestTier(tiers: readonly Pick<RouteTier, 'id' | 'price'>[]): string {
  return orderTiers(tiers).at(-1)!.id;
}

/**
 * The worker of a step or advisor answer: the configured one for `model: "mechroute"`, or the tier the
 * client names (the same bypass as routed mode, applied to the worker).
 */
export function workerFor(model: string, configured: string, tierIds: readonly string[]): string {
  if (model === MODEL_ROUTER) return configured;
  if (tierIds.includes(model)) return model;
  throw new ApiError(
    'MR_ERR_UNKNOWN_MODEL',
    `unknown model "${model.slice(0, 200)}": use "${MODEL_ROUTER}" or one of ${tierIds.join(', ')}`,
  );
}

/** Refuses a request whose client has no rolling budget left (modes that spend without a decision). */
export function assertBudgetLeft(remainingUsd: number | undefined, key: string): void {
  if (remainingUsd !== undefined && remainingUsd <= 0) {
    throw new BudgetExceededError(`the rolling budget of ${key} is spent`);
  }
}

/** `model` names a tier: that tier alone, no failover, no escalation. */
export function namedTierDecision(
  tier: RouteTier,
  policyVersion: string,
  policyKind: RouteDecision['policy_kind'],
): RouteDecision {
  return {
    tier: tier.id,
    policy_version: policyVersion,
    policy_kind: policyKind,
    p_success: {},
    difficulty: Number.NaN,
    expected_cost_usd: 0,
    reasons: ['model names a tier: routing bypassed'],
    ...(tier.available
      ? { plan: { policy_version: policyVersion, tiers: [tier.id], failover: false, max_escalations: 0 } }
      : {
          error: {
            code: 'MR_ERR_TIER_UNAVAILABLE' as const,
            message: `tier ${tier.id}: ${tier.unavailable_reason}`,
            ...(tier.retry_after_ms === undefined ? {} : { retry_after_ms: tier.retry_after_ms }),
          },
        }),
  };
}

/** The worker, then every available tier above it in price order: who may take a step over. */
function upFrom(worker: string, tiers: readonly RouteTier[], policyVersion: string): TierPlan {
  const ordered = orderTiers(tiers);
  const at = ordered.findIndex((t) => t.id === worker);
  const above = ordered
    .slice(at + 1)
    .filter((t) => t.available)
    .map((t) => t.id);
  return { policy_version: policyVersion, tiers: [worker, ...above], failover: true, max_escalations: 0 };
}

export function planSteps(input: {
  model: string;
  config: StepModeConfig | undefined;
  /** Segmentation's shortest step and the probe's tier, from the step bundle. */
  bundle: { min_step_chars: number; probe_tier: string } | undefined;
  tiers: readonly RouteTier[];
  policyVersion: string;
  threshold?: number;
}): ExecutionPlan {
  const { config, bundle, tiers } = input;
  if (!config || !bundle) {
    throw new ApiError(
      'MR_ERR_BAD_REQUEST',
      'step mode is not configured: the config has no `steps` section',
    );
  }
  const ids = tiers.map((t) => t.id);
  const worker = workerFor(input.model, config.worker ?? cheapestTier(tiers), ids);
  return {
    mode: 'steps',
    tiers: upFrom(worker, tiers, input.policyVersion),
    steps: {
      threshold: input.threshold ?? config.threshold,
      max_switches: config.max_switches,
      max_steps: config.max_steps,
      max_step_tokens: config.max_step_tokens,
      min_step_chars: bundle.min_step_chars,
      probe_tier: bundle.probe_tier,
    },
  };
}

export function planAdvisor(input: {
  model: string;
  config: AdvisorConfig;
  tiers: readonly RouteTier[];
  policyVersion: string;
}): ExecutionPlan {
  const { config, tiers } = input;
  const ids = tiers.map((t) => t.id);
  const worker = workerFor(input.model, config.worker ?? cheapestTier(tiers), ids);
  return {
    mode: 'advisor',
    tiers: { policy_version: input.policyVersion, tiers: [worker], failover: false, max_escalations: 0 },
    advisor: {
      tier: config.advisor ?? dearestTier(tiers),
      budget: config.budget,
      max_rounds: config.max_rounds,
      max_advice_tokens: config.max_advice_tokens,
    },
  };
}
