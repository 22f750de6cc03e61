import { ApiError } from '../../errors.js';
import { nextTier } from '../../policy/cascade.js';
import { costUsd } from '../../policy/route-view.js';
import { routingPrompt } from '../../router/request-router.js';
import { runSteps, type StepRecord, type StepRunResult } from '../../steps/step-runner.js';
import { scoreStepPrefix } from '../../steps/step-scorer.js';
import { writeStep } from '../../steps/step-writer.js';
import { toTierError, type Usage } from '../../tiers/tier-model.js';
import { type ModeContext, workerFor } from '../answer-mode.js';
import { MODEL_ROUTER } from '../api-schema.js';
import { clientKey } from '../request-parsing.js';
import { cheapestTier } from '../services.js';
import { startSse } from '../sse-writer.js';

const totalUsage = (byTier: Record<string, Usage>): Usage =>
  Object.values(byTier).reduce(
    (sum, u) => ({
      input_tokens: sum.input_tokens + u.input_tokens,
      output_tokens: sum.output_tokens + u.output_tokens,
    }),
    { input_tokens: 0, output_tokens: 0 },
  );

/**
 * `x-mechroute-mode: steps`: the HTTP shell around `runSteps` — the step bundle, the encoder and the
 * tier pool wired in, each step logged and counted, the answer sent whole or as steps stream out.
 */
export async function answerWithSteps(ctx: ModeContext, threshold: number | undefined): Promise<unknown> {
  const { services, request, reply, body, signal } = ctx;
  const { config, telemetry, pool } = services;
  const stepConfig = config.steps;
  const stepBundle = services.stepBundle;
  if (!stepConfig || !stepBundle) {
    throw new ApiError(
      'MR_ERR_BAD_REQUEST',
      'step mode is not configured: the config has no `steps` section',
    );
  }
  const tierIds = config.tiers.map((t) => t.id);
  const worker = workerFor(body.model, stepConfig.worker ?? cheapestTier(config), tierIds, MODEL_ROUTER);
  const tau = threshold ?? stepConfig.threshold;
  const prompt = routingPrompt(body.messages);
  const priceOf = (tier: string) => config.tiers.find((t) => t.id === tier)!.price;
  const streaming = body.stream === true;
  const meta = {
    id: `chatcmpl-${request.id.slice(4)}`,
    model: MODEL_ROUTER,
    created: Math.floor(Date.now() / 1000),
    includeUsage: body.stream_options?.include_usage ?? false,
  };
  reply.header('x-mechroute-mode', 'steps');
  let sse: ReturnType<typeof startSse> | undefined;

  const onStep = async (step: StepRecord) => {
    telemetry.stepsWritten.inc({ tier: step.tier });
    request.log.info(
      {
        step: step.index,
        tier: step.tier,
        p_success: step.p_success,
        chars: step.text.length,
        rest: step.rest,
      },
      'step written',
    );
    if (!streaming) return;
    // The status line waits for the first step, so a request failing before any gets a real error status.
    sse ??= startSse(reply, meta, {});
    await sse.content(step.index === 0 ? step.text : `\n${step.text}`);
  };

  let run: StepRunResult;
  try {
    run = await runSteps(
      {
        write: (tier, call, options) =>
          writeStep(
            {
              stream: (id, r, o) => pool.stream(id, r, o),
              countTokens: (text) => services.encoder.tokenize(text).length,
            },
            tier,
            call,
            options,
          ),
        score: async (prefix) => {
          const started = performance.now();
          const p = await scoreStepPrefix(services.encoder, stepBundle, prompt, prefix);
          telemetry.encoderLatency.observe((performance.now() - started) / 1000);
          return p;
        },
        tierAbove: (tier) => nextTier({ tier }, services.routeTiers()),
      },
      {
        request: ctx.tierRequest,
        worker,
        threshold: tau,
        maxSwitches: stepConfig.max_switches,
        maxSteps: stepConfig.max_steps,
        maxStepTokens: stepConfig.max_step_tokens,
        minStepChars: stepBundle.steps.segmentation.min_chars,
        signal,
        onStep,
      },
    );
  } catch (error) {
    if (!sse) throw error;
    request.log.warn({ err: (error as Error).message }, 'step answer failed mid-stream');
    await sse.fail(toTierError(error, undefined));
    return reply;
  }

  let cost = 0;
  for (const [tier, usage] of Object.entries(run.usage_by_tier)) {
    const usd = costUsd(priceOf(tier), usage.input_tokens, usage.output_tokens);
    services.ledger?.charge(clientKey(request), usd, Date.now());
    cost += usd;
  }
  for (const s of run.switches) telemetry.stepSwitches.inc({ from: s.from, to: s.to, reason: s.reason });
  const lastTier = run.steps.at(-1)?.tier ?? worker;
  const upward = run.switches.filter((s) => s.reason === 'probe' && s.from === worker).length;
  telemetry.recordCompletion({
    requestId: request.id,
    tier: lastTier,
    costUsd: cost,
    latencyMs: performance.now() - ctx.startedAt,
    escalations: upward,
    fallback: run.switches.some((s) => s.reason === 'failover'),
  });
  const writers = [...new Set(run.steps.map((s) => s.tier))];
  const extension = {
    request_id: request.id,
    mode: 'steps',
    worker,
    probe_tier: stepBundle.probeTier,
    threshold: tau,
    steps: run.steps.map((s) => ({
      tier: s.tier,
      text: s.text,
      p_success: s.p_success,
      rest: s.rest,
      usage_estimated: s.usage_estimated,
    })),
    switches: run.switches,
    answered_by: writers,
    usage_by_tier: run.usage_by_tier,
    cost_usd: cost,
  };
  request.log.info(
    { mode: 'steps', writers: run.steps.map((s) => s.tier), switches: run.switches.length, cost_usd: cost },
    'answered step by step',
  );
  const usage = totalUsage(run.usage_by_tier);
  if (streaming) {
    sse ??= startSse(reply, meta, {});
    await sse.finish(run.finish_reason, usage, extension);
    return reply;
  }
  reply.header('x-mechroute-answered-by', writers.join(','));
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: MODEL_ROUTER,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: run.text, refusal: null },
        logprobs: null,
        finish_reason: run.finish_reason,
      },
    ],
    usage: {
      prompt_tokens: usage.input_tokens,
      completion_tokens: usage.output_tokens,
      total_tokens: usage.input_tokens + usage.output_tokens,
    },
    mechroute: extension,
  };
}
