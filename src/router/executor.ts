import { TierError, type TierRequest } from '../tiers/tier-model.js';
import type { ExecuteOptions, ExecutionPart, ExecutionPlan, ExecutorDeps } from './execution.js';
import { runAdvisorMode } from './run-advisor.js';
import { runRoute } from './run-route.js';
import { runStepsMode } from './run-steps.js';

export type * from './execution.js';

/**
 * Runs a plan, whatever its mode, streaming or not, and reports it as typed parts: attempts and their
 * failures, escalations, steps, advisor calls, usage with its cost, the answer (content parts then
 * `finish`, or one whole `answer`), then `done` — or `error`. A tier failure becomes an `error` part;
 * anything else thrown is a bug and propagates.
 *
 * No HTTP here: the server's handler turns the parts into a response (JSON or SSE), logs and metrics.
 */
export function createExecutor(deps: ExecutorDeps) {
  return {
    async *execute(
      plan: ExecutionPlan,
      request: TierRequest,
      options: ExecuteOptions,
    ): AsyncGenerator<ExecutionPart> {
      try {
        switch (plan.mode) {
          case 'route':
            yield* runRoute(deps, plan.tiers, request, options);
            return;
          case 'steps':
            yield* runStepsMode(deps, plan.tiers, plan.steps, request, options);
            return;
          case 'advisor':
            yield* runAdvisorMode(deps, plan.tiers, plan.advisor, request, options);
            return;
        }
      } catch (error) {
        if (!(error instanceof TierError)) throw error;
        yield { type: 'error', error };
      }
    },
  };
}

export type Executor = ReturnType<typeof createExecutor>;
