import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BudgetExceededError } from '../../errors.js';
import { nextTier, shouldEscalate } from '../../policy/cascade.js';
import type { RouteDecision } from '../../policy/policy-schema.js';
import { decisionError } from '../../policy/route.js';
import { costUsd } from '../../policy/route-view.js';
import { routingPrompt } from '../../router/request-router.js';
import { composedAnswerRefusal, responseOptionsOf, toTierRequest } from '../../tiers/openai-request.js';
import { buildChatCompletion, type OpenAIResponseMeta, toOpenAISse } from '../../tiers/openai-sse.js';
import {
  type GenerateResult,
  type StreamPart,
  TierError,
  UnsupportedParameterError,
  type Usage,
} from '../../tiers/tier-model.js';
import { requestMode } from '../answer-mode.js';
import { type ChatCompletionRequest, MODEL_ROUTER, parseChatCompletionRequest } from '../api-schema.js';
import { clientKey, overridesOf, setDecisionHeaders } from '../app.js';
import { HttpError } from '../http-errors.js';
import type { RouterServices } from '../services.js';
import { answerWithAdvisor } from './advisor-completions.js';
import { answerWithSteps } from './step-completions.js';

interface Attempt {
  tier: string;
  /** Why this tier was used instead of the decided one. */
  via?: 'failover' | 'escalation';
}

/**
 * `POST /v1/chat/completions`: `model: "mechroute"` routes (encoder → probes → policy), a tier id
 * bypasses routing. A tier that fails before producing anything hands the request to the next tier up
 * (routed requests only); in a stream, that is only possible before the first byte has left — a failure
 * after it ends the stream with an error event.
 */
export function registerChatRoute(app: FastifyInstance, services: RouterServices): void {
  const { config, telemetry, pool } = services;
  const tierIds = new Set(config.tiers.map((t) => t.id));
  const priceOf = (tier: string) => config.tiers.find((t) => t.id === tier)!.price;
  const open = new Set<AbortController>();

  // Open streams would keep close() waiting: end them first.
  app.addHook('preClose', async () => {
    for (const controller of open) controller.abort(new Error('server closing'));
  });

  /**
   * An abort signal for one request: fired when the client goes away, the server closes, or the
   * request's deadline (`server.request_timeout_ms` from its start) passes — then with a
   * MR_ERR_REQUEST_TIMEOUT error as the reason, which `timedOut` hands back in place of whatever the
   * aborted work threw.
   */
  function track(reply: FastifyReply, startedAt: number) {
    const controller = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) controller.abort(new Error('client went away'));
    };
    reply.raw.on('close', onClose);
    open.add(controller);
    const limitMs = config.server.request_timeout_ms;
    const deadline = setTimeout(
      () => controller.abort(requestTimeoutError(limitMs)),
      Math.max(0, limitMs - (performance.now() - startedAt)),
    );
    return {
      signal: controller.signal,
      timedOut: (): TierError | undefined =>
        controller.signal.reason instanceof TierError &&
        controller.signal.reason.code === 'MR_ERR_REQUEST_TIMEOUT'
          ? controller.signal.reason
          : undefined,
      release() {
        clearTimeout(deadline);
        open.delete(controller);
        reply.raw.off('close', onClose);
      },
    };
  }

  async function decide(request: FastifyRequest, body: ChatCompletionRequest): Promise<RouteDecision> {
    const overrides = overridesOf(request, body);
    if (body.model !== MODEL_ROUTER) {
      if (!tierIds.has(body.model)) {
        throw new HttpError(
          404,
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
        result = await pool.generate(attempt.tier, toTierRequest(body, { logprobs: cascade }), { signal });
      } catch (error) {
        const next: string | undefined =
          error instanceof TierError && !signal.aborted ? failoverFrom(routed, attempt.tier) : undefined;
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
      for await (const part of pool.stream(attempt.tier, toTierRequest(body), { signal })) {
        if (part.type === 'error' && !started) {
          const next: string | undefined = signal.aborted ? undefined : failoverFrom(routed, attempt.tier);
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
    const body = parseChatCompletionRequest(request.body);
    const startedAt = performance.now();
    const mode = requestMode(request.headers, config.mode);
    if (mode.mode !== 'route') {
      const refused = composedAnswerRefusal(toTierRequest(body), mode.mode);
      if (refused) throw new UnsupportedParameterError(undefined, refused.param, refused.reason);
      // These modes spend without a routing decision, so a client whose rolling budget is gone stops here.
      const key = clientKey(request);
      if (services.ledger && services.ledger.remaining(key, Date.now()) <= 0) {
        throw new BudgetExceededError(`the rolling budget of ${key} is spent`);
      }
      // Step and advisor answers: their own modules; this route only validates and tracks the abort.
      const { signal, timedOut, release } = track(reply, startedAt);
      try {
        const ctx = {
          services,
          request,
          reply,
          body,
          tierRequest: toTierRequest(body),
          signal,
          startedAt,
        };
        return await (mode.mode === 'steps'
          ? answerWithSteps(ctx, mode.stepThreshold)
          : answerWithAdvisor(ctx));
      } catch (error) {
        throw timedOut() ?? error;
      } finally {
        release();
      }
    }
    const decision = await decide(request, body);
    setDecisionHeaders(reply, decision);
    const refused = decisionError(decision);
    if (refused) throw refused;
    telemetry.decisions.inc({ tier: decision.tier, policy_version: decision.policy_version });
    if (decision.fallback) telemetry.fallbacks.inc({ reason: 'policy' });

    const { signal, timedOut, release } = track(reply, startedAt);
    const meta: OpenAIResponseMeta = {
      id: `chatcmpl-${request.id.slice(4)}`,
      model: decision.tier,
      created: Math.floor(Date.now() / 1000),
      ...responseOptionsOf(body),
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
      if (first.done) throw new HttpError(502, 'MR_ERR_UPSTREAM_EXHAUSTED', 'no tier produced a response');
      if (first.value.type === 'error') throw first.value.error;
      let usage: Usage | undefined;
      async function* replay(): AsyncGenerator<StreamPart> {
        let part: IteratorResult<StreamPart> = first;
        while (!part.done) {
          if (part.value.type === 'finish') usage = part.value.usage;
          const late = part.value.type === 'error' ? timedOut() : undefined;
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
      throw timedOut() ?? error;
    } finally {
      release();
    }
  });
}

function requestTimeoutError(limitMs: number): TierError {
  return new TierError(
    'MR_ERR_REQUEST_TIMEOUT',
    `the request took longer than server.request_timeout_ms (${limitMs} ms); its tier calls were cancelled`,
    { status: 504, isRetryable: false },
  );
}
