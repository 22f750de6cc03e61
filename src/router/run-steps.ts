import type { TierPlan } from '../policy/policy-schema.js';
import { runSteps } from '../steps/step-runner.js';
import { writeStep } from '../steps/step-writer.js';
import type { TierRequest, Usage } from '../tiers/tier-model.js';
import { createChannel } from './channel.js';
import {
  type ExecuteOptions,
  type ExecutionPart,
  type ExecutorDeps,
  type StepSettings,
  tierBudgetMs,
  totalUsage,
} from './execution.js';

/**
 * Steps mode: the plan's first tier (the worker) writes one step at a time, the step probe reads the
 * prompt plus the steps so far, and a doubted step hands the next one up the plan (see
 * src/steps/step-runner.ts for the rule). Each step is reported as it is written, and streamed as a
 * content part; the calls are charged when the answer is complete.
 */
export function runStepsMode(
  deps: ExecutorDeps,
  plan: TierPlan,
  settings: StepSettings,
  request: TierRequest,
  options: ExecuteOptions,
): AsyncIterable<ExecutionPart> {
  const channel = createChannel<ExecutionPart>();
  const { scoreResponse } = deps;
  const tierAbove = (tier: string) => {
    const at = plan.tiers.indexOf(tier);
    return at >= 0 ? plan.tiers[at + 1] : undefined;
  };
  const worker = plan.tiers[0]!;
  const run = async () => {
    if (!scoreResponse) throw new Error('steps mode needs a step probe (deps.scoreResponse)');
    channel.push({ type: 'attempt-start', tier: worker, via: 'chosen' });
    const result = await runSteps(
      {
        write: (tier, call, writeOptions) =>
          writeStep(
            {
              stream: (id, r, o) =>
                deps.stream(id, r, {
                  ...o,
                  timeoutMs: tierBudgetMs(
                    options.remainingMs(),
                    Math.max(1, plan.tiers.length - plan.tiers.indexOf(id)),
                  ),
                }),
              countTokens: deps.countTokens,
            },
            tier,
            call,
            writeOptions,
          ),
        score: (prefix) => scoreResponse(prefix, options.signal),
        tierAbove,
      },
      {
        request,
        worker,
        threshold: settings.threshold,
        maxSwitches: settings.max_switches,
        maxSteps: settings.max_steps,
        maxStepTokens: settings.max_step_tokens,
        minStepChars: settings.min_step_chars,
        signal: options.signal,
        onStep: (step) => {
          channel.push({ type: 'step', step });
          if (options.stream)
            channel.push({ type: 'text-delta', text: step.index === 0 ? step.text : `\n${step.text}` });
        },
      },
    );
    let cost = 0;
    for (const [tier, usage] of Object.entries(result.usage_by_tier)) {
      const usd = deps.charge(tier, usage);
      cost += usd;
      channel.push({ type: 'usage', tier, usage, cost_usd: usd });
    }
    const usage: Usage = totalUsage(result.usage_by_tier);
    const writers = [...new Set(result.steps.map((s) => s.tier))];
    const lastWriter = result.steps.at(-1)?.tier ?? worker;
    if (options.stream) channel.push({ type: 'finish', finish_reason: result.finish_reason, usage });
    else {
      channel.push({
        type: 'answer',
        result: {
          text: result.text,
          finish_reason: result.finish_reason,
          usage,
          warnings: [],
          tier: lastWriter,
          deployment: '',
        },
      });
    }
    channel.push({
      type: 'done',
      summary: {
        mode: 'steps',
        answered_by: lastWriter,
        attempts: [
          { tier: worker, via: 'chosen', outcome: 'answered' },
          ...result.switches.map((s) => ({
            tier: s.to,
            via: s.reason === 'failover' ? ('failover' as const) : ('escalation' as const),
            outcome: 'answered' as const,
          })),
        ],
        escalations: result.switches.filter((s) => s.reason === 'probe' && s.from === worker).length,
        cost_usd: cost,
        usage_by_tier: result.usage_by_tier,
        finish_reason: result.finish_reason,
        steps: { steps: result.steps, switches: result.switches, writers },
      },
    });
  };
  run().then(
    () => channel.close(),
    (error: unknown) => channel.fail(error),
  );
  return channel.iterable;
}
