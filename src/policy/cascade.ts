import type { AnswerGate, RouteDecision, RouteTier } from './policy-schema.js';
import { orderTiers } from './route-view.js';

/**
 * The `cascade` kind: an inner policy (`cascade.start`) picks the starting tier, the tier answers, a
 * quality gate judges the answer, and a failed gate escalates one tier up — at most `cascade.max_depth`
 * times. The router decides the plan (`RouteDecision.escalation_path`); executing it, and measuring the
 * gate, is the executor's (src/router/run-route.ts). These helpers are pure so that the plan and each
 * step are testable alone.
 */

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
 * Whether an answer fails the gate and the cascade may still climb. `measured` is the answer's mean
 * token logprob (logprob gate) or the probe's P(success) of prompt + answer (probe gate); `depth` the
 * escalations already made for this request. A non-finite measurement fails the gate: an answer the
 * gate could not score is not an answer it vouches for.
 */
export function shouldEscalate(
  measured: number,
  gate: AnswerGate,
  depth: number,
  maxDepth: number,
): EscalationVerdict {
  const [limit, name] =
    gate.kind === 'logprob'
      ? [gate.min_mean_logprob, 'mean logprob']
      : [gate.min_p_success, 'P(success) of the answer'];
  const passes = Number.isFinite(measured) && measured >= limit;
  if (passes)
    return { escalate: false, reason: `${name} ${measured.toFixed(3)} ≥ ${limit}: answer accepted` };
  const failed = `${name} ${Number.isFinite(measured) ? measured.toFixed(3) : String(measured)} < ${limit}`;
  if (depth >= maxDepth) {
    return { escalate: false, reason: `${failed} but the escalation depth cap (${maxDepth}) is reached` };
  }
  return { escalate: true, reason: `${failed}: escalate (${depth + 1} of at most ${maxDepth})` };
}
