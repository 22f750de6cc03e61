import { z } from 'zod';
import { DEFAULT_ENCODER_MODEL } from '../models/manifest.js';
import { PolicySchema, policyTierReferences } from '../policy/policy-schema.js';
import { PriceSchema } from '../policy/price.js';
import { AdvisorConfigSchema, AnswerModeSchema, StepModeConfigSchema } from './modes-schema.js';

/**
 * The server config (YAML or JSON): one zod schema, from which the TypeScript types, the validation of
 * `mechroute config check` and the published JSON Schema all come. Every object is strict, so a
 * misspelt key is an error rather than a silently ignored setting. Credentials never appear in it: a
 * config names the environment variables that hold them (`api_key_env`), and anything that looks like
 * a literal key is refused.
 */

// Prefixes of widely used API-key and token formats; long enough not to catch ordinary names.
const SECRET_PATTERNS: readonly RegExp[] = [
  /^sk-[A-Za-z0-9_-]{16,}/, // OpenAI, Anthropic (sk-ant-…), DeepSeek, OpenRouter (sk-or-…)
  /^(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}/,
  /^gsk_[A-Za-z0-9]{20,}/, // Groq
  /^hf_[A-Za-z0-9]{30,}/, // Hugging Face
  /^xai-[A-Za-z0-9]{20,}/,
  /^(?:ghp|gho|ghs|ghu)_[A-Za-z0-9]{30,}|^github_pat_/,
  /^glpat-[A-Za-z0-9_-]{20,}/,
  /^AKIA[0-9A-Z]{16}$/, // AWS access key id
  /^AIza[0-9A-Za-z_-]{30,}/, // Google
  /^xox[abprs]-[A-Za-z0-9-]{10,}/, // Slack
  /^Bearer\s+\S{8,}/i,
  /^eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]+$/, // a JWT
  /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i, // credentials inside a URL
];

/** Whether a config string looks like a credential rather than configuration. */
export function looksLikeSecret(value: string): boolean {
  return SECRET_PATTERNS.some((re) => re.test(value.trim()));
}

const SECRET_MESSAGE =
  'looks like a literal credential; configs hold only the NAME of an environment variable that holds it ' +
  '(e.g. api_key_env: OPENAI_API_KEY)';

/**
 * A long mixed-case alphanumeric string with digits is a random token, not a variable name: variable
 * names are short words, conventionally UPPER_SNAKE_CASE.
 */
const looksRandom = (v: string) => v.length >= 20 && /[a-z]/.test(v) && /[A-Z]/.test(v) && /\d/.test(v);

export const EnvVarNameSchema = z.string().superRefine((value, ctx) => {
  if (looksLikeSecret(value) || looksRandom(value)) ctx.addIssue({ code: 'custom', message: SECRET_MESSAGE });
  else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be the name of an environment variable (letters, digits and _; e.g. OPENAI_API_KEY)',
    });
  }
});

export const ServerConfigSchema = z.strictObject({
  host: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe(
      'Loopback by default: exposing the router (and the API budget behind it) is a deliberate choice.',
    ),
  port: z.number().int().min(0).max(65_535).default(8080),
  auth_tokens_env: EnvVarNameSchema.optional().describe(
    'Environment variable holding comma-separated bearer tokens; without it, no auth.',
  ),
  body_limit_bytes: z
    .number()
    .int()
    .min(1024)
    .max(1024 ** 3)
    .default(1024 ** 2)
    .describe('Largest request body accepted.'),
  rate_limit: z
    .strictObject({ requests: z.number().int().positive(), window_s: z.number().positive() })
    .optional()
    .describe('Requests per window per key (bearer token, else client address); absent = unlimited.'),
  request_timeout_ms: z
    .number()
    .int()
    .positive()
    .default(120_000)
    .describe('Whole request, from its arrival: routing and answer included.'),
  receive_timeout_ms: z
    .number()
    .int()
    .positive()
    .default(30_000)
    .describe('Time a client has to send its whole request (headers and body); a slower one is cut off.'),
  shutdown_drain_ms: z
    .number()
    .int()
    .min(0)
    .default(30_000)
    .describe(
      'On SIGTERM: stop accepting, let requests in flight finish for this long, then abort the rest with MR_ERR_SHUTTING_DOWN.',
    ),
  allow_public_without_auth: z
    .boolean()
    .default(false)
    .describe(
      'Serve on a non-loopback host without auth_tokens_env. Refused by default: the router spends API budget for whoever reaches it.',
    ),
});

/** The encoder; its layers and pooling come from the probe bundle, which was trained on them. */
export const EncoderConfigSchema = z.strictObject({
  model: z
    .string()
    .min(1)
    .default(DEFAULT_ENCODER_MODEL)
    .describe('A model manifest name (see `mechroute models list`).'),
  gpu: z.union([z.enum(['auto', 'cuda', 'vulkan']), z.literal(false)]).default('auto'),
  context_tokens: z.number().int().min(16).default(2048),
  batch_tokens: z.number().int().min(16).default(512),
  max_batch_prompts: z
    .number()
    .int()
    .min(1)
    .max(256)
    .default(1)
    .describe(
      'Distinct prompts per encoder decode; >1 trades exact per-prompt activations for GPU throughput.',
    ),
  max_prompt_tokens: z
    .number()
    .int()
    .min(2)
    .optional()
    .describe(
      'Most tokens one routing decision reads; a longer prompt is cut as `overflow` says. Bounds the time one prompt holds the encoder.',
    ),
  overflow: z
    .enum(['truncate-left', 'head-tail', 'reject'])
    .default('truncate-left')
    .describe('Over-long prompts: keep the end, keep head_tokens of the start and the end, or refuse (400).'),
  head_tokens: z
    .number()
    .int()
    .min(1)
    .default(64)
    .describe('Tokens kept from the start with overflow: head-tail.'),
  queue_limit: z.number().int().min(1).default(1024),
  max_queue_wait_ms: z
    .number()
    .int()
    .min(1)
    .default(10_000)
    .describe(
      'Admission: a routing request is refused at once (503 with retry-after) when the queued encoder work would take longer than this at the measured decode rate.',
    ),
});

export const ProbesConfigSchema = z.strictObject({
  path: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Probe bundle; relative paths are from the config file. Default: the bundle shipped in probes/.',
    ),
});

export const TextEmbeddingConfigSchema = z.strictObject({
  model: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Text-classifier router (JSON, written by `mechroute bench routing --save-models`) used when the policy ' +
        'says signal: text-embedding; relative paths are from the config file.',
    ),
});

export const StateConfigSchema = z.strictObject({
  path: z
    .string()
    .min(1)
    .optional()
    .describe(
      'SQLite file holding answered requests (for /v1/feedback), the stats counters and the policy history; ' +
        'relative paths are from the config file. Default: $MECHROUTE_HOME/state.sqlite. One server per file.',
    ),
  synchronous: z
    .enum(['normal', 'full'])
    .default('normal')
    .describe(
      'normal: a commit survives a crash of the process; an OS crash or power cut may lose the last few ' +
        'thousand records. full: fsync on every commit, which survives a power cut too, at one fsync per answer.',
    ),
  retention: z
    .strictObject({
      feedback_days: z
        .number()
        .positive()
        .max(3650)
        .default(30)
        .describe('How long an answered request can still be rated through /v1/feedback.'),
      max_requests: z
        .number()
        .int()
        .min(1)
        .default(1_000_000)
        .describe(
          'Answered requests kept for feedback at most (the oldest go first; about 150 bytes each on disk).',
        ),
    })
    .prefault({})
    .describe('Answered requests are pruned by both limits; stats counters are cumulative and never pruned.'),
});

export const LearningConfigSchema = z.strictObject({
  online: z
    .boolean()
    .default(false)
    .describe(
      "Learn from /v1/feedback: each outcome moves a per-tier correction of the probes' P(success) by one " +
        'bounded step (see README, "Online learning"). Off by default.',
    ),
  learning_rate: z.number().positive().max(1).default(0.01).describe('SGD step size of one update.'),
  l2: z.number().min(0).max(1).default(0.001).describe('L2 pull of the correction toward 0, per update.'),
  max_step: z
    .number()
    .positive()
    .max(10)
    .default(0.1)
    .describe('The L2 norm of one update is clipped to this: no single outcome moves a tier far.'),
  retention: z
    .strictObject({
      max_decisions: z
        .number()
        .int()
        .min(1)
        .default(100_000)
        .describe('Decisions kept for a later update at most (the oldest go first; ~100 bytes each).'),
      max_age_days: z
        .number()
        .positive()
        .max(3650)
        .default(30)
        .describe('How long a decision can still teach: feedback on an older one updates nothing.'),
    })
    .prefault({})
    .describe('What each routed decision keeps for its update (its P per tier), pruned by both limits.'),
});

const credentialKey = /key|token|secret|password|authorization/i;

export const DeploymentSchema = z
  .strictObject(
    {
      base_url: z
        .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
        .optional()
        .describe('The OpenAI-compatible base URL, e.g. https://api.openai.com/v1.'),
      base_url_env: EnvVarNameSchema.optional().describe(
        'The environment variable holding the base URL, instead of base_url.',
      ),
      api_key_env: EnvVarNameSchema.optional().describe(
        'Environment variable holding the API key; omit for endpoints that need none.',
      ),
      model: z
        .string()
        .min(1)
        .optional()
        .describe("The model name this deployment knows the tier's model by (default: the tier's `model`)."),
      timeout_ms: z.number().int().positive().optional(),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys' && issue.keys.some((k) => credentialKey.test(k))
          ? `credentials are not accepted in a config (${issue.keys.join(', ')}); use api_key_env with the name of an environment variable`
          : undefined,
    },
  )
  .superRefine((d, ctx) => {
    if ((d.base_url === undefined) === (d.base_url_env === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['base_url'],
        message: 'give exactly one of base_url and base_url_env',
      });
    }
  });

const TierFields = {
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, 'letters, digits and . _ : / - (no spaces)')
    .describe("Matches the probe bundle's tier ids; also what clients send as `model` to bypass routing."),
  model: z
    .string()
    .min(1)
    .describe('Local: a model manifest name; openai: the model name the endpoint expects.'),
  description: z.string().optional(),
  price: PriceSchema.describe('USD per million tokens.'),
  context_window: z.number().int().positive(),
  timeout_ms: z.number().int().positive().default(60_000).describe('Per attempt, per deployment.'),
  max_retries: z.number().int().min(0).max(10).default(2),
  cooldown: z
    .strictObject({
      failures: z.number().int().min(1).default(3),
      seconds: z.number().positive().default(30),
    })
    .prefault({})
    .describe('Circuit breaker: after `failures` consecutive failures a deployment rests for `seconds`.'),
};

export const LocalTierSchema = z.strictObject(
  {
    ...TierFields,
    provider: z.literal('local'),
    price: PriceSchema.default({ input_per_mtok: 0, output_per_mtok: 0 }),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys' && issue.keys.includes('deployments')
        ? 'deployments are for provider openai; a local tier runs in this process'
        : undefined,
  },
);

export const OpenAiTierSchema = z.strictObject({
  ...TierFields,
  provider: z.literal('openai'),
  deployments: z
    .array(DeploymentSchema)
    .min(1)
    .describe('Tried in order; a failing deployment cools down and the next is used.'),
});

export const TierConfigSchema = z.discriminatedUnion('provider', [LocalTierSchema, OpenAiTierSchema]);

export const ConfigSchema = z
  .strictObject({
    $schema: z.string().optional().describe('Lets editors find this schema; ignored by mechroute.'),
    server: ServerConfigSchema.prefault({}),
    encoder: EncoderConfigSchema.prefault({}),
    probes: ProbesConfigSchema.prefault({}),
    text_embedding: TextEmbeddingConfigSchema.prefault({}),
    tiers: z.array(TierConfigSchema).min(1),
    policy: PolicySchema.optional().describe('The routing policy, inline (or give policy_file).'),
    policy_file: z
      .string()
      .min(1)
      .optional()
      .describe(
        'The routing policy in its own file (relative to the config); reloaded on change and on SIGHUP.',
      ),
    policy_history: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(10)
      .describe(
        'Earlier policy versions kept for rollback, in the state file (GET /admin/policy lists them).',
      ),
    mode: AnswerModeSchema.default('route').describe(
      'How requests without an `x-mechroute-mode` header are answered: routed, per-step, or worker–advisor.',
    ),
    steps: StepModeConfigSchema.optional().describe('Live per-step routing (`x-mechroute-mode: steps`).'),
    advisor: AdvisorConfigSchema.prefault({}).describe(
      'The worker–advisor mode (`x-mechroute-mode: advisor`).',
    ),
    state: StateConfigSchema.prefault({}).describe(
      'What survives a restart: answered requests for feedback, stats, policy history.',
    ),
    learning: LearningConfigSchema.prefault({}).describe(
      'Online learning from /v1/feedback (off unless learning.online is true).',
    ),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    for (const [i, tier] of config.tiers.entries()) {
      const first = seen.get(tier.id);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['tiers', i, 'id'],
          message: `"${tier.id}" is already tiers.${first}`,
        });
      } else seen.set(tier.id, i);
    }
    if (config.policy && config.policy_file !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['policy_file'],
        message: 'give either policy or policy_file, not both',
      });
    }
    const tierRefs: [string[], string | undefined][] = [
      [['steps', 'worker'], config.steps?.worker],
      [['steps', 'probe_tier'], config.steps?.probe_tier],
      [['advisor', 'worker'], config.advisor.worker],
      [['advisor', 'advisor'], config.advisor.advisor],
    ];
    for (const [path, tier] of tierRefs) {
      // probe_tier names a probe in the bundle, which usually is a configured tier; checked on load too.
      if (tier !== undefined && !seen.has(tier) && path[1] !== 'probe_tier') {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `unknown tier "${tier}" (configured: ${[...seen.keys()].join(', ')})`,
        });
      }
    }
    if (config.mode === 'steps' && !config.steps) {
      ctx.addIssue({
        code: 'custom',
        path: ['mode'],
        message: 'mode "steps" needs a `steps` section (its probe bundle)',
      });
    }
    if (config.policy?.signal === 'text-embedding' && config.text_embedding.model === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['text_embedding', 'model'],
        message: 'policy.signal is text-embedding: name the text-classifier model here',
      });
    }
    if (config.policy) {
      for (const issue of unknownTierIssues(config.policy, [...seen.keys()])) {
        ctx.addIssue({ ...issue, path: ['policy', ...issue.path] });
      }
    }
  });

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type ServerConfig = z.infer<typeof ServerConfigSchema>;
export type EncoderConfig = z.infer<typeof EncoderConfigSchema>;
export type TierConfig = z.infer<typeof TierConfigSchema>;
export type DeploymentConfig = z.infer<typeof DeploymentSchema>;
export type StateConfig = z.infer<typeof StateConfigSchema>;
export type LearningConfig = z.infer<typeof LearningConfigSchema>;

/** A policy's references to tiers the config does not have (a typo there would silently do nothing). */
export function unknownTierIssues(
  policy: z.infer<typeof PolicySchema>,
  tierIds: readonly string[],
): { code: 'custom'; path: (string | number)[]; message: string }[] {
  return policyTierReferences(policy)
    .filter((ref) => !tierIds.includes(ref.tier))
    .map((ref) => ({
      code: 'custom' as const,
      path: ref.path,
      message: `unknown tier "${ref.tier}" (configured: ${tierIds.join(', ')})`,
    }));
}

/** Every string in a raw (unvalidated) config that looks like a credential, with its path. */
export function secretIssues(
  value: unknown,
  path: (string | number)[] = [],
): { path: (string | number)[]; message: string }[] {
  if (typeof value === 'string') return looksLikeSecret(value) ? [{ path, message: SECRET_MESSAGE }] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => secretIssues(v, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => secretIssues(v, [...path, k]));
  }
  return [];
}

/** The JSON Schema of the config file as users write it (defaults make fields optional). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ConfigSchema, { io: 'input', target: 'draft-2020-12' });
  return {
    ...schema,
    title: 'mechroute config',
    description: 'Server, encoder, probes, tiers and routing policy of a mechroute router (YAML or JSON).',
  };
}
