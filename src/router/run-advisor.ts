import { advisorMessages, runAdvisorLoop } from '../advisor/advisor-loop.js';
import type { TierPlan } from '../policy/policy-schema.js';
import { resultAsParts, type TierRequest, type Usage } from '../tiers/tier-model.js';
import { createChannel } from './channel.js';
import {
  type AdvisorSettings,
  addUsage,
  type ExecuteOptions,
  type ExecutionPart,
  type ExecutorDeps,
  tierBudgetMs,
} from './execution.js';

/**
 * Advisor mode: the plan's tier (the worker) answers with one tool, `ask_advisor`, that forwards a
 * question about the task to the advisor tier within a per-task budget (src/advisor/advisor-loop.ts).
 * Tool rounds are whole calls; a streamed request gets the final answer as one content part.
 */
export function runAdvisorMode(
  deps: ExecutorDeps,
  plan: TierPlan,
  settings: AdvisorSettings,
  request: TierRequest,
  options: ExecuteOptions,
): AsyncIterable<ExecutionPart> {
  const channel = createChannel<ExecutionPart>();
  const worker = plan.tiers[0]!;
  const { signal } = options;
  const budget = () => ({ signal, timeoutMs: tierBudgetMs(options.remainingMs(), 1) });
  const run = async () => {
    channel.push({ type: 'attempt-start', tier: worker, via: 'chosen' });
    const usageByTier: Record<string, Usage> = {};
    let cost = 0;
    const result = await runAdvisorLoop(
      {
        callWorker: (r) => deps.generate(worker, r, budget()),
        callAdvisor: (question) =>
          deps.generate(
            settings.tier,
            {
              messages: advisorMessages(options.prompt, question),
              max_tokens: settings.max_advice_tokens,
              temperature: 0,
            },
            budget(),
          ),
        adviceCost: (usage) => {
          const usd = deps.charge(settings.tier, usage);
          cost += usd;
          addUsage(usageByTier, settings.tier, usage);
          return usd;
        },
        onCall: (record) => channel.push({ type: 'advisor-call', record, tier: settings.tier }),
      },
      { request, budget: settings.budget, maxRounds: settings.max_rounds },
    );
    const workerCost = deps.charge(worker, result.worker_usage);
    cost += workerCost;
    addUsage(usageByTier, worker, result.worker_usage);
    channel.push({ type: 'usage', tier: worker, usage: result.worker_usage, cost_usd: workerCost });
    const final = result.final;
    if (options.stream) for (const part of resultAsParts(final)) channel.push(part as ExecutionPart);
    else channel.push({ type: 'answer', result: final });
    channel.push({
      type: 'done',
      summary: {
        mode: 'advisor',
        answered_by: worker,
        attempts: [{ tier: worker, via: 'chosen', outcome: 'answered' }],
        escalations: 0,
        cost_usd: cost,
        usage_by_tier: usageByTier,
        finish_reason: final.finish_reason,
        advisor: { calls: result.calls, rounds: result.rounds, worker_usage: result.worker_usage },
      },
    });
  };
  run().then(
    () => channel.close(),
    (error: unknown) => channel.fail(error),
  );
  return channel.iterable;
}
