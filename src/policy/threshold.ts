import type { Policy } from './policy-schema.js';
import {
  type Candidate,
  type Choice,
  frontierOf,
  prob,
  type RouteView,
  unavailableText,
} from './route-view.js';

/** A class's own thresholds win over the policy-wide ones; a class the policy does not name uses those. */
export function thresholdFor(policy: Policy, tier: string, taskClass?: string): number {
  const own = taskClass === undefined ? undefined : policy.threshold.classes[taskClass];
  return own?.tiers[tier] ?? own?.default ?? policy.threshold.tiers[tier] ?? policy.threshold.default;
}

/**
 * `threshold`: the cheapest tier whose calibrated P(success) reaches its threshold, else the frontier
 * (the most expensive tier). A passing tier that is unavailable is skipped rather than treated as a
 * failure: any dearer tier that also passes is predicted to succeed too, so nothing is lost by taking
 * it. Only the frontier fallback can land on an unavailable tier, which `on_unavailable` then handles.
 */
export function thresholdRule(candidates: readonly Candidate[], view: RouteView): Choice {
  const reasons: string[] = [];
  const taskClass = view.task_class;
  if (taskClass !== undefined && view.policy.threshold.classes[taskClass])
    reasons.push(`thresholds of task class ${taskClass}`);
  for (const c of candidates) {
    if (c.p === undefined) {
      reasons.push(`${c.id}: no probe prediction, not considered`);
      continue;
    }
    const threshold = thresholdFor(view.policy, c.id, taskClass);
    const compare = `P(success) ${prob(c.p)} ${c.p >= threshold ? '≥' : '<'} threshold ${prob(threshold)}`;
    if (c.p < threshold) reasons.push(`${c.id}: ${compare}`);
    else if (!c.available) reasons.push(`${c.id}: ${compare} but ${unavailableText(c)}, skipped`);
    else {
      reasons.push(`${c.id}: ${compare}, cheapest passing tier`);
      return { tier: c, reasons };
    }
  }
  const fallback = frontierOf(candidates, 'no available tier passes its threshold');
  return { ...fallback, reasons: [...reasons, ...fallback.reasons] };
}
