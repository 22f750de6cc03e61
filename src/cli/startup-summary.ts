import type { TierConfig } from '../config/config-schema.js';
import type { RouteTier } from '../policy/policy-schema.js';

/** How a remote tier's variables could be set to reach an OpenAI-compatible endpoint (first deployment). */
function exampleSetting(tier: TierConfig): string | undefined {
  if (tier.provider !== 'openai') return undefined;
  const withUrlEnv = tier.deployments.find((d) => d.base_url_env);
  const deployment = withUrlEnv ?? tier.deployments[0];
  if (!deployment) return undefined;
  const parts = [
    ...(deployment.base_url_env ? [`${deployment.base_url_env}=http://localhost:8000/v1`] : []),
    ...(deployment.api_key_env ? [`${deployment.api_key_env}=…`] : []),
  ];
  return parts.length ? parts.join(' ') : undefined;
}

/**
 * The one line `mechroute serve` prints on stderr once it listens: where, which tiers are unavailable and
 * why, how to point one at an OpenAI-compatible endpoint, and which tiers the probe bundle has no probe
 * for (`probed`), since the policies reach those only as a fallback. Everything else goes to the JSON log.
 */
export function startupSummary(
  url: string,
  tiers: readonly Pick<RouteTier, 'id' | 'available' | 'unavailable_reason'>[],
  configTiers: readonly TierConfig[],
  probed?: ReadonlySet<string>,
): string {
  const available = tiers.filter((t) => t.available).map((t) => t.id);
  const unavailable = tiers.filter((t) => !t.available);
  const unprobed = probed ? tiers.filter((t) => !probed.has(t.id)).map((t) => t.id) : [];
  const fallbackOnly = unprobed.length
    ? `; no probe in the bundle, so reached only as a fallback: ${unprobed.join(', ')}`
    : '';
  const head = `mechroute: serving on ${url}`;
  if (unavailable.length === 0)
    return `${head}; every tier is available: ${available.join(', ')}${fallbackOnly}\n`;
  const serving = available.length
    ? `routing to ${available.join(', ')}`
    : 'no tier is available, so every chat completion fails until one is';
  const why = unavailable.map((t) => `${t.id} (${t.unavailable_reason ?? 'unavailable'})`).join(', ');
  const example = unavailable
    .map((t) => configTiers.find((c) => c.id === t.id))
    .map((c) => (c ? exampleSetting(c) : undefined))
    .find((s) => s !== undefined);
  const hint = example
    ? `; to serve a tier from any OpenAI-compatible endpoint (vLLM, llama-server, LiteLLM, OpenRouter), set its variables and restart, e.g. ${example}`
    : '';
  return `${head}; ${serving}; unavailable: ${why}${fallbackOnly}${hint}\n`;
}
