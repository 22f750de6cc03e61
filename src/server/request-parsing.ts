import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ApiError } from '../errors.js';
import { parseOverrides } from '../policy/overrides.js';
import type { RouteOverrides } from '../policy/policy-schema.js';
import { formatIssues } from '../zod-issues.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the request is, for budgets and rate limits; set by the access hooks (see access.ts). */
    clientKey: string;
  }
}

/** Parses a request part with zod, or throws a 400 naming every bad field. */
export function parseOr400<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new ApiError('MR_ERR_BAD_REQUEST', `invalid ${what}:\n${formatIssues(parsed.error.issues)}`);
  }
  return parsed.data;
}

export function overridesOf(request: FastifyRequest, body: { mechroute?: unknown }): RouteOverrides {
  const parsed = parseOverrides(request.headers, body);
  if (!parsed.ok) throw new ApiError('MR_ERR_INVALID_OVERRIDES', parsed.errors.join('; '));
  return parsed.overrides;
}

/** Who a request is, for budgets and rate limits: its bearer token's position, else its address. */
export function clientKey(request: FastifyRequest): string {
  return request.clientKey || `ip:${request.ip}`;
}

/**
 * The decision headers. A value that does not exist (no P(success) for a tier named by the client,
 * no difficulty when routing was bypassed) is left out, never sent as `n/a` or `NaN`.
 */
export function setDecisionHeaders(
  reply: FastifyReply,
  decision: { tier: string; p_success: Record<string, number>; policy_version: string; difficulty: number },
): void {
  if (decision.tier) reply.header('x-mechroute-tier', decision.tier);
  const p = decision.p_success[decision.tier];
  if (p !== undefined && Number.isFinite(p)) reply.header('x-mechroute-p-success', p.toFixed(4));
  reply.header('x-mechroute-policy-version', decision.policy_version);
  if (Number.isFinite(decision.difficulty))
    reply.header('x-mechroute-difficulty', decision.difficulty.toFixed(4));
}
