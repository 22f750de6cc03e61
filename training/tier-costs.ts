import { TrainingDataError } from '../src/errors.js';
import type { Trace } from '../src/traces/trace-schema.js';
import { LIST_PRICES } from './list-prices.js';

/**
 * What answering a trace with a tier costs, in USD, and so which tier is the cheapest. Prices are per
 * million tokens (input / output). A trace's own `cost` wins; else its `tokens`; else the prompt's token
 * count from the encoder's tokenizer (the only tokenizer at hand — not the tier's own, which the data
 * README asks us to state) and an assumed output length per tier.
 */
export interface TierPrice {
  input_usd_per_mtok: number;
  output_usd_per_mtok: number;
}

/**
 * List prices of the shared data's tiers (training/list-prices.ts, with sources). A tier neither listed
 * there nor given by `--prices` is taken as a local one, at 0/0, where its traces give no cost.
 */
export const DEFAULT_PRICES: Readonly<Record<string, TierPrice>> = Object.fromEntries(
  Object.entries(LIST_PRICES).map(([id, p]) => [
    id,
    { input_usd_per_mtok: p.input_usd_per_mtok, output_usd_per_mtok: p.output_usd_per_mtok },
  ]),
);

/**
 * Output tokens assumed when a trace gives none. One for MMLU-style multiple choice: the prompt ends in
 * `Answer:` and a single letter is the answer; any longer reply is the tier's verbosity, not the task's.
 */
export const DEFAULT_OUTPUT_TOKENS = 1;

const number = (text: string, what: string): number => {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0) {
    throw new TrainingDataError(`${what}: "${text}" is not a non-negative number`);
  }
  return value;
};

/** `tier=in/out,tier=in/out` (USD per Mtok) → prices by tier. */
export function parsePrices(text: string): Record<string, TierPrice> {
  const prices: Record<string, TierPrice> = {};
  for (const part of text.split(',').filter((p) => p.trim() !== '')) {
    const match = /^\s*([^=\s]+)\s*=\s*([^/\s]+)\s*\/\s*([^/\s]+)\s*$/.exec(part);
    if (!match) throw new TrainingDataError(`--prices: "${part}" is not tier=input/output (USD per Mtok)`);
    prices[match[1]!] = {
      input_usd_per_mtok: number(match[2]!, `--prices ${match[1]} input`),
      output_usd_per_mtok: number(match[3]!, `--prices ${match[1]} output`),
    };
  }
  return prices;
}

/** `N` (every tier) or `tier=N,tier=N` (others keep the default) → output tokens by tier. */
export function parseOutputTokens(text: string): { all?: number; byTier: Record<string, number> } {
  if (/^\s*\d+\s*$/.test(text)) return { all: number(text, '--output-tokens'), byTier: {} };
  const byTier: Record<string, number> = {};
  for (const part of text.split(',').filter((p) => p.trim() !== '')) {
    const match = /^\s*([^=\s]+)\s*=\s*(\d+)\s*$/.exec(part);
    if (!match) throw new TrainingDataError(`--output-tokens: "${part}" is not N or tier=N`);
    byTier[match[1]!] = number(match[2]!, `--output-tokens ${match[1]}`);
  }
  return { byTier };
}

export interface CostOptions {
  prices?: Record<string, TierPrice>;
  outputTokens?: { all?: number; byTier: Record<string, number> };
}

export interface CostTable {
  /** Per tier id. */
  prices: Record<string, TierPrice>;
  /** Tiers priced at 0/0 because no price was known for them. */
  assumedLocal: string[];
  /** Per tier, per row: USD. */
  costs: Record<string, number[]>;
  /** How each figure was obtained, per tier, counted over the rows. */
  sources: Record<string, { trace_cost: number; trace_tokens: number; encoder_tokens: number }>;
  /** Output tokens assumed per tier where a trace had none. */
  assumedOutputTokens: Record<string, number>;
}

/**
 * Costs of every row under every tier. `promptTokens[i]` is the encoder's token count of row i's prompt
 * (from the activation store), used only when the trace has no token counts for the tier.
 */
export function costTable(
  traces: readonly Trace[],
  promptTokens: readonly number[],
  tiers: readonly string[],
  options: CostOptions = {},
): CostTable {
  const prices: Record<string, TierPrice> = {};
  const assumedLocal: string[] = [];
  const costs: Record<string, number[]> = {};
  const sources: CostTable['sources'] = {};
  const assumedOutputTokens: Record<string, number> = {};
  for (const tier of tiers) {
    const price = options.prices?.[tier] ?? DEFAULT_PRICES[tier];
    // Unpriced and costed by the traces everywhere: nothing is assumed.
    if (!price && traces.some((t) => t.cost?.[tier] === undefined)) assumedLocal.push(tier);
    prices[tier] = price ?? { input_usd_per_mtok: 0, output_usd_per_mtok: 0 };
    const out = options.outputTokens?.byTier[tier] ?? options.outputTokens?.all ?? DEFAULT_OUTPUT_TOKENS;
    assumedOutputTokens[tier] = out;
    const count = { trace_cost: 0, trace_tokens: 0, encoder_tokens: 0 };
    costs[tier] = traces.map((trace, i) => {
      const given = trace.cost?.[tier];
      if (given !== undefined) {
        count.trace_cost += 1;
        return given;
      }
      const tokens = trace.tokens?.[tier];
      let input = promptTokens[i]!;
      let output = out;
      if (tokens?.input !== undefined || tokens?.output !== undefined) {
        count.trace_tokens += 1;
        input = tokens.input ?? input;
        output = tokens.output ?? output;
      } else count.encoder_tokens += 1;
      const p = prices[tier]!;
      return (input * p.input_usd_per_mtok + output * p.output_usd_per_mtok) / 1e6;
    });
    sources[tier] = count;
  }
  return { prices, assumedLocal, costs, sources, assumedOutputTokens };
}

/** Tier ids ordered cheapest first by mean cost per row (ties by id, so the order is stable). */
export function orderByCost(tiers: readonly string[], table: Pick<CostTable, 'costs'>): string[] {
  const mean = (t: string) => {
    const c = table.costs[t]!;
    return c.length === 0 ? 0 : c.reduce((s, v) => s + v, 0) / c.length;
  };
  return [...tiers].sort((a, b) => mean(a) - mean(b) || a.localeCompare(b));
}

/** The cost options of the `--prices` / `--output-tokens` flags every costing command shares. */
export function costOptionsFromFlags(flags: { prices?: string; outputTokens?: string }): CostOptions {
  return {
    ...(flags.prices ? { prices: parsePrices(flags.prices) } : {}),
    ...(flags.outputTokens ? { outputTokens: parseOutputTokens(flags.outputTokens) } : {}),
  };
}
