import { dirname, join, resolve } from 'node:path';
import { inspect } from 'node:util';
import type { z } from 'zod';
import { InvalidFileError } from '../errors.js';
import { packageRoot } from '../paths.js';
import { DEFAULT_POLICY, type Policy, type RouteTier } from '../policy/policy-schema.js';
import { formatIssues } from '../zod-issues.js';
import { type Config, ConfigSchema, secretIssues, type TierConfig } from './config-schema.js';
import { deploymentEnv, envValue } from './deployment-env.js';
import { incompletePolicyIssues, loadPolicyFile } from './policy-file.js';
import { readStructuredFile } from './structured-file.js';

export const DEFAULT_CONFIG_PATH = join(packageRoot, 'config', 'default.yaml');
export const DEFAULT_PROBES_PATH = join(packageRoot, 'probes', 'default.json');

/** A config with its file references resolved: absolute paths, and the policy loaded. */
export type LoadedConfig = Omit<Config, 'policy' | 'policy_file' | 'probes' | 'steps' | 'text_embedding'> & {
  /** Live step mode, its bundle path made absolute. */
  steps?: NonNullable<Config['steps']>;
  /** The config file. */
  file: string;
  probes: { path: string };
  /** Absolute path of the text-classifier router, when the config names one. */
  text_embedding: { model?: string };
  policy: Policy;
  /** Absolute path of the policy file, when the policy lives in one (the file to watch). */
  policy_file?: string;
};

type Issue = { path: PropertyKey[]; message: string };

/**
 * Validates a parsed config. Issues of every kind — a literal credential anywhere, an inline policy
 * missing its kind's section, and anything the schema refuses — are reported together, each with its
 * path, so one `config check` shows them all.
 */
export function parseConfig(value: unknown, file: string): Config {
  const parsed = ConfigSchema.safeParse(value);
  const issues: Issue[] = parsed.success ? [] : [...parsed.error.issues];
  const taken = new Set(issues.map((i) => i.path.map(String).join('.')));
  // A field the schema already flagged (an api_key_env holding a key, say) is reported once.
  for (const issue of secretIssues(value)) {
    if (!taken.has(issue.path.map(String).join('.'))) issues.push(issue);
  }
  const policy = (value as { policy?: unknown } | null)?.policy;
  for (const issue of incompletePolicyIssues(policy))
    issues.push({ ...issue, path: ['policy', ...issue.path] });
  if (issues.length > 0 || !parsed.success) {
    throw new InvalidFileError('config', file, formatIssues(issues as z.core.$ZodIssue[]));
  }
  return parsed.data;
}

/** Reads a YAML or JSON config, validates it, and loads its policy file if it names one. */
export async function loadConfig(file: string): Promise<LoadedConfig> {
  const config = parseConfig(await readStructuredFile(file, 'config'), file);
  const base = dirname(resolve(file));
  const { policy, policy_file, probes, steps, text_embedding, ...rest } = config;
  const tierIds = config.tiers.map((t) => t.id);
  const policyPath = policy_file === undefined ? undefined : resolve(base, policy_file);
  const loaded = policyPath ? await loadPolicyFile(policyPath, tierIds) : (policy ?? DEFAULT_POLICY);
  // Checked on the loaded policy, so an inline policy and a policy file are refused alike.
  if (loaded.cascade.gate.kind === 'probe' && !steps) {
    throw new InvalidFileError(
      'config',
      file,
      `  - ${policyPath ? `policy_file (${policyPath}): ` : 'policy.'}cascade.gate.kind: ${PROBE_GATE_NEEDS_STEPS}`,
    );
  }
  return {
    ...rest,
    file: resolve(file),
    probes: { path: probes.path === undefined ? DEFAULT_PROBES_PATH : resolve(base, probes.path) },
    ...(steps ? { steps: { ...steps, probes: resolve(base, steps.probes) } } : {}),
    text_embedding: text_embedding.model === undefined ? {} : { model: resolve(base, text_embedding.model) },
    policy: loaded,
    ...(policyPath ? { policy_file: policyPath } : {}),
  };
}

/** Why a probe gate needs the config's `steps` section (at startup, and for a policy installed later). */
export const PROBE_GATE_NEEDS_STEPS =
  '"probe" reads prompt + answer with the step-probe bundle: name one in a `steps` section (steps.probes), or use gate.kind "logprob"';

/** The policy of a config file (inline or from its policy file), for reloading an inline policy. */
export async function policyFromConfigFile(file: string): Promise<Policy> {
  return (await loadConfig(file)).policy;
}

/**
 * A credential read from the environment. It prints, serialises and logs as `[redacted]`, so that a
 * resolved config or tier passed to a logger cannot leak it; `reveal()` is for the HTTP client only.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return 'Secret([redacted])';
  }
}

export interface ResolvedDeployment {
  base_url: string;
  api_key?: Secret;
  /** The model name to send to this deployment. */
  model: string;
  timeout_ms: number;
}

export interface TierAvailability {
  id: string;
  provider: TierConfig['provider'];
  available: boolean;
  /** Why it is unavailable, naming the environment variables to set. */
  reason?: string;
  /** Only the deployments whose variables are all set, in config order. */
  deployments: ResolvedDeployment[];
}

export interface ResolvedSecrets {
  tiers: TierAvailability[];
  /** Bearer tokens the server accepts; empty with `auth_required: false` means no auth. */
  auth_tokens: Secret[];
  auth_required: boolean;
  /** Settings that name a variable that is not set in a way the server cannot run with. */
  problems: string[];
}

function resolveTier(tier: TierConfig, env: NodeJS.ProcessEnv): TierAvailability {
  if (tier.provider === 'local') return { id: tier.id, provider: 'local', available: true, deployments: [] };
  const deployments: ResolvedDeployment[] = [];
  const missing: string[] = [];
  for (const d of tier.deployments) {
    const found = deploymentEnv(d, env);
    if (found.missing.length > 0 || found.baseUrl === undefined) {
      missing.push(...found.missing);
      continue;
    }
    deployments.push({
      base_url: found.baseUrl.replace(/\/+$/, ''),
      ...(found.apiKey === undefined ? {} : { api_key: new Secret(found.apiKey) }),
      model: d.model ?? tier.model,
      timeout_ms: d.timeout_ms ?? tier.timeout_ms,
    });
  }
  if (deployments.length > 0) return { id: tier.id, provider: 'openai', available: true, deployments };
  const names = [...new Set(missing)];
  return {
    id: tier.id,
    provider: 'openai',
    available: false,
    reason: `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} not set`,
    deployments,
  };
}

/**
 * Which tiers can run in this environment, with their credentials. A local tier needs none; a remote
 * tier needs at least one deployment whose variables are all set, otherwise it is unavailable (the
 * policy skips it and `/readyz` reports it) rather than an error, so a box without remote keys still
 * serves its local tiers.
 */
export function resolveSecrets(
  config: Pick<Config, 'tiers' | 'server'>,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedSecrets {
  const problems: string[] = [];
  const tokensEnv = config.server.auth_tokens_env;
  const tokens =
    tokensEnv === undefined
      ? []
      : (envValue(env, tokensEnv) ?? '')
          .split(',')
          .map((t) => t.trim())
          .filter((t) => t.length > 0);
  // Auth was asked for: with no tokens the server must refuse to start, not run open.
  if (tokensEnv !== undefined && tokens.length === 0) {
    problems.push(`server.auth_tokens_env names ${tokensEnv}, which is not set or holds no tokens`);
  }
  return {
    tiers: config.tiers.map((tier) => resolveTier(tier, env)),
    auth_tokens: tokens.map((t) => new Secret(t)),
    auth_required: tokensEnv !== undefined,
    problems,
  };
}

/** The tiers as the policy sees them: price and availability. */
export function routeTiers(
  config: Pick<Config, 'tiers'>,
  secrets: Pick<ResolvedSecrets, 'tiers'>,
): RouteTier[] {
  return config.tiers.map((tier) => {
    const state = secrets.tiers.find((t) => t.id === tier.id);
    const available = state?.available ?? false;
    return {
      id: tier.id,
      price: tier.price,
      available,
      ...(available ? {} : { unavailable_reason: state?.reason ?? 'not resolved' }),
    };
  });
}
