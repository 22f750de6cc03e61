import { z } from 'zod';
import { TierIdSchema } from '../traces/trace-schema.js';
import { CalibrationRecordSchema } from './calibration-record.js';
import type { Price } from './price.js';

/**
 * The routing policy: which tier a request goes to, given the probes' predictions. The file is
 * versioned — `version` is echoed in every decision, so a logged decision can always be traced back to
 * the exact policy that made it — and every section has defaults, so a request may switch `kind`
 * (`x-mechroute-policy: utility`) and still find the parameters that kind needs.
 */

export const PolicyKindSchema = z.enum(['threshold', 'utility', 'budget', 'cascade']);
export type PolicyKind = z.infer<typeof PolicyKindSchema>;

const Probability = z.number().min(0).max(1);
const PositiveInt = z.number().int().positive();

export const ClassThresholdsSchema = z.strictObject({
  default: Probability.optional().describe("This class's threshold for tiers `tiers` does not name."),
  tiers: z.record(TierIdSchema, Probability).default({}),
});

export const ThresholdSettingsSchema = z.strictObject({
  default: Probability.default(0.5).describe(
    'P(success) a tier needs to be chosen, unless `tiers` names its own.',
  ),
  tiers: z.record(TierIdSchema, Probability).default({}),
  classes: z
    .record(z.string().min(1), ClassThresholdsSchema)
    .default({})
    .describe(
      "Per task class (the probe bundle's class head): thresholds that replace the ones above for requests of that class.",
    ),
});

export const UtilitySettingsSchema = z.strictObject({
  lambda: z
    .number()
    .nonnegative()
    .default(20)
    .describe(
      'λ in P(success) − λ·cost (cost in USD): 1 / the dollar value of one successful answer, e.g. 20 when a success is worth 5 cents.',
    ),
});

export const BudgetSettingsSchema = z.strictObject({
  max_cost_usd: z
    .number()
    .positive()
    .optional()
    .describe("Hard ceiling on one request's expected cost; applies whatever the kind."),
  rolling: z
    .strictObject({ period_s: z.number().positive(), limit_usd: z.number().positive() })
    .optional()
    .describe('A budget per API key that renews every `period_s` (windows aligned to the Unix epoch).'),
  efficiency: z
    .strictObject({ min: z.number().positive().default(1), max: z.number().positive().default(10_000) })
    .refine((e) => e.max > e.min, { message: 'efficiency.max must be greater than efficiency.min' })
    .prefault({})
    .describe(
      'Bounds [L, U] on the efficiency of an upgrade (gain in P(success) per extra USD) assumed by the online-knapsack threshold ψ(z).',
    ),
});

export const CascadeSettingsSchema = z.strictObject({
  start: z
    .enum(['threshold', 'utility', 'budget'])
    .default('threshold')
    .describe('The policy that picks the starting tier.'),
  max_depth: z
    .number()
    .int()
    .min(0)
    .max(8)
    .default(1)
    .describe('Escalations allowed after the first answer (0 = never escalate).'),
  gate: z
    .strictObject({
      kind: z
        .enum(['logprob', 'probe'])
        .default('logprob')
        .describe(
          "What judges an answer: its mean token logprob (needs a tier that returns logprobs), or the step probe reading the prompt plus the answer (the config's `steps.probes` bundle; any tier).",
        ),
      min_mean_logprob: z
        .number()
        .max(0)
        .default(-0.5)
        .describe(
          "Escalate when the answer's mean token logprob is below this (nats; −0.5 ≈ 61 % per token).",
        ),
      min_p_success: Probability.default(0.5).describe(
        'Escalate when a probe over prompt + answer gives P(success) below this.',
      ),
    })
    .prefault({}),
});

export const OutputTokensSchema = z.strictObject({
  default: PositiveInt.default(256).describe(
    "Output tokens assumed for cost estimates (capped by the request's max_tokens).",
  ),
  tiers: z.record(TierIdSchema, PositiveInt).default({}),
});

export const PolicySchema = z.strictObject({
  version: z
    .string()
    .min(1, 'version must not be empty')
    .max(128)
    .describe('Echoed in every decision; must change whenever the policy does.'),
  kind: PolicyKindSchema.describe('Which rule picks the tier; a request may switch it (x-mechroute-policy).'),
  signal: z
    .enum(['probes', 'text-embedding', 'hybrid'])
    .default('probes')
    .describe(
      'What P(success | tier) comes from: the probes over encoder activations, a text-classifier router ' +
        '(semantic mode; the model named by text_embedding.model in the config), or the hybrid head of the ' +
        'probe bundle (the probes and a TF-IDF router stacked: it reads the prompt’s words).',
    ),
  description: z.string().optional(),
  on_unavailable: z
    .enum(['error', 'best_available'])
    .default('error')
    .describe('What happens when the tier the policy picks has no credentials or is otherwise down.'),
  allow_overrides: z
    .boolean()
    .default(true)
    .describe('Whether requests may change the policy through headers or body fields.'),
  output_tokens: OutputTokensSchema.prefault({}),
  threshold: ThresholdSettingsSchema.prefault({}),
  utility: UtilitySettingsSchema.prefault({}),
  budget: BudgetSettingsSchema.prefault({}),
  cascade: CascadeSettingsSchema.prefault({}),
  calibration: CalibrationRecordSchema.optional().describe(
    'Written by `mechroute calibrate`: where the thresholds come from and what they promised (read by `mechroute drift`).',
  ),
});

export type Policy = z.infer<typeof PolicySchema>;
export type PolicyInput = z.input<typeof PolicySchema>;

/** The policy used when a config names none. */
export const DEFAULT_POLICY: Policy = PolicySchema.parse({ version: 'default', kind: 'threshold' });

/** Tier ids a policy refers to, with the path of each reference (for "unknown tier" errors). */
export function policyTierReferences(policy: Policy): { tier: string; path: (string | number)[] }[] {
  return [
    ...Object.keys(policy.threshold.tiers).map((tier) => ({ tier, path: ['threshold', 'tiers', tier] })),
    ...Object.entries(policy.threshold.classes).flatMap(([name, c]) =>
      Object.keys(c.tiers).map((tier) => ({ tier, path: ['threshold', 'classes', name, 'tiers', tier] })),
    ),
    ...Object.keys(policy.output_tokens.tiers).map((tier) => ({
      tier,
      path: ['output_tokens', 'tiers', tier],
    })),
  ];
}

/** A tier as the policy sees it: no provider details, only what a decision depends on. */
export interface RouteTier {
  id: string;
  price: Price;
  available: boolean;
  /** Why it is unavailable (e.g. "OPENAI_API_KEY is not set"), quoted in errors and reasons. */
  unavailable_reason?: string;
  /** When an unavailable tier is known to be back (its breakers' cooldown): a client may retry then. */
  retry_after_ms?: number;
}

/** What a request may change; validated by `parseOverrides`. */
export interface RouteOverrides {
  policy?: PolicyKind;
  /** Lowers the per-request cost ceiling; never raises it above the policy's. */
  max_cost_usd?: number;
  lambda?: number;
  /** One threshold for every tier, replacing the policy's per-tier ones. */
  threshold?: number;
}

/** The caller's budget state for this request's key, read from a `BudgetLedger`. */
export interface BudgetState {
  remaining_usd: number;
  limit_usd: number;
}

/**
 * The probes' output for one prompt: the shape of `ProbePrediction` (src/probes/probe-predict.ts),
 * restated so that the policy depends on no probe code and can be fed hand-made predictions.
 */
export interface RoutePrediction {
  /** Calibrated P(success) per tier id; tiers without a probe are absent. */
  tiers: Readonly<Record<string, number>>;
  difficulty: number;
  /** The most probable task class and its probability, when the bundle has a class head. */
  task_class?: TaskClass;
}

export interface TaskClass {
  name: string;
  p: number;
}

export interface RouteInput {
  prediction: RoutePrediction;
  /** In any order; the policy orders them by price. */
  tiers: readonly RouteTier[];
  /** Prompt tokens (counted by the encoder's tokenizer). */
  input_tokens: number;
  /** The request's max_tokens, which caps the policy's output estimate. */
  max_output_tokens?: number;
  overrides?: RouteOverrides;
  budget?: BudgetState;
}

export type RouteErrorCode = 'MR_ERR_TIER_UNAVAILABLE' | 'MR_ERR_BUDGET_EXCEEDED' | 'MR_ERR_NO_TIERS';

export interface RouteDecision {
  /** The tier to call; when `error` is set, the tier the policy wanted (do not call it). */
  tier: string;
  policy_version: string;
  /** The kind that decided, after overrides. */
  policy_kind: PolicyKind;
  p_success: Record<string, number>;
  difficulty: number;
  /** The request's task class, when the probes predict one. */
  task_class?: TaskClass;
  /** For `tier`, from the input tokens and the policy's output estimate. */
  expected_cost_usd: number;
  reasons: string[];
  /** Set when the tier is a fallback: the frontier after no tier passed, or the best available one. */
  fallback?: boolean;
  /** Cascade only: the tiers to escalate to, in order, at most `cascade.max_depth`. */
  escalation_path?: string[];
  /** What to run; absent when `error` is set. */
  plan?: TierPlan;
  error?: { code: RouteErrorCode; message: string; retry_after_ms?: number };
}

/** The gate a cascade applies to each answer before it is returned. */
export type AnswerGate =
  | { kind: 'logprob'; min_mean_logprob: number }
  | { kind: 'probe'; min_p_success: number };

/**
 * The tiers a request may run on, decided once with the policy and pinned for the whole request: the
 * chosen tier first, then every available tier above it (price order) whose expected cost fits the
 * request's ceiling. A tier that fails before answering hands over to the next one in this list; an
 * answer that fails the cascade's gate moves one step down it, at most `max_escalations` times. A
 * policy reloaded mid-request changes nothing here.
 */
export interface TierPlan {
  policy_version: string;
  tiers: string[];
  /** Whether a failed tier may hand over to the next (false when the client named the tier). */
  failover: boolean;
  max_escalations: number;
  gate?: AnswerGate;
}
