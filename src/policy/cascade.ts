import type { Policy, RouteDecision, RouteTier } from './policy-schema.js';
import { orderTiers } from './route-view.js';

/**
 * The `cascade` kind: an inner policy (`cascade.start`) picks the starting tier, the tier answers, a
 * quality gate judges the answer, and a failed gate escalates one tier up — at most `cascade.max_depth`
 * times. The router decides the plan (`RouteDecision.escalation_path`); executing it, and measuring the
 * gate, is the server's. These helpers are pure so that the plan and each step are testable alone.
 */

/** What the server measured on an answer. */
export type QualityGate = { kind: 'logprob'; mean_logprob: number } | { kind: 'probe'; p_success: number };

/**
 * The next available tier above `decision.tier` in price order, or undefined at the top. Unavailable
 * tiers are skipped, not stopped at: a dead middle tier should not end the cascade.
 */
export function nextTier(
  decision: Pick<RouteDecision, 'tier'>,
  tiers: readonly RouteTier[],
): string | undefined {
  const ordered = orderTiers(tiers);
  const index = ordered.findIndex((t) => t.id === decision.tier);
  if (index < 0) return undefined;
  return ordered.slice(index + 1).find((t) => t.available)?.id;
}

/** Up to `maxDepth` tiers to escalate through after `start`, each `nextTier` of the one before. */
export function escalationPath(start: string, tiers: readonly RouteTier[], maxDepth: number): string[] {
  const path: string[] = [];
  let tier: string | undefined = start;
  while (path.length < maxDepth) {
    tier = nextTier({ tier }, tiers);
    if (tier === undefined) break;
    path.push(tier);
  }
  return path;
}

export interface EscalationVerdict {
  escalate: boolean;
  reason: string;
}

/**
 * Whether an answer fails the gate and the cascade may still climb. `depth` is the number of
 * escalations already made for this request. A non-finite measurement fails the gate: an answer the
 * gate could not score is not an answer it vouches for.
 */
export function shouldEscalate(gate: QualityGate, policy: Policy, depth = 0): EscalationVerdict {
  const { gate: limits, max_depth } = policy.cascade;
  const [value, limit, name] =
    gate.kind === 'logprob'
      ? [gate.mean_logprob, limits.min_mean_logprob, 'mean logprob']
      : [gate.p_success, limits.min_p_success, 'P(success) of the answer'];
  const passes = Number.isFinite(value) && value >= limit;
  if (passes) return { escalate: false, reason: `${name} ${value.toFixed(3)} ≥ ${limit}: answer accepted` };
  const failed = `${name} ${Number.isFinite(value) ? value.toFixed(3) : String(value)} < ${limit}`;
  if (depth >= max_depth) {
    return { escalate: false, reason: `${failed} but the escalation depth cap (${max_depth}) is reached` };
  }
  return { escalate: true, reason: `${failed}: escalate (${depth + 1} of at most ${max_depth})` };
}
