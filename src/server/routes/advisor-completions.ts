import { advisorMessages, runAdvisorLoop } from '../../advisor/advisor-loop.js';
import { ApiError } from '../../errors.js';
import { costUsd } from '../../policy/route-view.js';
import { routingPrompt } from '../../router/request-router.js';
import { buildChatCompletion } from '../../tiers/openai-sse.js';
import { type ModeContext, workerFor } from '../answer-mode.js';
import { MODEL_ROUTER } from '../api-schema.js';
import { clientKey } from '../request-parsing.js';
import { cheapestTier, dearestTier } from '../services.js';
import { startSse } from '../sse-writer.js';

/**
 * `x-mechroute-mode: advisor`: the HTTP shell around `runAdvisorLoop` — worker and advisor tiers from
 * the config, every advisor call logged with its cost and counted. Tool rounds are not streamed (the
 * worker's tool calls are read from whole answers); with `stream: true` the final answer is sent as a
 * stream once it is known, the extension in its finish chunk.
 */
export async function answerWithAdvisor(ctx: ModeContext): Promise<unknown> {
  const { services, request, reply, body, signal } = ctx;
  const { config, telemetry, pool } = services;
  if ((body as { tools?: unknown }).tools !== undefined) {
    throw new ApiError(
      'MR_ERR_BAD_REQUEST',
      'advisor mode offers the worker its own tool (ask_advisor); requests with `tools` are not supported in it',
    );
  }
  const tierIds = config.tiers.map((t) => t.id);
  const worker = workerFor(body.model, config.advisor.worker ?? cheapestTier(config), tierIds, MODEL_ROUTER);
  const advisor = config.advisor.advisor ?? dearestTier(config);
  const priceOf = (tier: string) => config.tiers.find((t) => t.id === tier)!.price;
  const task = routingPrompt(body.messages);
  reply.header('x-mechroute-mode', 'advisor');

  const run = await runAdvisorLoop(
    {
      callWorker: (req) => pool.generate(worker, req, { signal }),
      callAdvisor: (question) =>
        pool.generate(
          advisor,
          {
            messages: advisorMessages(task, question),
            max_tokens: config.advisor.max_advice_tokens,
            temperature: 0,
          },
          { signal },
        ),
      adviceCost: (usage) => costUsd(priceOf(advisor), usage.input_tokens, usage.output_tokens),
      onCall: (record) => {
        telemetry.advisorCalls.inc({ outcome: record.outcome });
        if (record.cost_usd > 0) telemetry.advisorCost.inc({ tier: advisor }, record.cost_usd);
        request.log.info(
          {
            advisor_call: record.call_id,
            advisor,
            outcome: record.outcome,
            cost_usd: record.cost_usd,
            input_tokens: record.usage?.input_tokens ?? 0,
            output_tokens: record.usage?.output_tokens ?? 0,
          },
          'ask_advisor',
        );
      },
    },
    { request: ctx.tierRequest, budget: config.advisor.budget, maxRounds: config.advisor.max_rounds },
  );

  const workerCost = costUsd(priceOf(worker), run.worker_usage.input_tokens, run.worker_usage.output_tokens);
  const adviceCost = run.calls.reduce((sum, c) => sum + c.cost_usd, 0);
  const cost = workerCost + adviceCost;
  services.ledger?.charge(clientKey(request), cost, Date.now());
  telemetry.recordCompletion({
    requestId: request.id,
    tier: worker,
    costUsd: cost,
    latencyMs: performance.now() - ctx.startedAt,
    escalations: 0,
    fallback: false,
  });
  const extension = {
    request_id: request.id,
    mode: 'advisor',
    worker,
    advisor,
    budget: config.advisor.budget,
    rounds: run.rounds,
    advisor_calls: run.calls.map((c) => ({
      outcome: c.outcome,
      question: c.question ?? null,
      cost_usd: c.cost_usd,
      usage: c.usage ?? null,
    })),
    worker_cost_usd: workerCost,
    advisor_cost_usd: adviceCost,
    cost_usd: cost,
  };
  request.log.info(
    { mode: 'advisor', worker, advisor, rounds: run.rounds, advisor_calls: run.calls.length, cost_usd: cost },
    'answered with advisor',
  );
  reply.header('x-mechroute-answered-by', worker);
  const meta = {
    id: `chatcmpl-${request.id.slice(4)}`,
    model: worker,
    created: Math.floor(Date.now() / 1000),
  };
  if (body.stream) {
    const sse = startSse(reply, { ...meta, includeUsage: body.stream_options?.include_usage ?? false }, {});
    await sse.content(run.final.text);
    await sse.finish(run.final.finish_reason, run.final.usage, extension);
    return reply;
  }
  return { ...buildChatCompletion(run.final, meta), mechroute: extension };
}
