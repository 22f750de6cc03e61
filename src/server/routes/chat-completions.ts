import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, BudgetExceededError } from '../../errors.js';
import { nextTier, shouldEscalate } from '../../policy/cascade.js';
import type { RouteDecision } from '../../policy/policy-schema.js';
import { decisionError } from '../../policy/route.js';
import { costUsd } from '../../policy/route-view.js';
import { routingPrompt } from '../../router/request-router.js';
import { buildChatCompletion, type OpenAIResponseMeta, toOpenAISse } from '../../tiers/openai-sse.js';
import {
  canFailOver,
  type GenerateResult,
  type StreamPart,
  TierError,
  type TierRequest,
  type Usage,
} from '../../tiers/tier-model.js';
import { requestMode } from '../answer-mode.js';
import { type ChatCompletionRequest, ChatCompletionRequestSchema, MODEL_ROUTER } from '../api-schema.js';
import type { InflightRequests, TrackedRequest } from '../inflight.js';
import { clientKey, overridesOf, parseOr400, setDecisionHeaders } from '../request-parsing.js';
import type { RouterServices } from '../services.js';
import { answerWithAdvisor } from './advisor-completions.js';
import { answerWithSteps } from './step-completions.js';

interface Attempt {
  tier: string;
  /** Why this tier was used instead of the decided one. */
  via?: 'failover' | 'escalation';
}

function tierRequestOf(body: ChatCompletionRequest, logprobs: boolean): TierRequest {
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  return {
    messages: body.messages,
    ...(maxTokens == null ? {} : { max_tokens: maxTokens }),
    ...(body.temperature == null ? {} : { temperature: body.temperature }),
    ...(body.top_p == null ? {} : { top_p: body.top_p }),
    ...(body.stop == null ? {} : { stop: body.stop }),
    ...(body.seed == null ? {} : { seed: body.seed }),
    ...(logprobs || body.logprobs ? { logprobs: true } : {}),
  };
}

/**
 * `POST /v1/chat/completions`: `model: "mechroute"` routes (encoder → probes → policy), a tier id
 * bypasses routing. A tier that fails before producing anything hands the request to the next tier up
 * (routed requests only); in a stream, that is only possible before the first byte has left — a failure
 * after it ends the stream with an error event.
 */
export function registerChatRoute(
  app: FastifyInstance,
  services: RouterServices,
  inflight: InflightRequests,
): void {
  const { config, telemetry, pool } = services;
  const tierIds = new Set(config.tiers.map((t) => t.id));
  const priceOf = (tier: string) => config.tiers.find((t) => t.id === tier)!.price;
  async function decide(
    request: FastifyRequest,
    body: ChatCompletionRequest,
    tracked: TrackedRequest,
  ): Promise<RouteDecision> {
    const overrides = overridesOf(request, body);
    if (body.model !== MODEL_ROUTER) {
      if (!tierIds.has(body.model)) {
        throw new ApiError(
          'MR_ERR_UNKNOWN_MODEL',
          `unknown model "${body.model}": use "${MODEL_ROUTER}" or one of ${[...tierIds].join(', ')}`,
        );
      }
      const tier = services.routeTiers().find((t) => t.id === body.model)!;
      return {
        tier: body.model,
        policy_version: services.policies.current().version,
        policy_kind: services.policies.current().kind,
        p_success: {},
        difficulty: Number.NaN,
        expected_cost_usd: 0,
        reasons: ['model names a tier: routing bypassed'],
        ...(tier.available
          ? {}
          : {
              error: {
                code: 'MR_ERR_TIER_UNAVAILABLE',
                message: `tier ${tier.id}: ${tier.unavailable_reason}`,
              },
            }),
      };
    }
    const maxTokens = body.max_completion_tokens ?? body.max_tokens;
    const routed = await services.router.decide({
      prompt: routingPrompt(body.messages),
      overrides,
      ...(maxTokens == null ? {} : { maxOutputTokens: maxTokens }),
      budgetKey: clientKey(request),
      call: { signal: tracked.signal, deadlineMs: tracked.remainingMs() },
    });
    telemetry.encoderLatency.observe(routed.encoderMs / 1000);
    return routed.decision;
  }

  function charge(request: FastifyRequest, tier: string, usage: Usage): number {
    const price = priceOf(tier);
    const usd = costUsd(price, usage.input_tokens, usage.output_tokens);
    services.ledger?.charge(clientKey(request), usd, Date.now());
    return usd;
  }

  /** The tier above `tier` that may take over, for routed requests. */
  const failoverFrom = (routed: boolean, tier: string) =>
    routed ? nextTier({ tier }, services.routeTiers()) : undefined;

  async function generate(
    request: FastifyRequest,
    body: ChatCompletionRequest,
    decision: RouteDecision,
    signal: AbortSignal,
  ) {
    const routed = body.model === MODEL_ROUTER;
    const cascade = routed && decision.policy_kind === 'cascade';
    const policy = services.policies.current();
    const attempts: Attempt[] = [];
    let attempt: Attempt | undefined = { tier: decision.tier };
    let escalations = 0;
    let cost = 0;
    let result: GenerateResult | undefined;
    while (attempt) {
      attempts.push(attempt);
      try {
        result = await pool.generate(attempt.tier, tierRequestOf(body, cascade), { signal });
      } catch (error) {
        const next: string | undefined =
          error instanceof TierError && canFailOver(error) && !signal.aborted
            ? failoverFrom(routed, attempt.tier)
            : undefined;
        if (!next) throw error;
        request.log.warn(
          { tier: attempt.tier, next, code: (error as TierError).code },
          'tier failed; failing over',
        );
        telemetry.fallbacks.inc({ reason: 'failover' });
        attempt = { tier: next, via: 'failover' };
        continue;
      }
      cost += charge(request, attempt.tier, result.usage);
      attempt = undefined;
      if (cascade && result.logprobs) {
        const verdict = shouldEscalate(
          { kind: 'logprob', mean_logprob: result.logprobs.mean_logprob },
          policy,
          escalations,
        );
        const next = verdict.escalate ? failoverFrom(true, result.tier) : undefined;
        request.log.info({ tier: result.tier, verdict: verdict.reason }, 'cascade gate');
        if (next) {
          telemetry.escalations.inc({ from: result.tier, to: next });
          escalations += 1;
          attempt = { tier: next, via: 'escalation' };
        }
      }
    }
    return { result: result!, attempts, escalations, cost };
  }

  async function* streamWithFailover(
    request: FastifyRequest,
    body: ChatCompletionRequest,
    decision: RouteDecision,
    signal: AbortSignal,
    used: Attempt[],
  ): AsyncGenerator<StreamPart> {
    const routed = body.model === MODEL_ROUTER;
    let attempt: Attempt | undefined = { tier: decision.tier };
    while (attempt) {
      used.push(attempt);
      let started = false;
      for await (const part of pool.stream(attempt.tier, tierRequestOf(body, false), { signal })) {
        if (part.type === 'error' && !started) {
          const next: string | undefined =
            signal.aborted || !canFailOver(part.error) ? undefined : failoverFrom(routed, attempt.tier);
          if (next) {
            request.log.warn(
              { tier: attempt.tier, next, code: part.error.code },
              'tier failed before its first byte',
            );
            telemetry.fallbacks.inc({ reason: 'failover' });
            attempt = { tier: next, via: 'failover' };
            break;
          }
        }
        if (part.type === 'start' || part.type === 'text-delta') started = true;
        yield part;
        if (part.type === 'finish' || part.type === 'error') return;
      }
      if (started) return;
    }
  }

  app.post('/v1/chat/completions', async (request: FastifyRequest, reply: FastifyReply) => {
    const body = parseOr400(ChatCompletionRequestSchema, request.body, 'chat completion request');
    const startedAt = performance.now() - reply.elapsedTime;
    const mode = requestMode(request.headers, config.mode);
    if (mode.mode !== 'route') {
      if (body.logprobs) {
        // Answers stitched from several calls (and tiers) have no one token distribution to report.
        throw new ApiError('MR_ERR_BAD_REQUEST', `logprobs are not available in mode "${mode.mode}"`);
      }
      // These modes spend without a routing decision, so a client whose rolling budget is gone stops here.
      const key = clientKey(request);
      if (services.ledger && services.ledger.remaining(key, Date.now()) <= 0) {
        throw new BudgetExceededError(`the rolling budget of ${key} is spent`);
      }
      // Step and advisor answers: their own modules; this route only validates and tracks the abort.
      const tracked = inflight.track(reply);
      const { signal } = tracked;
      try {
        const ctx = {
          services,
          request,
          reply,
          body,
          tierRequest: tierRequestOf(body, false),
          signal,
          startedAt,
        };
        return await (mode.mode === 'steps'
          ? answerWithSteps(ctx, mode.stepThreshold)
          : answerWithAdvisor(ctx));
      } catch (error) {
        throw tracked.abortError() ?? error;
      } finally {
        tracked.release();
      }
    }
    const tracked = inflight.track(reply);
    const { signal } = tracked;
    let decision: RouteDecision;
    try {
      decision = await decide(request, body, tracked);
    } catch (error) {
      tracked.release();
      throw tracked.abortError() ?? error;
    }
    setDecisionHeaders(reply, decision);
    const refused = decisionError(decision);
    if (refused) {
      tracked.release();
      throw refused;
    }
    telemetry.decisions.inc({ tier: decision.tier, policy_version: decision.policy_version });
    if (decision.fallback) telemetry.fallbacks.inc({ reason: 'policy' });

    const meta: OpenAIResponseMeta = {
      id: `chatcmpl-${request.id.slice(4)}`,
      model: decision.tier,
      created: Math.floor(Date.now() / 1000),
      includeUsage: body.stream_options?.include_usage ?? false,
    };
    const extension = (attempts: Attempt[], escalations: number, cost: number) => ({
      request_id: request.id,
      decided_tier: decision.tier,
      answered_by: attempts.at(-1)?.tier ?? decision.tier,
      attempts,
      escalations,
      cost_usd: cost,
      policy_version: decision.policy_version,
      p_success: decision.p_success,
      difficulty: decision.difficulty,
      reasons: decision.reasons,
    });

    try {
      if (!body.stream) {
        const { result, attempts, escalations, cost } = await generate(request, body, decision, signal);
        reply.header('x-mechroute-answered-by', result.tier);
        telemetry.recordCompletion({
          requestId: request.id,
          tier: result.tier,
          costUsd: cost,
          latencyMs: performance.now() - startedAt,
          escalations,
          fallback: attempts.some((a) => a.via === 'failover'),
          policyVersion: decision.policy_version,
          ...(decision.task_class ? { taskClass: decision.task_class.name } : {}),
        });
        request.log.info({ decided: decision.tier, answered_by: result.tier, cost_usd: cost }, 'answered');
        return {
          ...buildChatCompletion(result, { ...meta, model: result.tier }),
          mechroute: extension(attempts, escalations, cost),
        };
      }

      // Streaming: hold the status line until the first part, so a request whose tiers all fail before
      // producing anything still gets a proper error status instead of a 200 with an error event.
      const attempts: Attempt[] = [];
      const parts = streamWithFailover(request, body, decision, signal, attempts)[Symbol.asyncIterator]();
      const first = await parts.next();
      if (first.done) throw new ApiError('MR_ERR_UPSTREAM_EXHAUSTED', 'no tier produced a response');
      if (first.value.type === 'error') throw first.value.error;
      let usage: Usage | undefined;
      async function* replay(): AsyncGenerator<StreamPart> {
        let part: IteratorResult<StreamPart> = first;
        while (!part.done) {
          if (part.value.type === 'finish') usage = part.value.usage;
          const late = part.value.type === 'error' ? tracked.abortError() : undefined;
          yield late ? { type: 'error', error: late } : part.value;
          part = await parts.next();
        }
      }
      reply.hijack();
      reply.raw.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-mechroute-answered-by': attempts.at(-1)!.tier,
      });
      for await (const line of toOpenAISse(replay(), { ...meta, model: attempts.at(-1)!.tier })) {
        if (reply.raw.destroyed) break; // the client left: the abort above has stopped the tier
        if (!reply.raw.write(line)) {
          // A slow reader: wait for room, or for the socket to go away (no 'drain' comes then).
          await new Promise((resolve) => {
            reply.raw.once('drain', resolve);
            reply.raw.once('close', resolve);
          });
        }
      }
      reply.raw.end();
      const tier = attempts.at(-1)!.tier;
      const cost = usage ? charge(request, tier, usage) : 0;
      telemetry.recordCompletion({
        requestId: request.id,
        tier,
        costUsd: cost,
        latencyMs: performance.now() - startedAt,
        escalations: 0,
        fallback: attempts.some((a) => a.via === 'failover'),
        policyVersion: decision.policy_version,
        ...(decision.task_class ? { taskClass: decision.task_class.name } : {}),
      });
      return reply;
    } catch (error) {
      throw tracked.abortError() ?? error;
    } finally {
      tracked.release();
    }
  });
}
