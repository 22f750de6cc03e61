import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { LoadedConfig } from '../../config/config-loader.js';
import { PROBE_GATE_NEEDS_STEPS } from '../../config/config-loader.js';
import { ApiError, MechrouteError } from '../../errors.js';
import type { RouteDecision } from '../../policy/policy-schema.js';
import { decisionError } from '../../policy/route.js';
import { costUsd } from '../../policy/route-view.js';
import { createExecutor, type ExecutionPlan, type ExecutorDeps } from '../../router/executor.js';
import {
  assertBudgetLeft,
  MODEL_ROUTER,
  namedTierDecision,
  planAdvisor,
  planSteps,
} from '../../router/mode-plans.js';
import { routingPrompt } from '../../router/request-router.js';
import { scoreStepPrefix } from '../../steps/step-scorer.js';
import { composedAnswerRefusal, responseOptionsOf, toTierRequest } from '../../tiers/openai-request.js';
import { type CallOptions, UnsupportedParameterError, type Usage } from '../../tiers/tier-model.js';
import {
  contextFromHeaders,
  inSpan,
  type Span,
  SpanKind,
  SpanStatusCode,
  spannedIterable,
  traceHeaders,
} from '../../tracing.js';
import { type RequestMode, requestMode } from '../answer-mode.js';
import { type ChatCompletionRequest, parseChatCompletionRequest } from '../api-schema.js';
import { extensionOf, observeExecution } from '../chat-observer.js';
import { jsonResponse, streamResponse } from '../chat-response.js';
import { toHttpError } from '../http-errors.js';
import type { TrackedRequest } from '../inflight.js';
import { clientKey, overridesOf, setDecisionHeaders } from '../request-parsing.js';
import { decideInSpan } from './route-decision.js';

/** Requests a mode cannot honour are refused, naming the parameter, before anything is spent. */
function refuseUnsupported(mode: RequestMode, body: ChatCompletionRequest): void {
  if (mode.mode === 'route') return;
  const refused = composedAnswerRefusal(toTierRequest(body), mode.mode);
  if (refused) throw new UnsupportedParameterError(undefined, refused.param, refused.reason);
}

/**
 * `POST /v1/chat/completions`, a thin shell: validate; plan (the routing decision for `model:
 * "mechroute"`, the named tier otherwise, or the plan of a step or advisor answer), with the policy
 * pinned in the plan for the whole request; run the plan with the executor (src/router/executor.ts);
 * send its parts as one JSON body or one SSE stream. Logs and metrics come from the same parts.
 */
export const chatRoutes: FastifyPluginAsync = async (app) => {
  const { services, inflight } = app;
  // Read per request: a reload may change the tiers. The sections read from `config` need a restart.
  const { config, telemetry, pool } = services;

  async function plan(
    request: FastifyRequest,
    body: ChatCompletionRequest,
    mode: RequestMode,
    tracked: TrackedRequest,
  ): Promise<{ plan: ExecutionPlan; decision?: RouteDecision; uncorrected?: Record<string, number> }> {
    const tiers = services.routeTiers();
    const policy = services.policies.current();
    if (mode.mode !== 'route') {
      // These modes spend without a routing decision, so a client whose rolling budget is gone stops here.
      const key = clientKey(request);
      assertBudgetLeft(services.ledger?.remaining(key, Date.now()), key);
      return {
        plan:
          mode.mode === 'steps'
            ? planSteps({
                model: body.model,
                config: config.steps,
                bundle: services.stepBundle && {
                  min_step_chars: services.stepBundle.steps.segmentation.min_chars,
                  probe_tier: services.stepBundle.probeTier,
                },
                tiers,
                policyVersion: policy.version,
                ...(mode.stepThreshold === undefined ? {} : { threshold: mode.stepThreshold }),
              })
            : planAdvisor({
                model: body.model,
                config: config.advisor,
                tiers,
                policyVersion: policy.version,
              }),
      };
    }
    const overrides = overridesOf(request, body);
    let decision: RouteDecision;
    let uncorrected: Record<string, number> | undefined;
    if (body.model === MODEL_ROUTER) {
      const maxTokens = body.max_completion_tokens ?? body.max_tokens;
      const routed = await decideInSpan(
        services,
        {
          prompt: routingPrompt(body.messages),
          overrides,
          ...(maxTokens == null ? {} : { maxOutputTokens: maxTokens }),
          budgetKey: clientKey(request),
          call: { signal: tracked.signal, deadlineMs: tracked.remainingMs() },
        },
        tracked.abortError,
      );
      decision = routed.decision;
      uncorrected = routed.uncorrected;
    } else {
      const tier = tiers.find((t) => t.id === body.model);
      if (!tier) {
        throw new ApiError(
          'MR_ERR_UNKNOWN_MODEL',
          `unknown model "${body.model.slice(0, 200)}": use "${MODEL_ROUTER}" or one of ${tiers.map((t) => t.id).join(', ')}`,
        );
      }
      decision = namedTierDecision(tier, policy.version, policy.kind);
      telemetry.recordDecision({
        tier: decision.tier,
        policyVersion: decision.policy_version,
        outcome: decision.error?.code ?? 'routed',
      });
    }
    const refused = decisionError(decision);
    if (refused) throw refused;
    if (decision.plan?.gate?.kind === 'probe' && decision.plan.max_escalations > 0 && !services.stepBundle) {
      // A policy installed after startup (reload, rollback); without the bundle the gate could only guess.
      throw new MechrouteError('MR_ERR_NO_STEP_PROBE', `cascade.gate.kind ${PROBE_GATE_NEEDS_STEPS}`);
    }
    if (decision.fallback) telemetry.fallbacks.inc({ reason: 'policy' });
    return {
      plan: { mode: 'route', tiers: decision.plan! },
      decision,
      ...(uncorrected ? { uncorrected } : {}),
    };
  }

  /**
   * The executor's view of the process, for one request: its client's budget, its prompt, its encoder;
   * each tier call in a span of its own whose `traceparent` goes to the upstream, its failures logged
   * with the request's id.
   */
  function executorDeps(
    request: FastifyRequest,
    prompt: string,
    plan: ExecutionPlan,
    tiersAtStart: LoadedConfig['tiers'],
    decision?: RouteDecision,
  ): ExecutorDeps {
    const key = clientKey(request);
    const stepBundle = services.stepBundle;
    // A tier a reload removes while the request runs on it drains (its call finishes) and is still
    // priced: by the tiers as the request found them, else as the decision found them.
    const priceOf = (tier: string) =>
      (tiersAtStart.find((t) => t.id === tier) ?? services.config.tiers.find((t) => t.id === tier))!.price;
    const attributes = (tier: string) => ({
      'mechroute.tier': tier,
      'mechroute.policy_version': plan.tiers.policy_version,
      ...(decision?.p_success[tier] === undefined ? {} : { 'mechroute.p_success': decision.p_success[tier] }),
    });
    const callOptions = (o: CallOptions, span: Span): CallOptions => {
      let failures = 0;
      return {
        ...o,
        headers: traceHeaders(),
        logger: request.log,
        onAttemptFailed: (error) => {
          failures += 1;
          span.addEvent('attempt failed', { code: error.code, status: error.status });
          span.setAttribute('mechroute.retries', failures);
        },
      };
    };
    const recordUsage = (span: Span, tier: string, usage: Usage) => {
      span.setAttribute(
        'mechroute.cost_usd',
        costUsd(priceOf(tier), usage.input_tokens, usage.output_tokens),
      );
      span.setAttribute('gen_ai.usage.input_tokens', usage.input_tokens);
      span.setAttribute('gen_ai.usage.output_tokens', usage.output_tokens);
    };
    return {
      generate: (tier, r, o) =>
        inSpan('mechroute.tier_attempt', attributes(tier), async (span) => {
          const result = await pool.generate(tier, r, callOptions(o, span));
          recordUsage(span, tier, result.usage);
          return result;
        }),
      stream: (tier, r, o) =>
        spannedIterable(
          'mechroute.tier_attempt',
          attributes(tier),
          (span) => pool.stream(tier, r, callOptions(o, span)),
          (span, part) => {
            if (part.type === 'finish') recordUsage(span, tier, part.usage);
            if (part.type === 'error')
              span.setStatus({ code: SpanStatusCode.ERROR, message: part.error.code });
          },
        ),
      charge(tier, usage) {
        const usd = costUsd(priceOf(tier), usage.input_tokens, usage.output_tokens);
        services.ledger?.charge(key, usd, Date.now());
        return usd;
      },
      ...(stepBundle
        ? {
            scoreResponse: async (response, signal) => {
              const started = performance.now();
              const p = await scoreStepPrefix(services.encoder, stepBundle, prompt, response, { signal });
              telemetry.encoderLatency.observe((performance.now() - started) / 1000);
              return p;
            },
          }
        : {}),
      countTokens: (text) => services.encoder.tokenize(text).length,
    };
  }

  app.post('/v1/chat/completions', (request: FastifyRequest, reply: FastifyReply) =>
    inSpan(
      'mechroute.request',
      { 'http.route': '/v1/chat/completions', 'mechroute.request_id': request.id },
      (span) => answer(request, reply, span),
      { kind: SpanKind.SERVER, parent: contextFromHeaders(request.headers) },
    ),
  );

  async function answer(request: FastifyRequest, reply: FastifyReply, span: Span) {
    const body = parseChatCompletionRequest(request.body);
    const mode = requestMode(request.headers, config.mode);
    refuseUnsupported(mode, body);
    span.setAttribute('mechroute.mode', mode.mode);
    const tracked = inflight.track(reply);
    const tiersAtStart = services.config.tiers;
    try {
      const planned = await plan(request, body, mode, tracked);
      span.setAttributes({
        'mechroute.policy_version': planned.plan.tiers.policy_version,
        'mechroute.tier': planned.plan.tiers.tiers[0]!,
      });
      const worker = planned.plan.tiers.tiers[0]!;
      setDecisionHeaders(
        reply,
        planned.decision ?? {
          tier: worker,
          p_success: {},
          policy_version: planned.plan.tiers.policy_version,
          difficulty: Number.NaN,
        },
      );
      if (mode.mode !== 'route') reply.header('x-mechroute-mode', mode.mode);
      const prompt = routingPrompt(body.messages);
      const parts = observeExecution(
        createExecutor(executorDeps(request, prompt, planned.plan, tiersAtStart, planned.decision)).execute(
          planned.plan,
          toTierRequest(body),
          {
            stream: body.stream === true,
            signal: tracked.signal,
            remainingMs: tracked.remainingMs,
            prompt,
          },
        ),
        {
          request,
          telemetry,
          decision: planned.decision,
          ...(planned.uncorrected ? { uncorrected: planned.uncorrected } : {}),
          startedAt: performance.now() - reply.elapsedTime,
        },
      );
      const extension = extensionOf(request.id, planned.plan, planned.decision);
      // A routed answer is labelled with the tier that gave it; a stitched one with the router.
      const model = mode.mode === 'steps' ? MODEL_ROUTER : '';
      const meta = {
        id: `chatcmpl-${request.id.slice(4)}`,
        model,
        created: Math.floor(Date.now() / 1000),
        ...responseOptionsOf(body),
      };
      if (!body.stream) return await jsonResponse(parts, meta, extension, reply);
      return await streamResponse(
        reply,
        parts,
        { ...meta, errorBody: (error) => toHttpError(error, request.id).body },
        extension,
        () => tracked.abortError(),
      );
    } catch (error) {
      throw tracked.abortError() ?? error;
    } finally {
      tracked.release();
    }
  }
};
