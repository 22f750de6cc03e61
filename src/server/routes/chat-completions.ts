import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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
import type { TierRequest } from '../../tiers/tier-model.js';
import { type RequestMode, requestMode } from '../answer-mode.js';
import { type ChatCompletionRequest, ChatCompletionRequestSchema } from '../api-schema.js';
import { extensionOf, observeExecution } from '../chat-observer.js';
import { jsonResponse, streamResponse } from '../chat-response.js';
import { toHttpError } from '../http-errors.js';
import type { InflightRequests, TrackedRequest } from '../inflight.js';
import { clientKey, overridesOf, parseOr400, setDecisionHeaders } from '../request-parsing.js';
import type { RouterServices } from '../services.js';

function tierRequestOf(body: ChatCompletionRequest): TierRequest {
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  return {
    messages: body.messages,
    ...(maxTokens == null ? {} : { max_tokens: maxTokens }),
    ...(body.temperature == null ? {} : { temperature: body.temperature }),
    ...(body.top_p == null ? {} : { top_p: body.top_p }),
    ...(body.stop == null ? {} : { stop: body.stop }),
    ...(body.seed == null ? {} : { seed: body.seed }),
    ...(body.logprobs ? { logprobs: true } : {}),
  };
}

/** Requests a mode cannot honour are refused, naming what, before anything is spent. */
function refuseUnsupported(mode: RequestMode, body: ChatCompletionRequest): void {
  if (mode.mode !== 'route' && body.logprobs) {
    // Answers stitched from several calls (and tiers) have no one token distribution to report.
    throw new ApiError('MR_ERR_BAD_REQUEST', `logprobs are not available in mode "${mode.mode}"`);
  }
  if (mode.mode === 'advisor' && (body as { tools?: unknown }).tools !== undefined) {
    throw new ApiError(
      'MR_ERR_BAD_REQUEST',
      'advisor mode offers the worker its own tool (ask_advisor); requests with `tools` are not supported in it',
    );
  }
}

/**
 * `POST /v1/chat/completions`, a thin shell: validate; plan (the routing decision for `model:
 * "mechroute"`, the named tier otherwise, or the plan of a step or advisor answer), with the policy
 * pinned in the plan for the whole request; run the plan with the executor (src/router/executor.ts);
 * send its parts as one JSON body or one SSE stream. Logs and metrics come from the same parts.
 */
export function registerChatRoute(
  app: FastifyInstance,
  services: RouterServices,
  inflight: InflightRequests,
): void {
  const { config, telemetry, pool } = services;
  const priceOf = (tier: string) => config.tiers.find((t) => t.id === tier)!.price;

  async function plan(
    request: FastifyRequest,
    body: ChatCompletionRequest,
    mode: RequestMode,
    tracked: TrackedRequest,
  ): Promise<{ plan: ExecutionPlan; decision?: RouteDecision }> {
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
    if (body.model === MODEL_ROUTER) {
      const maxTokens = body.max_completion_tokens ?? body.max_tokens;
      const routed = await services.router.decide({
        prompt: routingPrompt(body.messages),
        overrides,
        ...(maxTokens == null ? {} : { maxOutputTokens: maxTokens }),
        budgetKey: clientKey(request),
        call: { signal: tracked.signal, deadlineMs: tracked.remainingMs() },
      });
      telemetry.encoderLatency.observe(routed.encoderMs / 1000);
      decision = routed.decision;
    } else {
      const tier = tiers.find((t) => t.id === body.model);
      if (!tier) {
        throw new ApiError(
          'MR_ERR_UNKNOWN_MODEL',
          `unknown model "${body.model.slice(0, 200)}": use "${MODEL_ROUTER}" or one of ${tiers.map((t) => t.id).join(', ')}`,
        );
      }
      decision = namedTierDecision(tier, policy.version, policy.kind);
    }
    telemetry.decisions.inc({
      tier: decision.tier || 'none',
      policy_version: decision.policy_version,
    });
    const refused = decisionError(decision);
    if (refused) throw refused;
    if (decision.plan?.gate?.kind === 'probe' && decision.plan.max_escalations > 0 && !services.stepBundle) {
      // A policy installed after startup (reload, rollback); without the bundle the gate could only guess.
      throw new MechrouteError('MR_ERR_NO_STEP_PROBE', `cascade.gate.kind ${PROBE_GATE_NEEDS_STEPS}`);
    }
    if (decision.fallback) telemetry.fallbacks.inc({ reason: 'policy' });
    return { plan: { mode: 'route', tiers: decision.plan! }, decision };
  }

  /** The executor's view of the process, for one request: its client's budget, its prompt, its encoder. */
  function executorDeps(request: FastifyRequest, prompt: string): ExecutorDeps {
    const key = clientKey(request);
    const stepBundle = services.stepBundle;
    return {
      generate: (tier, r, o) => pool.generate(tier, r, o),
      stream: (tier, r, o) => pool.stream(tier, r, o),
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

  app.post('/v1/chat/completions', async (request: FastifyRequest, reply: FastifyReply) => {
    const body = parseOr400(ChatCompletionRequestSchema, request.body, 'chat completion request');
    const mode = requestMode(request.headers, config.mode);
    refuseUnsupported(mode, body);
    const tracked = inflight.track(reply);
    try {
      const planned = await plan(request, body, mode, tracked);
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
        createExecutor(executorDeps(request, prompt)).execute(planned.plan, tierRequestOf(body), {
          stream: body.stream === true,
          signal: tracked.signal,
          remainingMs: tracked.remainingMs,
          prompt,
        }),
        { request, telemetry, decision: planned.decision, startedAt: performance.now() - reply.elapsedTime },
      );
      const extension = extensionOf(request.id, planned.plan, planned.decision);
      // A routed answer is labelled with the tier that gave it; a stitched one with the router.
      const model = mode.mode === 'steps' ? MODEL_ROUTER : '';
      const meta = { id: `chatcmpl-${request.id.slice(4)}`, model, created: Math.floor(Date.now() / 1000) };
      if (!body.stream) return await jsonResponse(parts, meta, extension, reply);
      return await streamResponse(
        reply,
        parts,
        {
          ...meta,
          includeUsage: body.stream_options?.include_usage ?? false,
          errorBody: (error) => toHttpError(error, request.id).body,
        },
        extension,
        () => tracked.abortError(),
      );
    } catch (error) {
      throw tracked.abortError() ?? error;
    } finally {
      tracked.release();
    }
  });
}
