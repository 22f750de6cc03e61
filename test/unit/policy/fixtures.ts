import {
  type Policy,
  type PolicyInput,
  PolicySchema,
  type RouteInput,
  type RouteTier,
} from '../../../src/policy/policy-schema.js';

/** The default config's three tiers, cheapest first, all available. */
export const TIERS: readonly RouteTier[] = [
  { id: 'local', price: { input_per_mtok: 0, output_per_mtok: 0 }, available: true },
  { id: 'mixtral', price: { input_per_mtok: 0.24, output_per_mtok: 0.24 }, available: true },
  { id: 'gpt4', price: { input_per_mtok: 10, output_per_mtok: 30 }, available: true },
];

/** With 1000 input tokens and the default 256 output tokens. */
export const COST = { local: 0, mixtral: (1256 * 0.24) / 1e6, gpt4: (1000 * 10 + 256 * 30) / 1e6 };

export const NOW = Date.UTC(2025, 0, 1, 12);

export function policy(fields: Partial<PolicyInput> = {}): Policy {
  return PolicySchema.parse({ version: 'test-1', kind: 'threshold', ...fields });
}

export function input(p: Record<string, number>, extra: Partial<RouteInput> = {}): RouteInput {
  return { prediction: { tiers: p, difficulty: 0.4 }, tiers: TIERS, input_tokens: 1000, ...extra };
}

/** TIERS with the named ones unavailable. */
export function without(...ids: string[]): RouteTier[] {
  return TIERS.map((t) =>
    ids.includes(t.id)
      ? { ...t, available: false, unavailable_reason: `${t.id.toUpperCase()}_API_KEY is not set` }
      : t,
  );
}
