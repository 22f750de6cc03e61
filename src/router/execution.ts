import type { AdvisorCallRecord } from '../advisor/advisor-loop.js';
import type { TierPlan } from '../policy/policy-schema.js';
import type { StepRecord, StepSwitch } from '../steps/step-runner.js';
import type {
  CallOptions,
  FinishReason,
  GenerateResult,
  StreamPart,
  TierError,
  TierRequest,
  Usage,
} from '../tiers/tier-model.js';

/**
 * What the executor runs: one of the three answer modes over a `TierPlan` fixed before the first tier
 * call. `route` answers with the plan's first tier (then failover, and escalation through the cascade's
 * gate); `steps` has the plan's first tier write step by step, handing steps up the plan when the step
 * probe doubts them; `advisor` has the worker answer with one budgeted tool that consults the advisor.
 */
export type ExecutionPlan =
  | { mode: 'route'; tiers: TierPlan }
  | { mode: 'steps'; tiers: TierPlan; steps: StepSettings }
  | { mode: 'advisor'; tiers: TierPlan; advisor: AdvisorSettings };

export interface StepSettings {
  /** τ: a step whose P(success) is below it hands the next step up the plan. */
  threshold: number;
  max_switches: number;
  max_steps: number;
  max_step_tokens: number;
  min_step_chars: number;
  /** The step probe's tier (whose chains the probe judges). */
  probe_tier: string;
}

export interface AdvisorSettings {
  tier: string;
  budget: number;
  max_rounds: number;
  max_advice_tokens: number;
}

export type Via = 'chosen' | 'failover' | 'escalation';

export interface AttemptRecord {
  tier: string;
  via: Via;
  outcome: 'answered' | 'failed' | 'escalated';
  /** The failure's code, for a failed attempt. */
  code?: string;
}

/** A tier's own stream content (text deltas and whatever else a provider streams), passed through. */
export type ContentPart = Exclude<StreamPart, { type: 'start' | 'finish' | 'error' }>;

/**
 * Everything an execution reports, in order. A streamed answer is its content parts then `finish`; a
 * whole one is an `answer`. Either way `done` comes last, unless `error` ends it.
 */
export type ExecutionPart =
  | { type: 'attempt-start'; tier: string; via: Via }
  | { type: 'attempt-failed'; tier: string; error: TierError; next: string | undefined }
  | { type: 'gate'; tier: string; value: number; verdict: string; escalate: boolean }
  | { type: 'escalated'; from: string; to: string }
  | { type: 'step'; step: StepRecord }
  | { type: 'advisor-call'; record: AdvisorCallRecord; tier: string }
  | { type: 'usage'; tier: string; usage: Usage; cost_usd: number }
  | ContentPart
  | Extract<StreamPart, { type: 'finish' }>
  | { type: 'answer'; result: GenerateResult }
  | { type: 'done'; summary: ExecutionSummary }
  | { type: 'error'; error: TierError };

/** What a finished execution adds up to: who answered, through which attempts, at what cost. */
export interface ExecutionSummary {
  mode: ExecutionPlan['mode'];
  /** The tier whose answer was returned (steps: the last writer). */
  answered_by: string;
  attempts: AttemptRecord[];
  escalations: number;
  cost_usd: number;
  /** Tokens of every call, by tier. */
  usage_by_tier: Record<string, Usage>;
  finish_reason: FinishReason;
  steps?: { steps: StepRecord[]; switches: StepSwitch[]; writers: string[] };
  advisor?: { calls: AdvisorCallRecord[]; rounds: number; worker_usage: Usage };
}

/** What the executor needs from the process around it; the server wires these, tests may fake them. */
export interface ExecutorDeps {
  generate(tier: string, request: TierRequest, options: CallOptions): Promise<GenerateResult>;
  stream(tier: string, request: TierRequest, options: CallOptions): AsyncIterable<StreamPart>;
  /** USD of a call at the tier's price, charged to the client's rolling budget where it has one. */
  charge(tier: string, usage: Usage): number;
  /** P(the chain ends right) of the prompt plus a response (prefix), from the step probe. */
  scoreResponse?(response: string, signal: AbortSignal): Promise<number>;
  /** Token count of a text with the encoder's tokenizer (steps cut at a line break). */
  countTokens(text: string): number;
}

export interface ExecuteOptions {
  stream: boolean;
  signal: AbortSignal;
  /** Milliseconds left before the request's deadline: tier calls share it. */
  remainingMs(): number;
  /** The task as the router read it (the advisor forwards it with each question). */
  prompt: string;
}

/** Adds a call's usage to a by-tier tally. */
export function addUsage(byTier: Record<string, Usage>, tier: string, usage: Usage): void {
  const before = byTier[tier] ?? { input_tokens: 0, output_tokens: 0 };
  byTier[tier] = {
    input_tokens: before.input_tokens + usage.input_tokens,
    output_tokens: before.output_tokens + usage.output_tokens,
  };
}

export function totalUsage(byTier: Readonly<Record<string, Usage>>): Usage {
  const sum: Usage = { input_tokens: 0, output_tokens: 0 };
  for (const u of Object.values(byTier)) {
    sum.input_tokens += u.input_tokens;
    sum.output_tokens += u.output_tokens;
  }
  return sum;
}

/**
 * A tier call's share of the time left: the rest split evenly over the tiers still in the plan, so a
 * hanging tier (with its retries) cannot use up the turn of the tiers after it. The last tier gets all
 * that is left.
 */
export function tierBudgetMs(remainingMs: number, tiersLeft: number): number {
  return Math.max(1, Math.floor(remainingMs / Math.max(1, tiersLeft)));
}
