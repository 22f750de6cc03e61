import type { FastifyRequest } from 'fastify';
import type { RouteDecision } from '../policy/policy-schema.js';
import type { ExecutionPart, ExecutionPlan, ExecutionSummary } from '../router/execution.js';
import type { Telemetry } from './telemetry.js';

interface ObserveContext {
  request: FastifyRequest;
  telemetry: Telemetry;
  decision: RouteDecision | undefined;
  /** The routing decision's P per tier before online learning's corrections (kept for its update). */
  uncorrected?: Record<string, number>;
  /** performance.now() when the request arrived. */
  startedAt: number;
}

/**
 * Passes an execution's parts through unchanged while turning them into log lines (the request's own
 * logger, so every line carries its `reqId`) and metrics: one place for what a request did, whatever
 * its mode and however it is sent.
 */
export async function* observeExecution(
  parts: AsyncIterable<ExecutionPart>,
  ctx: ObserveContext,
): AsyncGenerator<ExecutionPart> {
  const { request, telemetry } = ctx;
  const log = request.log;
  let tier = '';
  let firstContent = true;
  for await (const part of parts) {
    switch (part.type) {
      case 'attempt-start':
        tier = part.tier;
        if (part.via === 'failover') telemetry.fallbacks.inc({ reason: 'failover' });
        break;
      case 'text-delta':
        if (firstContent) {
          firstContent = false;
          telemetry.timeToFirstToken.observe({ tier }, (performance.now() - ctx.startedAt) / 1000);
        }
        break;
      case 'usage': {
        const { usage } = part;
        telemetry.tokens.inc({ tier: part.tier, kind: 'input' }, usage.input_tokens);
        telemetry.tokens.inc({ tier: part.tier, kind: 'output' }, usage.output_tokens);
        if (usage.cached_input_tokens) {
          telemetry.tokens.inc({ tier: part.tier, kind: 'cached_input' }, usage.cached_input_tokens);
        }
        break;
      }
      case 'attempt-failed':
        log.warn(
          {
            tier: part.tier,
            deployment: part.error.deployment,
            code: part.error.code,
            status: part.error.status,
            detail: part.error.detail,
            next: part.next ?? null,
          },
          part.next ? 'tier failed; failing over' : 'tier failed',
        );
        break;
      case 'gate':
        log.info({ tier: part.tier, value: part.value, verdict: part.verdict }, 'cascade gate');
        break;
      case 'escalated':
        telemetry.escalations.inc({ from: part.from, to: part.to });
        break;
      case 'step':
        telemetry.stepsWritten.inc({ tier: part.step.tier });
        log.info(
          {
            step: part.step.index,
            tier: part.step.tier,
            p_success: part.step.p_success,
            chars: part.step.text.length,
            rest: part.step.rest,
          },
          'step written',
        );
        break;
      case 'advisor-call': {
        const { record } = part;
        telemetry.advisorCalls.inc({ outcome: record.outcome });
        if (record.cost_usd > 0) telemetry.advisorCost.inc({ tier: part.tier }, record.cost_usd);
        log.info(
          {
            advisor_call: record.call_id,
            advisor: part.tier,
            outcome: record.outcome,
            cost_usd: record.cost_usd,
            input_tokens: record.usage?.input_tokens ?? 0,
            output_tokens: record.usage?.output_tokens ?? 0,
          },
          'ask_advisor',
        );
        break;
      }
      case 'done':
        recordDone(part.summary, ctx);
        break;
    }
    yield part;
  }
}

function recordDone(summary: ExecutionSummary, ctx: ObserveContext): void {
  const { request, telemetry, decision } = ctx;
  for (const s of summary.steps?.switches ?? []) {
    telemetry.stepSwitches.inc({ from: s.from, to: s.to, reason: s.reason });
  }
  telemetry.recordCompletion({
    requestId: request.id,
    tier: summary.answered_by,
    costUsd: summary.cost_usd,
    latencyMs: performance.now() - ctx.startedAt,
    escalations: summary.escalations,
    fallback: summary.attempts.some((a) => a.via === 'failover'),
    ...(decision ? { policyVersion: decision.policy_version } : {}),
    ...(decision?.task_class ? { taskClass: decision.task_class.name } : {}),
    ...(ctx.uncorrected ? { decidedP: ctx.uncorrected } : {}),
  });
  request.log.info(
    {
      mode: summary.mode,
      decided: decision?.tier ?? null,
      answered_by: summary.answered_by,
      attempts: summary.attempts.length,
      escalations: summary.escalations,
      cost_usd: summary.cost_usd,
    },
    'answered',
  );
}

/** The response's `mechroute` object: what was decided and what happened, per mode. */
export function extensionOf(requestId: string, plan: ExecutionPlan, decision: RouteDecision | undefined) {
  return (summary: ExecutionSummary): Record<string, unknown> => {
    const common = {
      request_id: requestId,
      mode: plan.mode,
      policy_version: plan.tiers.policy_version,
      attempts: summary.attempts,
      escalations: summary.escalations,
      usage_by_tier: summary.usage_by_tier,
      cost_usd: summary.cost_usd,
    };
    if (plan.mode === 'steps') {
      return {
        ...common,
        worker: plan.tiers.tiers[0],
        probe_tier: plan.steps.probe_tier,
        threshold: plan.steps.threshold,
        steps: (summary.steps?.steps ?? []).map((s) => ({
          tier: s.tier,
          text: s.text,
          p_success: s.p_success,
          rest: s.rest,
          usage_estimated: s.usage_estimated,
        })),
        switches: summary.steps?.switches ?? [],
        // One string in every mode (as the x-mechroute-answered-by header): the tier of the last step;
        // every tier that wrote a step, in order of first writing, is `writers`.
        answered_by: summary.answered_by,
        writers: summary.steps?.writers ?? [],
      };
    }
    if (plan.mode === 'advisor') {
      const calls = summary.advisor?.calls ?? [];
      const adviceCost = calls.reduce((sum, c) => sum + c.cost_usd, 0);
      return {
        ...common,
        worker: plan.tiers.tiers[0],
        advisor: plan.advisor.tier,
        budget: plan.advisor.budget,
        rounds: summary.advisor?.rounds ?? 0,
        advisor_calls: calls.map((c) => ({
          outcome: c.outcome,
          question: c.question ?? null,
          cost_usd: c.cost_usd,
          usage: c.usage ?? null,
        })),
        worker_cost_usd: summary.cost_usd - adviceCost,
        advisor_cost_usd: adviceCost,
        answered_by: summary.answered_by,
      };
    }
    return {
      ...common,
      decided_tier: decision?.tier ?? summary.answered_by,
      answered_by: summary.answered_by,
      p_success: decision?.p_success ?? {},
      difficulty: decision && Number.isFinite(decision.difficulty) ? decision.difficulty : null,
      ...(decision?.task_class ? { task_class: decision.task_class } : {}),
      reasons: decision?.reasons ?? [],
    };
  };
}
