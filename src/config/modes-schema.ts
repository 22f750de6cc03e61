import { z } from 'zod';

/**
 * The server's answer modes besides plain routing: live per-step routing (`steps`) and the
 * worker–advisor pattern (`advisor`). A request picks one with `x-mechroute-mode`; the config's
 * `mode` is the default for requests that do not.
 */
export const AnswerModeSchema = z.enum(['route', 'steps', 'advisor']);
export type AnswerMode = z.infer<typeof AnswerModeSchema>;

const TierRef = z.string().min(1);

export const StepModeConfigSchema = z.strictObject({
  probes: z
    .string()
    .min(1)
    .describe(
      'Step-probe bundle (a probe bundle with a `steps` field); relative paths are from the config file.',
    ),
  worker: TierRef.optional().describe(
    'The tier that writes steps while the probe trusts it (default: the cheapest).',
  ),
  probe_tier: TierRef.optional().describe(
    "Whose probe in the bundle gives P(the trajectory ends correct) (default: the worker's).",
  ),
  threshold: z
    .number()
    .min(0)
    .max(1)
    .default(0.5)
    .describe('τ: a step whose prefix scores P < τ hands the next step to the next tier up.'),
  max_switches: z
    .number()
    .int()
    .min(0)
    .max(64)
    .default(2)
    .describe('Changes of writer per request; once spent, the current writer finishes the answer.'),
  max_steps: z
    .number()
    .int()
    .min(1)
    .max(256)
    .default(16)
    .describe('Steps generated one by one; past it, the current writer finishes the answer in one call.'),
  max_step_tokens: z.number().int().min(1).max(4096).default(128).describe('Output tokens of one step.'),
});
export type StepModeConfig = z.infer<typeof StepModeConfigSchema>;

export const AdvisorConfigSchema = z.strictObject({
  worker: TierRef.optional().describe('The tier that solves the task (default: the cheapest).'),
  advisor: TierRef.optional().describe('The tier `ask_advisor` forwards to (default: the dearest).'),
  budget: z
    .number()
    .int()
    .min(0)
    .max(16)
    .default(1)
    .describe('Advisor calls per task; further calls get a refusal the worker sees as the tool result.'),
  max_rounds: z
    .number()
    .int()
    .min(1)
    .max(16)
    .default(4)
    .describe('Worker turns per task; the last one is offered no tool, so the worker must answer.'),
  max_advice_tokens: z.number().int().min(1).max(8192).default(512),
});
export type AdvisorConfig = z.infer<typeof AdvisorConfigSchema>;
