import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_PRICES } from '../../training/tier-costs.js';

/**
 * Config pieces the end-to-end tests and the server benchmarks start routers with: the shared data's
 * tiers (ids and list prices as in training/tier-costs.ts), served by the local model or by loopback
 * OpenAI-compatible upstreams. Each caller adds what its test is about (`extra`).
 */
export type SharedRemoteTier = keyof typeof DEFAULT_PRICES;

/** The local tier: the default GGUF through node-llama-cpp, free. */
export function localTierConfig(extra: Record<string, unknown> = {}) {
  return {
    id: 'gemma-3-270m',
    provider: 'local',
    model: 'gemma-3-270m-q4_k_m',
    price: { input_per_mtok: 0, output_per_mtok: 0 },
    context_window: 512,
    ...extra,
  };
}

/** A remote tier at its list price, one deployment per base URL (with the API key's variable, if any). */
export function remoteTierConfig(
  id: SharedRemoteTier,
  deployments: readonly { base_url: string; api_key_env?: string }[],
  extra: Record<string, unknown> = {},
) {
  const price = DEFAULT_PRICES[id]!;
  return {
    id,
    provider: 'openai',
    model: id,
    price: { input_per_mtok: price.input_usd_per_mtok, output_per_mtok: price.output_usd_per_mtok },
    context_window: 4096,
    deployments,
    ...extra,
  };
}

/**
 * Writes `config` as `dir/config.json` (the server reads YAML or JSON) and returns its path. Without a
 * `state` section the server keeps its state in `dir/state.sqlite`, never in the user's $MECHROUTE_HOME:
 * a test must neither see another run's requests and policies nor hold the file a real server needs.
 */
export async function writeServerConfig(dir: string, config: Record<string, unknown>): Promise<string> {
  const file = join(dir, 'config.json');
  await writeFile(file, JSON.stringify({ state: { path: 'state.sqlite' }, ...config }));
  return file;
}
