import { loadConfig } from '../src/config/config-loader.js';
import { LocalTierSchema, type TierConfig } from '../src/config/config-schema.js';
import type { Price } from '../src/policy/price.js';
import { type TierModel, TierUnavailableError, UnknownTierError } from '../src/tiers/tier-model.js';
import { createTierPool } from '../src/tiers/tier-pool.js';

/** The tier `mechroute label` runs, as a tier of a pool built the way the server builds its pool. */
export interface LabelTier {
  config: TierConfig;
  /** Deployments tried in order, retries with backoff, circuit breakers and failover: the pool's. */
  model: TierModel;
  price: Price;
  close(): Promise<void>;
}

/**
 * The `--model` form of `mechroute label`: a local tier of that GGUF, free, as a config would declare
 * it. Labelling is offline, so a slow local model gets ten minutes per answer rather than the server's
 * minute, and one retry (a local failure is rarely transient).
 */
export function localLabelTier(id: string, model: string, contextWindow = 2048): TierConfig {
  return LocalTierSchema.parse({
    id,
    provider: 'local',
    model,
    context_window: contextWindow,
    timeout_ms: 600_000,
    max_retries: 1,
  });
}

/** A tier of a config file (validated as `mechroute serve` validates it). @throws UnknownTierError */
export async function configuredTier(configFile: string, id: string): Promise<TierConfig> {
  const config = await loadConfig(configFile);
  const tier = config.tiers.find((t) => t.id === id);
  if (!tier)
    throw new UnknownTierError(
      id,
      config.tiers.map((t) => t.id),
    );
  return tier;
}

/**
 * A pool of that one tier (other tiers of the config are not loaded). Credentials come from `env`,
 * read as the server reads them; a tier no deployment of which can be called here (an unset key, a
 * local model that does not load) is refused before any trace is run.
 * @throws TierUnavailableError
 */
export async function openLabelTier(
  config: TierConfig,
  options: { concurrency: number; env?: NodeJS.ProcessEnv },
): Promise<LabelTier> {
  const pool = await createTierPool([config], {
    ...(options.env ? { env: options.env } : {}),
    local: { sequences: options.concurrency },
  });
  const state = pool.availability()[config.id];
  if (!state?.available) {
    await pool.close();
    throw new TierUnavailableError(config.id, state?.reason ?? 'unavailable');
  }
  return { config, model: pool.tier(config.id), price: config.price, close: () => pool.close() };
}
