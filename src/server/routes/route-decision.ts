import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { MechrouteError } from '../../errors.js';
import {
  type RequestRouter,
  type RoutedRequest,
  type RouteRequest,
  routingPrompt,
} from '../../router/request-router.js';
import { contextFromHeaders, inSpan, SpanKind } from '../../tracing.js';
import { RouteRequestSchema } from '../api-schema.js';
import { clientKey, overridesOf, parseOr400, setDecisionHeaders } from '../request-parsing.js';
import type { RouterServices } from '../services.js';

/** `POST /v1/route`: the decision without the answer. */
export const routeDecisionRoutes: FastifyPluginAsync = async (app) => {
  const { services, inflight } = app;
  app.post('/v1/route', (request, reply) =>
    inSpan(
      'mechroute.request',
      { 'http.route': '/v1/route', 'mechroute.request_id': request.id },
      () => decideRoute(request, reply),
      { kind: SpanKind.SERVER, parent: contextFromHeaders(request.headers) },
    ),
  );

  async function decideRoute(request: FastifyRequest, reply: FastifyReply) {
    const body = parseOr400(RouteRequestSchema, request.body, 'route request');
    const overrides = overridesOf(request, body);
    const prompt = body.prompt ?? routingPrompt(body.messages!);
    const tracked = inflight.track(reply);
    try {
      const routed = await decideInSpan(
        services,
        {
          prompt,
          overrides,
          ...(body.max_tokens === undefined ? {} : { maxOutputTokens: body.max_tokens }),
          budgetKey: clientKey(request),
          call: { signal: tracked.signal, deadlineMs: tracked.remainingMs() },
        },
        tracked.abortError,
      );
      setDecisionHeaders(reply, routed.decision);
      return {
        request_id: request.id,
        tier: routed.decision.tier,
        p_success: routed.decision.p_success,
        difficulty: routed.decision.difficulty,
        task_class: routed.decision.task_class ?? null,
        policy_version: routed.decision.policy_version,
        policy_kind: routed.decision.policy_kind,
        expected_cost_usd: routed.decision.expected_cost_usd,
        reasons: routed.decision.reasons,
        fallback: routed.decision.fallback ?? false,
        escalation_path: routed.decision.escalation_path ?? [],
        error: routed.decision.error ?? null,
        input_tokens: routed.inputTokens,
        truncated: routed.truncated,
        encoder_ms: Math.round(routed.encoderMs * 100) / 100,
      };
    } catch (error) {
      throw tracked.abortError() ?? error;
    } finally {
      tracked.release();
    }
  }
};

/**
 * The routing decision in a span of its own, with what was decided as its attributes, counted by how
 * it ended (`routed`, the code of a refusal in the decision, or of an error such as an overloaded
 * encoder) in `mechroute_decisions_total` and the stats.
 */
export async function decideInSpan(
  services: Pick<RouterServices, 'router' | 'telemetry' | 'policies'>,
  route: RouteRequest,
  abortError: () => MechrouteError | undefined,
): Promise<RoutedRequest> {
  const { telemetry } = services;
  let routed: RoutedRequest;
  try {
    routed = await decideTraced(services.router, route);
  } catch (error) {
    const failure = abortError() ?? error;
    telemetry.recordDecision({
      tier: '',
      policyVersion: services.policies.current().version,
      outcome: failure instanceof MechrouteError ? failure.code : 'MR_ERR_INTERNAL',
    });
    throw failure;
  }
  const { decision } = routed;
  telemetry.encoderLatency.observe(routed.encoderMs / 1000);
  telemetry.recordDecision({
    tier: decision.tier,
    policyVersion: decision.policy_version,
    outcome: decision.error?.code ?? 'routed',
  });
  return routed;
}

function decideTraced(router: RequestRouter, route: RouteRequest): Promise<RoutedRequest> {
  return inSpan('mechroute.decision', {}, async (span) => {
    const routed = await router.decide(route);
    const { decision } = routed;
    span.setAttributes({
      'mechroute.policy_version': decision.policy_version,
      'mechroute.policy_kind': decision.policy_kind,
      'mechroute.tier': decision.tier,
      'mechroute.encoder_ms': routed.encoderMs,
      'mechroute.input_tokens': routed.inputTokens,
      ...(decision.p_success[decision.tier] === undefined
        ? {}
        : { 'mechroute.p_success': decision.p_success[decision.tier]! }),
      ...(decision.error ? { 'mechroute.error': decision.error.code } : {}),
    });
    return routed;
  });
}
